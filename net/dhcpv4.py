"""DHCPv4 messages (RFC 2131) and the options nefeli-dhcpd reads and writes (RFC 2132,
3397, 3442), with long options split and joined as RFC 3396 says and the option
overload of RFC 2131 §4.1 (``file`` and ``sname`` carrying options) on both sides.

Sans-I/O: :func:`decode` turns a UDP payload into a :class:`DhcpMessage`, raising
only :class:`~net.packet_errors.MalformedPacket`; :func:`encode` lays a message out
within a maximum size, moving options into ``file`` and ``sname`` when the options
field is full. Byte layout: docs/dhcpd.md ("DHCPv4").
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from net.dns_names import decode_names, encode_names
from net.packet_errors import MalformedPacket

__all__ = [
    "BOOTREPLY",
    "BOOTREQUEST",
    "FLAG_BROADCAST",
    "MAGIC_COOKIE",
    "MessageType",
    "Opt",
    "DhcpMessage",
    "MessageTooLarge",
    "decode",
    "decode_classless_routes",
    "decode_ip_list",
    "encode",
    "encode_classless_routes",
    "encode_domain_search",
    "decode_domain_search",
    "ip_list",
    "u16",
    "u32",
]

BOOTREQUEST = 1
BOOTREPLY = 2
FLAG_BROADCAST = 0x8000
MAGIC_COOKIE = b"\x63\x82\x53\x63"
#: op..giaddr, chaddr, sname, file: the fixed BOOTP part before the cookie.
_FIXED = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
FIXED_LEN = _FIXED.size  # 236
#: RFC 2131 §2: every client must accept 576-byte IP datagrams.
MIN_MAX_SIZE = 576
_IP_UDP = 20 + 8


class MessageType:
    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8

    NAMES = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK", 7: "RELEASE", 8: "INFORM"}


class Opt:
    PAD = 0
    SUBNET_MASK = 1
    ROUTER = 3
    DNS = 6
    HOSTNAME = 12
    DOMAIN_NAME = 15
    MTU = 26
    BROADCAST = 28
    REQUESTED_IP = 50
    LEASE_TIME = 51
    OVERLOAD = 52
    MESSAGE_TYPE = 53
    SERVER_ID = 54
    PARAM_REQUEST = 55
    MESSAGE = 56
    MAX_MESSAGE_SIZE = 57
    RENEWAL_TIME = 58
    REBINDING_TIME = 59
    CLIENT_ID = 61
    DOMAIN_SEARCH = 119
    CLASSLESS_ROUTES = 121
    END = 255


class MessageTooLarge(ValueError):
    """The options do not fit even with ``file`` and ``sname`` overloaded."""


@dataclass(slots=True)
class DhcpMessage:
    """A DHCP message; ``options`` maps a code to its whole (joined) value, in order."""

    op: int
    xid: int
    chaddr: bytes
    htype: int = 1
    hlen: int = 6
    hops: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: IPv4Address = IPv4Address(0)
    yiaddr: IPv4Address = IPv4Address(0)
    siaddr: IPv4Address = IPv4Address(0)
    giaddr: IPv4Address = IPv4Address(0)
    sname: bytes = b""
    file: bytes = b""
    options: dict[int, bytes] = field(default_factory=dict)

    @property
    def mac(self) -> bytes:
        """The client's hardware address (``chaddr`` cut to ``hlen``, at most 16)."""
        return self.chaddr[: min(self.hlen, 16)]

    @property
    def message_type(self) -> int | None:
        v = self.options.get(Opt.MESSAGE_TYPE)
        return v[0] if v is not None and len(v) == 1 else None

    @property
    def broadcast(self) -> bool:
        return bool(self.flags & FLAG_BROADCAST)

    def ip_option(self, code: int) -> IPv4Address | None:
        v = self.options.get(code)
        return IPv4Address(v) if v is not None and len(v) == 4 else None

    @property
    def requested_ip(self) -> IPv4Address | None:
        return self.ip_option(Opt.REQUESTED_IP)

    @property
    def server_id(self) -> IPv4Address | None:
        return self.ip_option(Opt.SERVER_ID)

    @property
    def max_message_size(self) -> int:
        """The client's option 57, never below 576 (RFC 2132 §9.10)."""
        v = self.options.get(Opt.MAX_MESSAGE_SIZE)
        if v is None or len(v) != 2:
            return MIN_MAX_SIZE
        return max(MIN_MAX_SIZE, struct.unpack("!H", v)[0])

    @property
    def requested_options(self) -> bytes:
        return self.options.get(Opt.PARAM_REQUEST, b"")


