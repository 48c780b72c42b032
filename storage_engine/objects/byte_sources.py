"""Byte sources: how data comes into the object store (a request body, a stream of
pieces, bytes in memory), as one typed interface rather than callbacks.

The store pulls: ``readany()`` when it takes whatever has arrived (a PUT body:
one network chunk, no copy), ``read(n)`` when it needs at most n bytes (a
partial update fills a block). Both answer b"" at the end. A source whose
transport breaks raises storage_engine.errors.ClientGone (or a subclass).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

Buffer = bytes | bytearray | memoryview


@runtime_checkable
class ByteSource(Protocol):
    """Where the store reads an object's bytes from."""

    async def read(self, n: int) -> Buffer:
        """At most ``n`` bytes (fewer only at the end for a stream source); b"" at the end."""
        ...

    async def readany(self) -> Buffer:
        """Whatever is available now, at least one byte unless at the end (b"")."""
        ...


class StreamSource:
    """A byte source over an async stream of pieces (an object being read, a manifest):
    ``read(n)`` answers n bytes, fewer only at the stream's end."""

    def __init__(self, stream: AsyncIterator[Buffer]) -> None:
        self._stream = stream
        self._buf = bytearray()
        self._done = False

    async def _more(self) -> bool:
        if self._done:
            return False
        try:
            self._buf += await self._stream.__anext__()
        except StopAsyncIteration:
            self._done = True
            return False
        return True

    async def read(self, n: int) -> bytes:
        while len(self._buf) < n and await self._more():
            pass
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    async def readany(self) -> Buffer:
        if self._buf:
            out = bytes(self._buf)
            self._buf.clear()
            return out
        while not self._done:
            try:
                piece = await self._stream.__anext__()
            except StopAsyncIteration:
                self._done = True
                break
            if piece:
                return piece
        return b""


class BytesSource:
    """A byte source over bytes already in memory."""

    def __init__(self, data: Buffer = b"") -> None:
        self._view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
        self._pos = 0

    async def read(self, n: int) -> Buffer:
        out = self._view[self._pos : self._pos + max(0, n)]
        self._pos += len(out)
        return out

    async def readany(self) -> Buffer:
        out = self._view[self._pos :]
        self._pos += len(out)
        return out


__all__ = ["Buffer", "ByteSource", "BytesSource", "StreamSource"]
