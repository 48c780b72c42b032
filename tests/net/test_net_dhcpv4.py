"""DHCPv4 codec: byte-exact against a reference encoder's output, RFC 3396 splitting,
option overload both ways, option 119 and 121, and malformed input."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net import dhcpv4
from net.dhcpv4 import DhcpMessage, MessageType, Opt
from net.packet_errors import MalformedPacket

# A DHCPDISCOVER as scapy 2.5 builds it: BOOTP(op=1, xid=0x12345678, flags=0x8000,
# chaddr=02:00:00:00:00:05) / DHCP(message-type discover, param_req_list [1,3,6,12,15,
# 26,28,119,121], max_dhcp_size 1500, end).
SCAPY_DISCOVER = bytes.fromhex(
    "0101060012345678000080000000000000000000000000000000000002000000000500000000000000000000"
    + "00" * 192
    + "6382536335010137090103060c0f1a1c7779390205dcff"
)
MAC = bytes.fromhex("020000000005")


def test_decode_reference_discover() -> None:
    m = dhcpv4.decode(SCAPY_DISCOVER)
    assert m.op == dhcpv4.BOOTREQUEST
    assert m.xid == 0x12345678
    assert m.mac == MAC
    assert m.broadcast
    assert m.message_type == MessageType.DISCOVER
    assert m.requested_options == bytes([1, 3, 6, 12, 15, 26, 28, 119, 121])
    assert m.max_message_size == 1500
    assert list(m.options) == [53, 55, 57]


def test_encode_matches_reference_then_pads_to_300() -> None:
    m = DhcpMessage(
        op=1,
        xid=0x12345678,
        chaddr=MAC,
        flags=dhcpv4.FLAG_BROADCAST,
        options={53: b"\x01", 55: bytes([1, 3, 6, 12, 15, 26, 28, 119, 121]), 57: dhcpv4.u16(1500)},
    )
    raw = dhcpv4.encode(m)
    assert raw[: len(SCAPY_DISCOVER)] == SCAPY_DISCOVER
    assert len(raw) == 300 and raw[len(SCAPY_DISCOVER) :] == b"\0" * (300 - len(SCAPY_DISCOVER))


def test_long_option_is_split_and_joined() -> None:
    value = bytes(range(256)) + b"tail"  # 260 bytes: two instances, 255 + 5
    raw = dhcpv4.encode(DhcpMessage(op=2, xid=1, chaddr=MAC, options={53: b"\x02", 77: value}), 1500)
    opts = raw[240:]
    assert opts[:3] == b"\x35\x01\x02"
    assert opts[3:5] == b"\x4d\xff" and opts[5 : 5 + 255] == value[:255]
    assert opts[260:262] == b"\x4d\x05" and opts[262:267] == value[255:]
    assert opts[267] == Opt.END
    assert dhcpv4.decode(raw).options[77] == value


def test_overflow_goes_into_file_then_sname() -> None:
    big = b"h" * 250
    more = b"d" * 200
    m = DhcpMessage(op=2, xid=9, chaddr=MAC, options={53: b"\x05", 12: big, 15: more, 6: b"\x01\x02\x03\x04"})
    raw = dhcpv4.encode(m)  # 576: the options field holds 308 bytes
    assert len(raw) <= 576 - 28
    assert raw[240:243] == bytes((Opt.OVERLOAD, 1, 3))
    back = dhcpv4.decode(raw)
    assert back.options[12] == big and back.options[15] == more and back.options[6] == b"\x01\x02\x03\x04"
    assert back.file == b"" and back.sname == b""
    # The file field (offset 108) starts with options, not a boot file name.
    assert raw[108] in (12, 15, 6)


def test_overload_refused_when_it_cannot_fit() -> None:
    with pytest.raises(dhcpv4.MessageTooLarge):
        dhcpv4.encode(DhcpMessage(op=2, xid=9, chaddr=MAC, options={12: b"x" * 600}))


def test_decode_overloaded_sname_only() -> None:
    m = DhcpMessage(op=1, xid=3, chaddr=MAC, options={53: b"\x03"})
    raw = bytearray(dhcpv4.encode(m))
    # put option 52=2 in the options field and option 12 in sname (offset 44)
    raw[240:247] = bytes((53, 1, 3, 52, 1, 2, 255))
    raw[44:52] = bytes((12, 4)) + b"vm01" + bytes((255, 0))
    back = dhcpv4.decode(bytes(raw))
    assert back.options[12] == b"vm01"
    assert back.sname == b""


def test_overloaded_field_without_end_is_malformed() -> None:
    raw = bytearray(dhcpv4.encode(DhcpMessage(op=1, xid=3, chaddr=MAC, options={53: b"\x03"})))
    raw[240:247] = bytes((53, 1, 3, 52, 1, 2, 255))
    raw[44:108] = bytes((12, 62)) + b"a" * 62  # fills sname, no END
    with pytest.raises(MalformedPacket, match="no end option"):
        dhcpv4.decode(bytes(raw))


def test_domain_search_rfc3397_example() -> None:
    # RFC 3397 §2: "eng.apple.com." and "marketing.apple.com." with compression.
    raw = dhcpv4.encode_domain_search(["eng.apple.com", "marketing.apple.com"])
    assert raw == bytes.fromhex("03656e67056170706c6503636f6d00096d61726b6574696e67c004")
    assert dhcpv4.decode_domain_search(raw) == ["eng.apple.com", "marketing.apple.com"]


def test_domain_search_split_over_instances_keeps_pointers() -> None:
    names = [f"n{i}.cluster{i % 3}.example.org" for i in range(40)]
    value = dhcpv4.encode_domain_search(names)
    assert len(value) > 255
    raw = dhcpv4.encode(DhcpMessage(op=2, xid=1, chaddr=MAC, options={53: b"\x05", 119: value}), 1500)
    assert dhcpv4.decode_domain_search(dhcpv4.decode(raw).options[119]) == names


@pytest.mark.parametrize(
    "value",
    [
        b"\xc0\x00",  # pointer to itself
        b"\x03abc\xc0\x06\x00",  # forward pointer
        b"\x03ab",  # label past the end
        b"\x80abc",  # reserved label type
        b"\xc0",  # truncated pointer
    ],
)
def test_domain_search_bad(value: bytes) -> None:
    with pytest.raises(MalformedPacket):
        dhcpv4.decode_domain_search(value)


def test_classless_routes_rfc3442_examples() -> None:
    routes = [
        (IPv4Network("0.0.0.0/0"), IPv4Address("10.0.0.1")),
        (IPv4Network("10.0.0.0/8"), IPv4Address("10.0.0.6")),
        (IPv4Network("10.17.0.0/16"), IPv4Address("10.0.0.7")),
        (IPv4Network("10.27.129.0/24"), IPv4Address("10.0.0.8")),
        (IPv4Network("10.229.0.128/25"), IPv4Address("10.0.0.9")),
        (IPv4Network("10.198.122.47/32"), IPv4Address("10.0.0.10")),
    ]
    raw = dhcpv4.encode_classless_routes(routes)
    assert raw == bytes.fromhex(
        "000a000001" "080a0a000006" "100a110a000007" "180a1b810a000008" "190ae500800a000009" "200ac67a2f0a00000a"
    )
    assert dhcpv4.decode_classless_routes(raw) == routes


@pytest.mark.parametrize("value", [b"\x21\x0a\x00\x00\x00\x01\x02\x03\x04", b"\x18\x0a\x00", b"\x08\x0a\x0a\x00\x00"])
def test_classless_routes_bad(value: bytes) -> None:
    with pytest.raises(MalformedPacket):
        dhcpv4.decode_classless_routes(value)


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda b: b[:200], "truncated"),
        (lambda b: b[:236] + b"\x00\x00\x00\x00" + b[240:], "magic cookie"),
        (lambda b: b"\x07" + b[1:], "op"),
        (lambda b: b[:240] + b"\x35\x05\x01", "past the end"),
        (lambda b: b[:240] + b"\x35", "no length"),
        (lambda b: b[:240] + b"\x34\x01\x09\xff", "overload"),
    ],
)
def test_malformed(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MalformedPacket, match=reason):
        dhcpv4.decode(mutate(SCAPY_DISCOVER))


def test_message_without_type_decodes_with_none() -> None:
    raw = SCAPY_DISCOVER[:240] + b"\xff"
    assert dhcpv4.decode(raw).message_type is None


@given(st.binary(max_size=700))
def test_random_bytes_raise_only_malformed(data: bytes) -> None:
    try:
        dhcpv4.decode(data)
    except MalformedPacket:
        pass


@given(st.binary(min_size=0, max_size=500))
def test_random_options_after_a_valid_header(tail: bytes) -> None:
    try:
        m = dhcpv4.decode(SCAPY_DISCOVER[:240] + tail)
    except MalformedPacket:
        return
    for code in (119, 121):
        if code in m.options:
            try:
                (dhcpv4.decode_domain_search if code == 119 else dhcpv4.decode_classless_routes)(m.options[code])
            except MalformedPacket:
                pass


option_codes = st.integers(1, 254).filter(lambda c: c != Opt.OVERLOAD)


@given(
    st.dictionaries(option_codes, st.binary(max_size=300), max_size=6),
    st.integers(0, 0xFFFFFFFF),
    st.binary(min_size=6, max_size=6),
    st.sampled_from([576, 1000, 1500]),
)
def test_roundtrip(options: dict[int, bytes], xid: int, mac: bytes, size: int) -> None:
    m = DhcpMessage(op=2, xid=xid, chaddr=mac, yiaddr=IPv4Address("10.1.2.3"), options=options)
    try:
        raw = dhcpv4.encode(m, size)
    except dhcpv4.MessageTooLarge:
        return
    assert len(raw) <= max(300, size - 28)
    back = dhcpv4.decode(raw)
    # Empty options survive as empty values; RFC 3396 joins split instances.
    assert {c: v for c, v in back.options.items() if c != Opt.OVERLOAD} == options
    assert back.xid == xid and back.mac == mac and back.yiaddr == IPv4Address("10.1.2.3")


@given(st.lists(st.from_regex(r"[a-z0-9]{1,12}(\.[a-z0-9]{1,12}){0,3}", fullmatch=True), max_size=12))
def test_domain_search_roundtrip(names: list[str]) -> None:
    assert dhcpv4.decode_domain_search(dhcpv4.encode_domain_search(names)) == names