# ------------------------------------------------------------------ decoding


def _parse_area(data: bytes, into: dict[int, bytes], where: str, *, need_end: bool) -> None:
    """Options of one area (options, file or sname), joined into ``into`` (RFC 3396)."""
    pos = 0
    n = len(data)
    while pos < n:
        code = data[pos]
        if code == Opt.PAD:
            pos += 1
            continue
        if code == Opt.END:
            return
        if pos + 1 >= n:
            raise MalformedPacket(f"option {code} in {where} has no length byte")
        length = data[pos + 1]
        value = data[pos + 2 : pos + 2 + length]
        if len(value) != length:
            raise MalformedPacket(f"option {code} in {where} runs past the end")
        into[code] = into.get(code, b"") + value
        pos += 2 + length
    if need_end:
        raise MalformedPacket(f"{where} field overloaded but has no end option")


def decode(data: bytes) -> DhcpMessage:
    """A DHCP message from a UDP payload; MalformedPacket on anything else."""
    if len(data) < FIXED_LEN + 4:
        raise MalformedPacket(f"BOOTP message truncated ({len(data)} bytes)")
    (op, htype, hlen, hops, xid, secs, flags, ci, yi, si, gi, chaddr, sname, file) = _FIXED.unpack_from(
        data
    )
    if op not in (BOOTREQUEST, BOOTREPLY):
        raise MalformedPacket(f"bad BOOTP op {op}")
    if data[FIXED_LEN : FIXED_LEN + 4] != MAGIC_COOKIE:
        raise MalformedPacket("no DHCP magic cookie (plain BOOTP)")
    options: dict[int, bytes] = {}
    # The options field needs no end option in practice (many stacks pad instead).
    _parse_area(data[FIXED_LEN + 4 :], options, "options", need_end=False)
    overload = options.get(Opt.OVERLOAD)
    sname_out, file_out = sname.rstrip(b"\0"), file.rstrip(b"\0")
    if overload is not None:
        if len(overload) != 1 or overload[0] not in (1, 2, 3):
            raise MalformedPacket("bad option overload value")
        # RFC 2131 §4.1: the file field is read first, then sname.
        if overload[0] & 1:
            _parse_area(file, options, "file", need_end=True)
            file_out = b""
        if overload[0] & 2:
            _parse_area(sname, options, "sname", need_end=True)
            sname_out = b""
    return DhcpMessage(
        op=op,
        xid=xid,
        chaddr=chaddr,
        htype=htype,
        hlen=hlen,
        hops=hops,
        secs=secs,
        flags=flags,
        ciaddr=IPv4Address(ci),
        yiaddr=IPv4Address(yi),
        siaddr=IPv4Address(si),
        giaddr=IPv4Address(gi),
        sname=sname_out,
        file=file_out,
        options=options,
    )


# ------------------------------------------------------------------ encoding


class _Areas:
    """Fills the options field, then ``file``, then ``sname``, each ending in END."""

    def __init__(self, capacities: Sequence[int]) -> None:
        self.caps = list(capacities)
        self.bufs: list[bytearray] = [bytearray() for _ in capacities]
        self.i = 0

    def put(self, code: int, value: bytes) -> None:
        first = True
        while first or value:
            first = False
            while True:
                if self.i >= len(self.caps):
                    raise MessageTooLarge(f"option {code} does not fit")
                room = self.caps[self.i] - len(self.bufs[self.i]) - 1  # keep a byte for END
                need = 2 + min(len(value), 1)
                if room >= need:
                    break
                self.i += 1
            chunk = value[: min(255, room - 2)]
            self.bufs[self.i] += bytes((code, len(chunk))) + chunk
            value = value[len(chunk) :]


