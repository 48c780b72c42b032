"""The zero-copy relay (splice_relay.py) in-process over real TCP sockets, on uvloop as the
daemon runs, and the daemon choosing it for plain-TCP sessions only."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import uvloop

from daemons.vncauthproxy.relay import Endpoint
from daemons.vncauthproxy.splice_relay import SpliceRelay
from vncauthproxy_peers import Flood, metrics_text, read_server_init, recv_exact, rfb_client, start_proxy, start_xvnc


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of one loopback TCP connection, both non-blocking."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        far = socket.create_connection(srv.getsockname())
        near, _ = srv.accept()
    for s in (far, near):
        s.setblocking(False)
    return far, near


async def _recv_exactly(s: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    got = bytearray()
    while len(got) < n:
        chunk = await loop.sock_recv(s, min(n - len(got), 1 << 20))
        assert chunk, f"connection ended after {len(got)} of {n} bytes"
        got += chunk
    return bytes(got)


async def _until_eof(s: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    got = bytearray()
    while chunk := await asyncio.wait_for(loop.sock_recv(s, 1 << 20), 5):
        got += chunk
    return bytes(got)


def test_heads_first_then_both_directions_in_order() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        client_far, client = _tcp_pair()
        backend_far, backend = _tcp_pair()
        relay = SpliceRelay(client, backend, client_head=b"client-past-handshake|", backend_head=b"server-init|")
        relay.start()
        await loop.sock_sendall(backend_far, b"update-1")
        await loop.sock_sendall(client_far, b"request-1")
        assert await _recv_exactly(client_far, 20) == b"server-init|update-1"
        assert await _recv_exactly(backend_far, 31) == b"client-past-handshake|request-1"
        client_far.close()
        await asyncio.wait_for(relay.closed, 5)
        assert relay.ended_by == "client closed"
        assert await _until_eof(backend_far) == b""  # the backend sees the session end
        assert (relay.to_backend.moved, relay.to_client.moved) == (31, 20)
        backend_far.close()

    uvloop.run(run())


def test_a_client_that_does_not_read_stalls_the_backend_and_loses_nothing() -> None:
    """Back-pressure is the kernel's: the relay stops reading the backend while the
    client's socket is full, so the flood stalls; then every byte arrives, in order."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        client_far, client = _tcp_pair()
        backend_far, backend = _tcp_pair()
        relay = SpliceRelay(client, backend)
        relay.start()
        flood = Flood()
        task = asyncio.create_task(flood.run(backend_far))
        try:
            last = -1
            while flood.sent != last:  # until the flood stops making progress
                last = flood.sent
                await asyncio.sleep(0.3)
            assert relay.to_client.waiting and not relay.to_client.reading
            assert flood.sent < 256 << 20  # socket buffers and one pipe, not the proxy's memory
            held = flood.sent  # the flood goes on once the client reads
            got = await _recv_exactly(client_far, held)
            assert got == flood.data(held)
        finally:
            task.cancel()
            relay.abort()
            client_far.close()
            backend_far.close()

    uvloop.run(run())


def test_close_delivers_what_is_in_flight_and_backend_close_ends_it() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        client_far, client = _tcp_pair()
        backend_far, backend = _tcp_pair()
        relay = SpliceRelay(client, backend, backend_head=b"x" * (80 << 20))  # more than both socket buffers hold
        relay.start()
        relay.close()
        assert not relay.closed.done()  # still delivering the head
        assert await _until_eof(client_far) == b"x" * (80 << 20)
        assert relay.closed.done()

        client_far2, client2 = _tcp_pair()
        backend_far2, backend2 = _tcp_pair()
        relay2 = SpliceRelay(client2, backend2)
        relay2.start()
        await loop.sock_sendall(backend_far2, b"bye")
        backend_far2.close()
        await asyncio.wait_for(relay2.closed, 5)
        assert relay2.ended_by == "backend closed"
        assert await _until_eof(client_far2) == b"bye"
        for s in (client_far, backend_far, client_far2):
            s.close()

    uvloop.run(run())


def test_an_endpoint_hands_its_socket_over_without_losing_a_byte() -> None:
    """What the transport had written and what it had read past the handshake both survive
    the hand-over from the copying endpoint to the zero-copy relay."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        far, near = _tcp_pair()
        _, ep = await loop.connect_accepted_socket(Endpoint, near)
        ep.write(b"security-result")  # uvloop sends this at the end of the iteration
        await loop.sock_sendall(far, b"client-init+more")
        assert await ep.recv() == b"client-init+more"
        await loop.sock_sendall(far, b"|already-read")
        await asyncio.sleep(0.05)
        assert await ep.written() and ep.can_detach()
        rest = ep.take_buffered()
        sock = ep.detach()
        await asyncio.wait_for(ep.closed, 5)  # the transport is gone ...
        assert await _recv_exactly(far, 15) == b"security-result"
        await loop.sock_sendall(sock, b"still connected")  # ... the connection is not
        assert await _recv_exactly(far, 15) == b"still connected"
        assert rest == b"|already-read"
        sock.close()
        far.close()

    uvloop.run(run())


@pytest.fixture(scope="module")
def xvnc(tmp_path_factory):
    b = start_xvnc(tmp_path_factory.mktemp("xvnc"), "None")
    yield b
    b.close()


@pytest.mark.parametrize("flag, mode", [((), "splice"), (("--no-zero-copy-relay",), "copy")])
def test_the_daemon_splices_plain_tcp_sessions(xvnc, tmp_path: Path, flag: tuple[str, ...], mode: str) -> None:
    proxy = start_proxy(tmp_path, *flag)
    try:
        port = proxy.request(xvnc.port, password="pw")["source_port"]
        s = rfb_client(port, "pw")
        width, height, _ = read_server_init(s)
        s.sendall(b"\x03\x00\x00\x00\x00\x00" + width.to_bytes(2, "big") + height.to_bytes(2, "big"))
        assert recv_exact(s, 4)[0] == 0  # FramebufferUpdate
        s.close()
        line = proxy.wait_log("end=client closed")
        assert f"relay={mode}" in line
        assert f'nefeli_vncauthproxy_relays_total{{mode="{mode}"}} 1.0' in metrics_text(proxy)
    finally:
        proxy.stop()
