"""The console proxy: answers forwarding requests and runs one session per port.

A request is answered OK only once a port of the pool listens and the
backend's RFB handshake is done; the session then waits ``connect_timeout``
for its one client, closes the port at the first accept (one attempt per
one-time password), authenticates the client (RFB server side, VNC auth), and
relays. Every session ends with one audit log line.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import ssl
import time
import typing
from dataclasses import dataclass, field
from typing import Any, Protocol

from net import rfb
from net.rfb import ServerConnection, ServerState
from net.vnc_control import ControlReply, ControlRequest

from .backend import BackendError, BackendLink, connect_backend
from .config import VncAuthProxyConfig, parse_port_range
from .metrics import ProxyMetrics
from .ports import PoolError, PortPool
from .relay import Endpoint, link
from .splice_relay import SpliceRelay
from .users import Users
from .websocket import run_ws_session

__all__ = ["ClientChannel", "Proxy", "Session", "peer_text"]

log = logging.getLogger("nefeli-vncauthproxy")
audit = logging.getLogger("nefeli-vncauthproxy.audit")

#: After one side closed, how long the other may take to flush and close.
CLOSE_GRACE = 5.0


class ClientChannel(Protocol):
    """The client side during its handshake and relay: a TCP Endpoint or a WebSocket bridge."""

    bytes_in: int
    last_activity: float
    closed: asyncio.Future[None]

    async def recv(self) -> bytes: ...
    async def send(self, data: bytes) -> None: ...
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def start_relay(self, backend: Endpoint) -> None: ...


@dataclass
class Session:
    id: int
    request: ControlRequest
    user: str | None
    port: int
    backend: BackendLink
    started: float = field(default_factory=time.monotonic)
    client: str = "-"
    end: str = ""
    relaying: bool = False
    to_backend: int = 0
    to_client: int = 0
    channel: ClientChannel | None = None
    task: asyncio.Task[None] | None = None
    spliced: SpliceRelay | None = None
    relay_mode: str = "-"

    def close_all(self) -> None:
        if self.spliced is not None:
            self.spliced.close()
        if self.channel is not None:
            self.channel.close()
        self.backend.endpoint.close()


def peer_text(addr: Any) -> str:
    """A socket address as one log-friendly string (IPv4-mapped IPv6 shown as IPv4)."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = str(addr[0])
        if host.startswith("::ffff:"):
            host = host[7:]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr)


