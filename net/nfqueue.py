"""nfnetlink_queue messages (linux/netfilter/nfnetlink_queue.h) over a plain
AF_NETLINK/NETLINK_NETFILTER socket: queue configuration, queued packets with
their attributes, verdicts and batch verdicts, and the netlink acks and errors.

Sans-I/O, in the style of h11: :class:`NfqueueConnection` makes the bytes to send
(and numbers them) and turns received bytes into typed events. It never raises
on what the kernel sends: a message it cannot read becomes an :class:`Undecodable`
event carrying the packet id when one could be found, so the caller can still give
that packet a verdict. Byte layout: docs/dhcpd.md ("NFQUEUE").
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from net.packet_errors import MalformedPacket

__all__ = [
    "NETLINK_NETFILTER",
    "NF_ACCEPT",
    "NF_DROP",
    "NF_REPEAT",
    "Ack",
    "Event",
    "NetlinkError",
    "NfqueueConnection",
    "Overrun",
    "QueuedPacket",
    "Undecodable",
    "CopyMode",
    "QueueFlag",
    "Cmd",
    "decode_messages",
]

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3

NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLA_TYPE_MASK = 0x3FFF

NF_DROP, NF_ACCEPT, NF_STOLEN, NF_QUEUE, NF_REPEAT = 0, 1, 2, 3, 4


class Cmd:
    NONE, BIND, UNBIND, PF_BIND, PF_UNBIND = 0, 1, 2, 3, 4


class CopyMode:
    NONE, META, PACKET = 0, 1, 2


class QueueFlag:
    FAIL_OPEN = 0x01
    CONNTRACK = 0x02
    GSO = 0x04
    UID_GID = 0x08
    SECCTX = 0x10


# attribute numbers (enum nfqnl_attr_type / nfqnl_attr_config)
A_PACKET_HDR, A_VERDICT_HDR, A_MARK, A_TIMESTAMP = 1, 2, 3, 4
A_INDEV, A_OUTDEV, A_PHYSINDEV, A_PHYSOUTDEV, A_HWADDR, A_PAYLOAD = 5, 6, 7, 8, 9, 10
A_CAP_LEN, A_SKB_INFO, A_L2HDR = 13, 14, 20
CFG_CMD, CFG_PARAMS, CFG_QUEUE_MAXLEN, CFG_MASK, CFG_FLAGS = 1, 2, 3, 4, 5

# netlink headers are in host byte order, NFQUEUE attribute values in network order
_NLMSG = struct.Struct("=IHHII")
_NLATTR = struct.Struct("=HH")
_NFGEN = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class QueuedPacket:
    """One packet the kernel holds until it gets a verdict for ``packet_id``."""

    queue: int
    packet_id: int
    hw_protocol: int
    hook: int
    payload: bytes
    indev: int = 0
    outdev: int = 0
    physindev: int = 0
    physoutdev: int = 0
    hwaddr: bytes = b""
    mark: int = 0
    cap_len: int | None = None

    @property
    def in_ifindex(self) -> int:
        """The bridge port when the packet crossed a bridge, else the in-interface."""
        return self.physindev or self.indev

    @property
    def truncated(self) -> bool:
        return self.cap_len is not None and self.cap_len > len(self.payload)


@dataclass(frozen=True, slots=True)
class Ack:
    seq: int


@dataclass(frozen=True, slots=True)
class NetlinkError:
    seq: int
    errno: int  # positive


@dataclass(frozen=True, slots=True)
class Overrun:
    """The kernel dropped messages (the socket buffer was full)."""


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A message that could not be read; ``packet_id`` is set when it was a packet."""

    reason: str
    queue: int | None = None
    packet_id: int | None = None


Event = QueuedPacket | Ack | NetlinkError | Overrun | Undecodable


def _attr(atype: int, value: bytes) -> bytes:
    raw = _NLATTR.pack(4 + len(value), atype) + value
    return raw + b"\0" * (-len(raw) % 4)


