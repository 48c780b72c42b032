"""net/vnc_control.py: framing (lone object, lines), validation reasons, replies."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.vnc_control import (
    MAX_REQUEST,
    ControlError,
    ControlReply,
    ControlRequest,
    RequestReader,
    parse_request,
)

GOOD = {"source_port": 0, "destination_address": "10.0.0.5", "destination_port": 5901, "password": "s3cr3t"}


def read_all(reader: RequestReader) -> list:
    out = []
    while (item := reader.next()) is not None:
        out.append(item)
    return out


def test_lone_object_without_newline_as_the_original_client_sends() -> None:
    r = RequestReader()
    raw = json.dumps(GOOD).encode()
    r.feed(raw[:10])
    assert r.next() is None
    r.feed(raw[10:])
    req = r.next()
    assert req == ControlRequest("10.0.0.5", 5901, "s3cr3t")
    assert r.next() is None and r.pending == 0


def test_newline_terminated_objects_several_per_connection() -> None:
    r = RequestReader()
    second = dict(GOOD, type="vnc-ws", auth_user="u", auth_password="p", source_port=25001)
    r.feed((json.dumps(GOOD) + "\n\n" + json.dumps(second) + "\n").encode())
    items = read_all(r)
    assert [i.type for i in items] == ["vnc", "vnc-ws"]
    assert items[1].auth_user == "u" and items[1].source_port == 25001


def test_bad_line_gets_a_reason_and_the_stream_goes_on() -> None:
    r = RequestReader()
    r.feed(b"not json\n" + json.dumps(GOOD).encode() + b"\n")
    first, second = read_all(r)
    assert isinstance(first, ControlError) and "not valid JSON" in str(first)
    assert isinstance(second, ControlRequest)


def test_partial_object_at_eof_is_an_error() -> None:
    r = RequestReader()
    r.feed(b'{"destination_address": "h"')
    assert r.next() is None
    r.feed_eof()
    item = r.next()
    assert isinstance(item, ControlError) and "not valid JSON" in str(item)


def test_two_objects_back_to_back_without_newline() -> None:
    r = RequestReader()
    r.feed((json.dumps(GOOD) + json.dumps(dict(GOOD, password="x"))).encode())
    a, b = read_all(r)
    assert (a.password, b.password) == ("s3cr3t", "x")


def test_oversized_request_breaks_the_stream() -> None:
    r = RequestReader()
    r.feed(b"{" + b" " * (MAX_REQUEST + 1))
    item = r.next()
    assert isinstance(item, ControlError) and "larger than" in str(item)
    assert r.broken and r.next() is None
    r = RequestReader()
    r.feed(b'{"a":"' + b"x" * (MAX_REQUEST + 1) + b'"}\n')
    assert "larger than" in str(r.next())


def test_invalid_utf8() -> None:
    r = RequestReader()
    r.feed(b'{"password": "\xff"}\n')
    assert "UTF-8" in str(r.next())


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"destination_port": None}, "missing required field destination_port"),
        ({"password": None}, "missing required field password"),
        ({"destination_address": None}, "missing required field destination_address"),
        ({"password": ""}, "password must not be empty"),
        ({"destination_port": "5900"}, "destination_port must be an integer, got a string"),
        ({"destination_port": True}, "destination_port must be an integer, got a boolean"),
        ({"destination_port": 0}, "destination_port must be between 1 and 65535, got 0"),
        ({"destination_port": 70000}, "destination_port must be between 1 and 65535, got 70000"),
        ({"source_port": -1}, "source_port must be between 0 and 65535, got -1"),
        ({"source_port": 1.5}, "source_port must be an integer, got a number"),
        ({"type": "rdp"}, "type must be one of vnc, vnc-ws, vnc-wss, got 'rdp'"),
        ({"destination_address": "bad host!"}, "destination_address is not an IP address or host name"),
        ({"destination_address": 5}, "destination_address must be a string, got an integer"),
        ({"auth_user": ["x"]}, "auth_user must be a string, got an array"),
        ({"password": "a\x00b"}, "password must not contain NUL characters"),
    ],
)
def test_validation_reasons(change: dict, reason: str) -> None:
    obj = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(ControlError) as exc:
        parse_request(obj)
    assert reason in str(exc.value)


def test_validation_accepts_hostnames_ipv6_and_ignores_unknown_keys() -> None:
    assert parse_request(dict(GOOD, destination_address="node1.example.org")).destination_address == "node1.example.org"
    assert parse_request(dict(GOOD, destination_address="[::1]")).destination_address == "::1"
    assert parse_request(dict(GOOD, extra=1, type=None)).type == "vnc"
    with pytest.raises(ControlError, match="must be a JSON object, got an array"):
        parse_request([GOOD])


def test_reply_bytes() -> None:
    assert ControlReply.ok(25000, "proxy.example.org").encode() == (
        b'{"source_port":25000,"status":"OK","proxy_address":"proxy.example.org"}\n'
    )
    assert ControlReply.failed("no free port").encode() == (
        b'{"source_port":0,"status":"FAILED","proxy_address":null,"reason":"no free port"}\n'
    )
    assert ControlReply.decode(ControlReply.failed("x").encode()) == ControlReply.failed("x")
    with pytest.raises(ControlError):
        ControlReply.decode(b"garbage")


def test_request_encode_round_trip() -> None:
    req = ControlRequest("::1", 5900, "pw", 0, "u", "p", "vnc-wss", "bk")
    r = RequestReader()
    r.feed(req.encode())
    assert r.next() == req


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


@given(st.dictionaries(st.sampled_from(list(GOOD) + ["type", "auth_user", "x"]), _json, max_size=8))
def test_property_validation_never_raises_anything_else(obj: dict) -> None:
    try:
        req = parse_request(obj)
    except ControlError as exc:
        assert str(exc)
    else:
        assert 1 <= req.destination_port <= 65535 and req.password


@given(st.binary(max_size=300), st.lists(st.integers(min_value=1, max_value=50), max_size=10))
def test_property_reader_survives_any_bytes(data: bytes, cuts: list[int]) -> None:
    r = RequestReader(limit=128)
    pos = 0
    for c in cuts + [len(data)]:
        r.feed(data[pos : pos + c])
        pos += c
        read_all(r)
    r.feed_eof()
    items = read_all(r)
    assert all(isinstance(i, (ControlRequest, ControlError)) for i in items)
    assert r.pending == 0 or r.broken


@given(st.lists(st.builds(ControlRequest, destination_address=st.just("127.0.0.1"),
                          destination_port=st.integers(1, 65535), password=st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s),
                          source_port=st.integers(0, 65535)), min_size=1, max_size=5),
       st.integers(min_value=1, max_value=30))
def test_property_split_anywhere_gives_the_same_requests(reqs: list[ControlRequest], chunk: int) -> None:
    data = b"".join(r.encode() for r in reqs)
    r = RequestReader()
    got = []
    for i in range(0, len(data), chunk):
        r.feed(data[i : i + chunk])
        got += read_all(r)
    assert got == reqs
