"""DHCPv6 messages (RFC 8415) between a client and a server on the link: the
stateless exchange (Information-Request → Reply) and the stateful one
(Solicit → Advertise, Request/Renew/Rebind/Confirm → Reply) with IA_NA, DUIDs,
DNS servers (RFC 3646) and the domain search list.

Sans-I/O: :func:`decode` raises only :class:`~net.packet_errors.MalformedPacket`;
options keep their order and repeats (a client may send several IA_NA).
Byte layout: docs/dhcpd.md ("DHCPv6").
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Address

from net.dns_names import decode_names, encode_names
from net.packet_errors import MalformedPacket

__all__ = [
    "ALL_SERVERS_AND_RELAYS",
    "CLIENT_PORT",
    "SERVER_PORT",
    "DhcpV6Message",
    "Duid",
    "IaAddress",
    "IaNa",
    "MsgType",
    "Opt6",
    "Status",
    "decode",
    "decode_dns_servers",
    "decode_domain_list",
    "decode_duid",
    "decode_ia_na",
    "decode_oro",
    "duid_ll",
    "encode",
    "encode_dns_servers",
    "encode_domain_list",
    "encode_ia_na",
    "encode_status",
    "option",
]

CLIENT_PORT = 546
SERVER_PORT = 547
ALL_SERVERS_AND_RELAYS = IPv6Address("ff02::1:2")
MAX_DUID = 130  # type (2) + up to 128 octets (RFC 8415 §11.1)


class MsgType:
    SOLICIT = 1
    ADVERTISE = 2
    REQUEST = 3
    CONFIRM = 4
    RENEW = 5
    REBIND = 6
    REPLY = 7
    RELEASE = 8
    DECLINE = 9
    RECONFIGURE = 10
    INFORMATION_REQUEST = 11
    RELAY_FORW = 12
    RELAY_REPL = 13

    NAMES = {
        1: "SOLICIT", 2: "ADVERTISE", 3: "REQUEST", 4: "CONFIRM", 5: "RENEW", 6: "REBIND",
        7: "REPLY", 8: "RELEASE", 9: "DECLINE", 10: "RECONFIGURE", 11: "INFORMATION-REQUEST",
        12: "RELAY-FORW", 13: "RELAY-REPL",
    }  # fmt: skip


class Opt6:
    CLIENTID = 1
    SERVERID = 2
    IA_NA = 3
    IA_TA = 4
    IAADDR = 5
    ORO = 6
    PREFERENCE = 7
    ELAPSED_TIME = 8
    STATUS_CODE = 13
    RAPID_COMMIT = 14
    DNS_SERVERS = 23
    DOMAIN_LIST = 24
    INFORMATION_REFRESH_TIME = 32


class Status:
    SUCCESS = 0
    UNSPEC_FAIL = 1
    NO_ADDRS_AVAIL = 2
    NO_BINDING = 3
    NOT_ON_LINK = 4
    USE_MULTICAST = 5


_OPT = struct.Struct("!HH")


@dataclass(slots=True)
class DhcpV6Message:
    msg_type: int
    transaction_id: int
    options: list[tuple[int, bytes]] = field(default_factory=list)

    def get(self, code: int) -> bytes | None:
        """The first instance of option ``code``."""
        for c, v in self.options:
            if c == code:
                return v
        return None

    def all(self, code: int) -> list[bytes]:
        return [v for c, v in self.options if c == code]


def _parse_options(data: bytes, where: str) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise MalformedPacket(f"option header truncated in {where}")
        code, length = _OPT.unpack_from(data, pos)
        value = data[pos + 4 : pos + 4 + length]
        if len(value) != length:
            raise MalformedPacket(f"option {code} in {where} runs past the end")
        out.append((code, value))
        pos += 4 + length
    return out


def option(code: int, value: bytes) -> bytes:
    return _OPT.pack(code, len(value)) + value


def decode(data: bytes) -> DhcpV6Message:
    if len(data) < 4:
        raise MalformedPacket("DHCPv6 message truncated")
    msg_type = data[0]
    if msg_type in (MsgType.RELAY_FORW, MsgType.RELAY_REPL):
        raise MalformedPacket("relay messages are not served on the link")
    if msg_type == 0 or msg_type > 36:
        raise MalformedPacket(f"unknown DHCPv6 message type {msg_type}")
    xid = int.from_bytes(data[1:4], "big")
    return DhcpV6Message(msg_type, xid, _parse_options(data[4:], "message"))


def encode(msg: DhcpV6Message) -> bytes:
    head = bytes((msg.msg_type,)) + (msg.transaction_id & 0xFFFFFF).to_bytes(3, "big")
    return head + b"".join(option(c, v) for c, v in msg.options)


# --------------------------------------------------------------------- DUID


@dataclass(frozen=True, slots=True)
class Duid:
    """A DUID: its type (1 LLT, 2 EN, 3 LL, 4 UUID) and the whole encoded value."""

    duid_type: int
    raw: bytes

    @property
    def link_layer(self) -> bytes | None:
        """The hardware address inside a DUID-LL or DUID-LLT."""
        if self.duid_type == 3 and len(self.raw) > 4:
            return self.raw[4:]
        if self.duid_type == 1 and len(self.raw) > 8:
            return self.raw[8:]
        return None


def decode_duid(value: bytes) -> Duid:
    if len(value) < 3 or len(value) > MAX_DUID:
        raise MalformedPacket(f"DUID of {len(value)} bytes")
    duid_type = struct.unpack_from("!H", value)[0]
    minimum = {1: 8, 2: 6, 3: 4, 4: 18}.get(duid_type)
    if minimum is not None and len(value) < minimum + (duid_type != 4):
        raise MalformedPacket(f"DUID type {duid_type} truncated")
    if duid_type == 4 and len(value) != 18:
        raise MalformedPacket("DUID-UUID is not 16 bytes")
    return Duid(duid_type, bytes(value))


def duid_ll(mac: bytes, hw_type: int = 1) -> bytes:
    """DUID-LL (type 3): stable for as long as the hardware address is."""
    return struct.pack("!HH", 3, hw_type) + mac


# ------------------------------------------------------------------- IA_NA


@dataclass(frozen=True, slots=True)
class IaAddress:
    address: IPv6Address
    preferred: int
    valid: int
    options: tuple[tuple[int, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class IaNa:
    iaid: int
    t1: int
    t2: int
    addresses: tuple[IaAddress, ...] = ()
    status: tuple[int, str] | None = None


def decode_ia_na(value: bytes) -> IaNa:
    if len(value) < 12:
        raise MalformedPacket("IA_NA truncated")
    iaid, t1, t2 = struct.unpack_from("!III", value)
    addrs: list[IaAddress] = []
    status: tuple[int, str] | None = None
    for code, sub in _parse_options(value[12:], "IA_NA"):
        if code == Opt6.IAADDR:
            if len(sub) < 24:
                raise MalformedPacket("IAADDR truncated")
            pref, valid = struct.unpack_from("!II", sub, 16)
            addrs.append(
                IaAddress(IPv6Address(sub[:16]), pref, valid, tuple(_parse_options(sub[24:], "IAADDR")))
            )
        elif code == Opt6.STATUS_CODE:
            status = decode_status(sub)
    return IaNa(iaid, t1, t2, tuple(addrs), status)


def encode_ia_na(ia: IaNa) -> bytes:
    body = bytearray(struct.pack("!III", ia.iaid, ia.t1, ia.t2))
    for a in ia.addresses:
        inner = a.address.packed + struct.pack("!II", a.preferred, a.valid)
        inner += b"".join(option(c, v) for c, v in a.options)
        body += option(Opt6.IAADDR, inner)
    if ia.status is not None:
        body += option(Opt6.STATUS_CODE, encode_status(*ia.status))
    return bytes(body)


def encode_status(code: int, message: str = "") -> bytes:
    return struct.pack("!H", code) + message.encode("utf-8")


def decode_status(value: bytes) -> tuple[int, str]:
    if len(value) < 2:
        raise MalformedPacket("status code truncated")
    return struct.unpack_from("!H", value)[0], value[2:].decode("utf-8", "replace")


# ------------------------------------------------------- other option values


def decode_oro(value: bytes) -> list[int]:
    if len(value) % 2:
        raise MalformedPacket("option request list of odd length")
    return list(struct.unpack(f"!{len(value) // 2}H", value))


def encode_dns_servers(addrs: Iterable[IPv6Address | str]) -> bytes:
    return b"".join(IPv6Address(a).packed for a in addrs)


def decode_dns_servers(value: bytes) -> list[IPv6Address]:
    if len(value) % 16:
        raise MalformedPacket("DNS server list length is not a multiple of 16")
    return [IPv6Address(value[i : i + 16]) for i in range(0, len(value), 16)]


def encode_domain_list(names: Sequence[str]) -> bytes:
    """Option 24: uncompressed names (RFC 8415 §10)."""
    return encode_names(names, compress=False)


def decode_domain_list(value: bytes) -> list[str]:
    return decode_names(value, allow_compression=False)
