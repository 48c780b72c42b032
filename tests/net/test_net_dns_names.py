"""Domain name lists (RFC 1035 wire form) as DHCPv4 119, DHCPv6 24 and DNSSL carry them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.dns_names import check_name, decode_names, encode_names, padded
from net.packet_errors import MalformedPacket


def test_uncompressed() -> None:
    assert encode_names(["example.org.", "b.example"], compress=False) == (
        b"\x07example\x03org\x00\x01b\x07example\x00"
    )


def test_compressed_reuses_whole_names_and_suffixes() -> None:
    raw = encode_names(["a.example.org", "example.org", "b.a.example.org"], compress=True)
    assert raw == b"\x01a\x07example\x03org\x00" + b"\xc0\x02" + b"\x01b\xc0\x00"
    assert decode_names(raw, allow_compression=True) == ["a.example.org", "example.org", "b.a.example.org"]


def test_pointers_refused_where_not_allowed() -> None:
    with pytest.raises(MalformedPacket, match="compression"):
        decode_names(b"\x01a\x00\xc0\x00", allow_compression=False)


def test_padding() -> None:
    assert padded(["ab"], 8) == b"\x02ab\x00\x00\x00\x00\x00"


@pytest.mark.parametrize("name", ["", ".", "a..b", "x" * 64 + ".org", ".".join(["abcdefg"] * 40)])
def test_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        check_name(name)


def test_too_long_on_the_wire() -> None:
    label = b"\x3f" + b"a" * 63
    with pytest.raises(MalformedPacket, match="255"):
        decode_names(label * 5 + b"\x00", allow_compression=False)


@given(st.binary(max_size=200), st.booleans())
def test_random_bytes_raise_only_malformed(data: bytes, compression: bool) -> None:
    try:
        decode_names(data, allow_compression=compression)
    except MalformedPacket:
        pass


@given(st.lists(st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z0-9-]{1,20}){0,4}", fullmatch=True), max_size=10), st.booleans())
def test_roundtrip(names: list[str], compress: bool) -> None:
    assert decode_names(encode_names(names, compress=compress), allow_compression=compress) == names
