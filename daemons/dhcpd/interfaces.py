"""Interface names, indexes and hardware addresses, as the kernel knows them now.

Bindings are kept by interface name; a queued packet carries an ifindex. Both
lookups are ioctls on the current network namespace, cheap enough per packet,
with the MACs cached briefly because an INDEV bridge may change its address.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import time

__all__ = ["InterfaceMacs", "name_of"]

SIOCGIFHWADDR = 0x8927
MAC_TTL = 10.0


NAME_TTL = 2.0
_names: dict[int, tuple[float, str | None]] = {}


def name_of(ifindex: int) -> str | None:
    """The interface's name, looked up at most every NAME_TTL seconds per index: a
    tap deleted and another created with its index within that time is the only
    case it can get wrong, and the binding's MAC check still applies then."""
    if ifindex <= 0:
        return None
    now = time.monotonic()
    hit = _names.get(ifindex)
    if hit is not None and now - hit[0] < NAME_TTL:
        return hit[1]
    try:
        name: str | None = socket.if_indextoname(ifindex)
    except OSError:
        name = None
    if len(_names) > 65536:
        _names.clear()
    _names[ifindex] = (now, name)
    return name


class InterfaceMacs:
    """``get(name)``: the interface's MAC, or None when there is no such interface."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._cache: dict[str, tuple[float, bytes]] = {}

    def get(self, name: str) -> bytes | None:
        now = time.monotonic()
        hit = self._cache.get(name)
        if hit is not None and now - hit[0] < MAC_TTL:
            return hit[1]
        try:
            req = struct.pack("16s16x", name.encode()[:15])
            res = fcntl.ioctl(self._sock.fileno(), SIOCGIFHWADDR, req)
        except OSError:
            self._cache.pop(name, None)
            return None
        mac = res[18:24]
        self._cache[name] = (now, mac)
        return mac

    def forget(self) -> None:
        self._cache.clear()

    def close(self) -> None:
        self._sock.close()