def _attrs(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(data):
        length, atype = _NLATTR.unpack_from(data, pos)
        if length < 4 or pos + length > len(data):
            raise MalformedPacket(f"netlink attribute {atype & NLA_TYPE_MASK} of bad length {length}")
        out[atype & NLA_TYPE_MASK] = data[pos + 4 : pos + length]
        pos += (length + 3) & ~3
    return out


def _be32(attrs: dict[int, bytes], key: int) -> int:
    v = attrs.get(key)
    if v is None:
        return 0
    if len(v) != 4:
        raise MalformedPacket(f"attribute {key} is not 4 bytes")
    return struct.unpack("!I", v)[0]


def _packet(queue: int, body: bytes) -> QueuedPacket | Undecodable:
    packet_id: int | None = None
    try:
        attrs = _attrs(body)
        hdr = attrs.get(A_PACKET_HDR)
        if hdr is None or len(hdr) < 7:
            raise MalformedPacket("packet message without a packet header")
        packet_id, hw_proto, hook = struct.unpack_from("!IHB", hdr)
        hwaddr = b""
        hw = attrs.get(A_HWADDR)
        if hw is not None:
            if len(hw) < 4:
                raise MalformedPacket("hardware address attribute truncated")
            n = struct.unpack_from("!H", hw)[0]
            hwaddr = hw[4 : 4 + min(n, 8)]
        cap = attrs.get(A_CAP_LEN)
        return QueuedPacket(
            queue=queue,
            packet_id=packet_id,
            hw_protocol=hw_proto,
            hook=hook,
            payload=attrs.get(A_PAYLOAD, b""),
            indev=_be32(attrs, A_INDEV),
            outdev=_be32(attrs, A_OUTDEV),
            physindev=_be32(attrs, A_PHYSINDEV),
            physoutdev=_be32(attrs, A_PHYSOUTDEV),
            hwaddr=hwaddr,
            mark=_be32(attrs, A_MARK),
            cap_len=_be32(attrs, A_CAP_LEN) if cap is not None else None,
        )
    except (MalformedPacket, struct.error) as exc:
        if packet_id is None:
            packet_id = _find_packet_id(body)
        return Undecodable(str(exc), queue, packet_id)


def _find_packet_id(body: bytes) -> int | None:
    """The packet id of a message whose other attributes are broken, if it can be found."""
    pos = 0
    while pos + 4 <= len(body):
        length, atype = _NLATTR.unpack_from(body, pos)
        if length < 4:
            return None
        if atype & NLA_TYPE_MASK == A_PACKET_HDR and length >= 8 and pos + 8 <= len(body):
            return struct.unpack_from("!I", body, pos + 4)[0]
        pos += (length + 3) & ~3
    return None


def decode_messages(data: bytes) -> list[Event]:
    """Every netlink message in one datagram, as events."""
    events: list[Event] = []
    pos = 0
    while pos + _NLMSG.size <= len(data):
        length, mtype, _flags, seq, _pid = _NLMSG.unpack_from(data, pos)
        if length < _NLMSG.size or pos + length > len(data):
            events.append(Undecodable(f"netlink message of bad length {length}"))
            return events
        body = data[pos + _NLMSG.size : pos + length]
        pos += (length + 3) & ~3
        if mtype == NLMSG_ERROR:
            if len(body) < 4:
                events.append(Undecodable("netlink error message truncated"))
                continue
            err = struct.unpack_from("=i", body)[0]
            events.append(Ack(seq) if err == 0 else NetlinkError(seq, -err))
        elif mtype == NLMSG_OVERRUN:
            events.append(Overrun())
        elif mtype in (NLMSG_NOOP, NLMSG_DONE):
            continue
        elif mtype == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            if len(body) < _NFGEN.size:
                events.append(Undecodable("packet message without nfgenmsg"))
                continue
            queue = _NFGEN.unpack_from(body)[2]
            events.append(_packet(queue, body[_NFGEN.size :]))
        else:
            events.append(Undecodable(f"unexpected netlink message type 0x{mtype:04x}"))
    if pos < len(data) and data[pos:].strip(b"\0"):
        events.append(Undecodable("trailing bytes after the last netlink message"))
    return events


class NfqueueConnection:
    """Numbers requests and frames them; decodes what the kernel sends back."""

    def __init__(self) -> None:
        self._seq = 0

    def _message(self, msg: int, queue: int, attrs: bytes, *, ack: bool, family: int = socket.AF_UNSPEC) -> bytes:
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        body = _NFGEN.pack(family, 0, queue) + attrs
        flags = NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
        return _NLMSG.pack(_NLMSG.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg, flags, self._seq, 0) + body

    @property
    def last_seq(self) -> int:
        return self._seq

    def command(self, queue: int, cmd: int, pf: int = 0) -> bytes:
        return self._message(NFQNL_MSG_CONFIG, queue, _attr(CFG_CMD, struct.pack("!BxH", cmd, pf)), ack=True)

    def bind(self, queue: int) -> bytes:
        return self.command(queue, Cmd.BIND)

    def unbind(self, queue: int) -> bytes:
        return self.command(queue, Cmd.UNBIND)

    def params(self, queue: int, copy_mode: int = CopyMode.PACKET, copy_range: int = 0xFFFF) -> bytes:
        return self._message(NFQNL_MSG_CONFIG, queue, _attr(CFG_PARAMS, struct.pack("!IB", copy_range, copy_mode)), ack=True)

    def maxlen(self, queue: int, maxlen: int) -> bytes:
        return self._message(NFQNL_MSG_CONFIG, queue, _attr(CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen)), ack=True)

    def flags(self, queue: int, flags: int, mask: int | None = None) -> bytes:
        attrs = _attr(CFG_FLAGS, struct.pack("!I", flags)) + _attr(CFG_MASK, struct.pack("!I", flags if mask is None else mask))
        return self._message(NFQNL_MSG_CONFIG, queue, attrs, ack=True)

    def verdict(self, queue: int, packet_id: int, verdict: int, *, mark: int | None = None, ack: bool = False) -> bytes:
        attrs = _attr(A_VERDICT_HDR, struct.pack("!II", verdict, packet_id))
        if mark is not None:
            attrs += _attr(A_MARK, struct.pack("!I", mark))
        return self._message(NFQNL_MSG_VERDICT, queue, attrs, ack=ack)

    def batch_verdict(self, queue: int, max_id: int, verdict: int, *, ack: bool = False) -> bytes:
        """One verdict for every packet of ``queue`` with an id up to ``max_id``."""
        return self._message(NFQNL_MSG_VERDICT_BATCH, queue, _attr(A_VERDICT_HDR, struct.pack("!II", verdict, max_id)), ack=ack)

    def receive(self, data: bytes) -> list[Event]:
        return decode_messages(data)


