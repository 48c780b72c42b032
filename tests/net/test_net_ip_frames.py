"""IP/UDP framing: byte-exact against scapy 2.5 for the headers replies carry; parsing limits."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net import ip_frames as f
from net.packet_errors import MalformedPacket

# IP(src=1.2.3.4, dst=255.255.255.255, tos=0x10, ttl=64, id=0)/UDP(67 -> 68)/"hello"
SCAPY_V4 = bytes.fromhex("4510002100000000401176b701020304ffffffff00430044000db77568656c6c6f")
# IPv6(src=fe80::1, dst=fe80::5, hlim=64)/UDP(547 -> 546)/"hello"
SCAPY_V6 = bytes.fromhex(
    "60000000000d1140fe800000000000000000000000000001fe80000000000000000000000000000502230222000dbab568656c6c6f"
)


def test_ipv4_udp_byte_exact() -> None:
    src, dst = IPv4Address("1.2.3.4").packed, IPv4Address("255.255.255.255").packed
    udp = f.udp_datagram(67, 68, b"hello", f.pseudo_header_v4(src, dst, 17, 13))
    assert f.ipv4_packet(src, dst, 17, udp) == SCAPY_V4
    p = f.parse_ip(SCAPY_V4)
    assert (p.version, str(p.src), str(p.dst), p.proto) == (4, "1.2.3.4", "255.255.255.255", 17)
    u = f.parse_udp(p.payload)
    assert (u.sport, u.dport, u.payload) == (67, 68, b"hello")


def test_ipv6_udp_byte_exact() -> None:
    src, dst = IPv6Address("fe80::1").packed, IPv6Address("fe80::5").packed
    udp = f.udp_datagram(547, 546, b"hello", f.pseudo_header_v6(src, dst, 17, 13))
    assert f.ipv6_packet(src, dst, 17, udp, 64) == SCAPY_V6
    p = f.parse_ip(SCAPY_V6)
    assert p.version == 6 and p.hop_limit == 64 and f.parse_udp(p.payload).payload == b"hello"


def test_ethernet_and_macs() -> None:
    assert f.ethernet(b"\xff" * 6, b"\x02" + b"\0" * 5, f.ETH_P_IP, b"x") == b"\xff" * 6 + b"\x02" + b"\0" * 5 + b"\x08\x00x"
    assert f.mac_bytes("02:00:00:0A:0b:0c") == bytes.fromhex("0200000a0b0c")
    assert f.mac_text(bytes.fromhex("0200000a0b0c")) == "02:00:00:0a:0b:0c"
    assert f.ipv6_multicast_mac(IPv6Address("ff02::1:ff00:1").packed) == bytes.fromhex("3333ff000001")
    for bad in ("02:00:00:00:00", "zz:00:00:00:00:00", "", "0200.0000.0000"):
        with pytest.raises(ValueError):
            f.mac_bytes(bad)


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "empty"),
        (SCAPY_V4[:19], "truncated"),
        (b"\x44" + SCAPY_V4[1:], "header length"),
        (SCAPY_V4[:2] + b"\x01\x00" + SCAPY_V4[4:], "total length"),
        (SCAPY_V4[:6] + b"\x20\x00" + SCAPY_V4[8:], "fragment"),
        (SCAPY_V6[:39], "truncated"),
        (SCAPY_V6[:4] + b"\x01\x00" + SCAPY_V6[6:], "past the end"),
        (b"\x50" + SCAPY_V4[1:], "version"),
    ],
)
def test_bad_ip(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket, match=reason):
        f.parse_ip(raw)


def test_bad_udp() -> None:
    with pytest.raises(MalformedPacket):
        f.parse_udp(b"\x00" * 7)
    with pytest.raises(MalformedPacket):
        f.parse_udp(b"\x00\x43\x00\x44\x00\x20\x00\x00")


@given(st.binary(max_size=120))
def test_random_bytes_raise_only_malformed(data: bytes) -> None:
    try:
        p = f.parse_ip(data)
        f.parse_udp(p.payload)
    except MalformedPacket:
        pass


@given(st.binary(max_size=300))
def test_checksum_verifies_to_zero(data: bytes) -> None:
    c = f.internet_checksum(data)
    padded = data + (b"\0" if len(data) % 2 else b"")
    assert f.internet_checksum(padded + c.to_bytes(2, "big")) == 0
