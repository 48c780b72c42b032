"""The control socket: framed JSON requests in, one reply line per request out."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from pathlib import Path

from net.vnc_control import ControlError, ControlReply, RequestReader

from .proxy import Proxy, peer_text

__all__ = ["ControlServer", "server_tls_context"]

log = logging.getLogger("nefeli-vncauthproxy.control")


def server_tls_context(cert: Path, key: Path | None) -> ssl.SSLContext:
    """TLS 1.2 or later only: the original client's TLS 1.0 is refused."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


class ControlServer:
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.servers: list[asyncio.AbstractServer] = []
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self, socks: list[socket.socket], tls: ssl.SSLContext | None) -> str:
        handshake = self.proxy.config.control_timeout if tls else None
        for sock in socks:
            server = await asyncio.start_server(self._serve, sock=sock, ssl=tls, ssl_handshake_timeout=handshake)
            self.servers.append(server)
        return ", ".join(peer_text(s.getsockname()) for s in socks) + (" (TLS)" if tls else "")

    def close(self) -> None:
        for server in self.servers:
            server.close()
        for task in list(self._conns):
            task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = peer_text(writer.get_extra_info("peername"))
        limit = self.proxy.config.max_control_connections
        if len(self._conns) >= limit:
            log.warning("control %s: refused: %d control connections already open", peer, limit)
            try:
                await asyncio.wait_for(self._refuse(writer, f"too many control connections (max {limit})"), 5)
            except (ConnectionError, ssl.SSLError, TimeoutError):
                pass
            writer.close()
            return
        self._conns.add(task)
        try:
            await self._requests(reader, writer, peer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            log.info("control %s: connection ended: %s", peer, exc)
        except asyncio.CancelledError:
            pass
        finally:
            self._conns.discard(task)
            writer.close()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        framer = RequestReader()
        timeout = self.proxy.config.control_timeout
        while True:
            item = framer.next()
            if item is None:
                if framer.broken:
                    return
                try:
                    async with asyncio.timeout(timeout):
                        data = await reader.read(4096)
                except TimeoutError:
                    if framer.pending:
                        log.warning("control %s: request incomplete after %gs", peer, timeout)
                        await self._refuse(writer, f"no complete request within {timeout:g}s")
                    return
                if not data:
                    framer.feed_eof()
                    item = framer.next()
                    if item is None:
                        return
                else:
                    framer.feed(data)
                    continue
            if isinstance(item, ControlError):
                log.warning("control %s: malformed request: %s", peer, item)
                await self._refuse(writer, str(item))
                if framer.broken:
                    return
                continue
            reply = await self.proxy.handle(item, peer)
            await self._reply(writer, reply)

    async def _refuse(self, writer: asyncio.StreamWriter, reason: str) -> None:
        self.proxy.metrics.requests.labels("FAILED").inc()
        await self._reply(writer, ControlReply.failed(reason))

    async def _reply(self, writer: asyncio.StreamWriter, reply: ControlReply) -> None:
        writer.write(reply.encode())
        await writer.drain()
