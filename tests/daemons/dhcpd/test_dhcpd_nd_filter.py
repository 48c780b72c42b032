"""The classic BPF program of socket mode's ND packet socket, run here by a small
interpreter of the four instructions it uses, on packets hypothesis makes: it must
take exactly the ICMPv6 router and neighbour solicitations that arrive from
outside. (test_dhcpd_plain_socket.py shows the kernel running it on a real link.)"""

from __future__ import annotations

import socket

from hypothesis import given
from hypothesis import strategies as st

from daemons.dhcpd.nd_socket import ND_FILTER, SKF_AD_PKTTYPE


def run_filter(packet: bytes, pkttype: int) -> int:
    """What the kernel's classic BPF does with ND_FILTER: the bytes to keep (0: drop).
    A load beyond the packet's end drops it, as the kernel's does."""
    a, pc = 0, 0
    while True:
        code, jt, jf, k = ND_FILTER[pc]
        pc += 1
        if code == 0x20:  # ld word [k]: only the packet-type extension is used
            assert k == SKF_AD_PKTTYPE
            a = pkttype
        elif code == 0x30:  # ldb [k]
            if k >= len(packet):
                return 0
            a = packet[k]
        elif code == 0x15:  # jeq #k
            pc += jt if a == k else jf
        elif code == 0x06:  # ret #k
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


PKTTYPES = st.sampled_from(
    [socket.PACKET_HOST, socket.PACKET_BROADCAST, socket.PACKET_MULTICAST, socket.PACKET_OTHERHOST, socket.PACKET_OUTGOING]
)


@given(
    next_header=st.sampled_from([58, 0, 17, 6, 43, 60]) | st.integers(0, 255),
    icmp_type=st.sampled_from([133, 134, 135, 136, 128, 143]) | st.integers(0, 255),
    pkttype=PKTTYPES,
    length=st.integers(0, 120),
    fill=st.binary(min_size=120, max_size=120),
)
def test_takes_exactly_incoming_rs_and_ns(next_header: int, icmp_type: int, pkttype: int, length: int, fill: bytes) -> None:
    pkt = bytearray(fill)
    pkt[6] = next_header
    pkt[40] = icmp_type
    pkt = pkt[:length]
    wanted = (
        pkttype != socket.PACKET_OUTGOING and length > 40 and next_header == 58 and icmp_type in (133, 135)
    )
    kept = run_filter(bytes(pkt), pkttype)
    assert (kept > 0) == wanted
    if wanted:
        assert kept >= 1280  # the whole of any ND message a link can carry


def test_jumps_stay_inside_the_program() -> None:
    for i, (code, jt, jf, _) in enumerate(ND_FILTER):
        if code == 0x15:
            assert i + 1 + max(jt, jf) < len(ND_FILTER)
    assert ND_FILTER[-1][0] == 0x06
