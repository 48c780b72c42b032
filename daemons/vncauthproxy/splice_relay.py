"""Zero-copy relay of a session whose two sides are plain TCP: splice(2) through a pipe.

Why: a relay that reads each chunk into its own memory and writes it out again
copies every byte twice more than a direct connection does, and on a node
with few cores that alone halves a console's bulk throughput. ``splice`` moves
the socket's pages into a pipe and from the pipe into the other socket inside
the kernel, so the proxy never touches the framebuffer data: per chunk (up to
:data:`PIPE_MAX`) it costs two system calls and nothing else.

One :class:`Direction` per way, each with its own pipe. A direction reads only
while its pipe is empty; when the destination socket is full, it stops reading
its source and waits for the destination to become writable, so back-pressure
is the kernel's own socket buffers, as it is for a direct connection.

The two sockets are duplicates handed over by the copying relay's endpoints
(:meth:`relay.Endpoint.detach`) once both handshakes are done; TLS and
WebSocket sessions keep the copying relay (relay.py), which has to see the bytes.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import socket

__all__ = ["Direction", "SpliceRelay", "PIPE_MAX"]

#: A direction's pipe starts at the kernel default (64 KiB) and grows to this while
#: chunks fill it: idle consoles keep small pipes, bulk updates move in large chunks.
PIPE_MAX = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
_FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK


class Direction:
    """One way of the relay: ``src`` socket → pipe → ``dst`` socket."""

    def __init__(self, relay: SpliceRelay, src: int, dst: int, head: bytes) -> None:
        self.relay = relay
        self.src = src
        self.dst = dst
        self.head = head  # bytes read past the handshake, sent before anything spliced
        self.rd, self.wr = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.size = fcntl.fcntl(self.rd, _F_GETPIPE_SZ)
        self.pending = 0  # bytes in the pipe, not yet in dst
        self.moved = 0
        self.eof = False
        self.reading = False
        self.waiting = False  # for dst to become writable

    def start(self) -> None:
        if self.head:
            self.flush()
        elif not self.eof:
            self._read_on()

    def on_readable(self) -> None:
        try:
            n = os.splice(self.src, self.wr, self.size, flags=_FLAGS)
        except BlockingIOError:
            return
        except OSError as exc:
            self.relay.fail(exc, self.src)
            return
        if n == 0:
            self.eof = True
            self.stop_reading()
            self.relay.source_ended(self)
            return
        self.pending += n
        self.relay.last_activity = self.relay.loop.time()
        if n >= self.size // 2 and self.size < PIPE_MAX:
            self._grow()
        self.flush()

    def flush(self) -> None:
        """Move what is waiting (head bytes, then the pipe) into dst, as far as it takes it."""
        try:
            while self.head:
                sent = os.write(self.dst, self.head)
                self.moved += sent
                self.head = self.head[sent:]
            while self.pending:
                n = os.splice(self.rd, self.dst, self.pending, flags=_FLAGS)
                self.pending -= n
                self.moved += n
        except BlockingIOError:
            self.stop_reading()
            if not self.waiting:
                self.waiting = True
                self.relay.loop.add_writer(self.dst, self.flush)
            return
        except OSError as exc:
            self.relay.fail(exc, self.dst)
            return
        if self.waiting:
            self.waiting = False
            self.relay.loop.remove_writer(self.dst)
        if self.relay.closing:
            self.relay.flushed(self)
        elif not self.eof:
            self._read_on()

    @property
    def empty(self) -> bool:
        return not self.head and not self.pending

    def _grow(self) -> None:
        try:
            self.size = fcntl.fcntl(self.wr, _F_SETPIPE_SZ, min(self.size * 4, PIPE_MAX))
        except OSError:
            self.size = PIPE_MAX  # over the user's pipe quota: keep what we have, stop asking

    def _read_on(self) -> None:
        if not self.reading:
            self.reading = True
            self.relay.loop.add_reader(self.src, self.on_readable)

    def stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.relay.loop.remove_reader(self.src)

    def stop(self) -> None:
        self.stop_reading()
        if self.waiting:
            self.waiting = False
            self.relay.loop.remove_writer(self.dst)
        os.close(self.rd)
        os.close(self.wr)


class SpliceRelay:
    """Relays between two connected, non-blocking TCP sockets it owns (and closes).

    ``client_head`` / ``backend_head`` are bytes already read from that side past
    its handshake; they go to the other side first. ``closed`` completes when the
    session is over: one side closed (after what it sent has reached the other),
    an error, :meth:`close` (flushes first) or :meth:`abort`.
    """

    def __init__(self, client: socket.socket, backend: socket.socket,
                 client_head: bytes = b"", backend_head: bytes = b"") -> None:
        self.loop = asyncio.get_running_loop()
        self.client = client
        self.backend = backend
        self.last_activity = self.loop.time()
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.closing = False
        self.error: OSError | None = None
        self.ended_by: str = ""
        self.to_backend = Direction(self, client.fileno(), backend.fileno(), client_head)
        self.to_client = Direction(self, backend.fileno(), client.fileno(), backend_head)

    def start(self) -> None:
        self.to_backend.start()
        self.to_client.start()

    # -- called by the directions

    def source_ended(self, d: Direction) -> None:
        """One side closed: hand the other what that side still sent, then end."""
        if not self.ended_by:
            self.ended_by = "client closed" if d is self.to_backend else "backend closed"
        self.closing = True
        self.other(d).stop_reading()
        if d.empty:
            self._finish()

    def flushed(self, d: Direction) -> None:
        if (d.eof and d.empty) or (self.to_backend.empty and self.to_client.empty):
            self._finish()

    def fail(self, exc: OSError, fd: int) -> None:
        """A system call on socket ``fd`` failed: a reset or broken pipe is that side going away."""
        side = "client" if fd == self.client.fileno() else "backend"
        if exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ETIMEDOUT):
            self.ended_by = self.ended_by or f"{side} closed"
        else:
            self.error = exc
            self.ended_by = self.ended_by or f"{side} connection error: {exc.strerror or exc}"
        self._finish()

    def other(self, d: Direction) -> Direction:
        return self.to_client if d is self.to_backend else self.to_backend

    # -- control

    def close(self) -> None:
        """Stop reading both sides, deliver what is in flight, then close both."""
        if self.closed.done():
            return
        self.closing = True
        self.to_backend.stop_reading()
        self.to_client.stop_reading()
        if self.to_backend.empty and self.to_client.empty:
            self._finish()

    def abort(self) -> None:
        self._finish()

    def _finish(self) -> None:
        if self.closed.done():
            return
        for d in (self.to_backend, self.to_client):
            d.stop()
        self.client.close()
        self.backend.close()
        self.closed.set_result(None)