class Proxy:
    def __init__(self, config: VncAuthProxyConfig, users: Users, metrics: ProxyMetrics) -> None:
        self.config = config
        self.users = users
        self.metrics = metrics
        low, high = parse_port_range(config.port_range)
        self.pool = PortPool(low, high, config.proxy_address)
        self.sessions: dict[int, Session] = {}
        self._ids = itertools.count(1)
        self.stopping = False
        self.wss_context: ssl.SSLContext | None = None
        self._fqdn: str | None = None
        self._cancelled: list[asyncio.Task[None]] = []

    # -- configuration

    def reconfigure(self, config: VncAuthProxyConfig, users: Users) -> None:
        self.config = config
        self.users = users
        low, high = parse_port_range(config.port_range)
        self.pool.configure(low, high, config.proxy_address)

    @property
    def reply_address(self) -> str:
        if self.config.proxy_address:
            return self.config.proxy_address
        if self._fqdn is None:
            self._fqdn = socket.getfqdn()
        return self._fqdn

    # -- requests

    async def handle(self, req: ControlRequest, peer: str) -> ControlReply:
        reply = await self._handle(req, peer)
        self.metrics.requests.labels(reply.status).inc()
        if reply.status != "OK":
            log.warning("control %s: request for %s:%d refused: %s", peer, req.destination_address,
                        req.destination_port, reply.reason)
        return reply

    async def _handle(self, req: ControlRequest, peer: str) -> ControlReply:
        cfg = self.config
        if self.stopping:
            return ControlReply.failed("proxy is shutting down")
        if self.users.enabled:
            ok = await asyncio.to_thread(self.users.check, req.auth_user, req.auth_password)
            if not ok:
                return ControlReply.failed("authentication failed")
        if len(self.sessions) >= cfg.max_sessions:
            return ControlReply.failed(f"too many sessions ({cfg.max_sessions})")
        if req.type == "vnc-wss" and self.wss_context is None:
            return ControlReply.failed("vnc-wss is not available: no wss_tls_cert/control_tls_cert configured")
        try:
            port, lsock = self.pool.acquire(req.source_port)
        except PoolError as exc:
            return ControlReply.failed(str(exc))
        self.metrics.ports.set(len(self.pool.in_use))
        t0 = time.monotonic()
        try:
            backend = await connect_backend(
                req.destination_address,
                req.destination_port,
                security=cfg.backend_security,
                password=req.backend_password if req.backend_password is not None else cfg.backend_password,
                tls_ca=cfg.backend_tls_ca,
                allow_anonymous=cfg.backend_tls_anonymous,
                timeout=cfg.backend_timeout,
                retries=cfg.backend_retries,
                retry_delay=cfg.backend_retry_delay,
            )
        except BackendError as exc:
            lsock.close()
            self.release_port(port)
            return ControlReply.failed(str(exc))
        except asyncio.CancelledError:
            lsock.close()
            self.release_port(port)
            raise
        self.metrics.backend_seconds.observe(time.monotonic() - t0)
        if self.stopping:
            lsock.close()
            self.release_port(port)
            backend.endpoint.close()
            return ControlReply.failed("proxy is shutting down")
        session = Session(next(self._ids), req, req.auth_user if self.users.enabled else None, port, backend)
        self.sessions[session.id] = session
        self.metrics.active.set(len(self.sessions))
        session.task = asyncio.get_running_loop().create_task(self._run(session, lsock), name=f"session-{session.id}")
        log.info("session %d: port %d for %s:%d (%s, backend security %s) requested by %s", session.id, port,
                 req.destination_address, req.destination_port, req.type, backend.security, peer)
        return ControlReply.ok(port, self.reply_address)

    def release_port(self, port: int) -> None:
        self.pool.release(port)
        self.metrics.ports.set(len(self.pool.in_use))

    # -- sessions

    async def _run(self, session: Session, lsock: socket.socket) -> None:
        try:
            if session.request.type == "vnc":
                await self._run_tcp(session, lsock)
            else:
                await run_ws_session(self, session, lsock)
        except asyncio.CancelledError:
            session.end = session.end or "proxy stopped"
        except Exception as exc:  # noqa: BLE001 - one session must never take the daemon down
            session.end = f"internal error: {type(exc).__name__}: {exc}"
            log.exception("session %d failed", session.id)
        finally:
            try:
                lsock.close()
            finally:
                self.release_port(session.port)
            session.close_all()
            self._finish(session)

    async def _run_tcp(self, session: Session, lsock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                conn, addr = await loop.sock_accept(lsock)
        except TimeoutError:
            session.end = f"no client within {self.config.connect_timeout:g}s"
            return
        finally:
            lsock.close()  # one attempt: the port refuses everyone else from now on
            self.release_port(session.port)
        session.client = peer_text(addr)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _, channel = await loop.connect_accepted_socket(Endpoint, conn)
        session.channel = channel
        trailing = await self.client_handshake(session, channel)
        if trailing is None:
            return
        await self.relay(session, channel, trailing)

    async def client_handshake(self, session: Session, channel: ClientChannel) -> bytes | None:
        """The RFB server side towards the client; the bytes past it, or None (session.end says why)."""
        conn = ServerConnection()
        password = session.request.password.encode("utf-8")
        try:
            async with asyncio.timeout(self.config.handshake_timeout):
                await channel.send(conn.send(rfb.ProtocolVersion(3, 8)))
                while True:
                    ev = conn.next_event()
                    if ev is rfb.NEED_DATA:
                        data = await channel.recv()
                        if not data:
                            session.end = "client closed during the handshake"
                            return None
                        conn.receive_data(data)
                    elif ev is rfb.OUR_TURN:
                        if conn.state is ServerState.SEND_SECURITY:
                            await channel.send(conn.send(conn.security_offer(rfb.SecurityType.VNC_AUTH)))
                        elif conn.state is ServerState.SEND_CHALLENGE:
                            await channel.send(conn.send(rfb.VncAuthChallenge(conn.challenge)))
                        elif conn.state is ServerState.SEND_RESULT:
                            if conn.chosen != rfb.SecurityType.VNC_AUTH:
                                await channel.send(conn.send(rfb.SecurityResult(False, "only VNC authentication is offered")))
                                session.end = f"client chose security type {conn.chosen}"
                                return None
                            ok = rfb.check_vnc_auth(password, conn.challenge, conn.response or b"")
                            await channel.send(conn.send(rfb.SecurityResult(ok, "" if ok else "Authentication failed")))
                            if not ok:
                                session.end = "wrong password"
                                return None
                    elif ev is rfb.DONE:
                        return conn.trailing_data
                    elif ev is rfb.CLOSED:
                        session.end = session.end or f"handshake failed: {conn.failure}"
                        return None
        except TimeoutError:
            session.end = f"client did not finish the handshake within {self.config.handshake_timeout:g}s"
        except rfb.RemoteProtocolError as exc:
            session.end = f"client protocol error: {exc}"
        return None

    async def relay(self, session: Session, channel: ClientChannel, trailing: bytes) -> None:
        backend = session.backend.endpoint
        session.relaying = True
        self.metrics.relaying.inc()
        try:
            if (self.config.zero_copy_relay and isinstance(channel, Endpoint)
                    and await channel.written() and await backend.written()
                    and channel.can_detach() and backend.can_detach()):
                session.relay_mode = "splice"
                self.metrics.relays.labels("splice").inc()
                await self._relay_spliced(session, channel, backend, trailing)
            else:
                session.relay_mode = "copy"
                self.metrics.relays.labels("copy").inc()
                await self._relay_copied(session, channel, backend, trailing)
        finally:
            self.metrics.relaying.dec()

    async def _relay_copied(self, session: Session, channel: ClientChannel, backend: Endpoint, trailing: bytes) -> None:
        """Through the proxy's memory: TLS on either side, WebSocket clients, or zero copy off."""
        try:
            link(backend, channel, a_first=session.backend.trailing, b_first=trailing)
            channel.start_relay(backend)
            session.to_backend += len(trailing)
            session.to_client += len(session.backend.trailing)
            both = {channel.closed, backend.closed}
            if await self._until_closed(session, both, lambda: max(channel.last_activity, backend.last_activity)):
                if not session.end:
                    session.end = "client closed" if channel.closed.done() else "backend closed"
            session.close_all()
            await asyncio.wait(both, timeout=CLOSE_GRACE)
        finally:
            if not channel.closed.done():
                channel.abort()
            if not backend.closed.done():
                backend.abort()
            session.to_backend += channel.bytes_in
            session.to_client += backend.bytes_in

    async def _relay_spliced(self, session: Session, channel: Endpoint, backend: Endpoint, trailing: bytes) -> None:
        """Plain TCP on both sides: the kernel moves the bytes (splice_relay.py)."""
        client_head = trailing + channel.take_buffered()
        backend_head = session.backend.trailing + backend.take_buffered()
        spliced = SpliceRelay(channel.detach(), backend.detach(), client_head, backend_head)
        session.spliced = spliced
        try:
            spliced.start()
            if await self._until_closed(session, {spliced.closed}, lambda: spliced.last_activity):
                session.end = session.end or spliced.ended_by or "closed"
            spliced.close()
            await asyncio.wait({spliced.closed}, timeout=CLOSE_GRACE)
        finally:
            spliced.abort()
            session.to_backend += spliced.to_backend.moved
            session.to_client += spliced.to_client.moved
            if spliced.error is not None:
                log.warning("session %d: relay error: %s", session.id, spliced.error)

    async def _until_closed(self, session: Session, closed: set[asyncio.Future[None]],
                            last_activity: typing.Callable[[], float]) -> bool:
        """Wait until one of ``closed`` completes (True), or the session was idle for
        ``idle_timeout`` (False, and ``session.end`` says so)."""
        idle = self.config.idle_timeout
        loop = asyncio.get_running_loop()
        while True:
            done, _ = await asyncio.wait(closed, timeout=(idle / 4 if idle else None),
                                         return_when=asyncio.FIRST_COMPLETED)
            if done:
                return True
            if loop.time() - last_activity() >= idle:
                session.end = f"idle for {idle:g}s"
                return False

    def _finish(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        self.metrics.active.set(len(self.sessions))
        end = session.end or "ended"
        self.metrics.sessions.labels(_end_label(end, session.relaying)).inc()
        self.metrics.bytes.labels("to_backend").inc(session.to_backend)
        self.metrics.bytes.labels("to_client").inc(session.to_client)
        req = session.request
        audit.info(
            "session %d: user=%s client=%s port=%d type=%s backend=%s:%d security=%s to_backend=%d "
            "to_client=%d relay=%s duration=%.3fs end=%s",
            session.id, session.user or "-", session.client, session.port, req.type, req.destination_address,
            req.destination_port, session.backend.security, session.to_backend, session.to_client,
            session.relay_mode, time.monotonic() - session.started, end,
        )

    # -- shutdown

    def stop_accepting(self) -> None:
        """No new requests; sessions still waiting for their client end now."""
        self.stopping = True
        for session in list(self.sessions.values()):
            if not session.relaying and session.channel is None and session.task is not None:
                session.end = "proxy stopping before a client connected"
                session.task.cancel()
                self._cancelled.append(session.task)

    async def drain(self, timeout: float) -> None:
        """Let relaying sessions go on for up to ``timeout`` seconds, then close them."""
        if self._cancelled:
            await asyncio.wait(self._cancelled, timeout=CLOSE_GRACE)
        tasks = [s.task for s in self.sessions.values() if s.task is not None]
        if tasks:
            log.info("draining %d session(s) for up to %gs", len(tasks), timeout)
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for session in list(self.sessions.values()):
                if session.task in pending:
                    session.end = session.end or "drain timeout"
                    session.close_all()
            if pending:
                _, still = await asyncio.wait(pending, timeout=CLOSE_GRACE)
                for t in still:
                    t.cancel()
                if still:
                    await asyncio.wait(still, timeout=1.0)


def _end_label(end: str, relaying: bool) -> str:
    """A small fixed set of label values for the sessions counter."""
    if relaying:
        return "drained" if end == "drain timeout" else ("idle" if end.startswith("idle") else "closed")
    if end == "wrong password":
        return "auth_failed"
    if end.startswith("no client"):
        return "no_client"
    if "handshake" in end or "protocol" in end or "security" in end:
        return "handshake_failed"
    return "aborted"
