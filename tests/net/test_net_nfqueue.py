"""nfnetlink_queue codec: request bytes as the kernel expects them (struct layouts of
linux/netfilter/nfnetlink_queue.h), packet messages with every attribute the daemon
reads, acks and errors, and garbage that must become events, never exceptions."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from net import nfqueue
from net.nfqueue import NF_ACCEPT, NF_DROP, Ack, NetlinkError, NfqueueConnection, Overrun, QueuedPacket, Undecodable


def nlattr(t: int, v: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(v), t) + v
    return raw + b"\0" * (-len(raw) % 4)


def nlmsg(mtype: int, body: bytes, seq: int = 0, flags: int = 0) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), mtype, flags, seq, 0) + body


def packet_msg(queue: int, pid: int, *extra: bytes) -> bytes:
    body = struct.pack("!BBH", 0, 0, queue) + nlattr(1, struct.pack("!IHB", pid, 0x0800, 0)) + b"".join(extra)
    return nlmsg(0x0300, body)


def test_bind_request_bytes() -> None:
    c = NfqueueConnection()
    raw = c.bind(42)
    # nlmsghdr: len 28, type NFNL_SUBSYS_QUEUE<<8 | NFQNL_MSG_CONFIG, REQUEST|ACK, seq 1, pid 0
    assert raw[:16] == struct.pack("=IHHII", 28, 0x0302, 5, 1, 0)
    # nfgenmsg AF_UNSPEC, version 0, res_id 42 (big endian); NFQA_CFG_CMD {BIND, pad, pf 0}
    assert raw[16:] == bytes.fromhex("0000002a") + struct.pack("=HH", 8, 1) + bytes.fromhex("01000000")
    assert c.last_seq == 1


def test_config_requests() -> None:
    c = NfqueueConnection()
    assert c.params(45, copy_range=0xFFFF)[20:] == struct.pack("=HH", 9, 2) + struct.pack("!IB", 0xFFFF, 2) + b"\0" * 3
    assert c.maxlen(45, 4096)[20:] == struct.pack("=HH", 8, 3) + struct.pack("!I", 4096)
    flags = c.flags(45, nfqueue.QueueFlag.FAIL_OPEN)[20:]
    assert flags == struct.pack("=HH", 8, 5) + struct.pack("!I", 1) + struct.pack("=HH", 8, 4) + struct.pack("!I", 1)
    assert c.unbind(45)[20:] == struct.pack("=HH", 8, 1) + bytes.fromhex("02000000")
    assert c.last_seq == 4


def test_verdicts() -> None:
    c = NfqueueConnection()
    v = c.verdict(43, 77, NF_DROP)
    assert v[:16] == struct.pack("=IHHII", 32, 0x0301, 1, 1, 0)
    assert v[16:] == bytes.fromhex("0000002b") + struct.pack("=HH", 12, 2) + struct.pack("!II", NF_DROP, 77)
    marked = c.verdict(43, 78, NF_ACCEPT, mark=9)
    assert marked[-8:] == struct.pack("=HH", 8, 3) + struct.pack("!I", 9)
    b = c.batch_verdict(42, 1000, NF_ACCEPT)
    assert struct.unpack_from("=H", b, 4)[0] == 0x0303
    assert b[-8:] == struct.pack("!II", NF_ACCEPT, 1000)


def test_packet_with_attributes() -> None:
    payload = b"\x45" + b"\0" * 27
    hw = struct.pack("!H2x", 6) + bytes.fromhex("020000000005") + b"\0\0"
    raw = packet_msg(
        42,
        7,
        nlattr(3, struct.pack("!I", 0x10)),
        nlattr(5, struct.pack("!I", 4)),
        nlattr(7, struct.pack("!I", 9)),
        nlattr(6, struct.pack("!I", 2)),
        nlattr(9, hw),
        nlattr(13, struct.pack("!I", 28)),
        nlattr(10, payload),
        nlattr(0x8000 | 19, b"\0" * 4),  # a nested attribute the daemon does not read
    )
    (ev,) = nfqueue.decode_messages(raw)
    assert isinstance(ev, QueuedPacket)
    assert (ev.queue, ev.packet_id, ev.hw_protocol, ev.indev, ev.physindev, ev.outdev, ev.mark) == (42, 7, 0x0800, 4, 9, 2, 0x10)
    assert ev.hwaddr == bytes.fromhex("020000000005")
    assert ev.payload == payload and not ev.truncated
    assert ev.in_ifindex == 9  # the bridge port wins over the bridge


def test_without_physindev_the_indev_is_used() -> None:
    (ev,) = nfqueue.decode_messages(packet_msg(42, 1, nlattr(5, struct.pack("!I", 4)), nlattr(10, b"x")))
    assert isinstance(ev, QueuedPacket) and ev.in_ifindex == 4 and ev.hwaddr == b""


def test_truncated_capture() -> None:
    (ev,) = nfqueue.decode_messages(packet_msg(42, 1, nlattr(10, b"x"), nlattr(13, struct.pack("!I", 1500))))
    assert isinstance(ev, QueuedPacket) and ev.truncated


def test_acks_errors_overrun_and_several_per_datagram() -> None:
    ack = nlmsg(2, struct.pack("=i", 0) + b"\0" * 16, seq=5)
    err = nlmsg(2, struct.pack("=i", -16) + b"\0" * 16, seq=6)
    over = nlmsg(4, b"")
    done = nlmsg(3, b"")
    events = nfqueue.decode_messages(ack + err + over + done + packet_msg(1, 2, nlattr(10, b"p")))
    assert events[:3] == [Ack(5), NetlinkError(6, 16), Overrun()]
    assert isinstance(events[3], QueuedPacket) and events[3].packet_id == 2


def test_broken_attribute_keeps_the_packet_id() -> None:
    raw = packet_msg(42, 99, struct.pack("=HH", 200, 10) + b"xx")
    (ev,) = nfqueue.decode_messages(raw)
    assert isinstance(ev, Undecodable) and ev.queue == 42 and ev.packet_id == 99


def test_bad_lengths() -> None:
    assert isinstance(nfqueue.decode_messages(struct.pack("=IHHII", 8, 0x300, 0, 0, 0))[0], Undecodable)
    assert isinstance(nfqueue.decode_messages(struct.pack("=IHHII", 400, 0x300, 0, 0, 0))[0], Undecodable)
    (ev,) = nfqueue.decode_messages(nlmsg(0x0300, b"\0\0"))
    assert isinstance(ev, Undecodable)
    (ev,) = nfqueue.decode_messages(nlmsg(0x0300, struct.pack("!BBH", 0, 0, 3) + nlattr(10, b"p")))
    assert isinstance(ev, Undecodable) and ev.packet_id is None
    (ev,) = nfqueue.decode_messages(nlmsg(0x0999, b""))
    assert isinstance(ev, Undecodable)


@given(st.binary(max_size=400))
def test_random_datagrams_never_raise(data: bytes) -> None:
    for ev in nfqueue.decode_messages(data):
        assert isinstance(ev, (QueuedPacket, Ack, NetlinkError, Overrun, Undecodable))


@given(st.integers(0, 65535), st.integers(0, 0xFFFFFFFF), st.binary(max_size=200), st.binary(max_size=64))
def test_packet_messages_with_random_tails(queue: int, pid: int, payload: bytes, tail: bytes) -> None:
    events = nfqueue.decode_messages(packet_msg(queue, pid, nlattr(10, payload), tail))
    (ev,) = events[:1]
    if isinstance(ev, QueuedPacket):
        assert ev.packet_id == pid and ev.queue == queue
    else:
        assert isinstance(ev, Undecodable) and ev.packet_id == pid
