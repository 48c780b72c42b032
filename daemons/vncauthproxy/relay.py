"""Byte relay between the two sides of a console session, with back-pressure.

Each side is an :class:`Endpoint` (an asyncio Protocol on the socket). During
the handshakes the shell reads from it with :meth:`Endpoint.recv`; once both
handshakes are done, :func:`link` makes every chunk the event loop reads go
straight to the other side's transport: no per-byte Python work, one call per
chunk. When a side's write buffer passes its high-water mark, the loop calls
``pause_writing`` on it and the *other* side stops reading until the buffer
drains (``resume_writing``), so a slow client never makes the proxy buffer a
fast backend's framebuffer updates without bound.

A peer is anything with ``write``, ``close``, ``pause_reading`` and
``resume_reading``: another Endpoint, or the WebSocket bridge (websocket.py).
"""

from __future__ import annotations

import asyncio
import os
import socket
import typing
from typing import Protocol

__all__ = ["Endpoint", "Peer", "link", "WRITE_HIGH", "READ_LIMIT"]

#: Write buffer high-water mark per side; large enough that bulk updates rarely pause.
WRITE_HIGH = 1 << 20
#: Bytes buffered while handshaking before reading pauses (the handshake is tiny).
READ_LIMIT = 64 * 1024
#: Read buffer of a side: small while idle, doubled while reads fill it, up to READ_MAX.
READ_MIN = 8 * 1024
READ_MAX = 1 << 20


class Peer(Protocol):
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


class Endpoint(asyncio.BufferedProtocol):
    """One socket of a session: buffered reads while handshaking, forwarding after.

    The event loop reads straight into this side's buffer (BufferedProtocol), and
    the filled part goes to the peer's transport as a memoryview: no bytes object
    per chunk. A transport that could not send it all at once may keep referring
    to that memory, so such a buffer is set aside until the peer's write buffer
    is empty again, and another one is read into meanwhile.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None
        self.bytes_in = 0
        self.last_activity = 0.0
        self._buf = bytearray()
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self._read_paused = False
        self._read_size = READ_MIN
        self._rbuf: memoryview | None = None
        self._spare: list[memoryview] = []
        self._busy: list[memoryview] = []

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport.set_write_buffer_limits(high=WRITE_HIGH)
        self.last_activity = self._loop.time()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._busy and self._peer_flushed():
            self._spare += [b for b in self._busy if len(b) == self._read_size]
            self._busy.clear()
        if self._rbuf is None:
            self._rbuf = self._spare.pop() if self._spare else memoryview(bytearray(self._read_size))
        return self._rbuf

    def _peer_flushed(self) -> bool:
        peer = self.peer
        return not isinstance(peer, Endpoint) or peer.transport is None or peer.transport.get_write_buffer_size() == 0

    def buffer_updated(self, nbytes: int) -> None:
        buf = self._rbuf
        assert buf is not None
        peer = self.peer
        if peer is None:
            self.data_received(bytes(buf[:nbytes]))
            return
        self.bytes_in += nbytes
        self.last_activity = self._loop.time()
        peer.write(buf[:nbytes])
        if not self._peer_flushed():
            self._busy.append(buf)  # the peer's transport may still point into it
            self._rbuf = None
        if nbytes == len(buf) and self._read_size < READ_MAX:
            self._read_size *= 2  # bulk traffic: read more per call
            self._rbuf = None
            self._spare.clear()

    def data_received(self, data: bytes) -> None:
        """Handshake-time input (through buffer_updated, or a TLS transport's plain data)."""
        peer = self.peer
        if peer is not None:
            self.bytes_in += len(data)
            self.last_activity = self._loop.time()
            peer.write(data)
            return
        self._buf += data
        if len(self._buf) > READ_LIMIT and self.transport is not None:
            self.transport.pause_reading()
            self._read_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close our side; connection_lost closes the peer

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wake()
        if not self.closed.done():
            self.closed.set_result(None)
        if self.peer is not None:
            self.peer.close()  # after the peer's pending writes are flushed

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.pause_reading()

    def resume_writing(self) -> None:
        self.last_activity = self._loop.time()
        if self.peer is not None:
            self.peer.resume_reading()

    # -- handshake-time reads and writes

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def recv(self) -> bytes:
        """What has arrived (waiting for something); b"" once the peer closed."""
        while not self._buf and not self._eof:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self._buf)
        self._buf.clear()
        if self._read_paused and self.transport is not None:
            self._read_paused = False
            self.transport.resume_reading()
        return data

    async def send(self, data: bytes) -> None:
        self.write(data)

    # -- the Peer interface, for the other side

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def can_detach(self) -> bool:
        """Whether :meth:`detach` would hand the socket over: plain TCP, open, all written."""
        t = self.transport
        return (t is not None and not t.is_closing() and not self._eof
                and t.get_extra_info("ssl_object") is None and t.get_extra_info("socket") is not None
                and t.get_write_buffer_size() == 0)

    async def written(self, timeout: float = 1.0) -> bool:
        """Wait (up to ``timeout``) until everything written is on the socket.

        uvloop sends small writes at the end of the loop iteration, so a reply just
        written is still in the transport's buffer for a moment.
        """
        t = self.transport
        deadline = self._loop.time() + timeout
        delay = 0.0
        while t is not None and not t.is_closing() and t.get_write_buffer_size():
            if self._loop.time() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2 or 0.0005, 0.02)
        return t is not None and not t.is_closing()

    def detach(self) -> socket.socket:
        """Give up the socket for the zero-copy relay (splice_relay.py).

        Returns a duplicate of it (the same connection, non-blocking) and drops the
        transport without closing the connection; what was read past the handshake
        is left for :meth:`take_buffered`. Check :meth:`can_detach` first.
        """
        t = self.transport
        assert t is not None and self.can_detach()
        fd = os.dup(t.get_extra_info("socket").fileno())
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        self.peer = None
        t.abort()  # closes the transport's descriptor only: the duplicate keeps the connection
        return sock

    def start_relay(self, backend: Endpoint) -> None:
        """Nothing to start: :func:`link` made this side forward from the event loop."""

    def take_buffered(self) -> bytes:
        data = bytes(self._buf)
        self._buf.clear()
        return data


def link(a: Endpoint, b: Peer, a_first: bytes = b"", b_first: bytes = b"") -> None:
    """Start relaying between ``a`` and ``b``; ``*_first`` are bytes already read
    from that side past its handshake (they go to the other side first)."""
    leftover = a.take_buffered()
    if a_first or leftover:
        b.write(a_first + leftover)
    if b_first:
        a.write(b_first)
    a.peer = b
    if isinstance(b, Endpoint):
        rest = b.take_buffered()
        if rest:
            a.write(rest)
        b.peer = a
        if b._read_paused:
            b._read_paused = False
            b.resume_reading()
    if a._read_paused:
        a._read_paused = False
        a.resume_reading()
    if a._eof:
        b.close()
    if isinstance(b, Endpoint) and b._eof:
        a.close()
