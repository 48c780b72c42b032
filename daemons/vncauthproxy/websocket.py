"""vnc-ws / vnc-wss sessions: the one-shot port answers a WebSocket, for noVNC.

The port speaks HTTP (TLS for vnc-wss). The first WebSocket upgrade that
passes the Origin check claims the session: the port stops listening, and the
RFB handshake and relay run over binary WebSocket messages exactly as over
TCP. With ``novnc_dir`` set, plain GETs serve that noVNC tree from the same
port until then, so a browser needs nothing else.

Back-pressure: bytes from the backend queue for the WebSocket writer; past
:data:`QUEUE_HIGH` the backend socket stops being read until the queue drains
below :data:`QUEUE_LOW`. The other way, the WebSocket is not read while the
backend's write buffer is over its high-water mark.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from .relay import WRITE_HIGH, Endpoint

if TYPE_CHECKING:
    from .proxy import Proxy, Session

__all__ = ["WsBridge", "origin_allowed", "run_ws_session", "static_path"]

log = logging.getLogger("nefeli-vncauthproxy.ws")

QUEUE_HIGH = 1 << 20
QUEUE_LOW = 256 * 1024
#: Largest WebSocket message accepted from a client (RFB client messages are small).
MAX_MESSAGE = 4 << 20


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """Browsers always send Origin on WebSocket requests; other clients need not.

    With no configured list, only the port's own origin (noVNC served from
    ``novnc_dir``) may connect; ``*`` in the list allows any.
    """
    if origin is None:
        return True
    if "*" in allowed:
        return True
    if allowed:
        return origin.rstrip("/") in {a.rstrip("/") for a in allowed}
    parts = urlsplit(origin)
    return bool(host) and parts.netloc.lower() == (host or "").lower()


class WsBridge:
    """The client side of a session over a WebSocket (a ClientChannel and a relay Peer)."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None) -> None:
        self.ws = ws
        self._transport = transport
        if transport is not None and hasattr(transport, "set_write_buffer_limits"):
            # aiohttp waits for the socket to drain below the transport's low-water mark
            # after each message; asyncio's 64 KiB default stalls a framebuffer stream.
            transport.set_write_buffer_limits(high=WRITE_HIGH)  # type: ignore[union-attr]
        self._loop = asyncio.get_running_loop()
        self.bytes_in = 0
        self.last_activity = self._loop.time()
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self._out: list[bytes] = []
        self._out_size = 0
        self._wake = asyncio.Event()
        self._reading = asyncio.Event()
        self._reading.set()
        self._backend: Endpoint | None = None
        self._backend_paused = False
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

    # -- handshake

    async def recv(self) -> bytes:
        msg = await self.ws.receive()
        if msg.type == WSMsgType.BINARY:
            self.last_activity = self._loop.time()
            return bytes(msg.data)
        return b""  # close, error, or text (only the binary subprotocol is spoken)

    async def send(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    # -- relay

    def start_relay(self, backend: Endpoint) -> None:
        self._backend = backend
        self._tasks = [
            self._loop.create_task(self._pump_in(), name="ws-in"),
            self._loop.create_task(self._pump_out(), name="ws-out"),
        ]

    def write(self, data: bytes) -> None:
        """Backend bytes for the client."""
        if self._closing:
            return
        data = bytes(data)  # it may be a view of the backend side's read buffer
        self._out.append(data)
        self._out_size += len(data)
        self._wake.set()
        if self._out_size > QUEUE_HIGH and self._backend is not None and not self._backend_paused:
            self._backend_paused = True
            self._backend.pause_reading()

    async def _pump_out(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._out:
                    chunk = b"".join(self._out) if len(self._out) > 1 else self._out[0]
                    self._out.clear()
                    self._out_size = 0
                    await self.ws.send_bytes(chunk)
                    self.last_activity = self._loop.time()
                    if self._backend_paused and self._out_size < QUEUE_LOW and self._backend is not None:
                        self._backend_paused = False
                        self._backend.resume_reading()
                if self._closing:
                    return
        except (ConnectionError, RuntimeError):
            self.abort()

    async def _pump_in(self) -> None:
        backend = self._backend
        assert backend is not None
        try:
            while True:
                await self._reading.wait()
                msg = await self.ws.receive()
                if msg.type != WSMsgType.BINARY:
                    break
                self.bytes_in += len(msg.data)
                self.last_activity = self._loop.time()
                backend.write(msg.data)
        finally:
            if not self.closed.done():
                self.closed.set_result(None)

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def close(self) -> None:
        """Send what is queued, then close the WebSocket."""
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        self._loop.create_task(self._close(), name="ws-close")

    async def _close(self) -> None:
        try:
            if len(self._tasks) == 2:
                await asyncio.wait({self._tasks[1]}, timeout=5.0)
            await asyncio.wait_for(self.ws.close(), 5.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            self.abort()

    def abort(self) -> None:
        self._closing = True
        for t in self._tasks:
            if t is not asyncio.current_task():
                t.cancel()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()
        if not self.closed.done():
            self.closed.set_result(None)


def static_path(root: Path, url_path: str) -> Path | None:
    rel = os.path.normpath(url_path.lstrip("/")) if url_path.strip("/") else "vnc.html"
    if rel.startswith("..") or os.path.isabs(rel) or "\x00" in rel:
        return None
    path = root / rel
    return path if path.is_file() else None


async def run_ws_session(proxy: Proxy, session: Session, lsock: socket.socket) -> None:
    cfg = proxy.config
    loop = asyncio.get_running_loop()
    claimed = asyncio.Event()
    finished: asyncio.Future[None] = loop.create_future()
    site: web.SockSite | None = None

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            if claimed.is_set():
                raise web.HTTPGone(text="this console is in use\n")
            if cfg.novnc_dir is not None:
                path = static_path(cfg.novnc_dir, request.path)
                if path is not None:
                    return web.FileResponse(path, headers={"Cache-Control": "no-store"})
            raise web.HTTPNotFound(text="this port serves one VNC console over WebSocket\n")
        if claimed.is_set():
            raise web.HTTPConflict(text="this console is already in use\n")
        origin = request.headers.get("Origin")
        if not origin_allowed(origin, request.host, cfg.allowed_origins):
            log.warning("session %d: WebSocket from %s refused: Origin %r not allowed", session.id,
                        request.remote, origin)
            raise web.HTTPForbidden(text="Origin not allowed\n")
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        if offered and "binary" not in offered:
            raise web.HTTPBadRequest(text="only the 'binary' WebSocket subprotocol is spoken\n")
        ws = web.WebSocketResponse(protocols=("binary",), max_msg_size=MAX_MESSAGE, compress=False, autoping=True)
        await ws.prepare(request)
        claimed.set()
        if site is not None:
            await site.stop()  # one attempt: no further connections to this port
        lsock.close()
        proxy.release_port(session.port)
        session.client = f"{request.remote}" + (f" (Origin {origin})" if origin else "")
        bridge = WsBridge(ws, request.transport)
        session.channel = bridge
        trailing: bytes | None = None
        try:
            trailing = await proxy.client_handshake(session, bridge)
            if trailing is not None:
                await proxy.relay(session, bridge, trailing)
        finally:
            if trailing is None:
                await ws.close()
                bridge.abort()
            if not finished.done():
                finished.set_result(None)
        return ws

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        tls = proxy.wss_context if session.request.type == "vnc-wss" else None
        site = web.SockSite(runner, lsock, ssl_context=tls)
        await site.start()
        try:
            async with asyncio.timeout(cfg.connect_timeout):
                await claimed.wait()
        except TimeoutError:
            session.end = f"no client within {cfg.connect_timeout:g}s"
            return
        await finished
    finally:
        await runner.cleanup()
