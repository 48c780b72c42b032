"""Server-Sent Events: what eventd writes, the client parses back, however it is split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.sse import SseEvent, SseParser, encode_event


def parse(chunks: list[bytes]) -> list[SseEvent]:
    p = SseParser()
    out = []
    for c in chunks:
        out += p.feed(c)
    return out


def test_eventd_event_bytes() -> None:
    assert encode_event('{"a":1}', event="ganeti.snf.event.op", id="7") == (
        b'id: 7\nevent: ganeti.snf.event.op\ndata: {"a":1}\n\n'
    )
    assert encode_event("x\ny") == b"data: x\ndata: y\n\n"
    with pytest.raises(ValueError):
        encode_event("x", id="1\n2")


def test_parser_follows_the_standard() -> None:
    stream = (
        b"retry: 1000\n\n: keep-alive\n\n"
        b"id: 1\r\nevent: ganeti.event.cluster\r\ndata: {}\r\n\r\n"
        b"data:no space\rdata:  two spaces\r\r"
        b"id: 5\nfoo: ignored\ndata\n\n"
        b"event: lonely\n\n"
    )
    evs = parse([stream])
    assert evs == [
        SseEvent("{}", "ganeti.event.cluster", "1", 1000),
        SseEvent("no space\n two spaces", "message", "1", 1000),
        SseEvent("", "message", "5", 1000),
    ]


def test_crlf_split_between_reads() -> None:
    assert parse([b"data: a\r", b"\n\r", b"\n"]) == [SseEvent("a")]


def test_overlong_line_is_refused() -> None:
    p = SseParser(max_line=10)
    with pytest.raises(ValueError):
        p.feed(b"data: " + b"x" * 20)


one_line = st.text(alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=20)


@given(st.lists(st.tuples(one_line, st.one_of(st.none(), one_line.filter(bool)), st.integers(0, 10**9)), max_size=6),
       st.data())
def test_round_trip_any_split(events: list, data: st.DataObject) -> None:
    stream = b"".join(encode_event(d, event=e, id=str(i)) for d, e, i in events)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
    got = parse(chunks)
    assert [(g.data, g.event, g.id) for g in got] == [(d, e or "message", str(i)) for d, e, i in events]


@given(st.lists(st.binary(max_size=30), max_size=6))
def test_arbitrary_bytes_never_crash(chunks: list[bytes]) -> None:
    for ev in parse(chunks):
        assert isinstance(ev.data, str)
