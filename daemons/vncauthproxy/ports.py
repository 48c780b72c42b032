"""The pool of one-shot ports: bind a listening socket on a free port of the range."""

from __future__ import annotations

import errno
import random
import socket

__all__ = ["PortPool", "PoolError"]


class PoolError(Exception):
    """No port can be handed out; the text is the control reply's reason."""


def _bind(host: str, port: int) -> socket.socket:
    if host:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    elif socket.has_dualstack_ipv6():
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        addr = ("::", port)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        addr = ("0.0.0.0", port)
    try:
        # A port whose last session is in TIME_WAIT can be listened on again at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        # Backlog 1: one client is served; the listener closes right after its accept.
        sock.listen(1)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class PortPool:
    """Ports LOW..HIGH on ``host`` ("" = all addresses); each held by one session at a time."""

    def __init__(self, low: int, high: int, host: str = "") -> None:
        self.low, self.high, self.host = low, high, host
        self.in_use: set[int] = set()

    def configure(self, low: int, high: int, host: str) -> None:
        """New range/address (SIGHUP); ports held now stay held until released."""
        self.low, self.high, self.host = low, high, host

    @property
    def size(self) -> int:
        return self.high - self.low + 1

    def acquire(self, wanted: int = 0) -> tuple[int, socket.socket]:
        if wanted:
            if not self.low <= wanted <= self.high:
                raise PoolError(f"source_port {wanted} is outside the pool {self.low}-{self.high}")
            if wanted in self.in_use:
                raise PoolError(f"source_port {wanted} is in use by another console")
            try:
                sock = _bind(self.host, wanted)
            except OSError as exc:
                raise PoolError(f"cannot listen on port {wanted}: {exc.strerror or exc}") from None
            self.in_use.add(wanted)
            return wanted, sock
        start = random.randrange(self.size)
        for i in range(self.size):
            port = self.low + (start + i) % self.size
            if port in self.in_use:
                continue
            try:
                sock = _bind(self.host, port)
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise PoolError(f"cannot listen on port {port}: {exc.strerror or exc}") from None
            self.in_use.add(port)
            return port, sock
        raise PoolError(f"no free port in the pool {self.low}-{self.high}")

    def release(self, port: int) -> None:
        self.in_use.discard(port)
