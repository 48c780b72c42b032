"""nefeli-dhcpd's per-packet work without sockets: the codecs alone, and a queued
DHCPDISCOVER from netlink bytes to reply frame and verdict (what bounds leases/s)."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address
from pathlib import Path

import pytest

from daemons.dhcpd.bindings import BindingTable
from daemons.dhcpd.config import DhcpdConfig, DhcpSettings
from daemons.dhcpd.dispatcher import Dispatcher, Stats
from daemons.dhcpd.interfaces import InterfaceMacs
from net import dhcpv4, icmpv6_nd, nfqueue
from net.dhcpv4 import DhcpMessage
from net.ip_frames import ipv4_packet, pseudo_header_v4, udp_datagram

MAC = bytes.fromhex("020000000501")
DISCOVER = dhcpv4.encode(DhcpMessage(op=1, xid=7, chaddr=MAC, options={53: b"\x01", 55: bytes([1, 3, 6, 12, 15, 26, 28, 119, 121])}))


def _nlattr(t: int, v: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(v), t) + v
    return raw + b"\0" * (-len(raw) % 4)


def queued(payload: bytes, ifindex: int) -> bytes:
    src, dst = bytes(4), b"\xff" * 4
    ip = ipv4_packet(src, dst, 17, udp_datagram(68, 67, payload, pseudo_header_v4(src, dst, 17, 8 + len(payload))))
    body = (
        struct.pack("!BBH", 0, 0, 42)
        + _nlattr(1, struct.pack("!IHB", 5, 0x0800, 0))
        + _nlattr(5, struct.pack("!I", ifindex))
        + _nlattr(9, struct.pack("!H2x", 6) + MAC + b"\0\0")
        + _nlattr(10, ip)
    )
    return struct.pack("=IHHII", 16 + len(body), 0x300, 0, 0, 0) + body


@pytest.fixture
def dispatcher(tmp_path: Path) -> Dispatcher:
    # The binding is for "lo" (ifindex 1 in every namespace), so the real interface
    # lookups run; lo's MAC is all zeros.
    (tmp_path / "lo").write_text(
        "IP=10.0.0.51\nMAC=02:00:00:00:05:01\nHOSTNAME=vm51\nSUBNET=10.0.0.0/24\nGATEWAY=10.0.0.1\nMTU=1450\n"
    )
    table = BindingTable(tmp_path)
    table.rescan()
    cfg = DhcpdConfig(dhcp=DhcpSettings(nameservers=["192.0.2.53"], routes=["192.168.5.0/24 via 10.0.0.254"]))
    return Dispatcher(lambda: cfg, table, InterfaceMacs(), Stats())


def test_decode_discover(benchmark) -> None:
    assert benchmark(dhcpv4.decode, DISCOVER).message_type == 1


def test_encode_offer(benchmark) -> None:
    offer = DhcpMessage(op=2, xid=7, chaddr=MAC, options={53: b"\x02", 54: b"\x01\x02\x03\x04", 51: dhcpv4.u32(604800),
                                                          1: b"\xff\xff\xff\x00", 3: b"\x0a\x00\x00\x01", 12: b"vm51"})
    assert len(benchmark(dhcpv4.encode, offer)) == 300


def test_encode_ra(benchmark) -> None:
    ra = icmpv6_nd.RouterAdvertisement(14400, options=(icmpv6_nd.Rdnss(1800, (IPv6Address("2001:db8::53"),)),))
    assert benchmark(icmpv6_nd.encode, ra, IPv6Address("fe80::1"), icmpv6_nd.ALL_NODES)


def test_queued_discover_to_offer_and_verdict(benchmark, dispatcher: Dispatcher) -> None:
    raw = queued(DISCOVER, 1)
    conn = nfqueue.NfqueueConnection()

    def one() -> int:
        (ev,) = conn.receive(raw)
        assert isinstance(ev, nfqueue.QueuedPacket)
        out = dispatcher.handle_ip(ev.in_ifindex, ev.payload, ev.hwaddr, ev.queue)
        conn.verdict(ev.queue, ev.packet_id, out.verdict)
        return len(out.replies)

    assert benchmark(one) == 1
