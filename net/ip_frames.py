"""Ethernet, IPv4, IPv6 and UDP framing: what an NFQUEUE payload starts with and
what a reply sent through a packet socket must carry.

Sans-I/O: parse an IP packet into its header fields and transport payload, or
build a complete Ethernet frame (checksums included) around a UDP or ICMPv6
payload. The header layouts are in docs/dhcpd.md ("Frames").
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from net.packet_errors import MalformedPacket

__all__ = [
    "ETH_P_IP",
    "ETH_P_IPV6",
    "IPPROTO_ICMPV6",
    "IPPROTO_UDP",
    "BROADCAST_MAC",
    "IpPacket",
    "UdpDatagram",
    "ethernet",
    "internet_checksum",
    "ipv4_packet",
    "ipv6_multicast_mac",
    "ipv6_packet",
    "mac_bytes",
    "mac_text",
    "parse_ip",
    "parse_udp",
    "pseudo_header_v4",
    "pseudo_header_v6",
    "udp_datagram",
]

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
BROADCAST_MAC = b"\xff" * 6

_ETH = struct.Struct("!6s6sH")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")


def mac_bytes(text: str) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` (or with ``-``) as 6 bytes; ValueError otherwise."""
    parts = text.strip().replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) in (1, 2) for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"not a MAC address: {text!r}") from None


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def internet_checksum(data: bytes) -> int:
    """RFC 1071 ones' complement sum, as stored in IPv4, UDP and ICMPv6 headers."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header_v4(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    return src + dst + struct.pack("!BBH", 0, proto, length)


def pseudo_header_v6(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    return src + dst + struct.pack("!I3xB", length, proto)


@dataclass(frozen=True, slots=True)
class IpPacket:
    """An IPv4 or IPv6 packet as far as a responder needs it."""

    version: int
    src: ipaddress.IPv4Address | ipaddress.IPv6Address
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address
    proto: int
    hop_limit: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    sport: int
    dport: int
    payload: bytes


def parse_ip(data: bytes) -> IpPacket:
    """An IP packet (no link header), as NFQUEUE delivers it."""
    if not data:
        raise MalformedPacket("empty IP packet")
    version = data[0] >> 4
    if version == 4:
        if len(data) < 20:
            raise MalformedPacket("IPv4 header truncated")
        vihl, _tos, total, _ident, frag, ttl, proto, _csum, src, dst = _IPV4.unpack_from(data)
        ihl = (vihl & 0x0F) * 4
        if ihl < 20 or ihl > len(data):
            raise MalformedPacket("bad IPv4 header length")
        if total < ihl or total > len(data):
            raise MalformedPacket("bad IPv4 total length")
        if frag & 0x3FFF:
            raise MalformedPacket("IPv4 fragment")
        return IpPacket(
            4, ipaddress.IPv4Address(src), ipaddress.IPv4Address(dst), proto, ttl, data[ihl:total]
        )
    if version == 6:
        if len(data) < 40:
            raise MalformedPacket("IPv6 header truncated")
        _vtf, plen, nxt, hlim, src, dst = _IPV6.unpack_from(data)
        if 40 + plen > len(data):
            raise MalformedPacket("IPv6 payload length past the end")
        # The packets queued here (ND, DHCPv6) carry no extension headers; one with
        # them is not ours to parse.
        return IpPacket(
            6, ipaddress.IPv6Address(src), ipaddress.IPv6Address(dst), nxt, hlim, data[40 : 40 + plen]
        )
    raise MalformedPacket(f"IP version {version}")


def parse_udp(data: bytes) -> UdpDatagram:
    if len(data) < 8:
        raise MalformedPacket("UDP header truncated")
    sport, dport, length, _csum = _UDP.unpack_from(data)
    if length < 8 or length > len(data):
        raise MalformedPacket("bad UDP length")
    return UdpDatagram(sport, dport, data[8:length])


def udp_datagram(sport: int, dport: int, payload: bytes, pseudo: bytes) -> bytes:
    """A UDP header and payload; ``pseudo`` is the IP pseudo-header for the checksum."""
    length = 8 + len(payload)
    head = _UDP.pack(sport, dport, length, 0)
    csum = internet_checksum(pseudo + head + payload) or 0xFFFF
    return _UDP.pack(sport, dport, length, csum) + payload


def ipv4_packet(src: bytes, dst: bytes, proto: int, payload: bytes, ttl: int = 64) -> bytes:
    head = _IPV4.pack(0x45, 0x10, 20 + len(payload), 0, 0, ttl, proto, 0, src, dst)
    csum = internet_checksum(head)
    return head[:10] + struct.pack("!H", csum) + head[12:] + payload


def ipv6_packet(src: bytes, dst: bytes, proto: int, payload: bytes, hop_limit: int = 255) -> bytes:
    return _IPV6.pack(6 << 28, len(payload), proto, hop_limit, src, dst) + payload


def ipv6_multicast_mac(group: bytes) -> bytes:
    """RFC 2464 §7: 33:33 followed by the group's last four bytes."""
    return b"\x33\x33" + group[12:16]


def ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return _ETH.pack(dst, src, ethertype) + payload
