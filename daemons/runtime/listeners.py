"""Listening sockets: the one systemd passed under a name, or else the configured address.

Every daemon serves on a few named listeners (blockd: ``http`` and ``nbd``;
the console proxy: ``control`` and ``metrics``; dhcpd: ``metrics``). Under
systemd the socket unit's ``FileDescriptorName=`` says which inherited fd is
which, and a daemon takes only its own names, so one socket unit can never be
served by the wrong listener. Without an inherited socket of that name the
daemon binds the address from its configuration.

Addresses are written the way operators write them in configs:

    127.0.0.1:8080        TCP (IPv4)
    [::1]:8080            TCP (IPv6; brackets required)
    :8080                 TCP on every address
    udp:0.0.0.0:67        UDP
    unix:/run/nefeli/nbd.sock   a unix stream socket (also: any path starting with "/")

Sockets that systemd passed without a name (``systemd-socket-activate``
without ``--fdname``) are called ``unknown``; they go to the daemon's main
listener, the one opened with ``default=True``.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .activation import ListenFds

__all__ = ["ListenAddress", "UNNAMED", "bind", "check_address", "open_listener", "parse_address"]

log = logging.getLogger("nefeli.runtime.listeners")

#: The name sd_listen_fds gives to sockets passed without FileDescriptorName.
UNNAMED = "unknown"

Kind = Literal["tcp", "udp", "unix"]
_PREFIXES: tuple[tuple[str, Kind], ...] = (("unix:", "unix"), ("udp:", "udp"), ("tcp:", "tcp"))


@dataclass(frozen=True)
class ListenAddress:
    """One parsed listen address; ``str()`` gives it back in config syntax."""

    kind: Kind
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        prefix = "udp:" if self.kind == "udp" else ""
        return f"{prefix}{host}:{self.port}"

    @property
    def family(self) -> int:
        if self.kind == "unix":
            return socket.AF_UNIX
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET


def parse_address(text: str, *, default_kind: Kind = "tcp") -> ListenAddress:
    """Parse ``text`` (syntax above); ValueError with the reason when it is not an address."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty address")
    kind: Kind = default_kind
    for prefix, k in _PREFIXES:
        if raw.startswith(prefix):
            kind, raw = k, raw[len(prefix) :]
            break
    if kind == "unix" or raw.startswith("/"):
        if not raw.startswith("/"):
            raise ValueError(f"unix socket path must be absolute: {text!r}")
        if len(raw.encode()) > 107:
            raise ValueError(f"unix socket path too long (over 107 bytes): {text!r}")
        return ListenAddress("unix", path=raw)
    host, sep, port = raw.rpartition(":")
    if not sep:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise ValueError(f"brackets are for IPv6 addresses: {text!r}")
    elif ":" in host:
        raise ValueError(f"an IPv6 address needs brackets, as [::1]:PORT: {text!r}")
    if not port.isascii() or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be 0-65535 in {text!r}")
    if host and any(c.isspace() for c in host):
        raise ValueError(f"bad host in {text!r}")
    return ListenAddress(kind, host=host, port=int(port))


def check_address(text: str) -> None:
    """A ``validate=`` for settings holding one listen address."""
    parse_address(text)


def _remove_stale_unix_socket(path: str) -> None:
    """Remove a socket file left by a dead process; refuse to touch anything else.

    A live listener answers a connect: then the address is in use, as for TCP.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)
        log.info("removed stale socket %s", path)
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"{path}: address already in use")


def bind(address: ListenAddress, *, backlog: int = 1024, mode: int | None = None) -> socket.socket:
    """A bound (and for streams, listening) non-blocking socket for ``address``.

    Unix sockets get ``mode`` (e.g. 0o600 for an owner-only admin socket) set
    before listen, so no one else can connect in between.
    """
    if address.kind == "unix":
        Path(address.path).parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_unix_socket(address.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(address.path)
            if mode is not None:
                os.chmod(address.path, mode)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        return sock
    if address.host:
        infos = socket.getaddrinfo(
            address.host,
            address.port,
            type=socket.SOCK_DGRAM if address.kind == "udp" else socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV,
        )
        family, _, _, _, sockaddr = infos[0]
    else:  # every address, v4 and v6 on one socket where the host allows it
        family, sockaddr = socket.AF_INET6, ("::", address.port)
        if not socket.has_ipv6:
            family, sockaddr = socket.AF_INET, ("0.0.0.0", address.port)
    sock = socket.socket(family, socket.SOCK_DGRAM if address.kind == "udp" else socket.SOCK_STREAM)
    try:
        if family == socket.AF_INET6 and not address.host:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        if address.kind == "tcp":
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def open_listener(
    sockets: ListenFds,
    name: str,
    addresses: list[str] | tuple[str, ...] | str,
    *,
    default: bool = False,
    backlog: int = 1024,
    mode: int | None = None,
) -> list[socket.socket]:
    """The sockets listener ``name`` serves on.

    Inherited sockets called ``name`` (and, for the ``default`` listener,
    unnamed ones) win; otherwise every configured address is bound. An empty
    address list with nothing inherited gives no sockets: the listener is off.
    """
    inherited = sockets.take(name)
    if default:
        inherited += sockets.take(UNNAMED)
    if inherited:
        for s in inherited:
            s.setblocking(False)
        log.debug("%s: %d socket(s) from systemd", name, len(inherited))
        return inherited
    wanted = [addresses] if isinstance(addresses, str) else list(addresses)
    out: list[socket.socket] = []
    try:
        for text in wanted:
            if text:
                out.append(bind(parse_address(text), backlog=backlog, mode=mode))
    except BaseException:
        for s in out:
            s.close()
        raise
    return out
