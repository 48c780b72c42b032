"""The one error the packet codecs (DHCPv4, DHCPv6, ICMPv6, IP framing, NFQUEUE) raise.

Every decoder in those modules turns bad bytes into :class:`MalformedPacket` and
nothing else, so a daemon can answer `except MalformedPacket` in one place and
still give the kernel a verdict for the packet.
"""

from __future__ import annotations

__all__ = ["MalformedPacket"]


class MalformedPacket(ValueError):
    """Bytes that do not decode; ``reason`` says where, in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
