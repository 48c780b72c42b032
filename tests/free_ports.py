"""TCP ports for daemons the tests start as processes.

A port found by binding to port 0 comes from the ephemeral range, the same range
the kernel picks outgoing connections' local ports from: between the check and
the daemon's own bind, any client connection may take it, and the daemon then
fails to start.  Ports below that range are never picked for outgoing
connections, so a port free at the check stays free for the daemon.
"""

from __future__ import annotations

import os
import random
import socket

_given: set[int] = set()
_rng = random.Random(os.getpid())


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, not handed out before in this process."""
    low = _ephemeral_low()
    if low > 11000:
        for _ in range(200):
            port = _rng.randrange(10000, low)
            if port not in _given and _bindable(port):
                _given.add(port)
                return port
    with socket.socket() as s:  # an unusual port range: fall back to the kernel's pick
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    _given.add(port)
    return port
