"""Socket activation (sd_listen_fds(3)) without libsystemd.

systemd (or ``systemd-socket-activate``) binds the listening sockets, passes
them as fds 3, 4, ... and describes them in ``$LISTEN_FDS`` (count),
``$LISTEN_PID`` (who they are for) and ``$LISTEN_FDNAMES`` (``FileDescriptorName=``,
colon-separated). Binding in systemd lets a daemon restart without refusing
connections and run without the privilege to bind low ports.

The variables are removed after reading so a child process never mistakes the
fds for its own, and the fds are made close-on-exec for the same reason.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field

__all__ = ["LISTEN_FDS_START", "ListenFds", "parse_listen_env", "take_listen_fds"]

LISTEN_FDS_START = 3
_MAX_FDS = 4096

log = logging.getLogger("nefeli.runtime.activation")


def parse_listen_env(environ: Mapping[str, str], pid: int) -> list[tuple[int, str]]:
    """``[(fd, name), ...]`` described by the environment for process ``pid``.

    Empty when the variables are absent, malformed, or meant for another
    process. Missing names are ``"unknown"`` as with sd_listen_fds_with_names.
    """
    raw_count = environ.get("LISTEN_FDS", "")
    if not raw_count:
        return []
    try:
        count = int(raw_count)
        listen_pid = int(environ.get("LISTEN_PID", ""))
    except ValueError:
        log.warning("ignoring malformed LISTEN_FDS=%r / LISTEN_PID", raw_count)
        return []
    if listen_pid != pid:
        log.debug("LISTEN_PID=%d is not us (%d); ignoring LISTEN_FDS", listen_pid, pid)
        return []
    if not 0 < count <= _MAX_FDS:
        if count:
            log.warning("ignoring LISTEN_FDS=%d: out of range", count)
        return []
    names_raw = environ.get("LISTEN_FDNAMES")
    names = names_raw.split(":") if names_raw else []
    if names and len(names) != count:
        log.warning(
            "LISTEN_FDNAMES has %d names for %d fds; unnamed fds are 'unknown'", len(names), count
        )
    names = (names + ["unknown"] * count)[:count]
    return [(LISTEN_FDS_START + i, names[i] or "unknown") for i in range(count)]


@dataclass
class ListenFds:
    """Inherited sockets by name; a daemon takes those it serves on."""

    sockets: dict[str, list[socket.socket]] = field(default_factory=dict)
    other_fds: dict[str, list[int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.sockets.values()) or any(self.other_fds.values())

    def names(self) -> list[str]:
        return sorted(n for n, s in self.sockets.items() if s)

    def take(self, name: str) -> list[socket.socket]:
        """Remove and return every inherited socket called ``name`` (maybe none)."""
        return self.sockets.pop(name, [])

    def take_one(self, name: str) -> socket.socket | None:
        """The first socket called ``name``; extra ones stay for :meth:`close_unused`."""
        socks = self.sockets.get(name) or []
        if not socks:
            return None
        sock = socks.pop(0)
        return sock

    def take_all(self) -> list[socket.socket]:
        """Every inherited socket regardless of name (single-purpose daemons)."""
        out = [s for socks in self.sockets.values() for s in socks]
        self.sockets.clear()
        return out

    def close_unused(self) -> list[str]:
        """Close what nobody took; returns their names for a log line."""
        left = [n for n, s in self.sockets.items() for _ in s]
        for socks in self.sockets.values():
            for s in socks:
                s.close()
        for fds in self.other_fds.values():
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.sockets.clear()
        self.other_fds.clear()
        return left


def take_listen_fds(
    environ: MutableMapping[str, str] | None = None, *, unset: bool = True
) -> ListenFds:
    """Wrap the fds passed by systemd as sockets and (by default) unset the variables."""
    env = os.environ if environ is None else environ
    described = parse_listen_env(env, os.getpid())
    if unset:
        for key in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            env.pop(key, None)
    result = ListenFds()
    for fd, name in described:
        try:
            os.set_inheritable(fd, False)
        except OSError as exc:
            log.warning("inherited fd %d (%s) is not usable: %s", fd, name, exc)
            continue
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            # Not a socket (ListenFIFO=, ListenSpecial=): hand over the raw fd.
            result.other_fds.setdefault(name, []).append(fd)
            continue
        result.sockets.setdefault(name, []).append(sock)
    if described:
        log.debug(
            "socket activation: %s",
            ", ".join(f"{name}=fd{fd}" for fd, name in described),
        )
    return result
