"""NBD export of the volumes (docs/volumes.md §5): a thin asyncio shell around net/nbd.

One task per connection reads bytes into the codec and answers its events;
transmission requests run on a thread pool (the volume engine is
synchronous) and are answered as they finish, so one connection can have
many requests in flight.  Every connection of a volume shares one in-memory
map, so a FLUSH on one makes the writes acknowledged on all of them durable
(NBD_FLAG_CAN_MULTI_CONN).  A client that breaks the protocol is dropped
with a one-line log; the others are not affected.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from net import nbd
from storage_engine.volumes import VolumeError, VolumeStore
from storage_engine.volumes.volume import Volume

log = logging.getLogger("nefeli.blockd.nbd")
T = TypeVar("T")

READ_CHUNK = 1 << 20
STREAM_LIMIT = 8 << 20  # StreamReader buffer: a 4 MiB write arrives without pausing the socket
SOCKET_BUFFER = 4 << 20
MAX_IN_FLIGHT = 64  # requests of one connection being served at once
PREFERRED_BLOCK = 4096
BASE_ALLOCATION_ID = 1
_WRITABLE_FLAGS = (
    nbd.TF_HAS_FLAGS | nbd.TF_SEND_FLUSH | nbd.TF_SEND_FUA | nbd.TF_SEND_TRIM | nbd.TF_SEND_WRITE_ZEROES
    | nbd.TF_SEND_FAST_ZERO | nbd.TF_SEND_CACHE | nbd.TF_CAN_MULTI_CONN
)
_READ_ONLY_FLAGS = nbd.TF_HAS_FLAGS | nbd.TF_READ_ONLY | nbd.TF_SEND_FLUSH | nbd.TF_SEND_CACHE | nbd.TF_CAN_MULTI_CONN


def export_flags(vol: Volume) -> int:
    return _READ_ONLY_FLAGS if vol.readonly else _WRITABLE_FLAGS


class NbdServer:
    """Serves every volume of a VolumeStore as an NBD export named after it."""

    def __init__(self, volumes: VolumeStore, *, threads: int = 16, max_payload: int = nbd.DEFAULT_MAX_PAYLOAD) -> None:
        self.volumes = volumes
        self.max_payload = max_payload
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="nefeli-nbd")
        self._servers: list[asyncio.AbstractServer] = []
        self._conns: set[asyncio.Task[None]] = set()
        self.where: list[str] = []
        self.protocol_errors = 0
        self.requests = 0
        self.bytes_read = 0
        self.bytes_written = 0

    def stats(self) -> dict[str, float]:
        return {"nbd_connections": len(self._conns), "nbd_requests": self.requests, "nbd_bytes_read": self.bytes_read,
                "nbd_bytes_written": self.bytes_written, "nbd_protocol_errors": self.protocol_errors}

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run an engine call on the server's I/O threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    # ------------------------------------------------------------------ listening

    async def serve_socket(self, sock: socket.socket) -> None:
        """Serve on a listening socket (bound from the config or passed by systemd as `nbd`)."""
        sock.setblocking(False)
        if sock.family == socket.AF_UNIX:
            server = await asyncio.start_unix_server(self._accept, sock=sock, limit=STREAM_LIMIT)
            self.where.append(f"nbd+unix://?socket={sock.getsockname()}")
        else:
            server = await asyncio.start_server(self._accept, sock=sock, limit=STREAM_LIMIT)
            host, port = sock.getsockname()[:2]
            self.where.append(f"nbd://{host}:{port}")
        self._servers.append(server)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._pool.shutdown(wait=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:  # large reads and writes in few system calls
            for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
                except OSError:
                    pass
        conn = _Connection(self, reader, writer)
        try:
            await conn.run()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("NBD connection from %s failed", conn.peer)
        finally:
            await conn.finish()
            self._conns.discard(task)


class _Connection:
    def __init__(self, server: NbdServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.codec = nbd.Connection(max_payload=server.max_payload)
        self.volume: Volume | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        peer = writer.get_extra_info("peername")
        self.peer = str(peer) if peer else "unix socket"

    def send(self, event: Any) -> None:
        self.writer.writelines(self.codec.send_parts(event))

    async def run(self) -> None:
        self.send(nbd.Greeting())
        while True:
            ev = self.codec.next_event()
            if ev is nbd.NEED_DATA:
                await self.writer.drain()
                self.codec.receive_data(await self.reader.read(READ_CHUNK))
                continue
            if isinstance(ev, nbd.ProtocolError):
                self.server.protocol_errors += 1
                log.warning("NBD client %s dropped: %s", self.peer, ev.reason)
                return
            if isinstance(ev, (nbd.Disconnect, nbd.ConnectionClosed)):
                return
            if isinstance(ev, nbd.ClientFlags):
                continue
            if self.codec.state is nbd.State.OPTION_PENDING:
                if not await self.option(ev):
                    return
                continue
            await self.slots.acquire()
            task = asyncio.create_task(self.request(ev))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def finish(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        try:
            await self.writer.drain()
        except ConnectionError:
            pass
        self.writer.close()
        if self.volume is not None:
            self.server.volumes.release(self.volume)
            self.volume = None

    # ------------------------------------------------------------------ options

    def _lookup(self, name: str) -> Volume | None:
        try:
            info = self.server.volumes.exists(name)
        except VolumeError:
            return None
        return self.server.volumes.open(name) if info else None

    async def option(self, ev: Any) -> bool:
        """Answer one option; False when the connection ends here."""
        vs = self.server.volumes
        if isinstance(ev, nbd.ExportNameOption):
            vol = self._lookup(ev.name)
            if vol is None:
                log.info("NBD client %s asked for unknown export %r", self.peer, ev.name)
                return False  # the protocol has no error reply for EXPORT_NAME
            self.volume = vol
            self.send(nbd.ExportNameReply(vol.size, export_flags(vol)))
        elif isinstance(ev, nbd.AbortOption):
            self.send(nbd.OptionAck(nbd.OPT_ABORT))
            return False
        elif isinstance(ev, nbd.ListOption):
            for name in vs.names():
                self.send(nbd.OptionServer(nbd.OPT_LIST, name))
            self.send(nbd.OptionAck(nbd.OPT_LIST))
        elif isinstance(ev, nbd.InfoOption):
            vol = self._lookup(ev.name)
            if vol is None:
                self.send(nbd.OptionError(ev.option, nbd.REP_ERR_UNKNOWN, f"no volume {ev.name!r}"))
                return True
            self.send(nbd.OptionInfoExport(ev.option, vol.size, export_flags(vol)))
            self.send(nbd.OptionInfoBlockSize(ev.option, 1, PREFERRED_BLOCK, self.server.max_payload))
            if nbd.INFO_NAME in ev.requests:
                self.send(nbd.OptionInfoName(ev.option, ev.name))
            self.send(nbd.OptionAck(ev.option))
            if ev.go:
                self.volume = vol
            else:
                vs.release(vol)
        elif isinstance(ev, nbd.StructuredReplyOption):
            self.send(nbd.OptionAck(nbd.OPT_STRUCTURED_REPLY))
        elif isinstance(ev, nbd.MetaContextOption):
            if not vs.exists(ev.export):
                self.send(nbd.OptionError(ev.option, nbd.REP_ERR_UNKNOWN, f"no volume {ev.export!r}"))
                return True
            if ev.set:
                wanted = nbd.BASE_ALLOCATION in ev.queries
            else:
                wanted = not ev.queries or any(q in ("base:", nbd.BASE_ALLOCATION) for q in ev.queries)
            if wanted:
                self.send(nbd.OptionMetaContext(ev.option, BASE_ALLOCATION_ID if ev.set else 0, nbd.BASE_ALLOCATION))
            self.send(nbd.OptionAck(ev.option))
        elif isinstance(ev, nbd.InvalidOption):
            self.send(nbd.OptionError(ev.option, ev.code, ev.reason))
        else:
            assert isinstance(ev, nbd.UnknownOption)
            self.send(nbd.OptionError(ev.option, nbd.REP_ERR_UNSUP))
        return True

    # ------------------------------------------------------------------ transmission

    def _error(self, cookie: int, error: int, message: str) -> None:
        if self.codec.state is nbd.State.CLOSED:
            return
        if self.codec.structured:
            self.send(nbd.ReplyError(cookie, error, message))
        else:
            self.send(nbd.SimpleReply(cookie, error))

    async def request(self, ev: Any) -> None:
        self.server.requests += 1
        try:
            await self._serve(ev)
        except (VolumeError, ValueError) as exc:
            self._error(ev.cookie, nbd.EINVAL, str(exc))
        except OSError as exc:
            log.error("NBD %s: %s at %d+%d: %s", type(ev).__name__, self.volume and self.volume.name,
                      getattr(ev, "offset", 0), getattr(ev, "length", 0), exc)
            self._error(ev.cookie, nbd.ENOSPC if exc.errno == 28 else nbd.EIO, str(exc))
        except Exception as exc:
            log.exception("NBD request failed")
            self._error(ev.cookie, nbd.EIO, str(exc))
        finally:
            self.slots.release()
        try:
            await self.writer.drain()
        except ConnectionError:
            pass

    def _ok(self, cookie: int) -> None:
        if self.codec.state is nbd.State.CLOSED:
            return
        if self.codec.structured:
            self.send(nbd.ReplyNone(cookie))
        else:
            self.send(nbd.SimpleReply(cookie))

    async def _serve(self, ev: Any) -> None:
        vol = self.volume
        assert vol is not None
        run = self.server.run
        if isinstance(ev, nbd.InvalidCommand):
            self._error(ev.cookie, ev.error, ev.reason)
        elif isinstance(ev, nbd.Read):
            data = vol.read_cached(ev.offset, ev.length)  # in the page cache: no thread hop
            if data is None:
                data = await run(vol.read, ev.offset, ev.length)
            self.server.bytes_read += len(data)
            if self.codec.state is nbd.State.CLOSED:
                return
            if self.codec.structured:
                self.send(nbd.ReplyData(ev.cookie, ev.offset, data))
            else:
                self.send(nbd.SimpleReply(ev.cookie, 0, data))
        elif isinstance(ev, nbd.Write):
            await run(vol.write, ev.offset, ev.data, ev.fua)
            self.server.bytes_written += len(ev.data)
            self._ok(ev.cookie)
        elif isinstance(ev, nbd.Flush):
            await run(vol.flush)
            self._ok(ev.cookie)
        elif isinstance(ev, nbd.Trim):
            await run(vol.zero, ev.offset, ev.length, fua=ev.fua)
            self._ok(ev.cookie)
        elif isinstance(ev, nbd.WriteZeroes):
            await run(vol.zero, ev.offset, ev.length, no_hole=ev.no_hole, fua=ev.fua)
            self._ok(ev.cookie)
        elif isinstance(ev, nbd.Cache):
            self._ok(ev.cookie)  # blocks are read on demand; nothing to warm
        elif isinstance(ev, nbd.BlockStatus):
            runs = await run(vol.allocation, ev.offset, ev.length)
            extents = tuple((n, nbd.STATE_HOLE | nbd.STATE_ZERO if zero else 0) for _off, n, zero in runs)
            if ev.req_one:
                extents = extents[:1]
            if self.codec.state is not nbd.State.CLOSED:
                self.send(nbd.ReplyBlockStatus(ev.cookie, BASE_ALLOCATION_ID, extents))
        else:
            self._error(ev.cookie, nbd.EINVAL, f"unexpected {type(ev).__name__}")