def encode(msg: DhcpMessage, max_size: int = MIN_MAX_SIZE) -> bytes:
    """The message laid out within ``max_size`` bytes of IP datagram.

    Options keep their order; a value over 255 bytes is split into several
    instances (RFC 3396); when the options field is full and ``file``/``sname``
    are unused, they carry the rest (option 52). Shorter messages are padded to
    the BOOTP minimum of 300 bytes, which old clients expect.
    """
    opts = [(c, v) for c, v in msg.options.items() if c not in (Opt.PAD, Opt.END, Opt.OVERLOAD)]
    room = max(max_size, MIN_MAX_SIZE) - _IP_UDP - FIXED_LEN - len(MAGIC_COOKIE)
    plain = _Areas([room])
    try:
        if all(len(v) <= 255 for _, v in opts) and sum(2 + len(v) for _, v in opts) < room:
            # The common case, without the splitting machinery.
            plain.bufs[0] += b"".join(bytes((c, len(v))) + v for c, v in opts)
        else:
            for code, value in opts:
                plain.put(code, value)
        areas, overload = plain, 0
    except MessageTooLarge:
        caps = [room - 3]
        overload = 0
        if not msg.file:
            caps.append(128)
            overload |= 1
        if not msg.sname:
            caps.append(64)
            overload |= 2
        if not overload:
            raise
        areas = _Areas(caps)
        areas.bufs[0] += bytes((Opt.OVERLOAD, 1, overload))
        for code, value in opts:
            areas.put(code, value)
    sname = msg.sname[:64]
    file = msg.file[:128]
    bufs = [bytes(b) + bytes((Opt.END,)) for b in areas.bufs]
    if overload:
        used = iter(bufs[1:])
        if overload & 1:
            file = next(used, b"\xff")
        if overload & 2:
            sname = next(used, b"\xff")
    fixed = _FIXED.pack(
        msg.op,
        msg.htype,
        msg.hlen,
        msg.hops,
        msg.xid & 0xFFFFFFFF,
        msg.secs,
        msg.flags,
        msg.ciaddr.packed,
        msg.yiaddr.packed,
        msg.siaddr.packed,
        msg.giaddr.packed,
        msg.chaddr[:16].ljust(16, b"\0"),
        sname.ljust(64, b"\0"),
        file.ljust(128, b"\0"),
    )
    out = fixed + MAGIC_COOKIE + bufs[0]
    return out.ljust(300, b"\0")


# ------------------------------------------------------------ option values


def u32(n: int) -> bytes:
    return struct.pack("!I", n)


def u16(n: int) -> bytes:
    return struct.pack("!H", n)


def ip_list(addrs: Iterable[IPv4Address | str]) -> bytes:
    return b"".join(IPv4Address(a).packed for a in addrs)


def decode_ip_list(value: bytes) -> list[IPv4Address]:
    if len(value) % 4:
        raise MalformedPacket("address list length is not a multiple of 4")
    return [IPv4Address(value[i : i + 4]) for i in range(0, len(value), 4)]


def encode_domain_search(names: Sequence[str]) -> bytes:
    """Option 119 (RFC 3397): names with RFC 1035 compression."""
    return encode_names(names, compress=True)


def decode_domain_search(value: bytes) -> list[str]:
    """Option 119 as joined from all its instances; pointers are offsets into that."""
    return decode_names(value, allow_compression=True)


def encode_classless_routes(routes: Iterable[tuple[IPv4Network | str, IPv4Address | str]]) -> bytes:
    """Option 121 (RFC 3442): width, significant destination octets, router."""
    out = bytearray()
    for dest, router in routes:
        net = ipaddress.IPv4Network(dest)
        width = net.prefixlen
        out.append(width)
        out += net.network_address.packed[: (width + 7) // 8]
        out += IPv4Address(router).packed
    return bytes(out)


def decode_classless_routes(value: bytes) -> list[tuple[IPv4Network, IPv4Address]]:
    routes: list[tuple[IPv4Network, IPv4Address]] = []
    pos = 0
    while pos < len(value):
        width = value[pos]
        if width > 32:
            raise MalformedPacket(f"classless route width {width}")
        n = (width + 7) // 8
        chunk = value[pos + 1 : pos + 1 + n + 4]
        if len(chunk) != n + 4:
            raise MalformedPacket("classless route truncated")
        dest = chunk[:n].ljust(4, b"\0")
        try:
            net = IPv4Network((dest, width))
        except ValueError:
            raise MalformedPacket("classless route destination has host bits set") from None
        routes.append((net, IPv4Address(chunk[n:])))
        pos += 1 + n + 4
    return routes

