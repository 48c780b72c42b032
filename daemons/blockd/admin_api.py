"""The volume admin API of nefeli-blockd: JSON lines on a unix socket in the data directory.

`nefeli volume ...` and the Ganeti provider scripts talk to it, so every
volume operation goes through the one process that has the store open (and
never races the NBD export).  The socket is owner-only (0600): whoever can
reach it can delete volumes.  A malformed request gets an error line and the
connection is closed; it never affects the daemon.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from daemons.runtime.listeners import ListenAddress, bind
from net.volume_admin import AdminProgress, AdminProtocolError, AdminReply, LineFramer, parse_request
from storage_engine.blocks.errors import StoreError
from storage_engine.objects.metadata.errors import MetadataError
from storage_engine.volumes import VolumeError

from .volume_ops import VolumeOps

log = logging.getLogger("nefeli.blockd.admin")
ADMIN_SOCKET = "volumes-admin.sock"


def admin_socket_path(data: Path) -> Path:
    return Path(data) / ADMIN_SOCKET


class AdminApi:
    def __init__(self, ops: VolumeOps) -> None:
        self.ops = ops
        self._server: asyncio.AbstractServer | None = None
        self.path: Path | None = None

    async def start(self, path: Path) -> None:
        sock = bind(ListenAddress("unix", path=str(path)), mode=0o600)  # owner-only before listen
        self._server = await asyncio.start_unix_server(self._serve, sock=sock)
        self.path = path

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = LineFramer()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                try:
                    lines = framer.feed(data)
                    for line in lines:
                        await self._answer(line, writer)
                except AdminProtocolError as exc:
                    log.warning("admin request refused: %s", exc)
                    writer.write(AdminReply(False, error=str(exc), kind="AdminProtocolError").encode())
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            try:
                await writer.drain()
            except ConnectionError:
                pass
            writer.close()

    async def _answer(self, line: bytes, writer: asyncio.StreamWriter) -> None:
        req = parse_request(line)

        async def progress(done: int, total: int) -> None:
            writer.write(AdminProgress(done, total).encode())
            await writer.drain()

        try:
            result = await self.ops.call(req.op, req.args, progress)
            reply = AdminReply(True, result)
            log.info("volume %s %s: done", req.op, _brief(req.args))
        except (VolumeError, MetadataError, StoreError, OSError) as exc:
            reply = AdminReply(False, error=str(exc), kind=type(exc).__name__)
            log.info("volume %s %s refused: %s", req.op, _brief(req.args), exc)
        writer.write(reply.encode())
        await writer.drain()


def _brief(args: dict[str, object]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(args.items()))[:200]
