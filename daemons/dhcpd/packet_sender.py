"""Replies out through one AF_PACKET socket: whole Ethernet frames onto a named interface.

Protocol 0 means the socket receives nothing; ``sendto(frame, (ifname, 0))``
picks the interface per frame, so one socket serves every tap. Sends never
block the loop: a full transmit queue drops the frame and counts it.
"""

from __future__ import annotations

import logging
import socket

__all__ = ["PacketSender"]

log = logging.getLogger("nefeli-dhcpd.send")


class PacketSender:
    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, 0)
        self.sent = 0
        self.failed = 0
        self.last_error = ""

    def send(self, interface: str, frame: bytes) -> bool:
        try:
            self._sock.sendto(frame, (interface, 0))
        except OSError as exc:
            self.failed += 1
            self.last_error = f"send on {interface}: {exc.strerror or exc}"
            log.warning("cannot send on %s: %s", interface, exc.strerror or exc)
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        self._sock.close()
