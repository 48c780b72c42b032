"""Socket mode: the same answers without netfilter, from sockets on named interfaces.

Per interface: UDP 67 (DHCPv4), UDP 547 joined to ff02::1:2 (DHCPv6) and a raw
ICMPv6 socket filtered to router solicitations, each bound to the device. The
kernel has already taken the packet, so there is no verdict: an answer is sent
or nothing is. NS answering needs the packets of other hosts' addresses and is
NFQUEUE-only (docs/dhcpd.md).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from ipaddress import IPv6Address

from daemons.dhcpd.dispatcher import Dispatcher
from daemons.dhcpd.responder import Outcome

__all__ = ["PlainSockets"]

log = logging.getLogger("nefeli-dhcpd.socket")

ICMP6_FILTER = 1
ALL_SERVERS = socket.inet_pton(socket.AF_INET6, "ff02::1:2")
ALL_ROUTERS = socket.inet_pton(socket.AF_INET6, "ff02::2")


def _bound(family: int, kind: int, proto: int, iface: str) -> socket.socket:
    s = socket.socket(family, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    return s


def _join(s: socket.socket, group: bytes, iface: str) -> None:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group + struct.pack("@I", socket.if_nametoindex(iface)))


class PlainSockets:
    def __init__(self, interfaces: list[str], dispatcher: Dispatcher, send: Callable[[Outcome], None]) -> None:
        self.interfaces = interfaces
        self.dispatcher = dispatcher
        self.send = send
        self.socks: list[socket.socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        try:
            for iface in self.interfaces:
                v4 = _bound(socket.AF_INET, socket.SOCK_DGRAM, 0, iface)
                v4.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                v4.bind(("0.0.0.0", 67))
                self._add(v4, lambda s=v4, i=iface: self._dhcpv4(s, i))
                v6 = _bound(socket.AF_INET6, socket.SOCK_DGRAM, 0, iface)
                v6.bind(("::", 547))
                _join(v6, ALL_SERVERS, iface)
                self._add(v6, lambda s=v6, i=iface: self._dhcpv6(s, i))
                rs = _bound(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6, iface)
                # ICMP6_FILTER: block all types but 133 (one bit per type, set = blocked).
                bits = bytearray(b"\xff" * 32)
                bits[133 >> 3] &= ~(1 << (133 & 7)) & 0xFF
                rs.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, bytes(bits))
                _join(rs, ALL_ROUTERS, iface)
                self._add(rs, lambda s=rs, i=iface: self._rs(s, i))
        except OSError:
            self.close()
            raise
        log.info("serving in socket mode on %s", ", ".join(self.interfaces))

    def _add(self, s: socket.socket, cb: Callable[[], None]) -> None:
        self.socks.append(s)
        assert self._loop is not None
        self._loop.add_reader(s.fileno(), cb)

    def _drain(self, s: socket.socket) -> list[tuple[bytes, tuple]]:
        out = []
        for _ in range(64):
            try:
                out.append(s.recvfrom(0x10000))
            except BlockingIOError:
                break
            except OSError as exc:
                log.warning("receive: %s", exc.strerror or exc)
                break
        return out

    def _dhcpv4(self, s: socket.socket, iface: str) -> None:
        for data, addr in self._drain(s):
            self.send(self.dispatcher.dhcpv4(iface, data))

    def _dhcpv6(self, s: socket.socket, iface: str) -> None:
        for data, addr in self._drain(s):
            src = IPv6Address(addr[0].split("%")[0])
            self.send(self.dispatcher.dhcpv6(iface, data, src, b""))

    def _rs(self, s: socket.socket, iface: str) -> None:
        for data, addr in self._drain(s):
            src = IPv6Address(addr[0].split("%")[0])
            # The kernel checked the checksum and the hop limit is not visible here.
            self.send(self.dispatcher.nd(iface, data, src, IPv6Address("ff02::2"), b"", verify=False))

    def close(self) -> None:
        for s in self.socks:
            if self._loop is not None:
                try:
                    self._loop.remove_reader(s.fileno())
                except (ValueError, OSError):
                    pass
            s.close()
        self.socks.clear()
