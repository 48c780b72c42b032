"""Socket mode's neighbour discovery socket: RS and NS straight off an interface.

A neighbour solicitation for another host's address (the gateway's, an address in
SUBNET6) goes to a solicited-node group the host never joined, so no ICMPv6 socket
ever sees it. A packet socket sees every frame the interface takes in, so one per
interface receives the IPv6 packets (SOCK_DGRAM: no link header, the Ethernet
source in the address) with a classic BPF filter that lets through only ICMPv6
types 133 and 135 arriving from outside: nothing else wakes the daemon.
``PACKET_MR_ALLMULTI`` makes a link with a multicast filter of its own (a real NIC)
hand over the solicited-node frames too. The filter is attached before the socket
is bound, so no other packet is ever queued on it.
"""

from __future__ import annotations

import ctypes
import socket
import struct

from net.ip_frames import ETH_P_IPV6, IPPROTO_ICMPV6

__all__ = ["ND_FILTER", "open_nd_socket"]

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_ALLMULTI = 2
SO_ATTACH_FILTER = 26
SKF_AD_PKTTYPE = 0xFFFFF000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE: the skb's packet type

# Classic BPF opcodes (linux/bpf_common.h).
_LD_W_ABS = 0x20
_LD_B_ABS = 0x30
_JEQ_K = 0x15
_RET_K = 0x06

# (code, jump if true, jump if false, k); jumps count the instructions skipped.
# Offsets are into the IPv6 header: a SOCK_DGRAM packet socket filters from there.
ND_FILTER: tuple[tuple[int, int, int, int], ...] = (
    (_LD_W_ABS, 0, 0, SKF_AD_PKTTYPE),  # 0: A = packet type
    (_JEQ_K, 6, 0, socket.PACKET_OUTGOING),  # 1: our own transmissions -> 8 (drop)
    (_LD_B_ABS, 0, 0, 6),  # 2: A = next header
    (_JEQ_K, 0, 4, IPPROTO_ICMPV6),  # 3: not ICMPv6 (or behind extension headers) -> 8
    (_LD_B_ABS, 0, 0, 40),  # 4: A = ICMPv6 type
    (_JEQ_K, 1, 0, 133),  # 5: router solicitation -> 7
    (_JEQ_K, 0, 1, 135),  # 6: neighbour solicitation -> 7, else -> 8
    (_RET_K, 0, 0, 0xFFFF),  # 7: take the packet (up to 64 KiB)
    (_RET_K, 0, 0, 0),  # 8: not for us
)


def _attach_filter(sock: socket.socket) -> None:
    code = b"".join(struct.pack("@HBBI", *ins) for ins in ND_FILTER)
    buf = ctypes.create_string_buffer(code, len(code))
    # struct sock_fprog {unsigned short len; struct sock_filter *filter;}: the kernel
    # copies the program during the call, so buf only has to outlive it.
    prog = struct.pack("@HP", len(ND_FILTER), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)


def open_nd_socket(iface: str) -> socket.socket:
    """A non-blocking packet socket on ``iface`` receiving only RS and NS; OSError
    when the interface does not exist or CAP_NET_RAW is missing."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, 0)
    try:
        _attach_filter(s)
        ifindex = socket.if_nametoindex(iface)
        s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, struct.pack("@iHH8s", ifindex, PACKET_MR_ALLMULTI, 0, b""))
        s.bind((iface, ETH_P_IPV6))
    except OSError:
        s.close()
        raise
    return s
