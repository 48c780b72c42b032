"""sd_notify(3) by hand: a few datagrams to ``$NOTIFY_SOCKET``, no libsystemd.

``Type=notify`` units learn from these messages when the daemon is ready
(``READY=1``), stopping (``STOPPING=1``), reloading (``RELOADING=1`` with
``MONOTONIC_USEC`` for ``Type=notify-reload``) and still alive (``WATCHDOG=1``).
Outside systemd the variable is unset and every call is a cheap no-op, so
daemons call these unconditionally.

Sends never block and never raise: a full or vanished socket must not stall
or kill the event loop; the failure is logged once instead.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import MutableMapping

__all__ = ["Notifier", "monotonic_usec", "watchdog_interval"]

log = logging.getLogger("nefeli.runtime.notify")


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as systemd expects in MONOTONIC_USEC."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def _address(value: str) -> str | None:
    """Socket address from ``$NOTIFY_SOCKET``: ``/path`` or ``@abstract``."""
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(
    environ: MutableMapping[str, str] | None = None, pid: int | None = None, *, unset: bool = False
) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or None.

    None when the watchdog is off, or ``$WATCHDOG_PID`` names another process
    (then the pings are that process's job, not ours).
    """
    env = os.environ if environ is None else environ
    raw, wpid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID")
    if unset:
        env.pop("WATCHDOG_USEC", None)
        env.pop("WATCHDOG_PID", None)
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    if wpid:
        try:
            if int(wpid) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 2 / 1_000_000


class Notifier:
    """Sends sd_notify messages to one socket address (or nowhere)."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_env(
        cls, environ: MutableMapping[str, str] | None = None, *, unset: bool = True
    ) -> Notifier:
        """From ``$NOTIFY_SOCKET``; ``unset`` removes the variable so child
        processes do not talk to systemd in our name."""
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        if unset:
            env.pop("NOTIFY_SOCKET", None)
        if not raw:
            return cls(None)
        addr = _address(raw)
        if addr is None:
            log.warning("ignoring NOTIFY_SOCKET=%r: not an absolute path or @abstract name", raw)
        return cls(addr)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines in one datagram (keys given in Python case:
        ``send(READY=1, STATUS="up")``); True when it was handed to the kernel."""
        if self.address is None or not fields:
            return False
        lines = []
        for key, value in fields.items():
            text = str(value).replace("\n", " ").replace("\r", " ")
            lines.append(f"{key.upper()}={text}")
        return self._send("\n".join(lines).encode("utf-8", "replace"))

    def _send(self, data: bytes) -> bool:
        assert self.address is not None
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(data, self.address)
            return True
        except OSError as exc:
            level = logging.DEBUG if self._warned else logging.WARNING
            self._warned = True
            log.log(level, "sd_notify to %r failed: %s", self.address.replace("\0", "@"), exc)
            return False

    def ready(self, status: str | None = None) -> bool:
        """Start-up (or a reload) is complete."""
        return self.send(READY=1, **({"STATUS": status} if status else {}))

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun."""
        return self.send(STOPPING=1, **({"STATUS": status} if status else {}))

    def reloading(self, status: str | None = None) -> bool:
        """A reload has begun; MONOTONIC_USEC lets systemd order it (notify-reload)."""
        extra = {"STATUS": status} if status else {}
        return self.send(RELOADING=1, MONOTONIC_USEC=monotonic_usec(), **extra)

    def watchdog(self) -> bool:
        """Still alive."""
        return self.send(WATCHDOG=1)

    def status(self, text: str) -> bool:
        """Free-form one-line status shown by ``systemctl status``."""
        return self.send(STATUS=text)

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time for the current start-up/reload/shutdown step."""
        return self.send(EXTEND_TIMEOUT_USEC=max(0, int(seconds * 1_000_000)))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
