"""net/volume_admin: the JSON-lines admin protocol, byte for byte, and its parsers under fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from net.volume_admin import (
    AdminProgress,
    AdminProtocolError,
    AdminReply,
    AdminRequest,
    LineFramer,
    parse_reply,
    parse_request,
)


def test_request_and_replies_bytes() -> None:
    assert AdminRequest("create", {"name": "v", "size": 512}).encode() == b'{"op":"create","args":{"name":"v","size":512}}\n'
    assert AdminReply(True, [1]).encode() == b'{"ok":true,"result":[1]}\n'
    assert AdminReply(False, error="no", kind="VolumeNotFound").encode() == b'{"ok":false,"error":"no","kind":"VolumeNotFound"}\n'
    assert parse_reply(AdminProgress(3, 9).encode().strip()) == AdminProgress(3, 9)


def test_framer_splits_and_limits() -> None:
    f = LineFramer(max_line=10)
    assert f.feed(b"ab\ncd") == [b"ab"]
    assert f.feed(b"e\n") == [b"cde"]
    with pytest.raises(AdminProtocolError):
        f.feed(b"x" * 11)


@pytest.mark.parametrize("line", [b"", b"[]", b'{"op":"Create"}', b'{"op":"x","args":[]}', b'{"op":"x","y":1}', b"\xff"])
def test_bad_requests_are_refused(line: bytes) -> None:
    with pytest.raises(AdminProtocolError):
        parse_request(line)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parsers_only_raise_protocol_errors(line: bytes) -> None:
    for parse in (parse_request, parse_reply):
        try:
            parse(line)
        except AdminProtocolError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[a-z][a-z_]{0,31}", fullmatch=True),
       st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=4))
def test_requests_round_trip(op: str, args: dict) -> None:
    raw = AdminRequest(op, args).encode()
    assert LineFramer().feed(raw) == [raw[:-1]]
    assert parse_request(raw[:-1]) == AdminRequest(op, args)
