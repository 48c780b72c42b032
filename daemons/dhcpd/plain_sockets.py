"""Socket mode: the same answers without netfilter, from sockets on named interfaces.

Per interface: UDP 67 (DHCPv4), UDP 547 joined to ff02::1:2 (DHCPv6), each bound
to the device, and a packet socket filtered to router and neighbour solicitations
(nd_socket.py), which also sees the NS for addresses the host does not have. The
kernel has the packet as well, so there is no verdict: an answer is sent or
nothing is.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from ipaddress import IPv6Address

from daemons.dhcpd.dispatcher import Dispatcher
from daemons.dhcpd.nd_socket import open_nd_socket
from daemons.dhcpd.responder import Outcome

__all__ = ["PlainSockets"]

log = logging.getLogger("nefeli-dhcpd.socket")

ALL_SERVERS = socket.inet_pton(socket.AF_INET6, "ff02::1:2")


def _bound(family: int, kind: int, proto: int, iface: str) -> socket.socket:
    s = socket.socket(family, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, proto)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    except OSError:
        s.close()
        raise
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
        """All sockets on every interface, or none: OSError naming the interface."""
        self._loop = loop
        for iface in self.interfaces:
            try:
                self._open_on(iface)
            except OSError as exc:
                self.close()
                raise OSError(exc.errno, f"{iface}: {exc.strerror or exc}") from None
        log.info("serving in socket mode on %s", ", ".join(self.interfaces))

    def _open_on(self, iface: str) -> None:
        v4 = self._add(_bound(socket.AF_INET, socket.SOCK_DGRAM, 0, iface), lambda s, i=iface: self._dhcpv4(s, i))
        v4.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        v4.bind(("0.0.0.0", 67))
        v6 = self._add(_bound(socket.AF_INET6, socket.SOCK_DGRAM, 0, iface), lambda s, i=iface: self._dhcpv6(s, i))
        v6.bind(("::", 547))
        _join(v6, ALL_SERVERS, iface)
        self._add(open_nd_socket(iface), lambda s, i=iface: self._nd(s, i))

    def _add(self, s: socket.socket, cb: Callable[[socket.socket], None]) -> socket.socket:
        """Keep ``s`` (closed by :meth:`close` whatever happens next) and read it on the loop."""
        self.socks.append(s)
        assert self._loop is not None
        self._loop.add_reader(s.fileno(), cb, s)
        return s

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

    def _nd(self, s: socket.socket, iface: str) -> None:
        for data, addr in self._drain(s):
            # addr is the sockaddr_ll: (ifname, protocol, packet type, hardware type, source MAC)
            self.send(self.dispatcher.ip_packet(iface, data, addr[4] if len(addr) > 4 else b""))

    def close(self) -> None:
        for s in self.socks:
            if self._loop is not None:
                try:
                    self._loop.remove_reader(s.fileno())
                except (ValueError, OSError):
                    pass
            s.close()
        self.socks.clear()
