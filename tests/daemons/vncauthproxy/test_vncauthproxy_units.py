"""Pieces of the proxy in-process: relay back-pressure, users file, Origin check, pool."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest
import uvloop
from hypothesis import given
from hypothesis import strategies as st

from daemons.vncauthproxy.ports import PoolError, PortPool
from daemons.vncauthproxy.relay import WRITE_HIGH, Endpoint, link
from daemons.vncauthproxy.users import UsersError, Users, delete_user, load_users, parse_users, write_user
from daemons.vncauthproxy.websocket import static_path, origin_allowed
from vncauthproxy_peers import Flood, pool_range


async def _endpoint_pair() -> tuple[socket.socket, Endpoint]:
    """An Endpoint on one end of a socketpair, and the other end (non-blocking) for the test."""
    far, near = socket.socketpair()
    far.setblocking(False)
    near.setblocking(False)
    _, ep = await asyncio.get_running_loop().connect_accepted_socket(Endpoint, near)
    return far, ep


def test_relay_back_pressure_bounds_the_buffer() -> None:
    """A backend that floods a client that does not read: the proxy stops reading the backend.

    On uvloop, as the daemon runs: its transports keep a reference to data they
    could not send at once, which is what the relay's set-aside buffers are for.
    """
    uvloop.run(_flood_a_client_that_does_not_read())


async def _flood_a_client_that_does_not_read() -> None:
    loop = asyncio.get_running_loop()
    backend_far, backend = await _endpoint_pair()
    client_far, client = await _endpoint_pair()
    link(backend, client)
    flood = Flood()
    task = asyncio.create_task(flood.run(backend_far))
    try:
        for _ in range(100):
            await asyncio.sleep(0.02)
            if not backend.transport.is_reading():
                break
        assert not backend.transport.is_reading(), "backend was never paused"
        held = flood.sent  # from here on the flood only fills kernel buffers
        await asyncio.sleep(0.3)
        assert client.transport.get_write_buffer_size() <= WRITE_HIGH + (4 << 20)
        assert flood.sent - held <= 16 << 20  # the flood stalled: nothing read it
        # The client starts reading: the bytes arrive complete and in order (read
        # buffers set aside while the peer still held them were not overwritten).
        got = bytearray()
        while len(got) < held + (8 << 20):
            data = await loop.sock_recv(client_far, 1 << 20)
            assert data
            got += data
        assert bytes(got) == flood.data(len(got))
    finally:
        task.cancel()
        for s in (backend_far, client_far):
            s.close()
        backend.close()
        client.close()


async def test_relay_closes_the_other_side() -> None:
    loop = asyncio.get_running_loop()
    a_far, a = await _endpoint_pair()
    b_far, b = await _endpoint_pair()
    link(a, b, a_first=b"hello ", b_first=b"init")
    await loop.sock_sendall(a_far, b"world")
    assert await loop.sock_recv(b_far, 100) in (b"hello ", b"hello world")
    assert await loop.sock_recv(a_far, 100) == b"init"
    a_far.close()
    await asyncio.wait_for(b.closed, 5)
    rest = b""
    while chunk := await loop.sock_recv(b_far, 100):
        rest += chunk
    b_far.close()
    assert a.bytes_in == 5


def test_users_file(tmp_path: Path) -> None:
    path = tmp_path / "users"
    assert write_user(path, "alice", "pw1") is True
    assert write_user(path, "bob", "pw2") is True
    assert write_user(path, "alice", "pw3") is False
    users = load_users(path)
    assert users.check("alice", "pw3") and users.check("bob", "pw2")
    assert not users.check("alice", "pw1") and not users.check("carol", "pw3") and not users.check(None, None)
    assert delete_user(path, "bob") and not delete_user(path, "bob")
    if os.geteuid() == 0:  # the daemon's user keeps its file when root edits it
        os.chown(path, 65534, 65534)
        write_user(path, "dave", "pw4")
        assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534)
        delete_user(path, "dave")
    assert list(load_users(path).hashes) == ["alice"]
    assert Users(None).check(None, None)  # no users file: nothing to check
    with pytest.raises(UsersError, match="invalid user name"):
        write_user(path, "a:b", "x")
    path.write_text("# comment\n\nalice:$6$x$y\nalice:$6$x$z\n")
    with pytest.raises(UsersError, match=":4: user 'alice' appears twice"):
        load_users(path)
    with pytest.raises(UsersError, match="cannot read users file"):
        load_users(tmp_path / "missing")


@given(st.text(max_size=200))
def test_property_users_parser(text: str) -> None:
    try:
        users = parse_users(text, "f")
    except UsersError as exc:
        assert str(exc).startswith("f:")
    else:
        assert all(h.startswith("$") and ":" not in u for u, h in users.items())


@pytest.mark.parametrize(
    "origin, host, allowed, ok",
    [
        (None, "h:1", [], True),
        ("http://h:1", "h:1", [], True),
        ("http://evil:1", "h:1", [], False),
        ("https://cloud.example.org", "h:1", ["https://cloud.example.org/"], True),
        ("https://other.example.org", "h:1", ["https://cloud.example.org"], False),
        ("https://x", "h:1", ["*"], True),
        ("null", "h:1", [], False),
    ],
)
def test_origin_allowed(origin, host, allowed, ok) -> None:
    assert origin_allowed(origin, host, allowed) is ok


@given(st.text(max_size=60))
def test_property_static_paths_stay_inside(path: str) -> None:
    root = Path("/usr/share/novnc")
    got = static_path(root, path)
    if got is not None:
        assert got.is_file() and ".." not in got.relative_to(root).parts


def test_port_pool() -> None:
    low, high = pool_range(3)
    pool = PortPool(low, high, "127.0.0.1")
    taken = [pool.acquire() for _ in range(3)]
    assert sorted(p for p, _ in taken) == list(range(low, high + 1))
    with pytest.raises(PoolError, match="no free port"):
        pool.acquire()
    with pytest.raises(PoolError, match="outside the pool"):
        pool.acquire(low - 1)
    with pytest.raises(PoolError, match="in use by another console"):
        pool.acquire(low)
    port, sock = taken[0]
    sock.close()
    pool.release(port)
    again, s2 = pool.acquire(port)
    assert again == port
    for _, s in taken[1:]:
        s.close()
    s2.close()
