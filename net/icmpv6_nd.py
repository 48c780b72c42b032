"""ICMPv6 Neighbor Discovery (RFC 4861): Router Solicitation and Advertisement,
Neighbor Solicitation and Advertisement, with the options a router for VMs sends
and reads: link-layer addresses, prefix information, MTU, RDNSS and DNSSL (RFC 8106).

Sans-I/O: :func:`decode` checks the checksum against the IPv6 addresses and raises
only :class:`~net.packet_errors.MalformedPacket`; :func:`encode` computes it.
Byte layout: docs/dhcpd.md ("ICMPv6").
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

from net.dns_names import decode_names, padded
from net.ip_frames import IPPROTO_ICMPV6, internet_checksum, pseudo_header_v6
from net.packet_errors import MalformedPacket

__all__ = [
    "ALL_NODES",
    "ALL_ROUTERS",
    "Dnssl",
    "LinkLayerAddress",
    "NdOption",
    "Mtu",
    "NdMessage",
    "NeighborAdvertisement",
    "NeighborSolicitation",
    "PrefixInfo",
    "Rdnss",
    "RouterAdvertisement",
    "RouterSolicitation",
    "UnknownOption",
    "decode",
    "encode",
    "link_local_from_mac",
    "options_of",
    "source_mac",
    "solicited_node",
]

ALL_NODES = IPv6Address("ff02::1")
ALL_ROUTERS = IPv6Address("ff02::2")

RS, RA, NS, NA = 133, 134, 135, 136
OPT_SLLA, OPT_TLLA, OPT_PREFIX, OPT_MTU, OPT_RDNSS, OPT_DNSSL = 1, 2, 3, 5, 25, 31


@dataclass(frozen=True, slots=True)
class LinkLayerAddress:
    """Source (1) or target (2) link-layer address option."""

    kind: int
    mac: bytes


@dataclass(frozen=True, slots=True)
class PrefixInfo:
    prefix: IPv6Network
    on_link: bool = True
    autonomous: bool = True
    valid: int = 2592000
    preferred: int = 604800


@dataclass(frozen=True, slots=True)
class Mtu:
    mtu: int


@dataclass(frozen=True, slots=True)
class Rdnss:
    lifetime: int
    servers: tuple[IPv6Address, ...]


@dataclass(frozen=True, slots=True)
class Dnssl:
    lifetime: int
    domains: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnknownOption:
    type: int
    data: bytes  # without the type and length bytes


NdOption = LinkLayerAddress | PrefixInfo | Mtu | Rdnss | Dnssl | UnknownOption


@dataclass(frozen=True, slots=True)
class RouterSolicitation:
    options: tuple[NdOption, ...] = ()


@dataclass(frozen=True, slots=True)
class RouterAdvertisement:
    router_lifetime: int
    managed: bool = False
    other: bool = False
    hop_limit: int = 64
    reachable_time: int = 0
    retrans_timer: int = 0
    options: tuple[NdOption, ...] = ()


@dataclass(frozen=True, slots=True)
class NeighborSolicitation:
    target: IPv6Address
    options: tuple[NdOption, ...] = ()


@dataclass(frozen=True, slots=True)
class NeighborAdvertisement:
    target: IPv6Address
    router: bool = False
    solicited: bool = False
    override: bool = False
    options: tuple[NdOption, ...] = field(default=())


NdMessage = RouterSolicitation | RouterAdvertisement | NeighborSolicitation | NeighborAdvertisement


def source_mac(msg: NdMessage) -> bytes | None:
    for o in msg.options:
        if isinstance(o, LinkLayerAddress) and o.kind == OPT_SLLA:
            return o.mac
    return None



def link_local_from_mac(mac: bytes) -> IPv6Address:
    """fe80::/64 with the modified EUI-64 interface identifier (RFC 4291 App. A)."""
    eui = bytes((mac[0] ^ 0x02,)) + mac[1:3] + b"\xff\xfe" + mac[3:6]
    return IPv6Address(b"\xfe\x80" + b"\0" * 6 + eui)


def solicited_node(addr: IPv6Address) -> IPv6Address:
    return IPv6Address(b"\xff\x02" + b"\0" * 9 + b"\x01\xff" + addr.packed[13:])


# ------------------------------------------------------------------ options


def _decode_option(otype: int, body: bytes) -> NdOption:
    """``body`` is the option after its type and length bytes."""
    if otype in (OPT_SLLA, OPT_TLLA):
        return LinkLayerAddress(otype, body[:6])
    if otype == OPT_PREFIX:
        if len(body) != 30:
            raise MalformedPacket("prefix information option of wrong length")
        plen, flags, valid, pref = struct.unpack_from("!BBII", body)
        if plen > 128:
            raise MalformedPacket(f"prefix length {plen}")
        prefix = IPv6Network((IPv6Address(body[14:30]), plen), strict=False)
        return PrefixInfo(prefix, bool(flags & 0x80), bool(flags & 0x40), valid, pref)
    if otype == OPT_MTU:
        return Mtu(struct.unpack_from("!I", body, 2)[0])
    if otype == OPT_RDNSS:
        rest = body[6:]
        if not rest or len(rest) % 16:
            raise MalformedPacket("RDNSS option without whole addresses")
        lifetime = struct.unpack_from("!I", body, 2)[0]
        return Rdnss(lifetime, tuple(IPv6Address(rest[i : i + 16]) for i in range(0, len(rest), 16)))
    if otype == OPT_DNSSL:
        lifetime = struct.unpack_from("!I", body, 2)[0]
        names = body[6:].rstrip(b"\0")
        # The last name's root byte was stripped with the padding; put it back.
        return Dnssl(lifetime, tuple(decode_names(names + b"\0", allow_compression=False)) if names else ())
    return UnknownOption(otype, body)


def _decode_options(data: bytes) -> tuple[NdOption, ...]:
    out: list[NdOption] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise MalformedPacket("ND option header truncated")
        otype, units = data[pos], data[pos + 1]
        if units == 0:
            raise MalformedPacket("ND option of length 0")
        end = pos + units * 8
        if end > len(data):
            raise MalformedPacket(f"ND option {otype} runs past the end")
        out.append(_decode_option(otype, data[pos + 2 : end]))
        pos = end
    return tuple(out)


def _encode_option(o: NdOption) -> bytes:
    if isinstance(o, LinkLayerAddress):
        otype, body = o.kind, o.mac
    elif isinstance(o, PrefixInfo):
        flags = (0x80 if o.on_link else 0) | (0x40 if o.autonomous else 0)
        body = struct.pack("!BBIII", o.prefix.prefixlen, flags, o.valid, o.preferred, 0)
        otype, body = OPT_PREFIX, body + o.prefix.network_address.packed
    elif isinstance(o, Mtu):
        otype, body = OPT_MTU, struct.pack("!HI", 0, o.mtu)
    elif isinstance(o, Rdnss):
        otype, body = OPT_RDNSS, struct.pack("!HI", 0, o.lifetime) + b"".join(a.packed for a in o.servers)
    elif isinstance(o, Dnssl):
        otype, body = OPT_DNSSL, struct.pack("!HI", 0, o.lifetime) + padded(o.domains, 8)
    else:
        otype, body = o.type, o.data
    raw = bytes((otype, 0)) + body
    raw += b"\0" * (-len(raw) % 8)
    if len(raw) // 8 > 255:
        raise ValueError(f"ND option {otype} over 2040 bytes")
    return bytes((otype, len(raw) // 8)) + raw[2:]


# ----------------------------------------------------------------- messages


def decode(data: bytes, src: IPv6Address, dst: IPv6Address, *, verify: bool = True) -> NdMessage:
    """An ND message from an ICMPv6 payload; ``src``/``dst`` make the checksum."""
    if len(data) < 8:
        raise MalformedPacket("ICMPv6 message truncated")
    mtype, code = data[0], data[1]
    if verify and internet_checksum(pseudo_header_v6(src.packed, dst.packed, IPPROTO_ICMPV6, len(data)) + data):
        raise MalformedPacket("bad ICMPv6 checksum")
    if code != 0:
        raise MalformedPacket(f"ND message with code {code}")
    if mtype == RS:
        return RouterSolicitation(_decode_options(data[8:]))
    if mtype == RA:
        if len(data) < 16:
            raise MalformedPacket("RA truncated")
        hop, flags, life, reach, retrans = struct.unpack_from("!BBHII", data, 4)
        return RouterAdvertisement(
            life, bool(flags & 0x80), bool(flags & 0x40), hop, reach, retrans, _decode_options(data[16:])
        )
    if mtype in (NS, NA):
        if len(data) < 24:
            raise MalformedPacket("neighbor message truncated")
        target = IPv6Address(data[8:24])
        if target.is_multicast:
            raise MalformedPacket("neighbor message for a multicast target")
        opts = _decode_options(data[24:])
        if mtype == NS:
            return NeighborSolicitation(target, opts)
        f = data[4]
        return NeighborAdvertisement(target, bool(f & 0x80), bool(f & 0x40), bool(f & 0x20), opts)
    raise MalformedPacket(f"ICMPv6 type {mtype} is not neighbor discovery")


def encode(msg: NdMessage, src: IPv6Address, dst: IPv6Address) -> bytes:
    opts = b"".join(_encode_option(o) for o in msg.options)
    if isinstance(msg, RouterSolicitation):
        head = struct.pack("!BBHI", RS, 0, 0, 0)
    elif isinstance(msg, RouterAdvertisement):
        flags = (0x80 if msg.managed else 0) | (0x40 if msg.other else 0)
        head = struct.pack(
            "!BBHBBHII", RA, 0, 0, msg.hop_limit, flags, msg.router_lifetime, msg.reachable_time, msg.retrans_timer
        )
    elif isinstance(msg, NeighborSolicitation):
        head = struct.pack("!BBHI", NS, 0, 0, 0) + msg.target.packed
    else:
        flags = (0x80 if msg.router else 0) | (0x40 if msg.solicited else 0) | (0x20 if msg.override else 0)
        head = struct.pack("!BBHB3x", NA, 0, 0, flags) + msg.target.packed
    body = head + opts
    csum = internet_checksum(pseudo_header_v6(src.packed, dst.packed, IPPROTO_ICMPV6, len(body)) + body)
    return body[:2] + struct.pack("!H", csum) + body[4:]


def options_of(msg: NdMessage, kind: type) -> list[object]:
    return [o for o in msg.options if isinstance(o, kind)]
