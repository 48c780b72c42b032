"""daemons.runtime.notify and .activation against real sockets, in-process."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemons.runtime.activation import ListenFds, parse_listen_env
from daemons.runtime.notify import Notifier, monotonic_usec, watchdog_interval


@pytest.fixture
def notify_sock(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(2)
    yield s, path
    s.close()


def recv(s: socket.socket) -> dict[str, str]:
    data = s.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.split("\n"))


def test_messages_on_a_path_socket(notify_sock) -> None:
    s, path = notify_sock
    env = {"NOTIFY_SOCKET": path}
    n = Notifier.from_env(env)
    assert "NOTIFY_SOCKET" not in env  # unset for children
    assert n.enabled
    assert n.ready("up\nand running")
    assert recv(s) == {"READY": "1", "STATUS": "up and running"}
    assert n.stopping()
    assert recv(s) == {"STOPPING": "1"}
    before = monotonic_usec()
    assert n.reloading()
    msg = recv(s)
    assert msg["RELOADING"] == "1" and before <= int(msg["MONOTONIC_USEC"]) <= monotonic_usec()
    assert n.watchdog() and recv(s) == {"WATCHDOG": "1"}
    assert n.status("x") and recv(s) == {"STATUS": "x"}
    assert n.extend_timeout(1.5) and recv(s) == {"EXTEND_TIMEOUT_USEC": "1500000"}
    n.close()


def test_abstract_namespace_socket() -> None:
    name = f"nefeli-test-{os.getpid()}-{time.monotonic_ns()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(2)
    try:
        n = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        assert n.ready()
        assert recv(s) == {"READY": "1"}
    finally:
        s.close()


def test_unset_or_invalid_is_a_noop() -> None:
    assert not Notifier.from_env({}).enabled
    assert Notifier.from_env({}).ready() is False
    assert not Notifier.from_env({"NOTIFY_SOCKET": "relative/path"}).enabled


def test_vanished_socket_never_raises(tmp_path: Path) -> None:
    n = Notifier(str(tmp_path / "nobody-listens"))
    assert n.ready() is False
    assert n.watchdog() is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "2000000"}, 1.0),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "junk"}, None),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "42"}, 1.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "43"}, None),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "x"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    env = dict(env)
    assert watchdog_interval(env, pid=42, unset=True) == expected
    assert "WATCHDOG_USEC" not in env and "WATCHDOG_PID" not in env


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, []),
        ({"LISTEN_FDS": "2", "LISTEN_PID": "7"}, [(3, "unknown"), (4, "unknown")]),
        (
            {"LISTEN_FDS": "2", "LISTEN_PID": "7", "LISTEN_FDNAMES": "http:ctl"},
            [(3, "http"), (4, "ctl")],
        ),
        (
            {"LISTEN_FDS": "2", "LISTEN_PID": "7", "LISTEN_FDNAMES": "http"},
            [(3, "http"), (4, "unknown")],
        ),
        ({"LISTEN_FDS": "1", "LISTEN_PID": "7", "LISTEN_FDNAMES": "a:b"}, [(3, "a")]),
        ({"LISTEN_FDS": "2", "LISTEN_PID": "8"}, []),
        ({"LISTEN_FDS": "x", "LISTEN_PID": "7"}, []),
        ({"LISTEN_FDS": "1"}, []),
        ({"LISTEN_FDS": "0", "LISTEN_PID": "7"}, []),
        ({"LISTEN_FDS": "-1", "LISTEN_PID": "7"}, []),
    ],
)
def test_parse_listen_env(env: dict[str, str], expected: list[tuple[int, str]]) -> None:
    assert parse_listen_env(env, 7) == expected


def test_listen_fds_take_and_close_unused() -> None:
    a, b, c = (socket.socket() for _ in range(3))
    fds = ListenFds({"http": [a, b], "ctl": [c]})
    assert fds.names() == ["ctl", "http"]
    assert fds.take_one("http") is a
    assert fds.take("ctl") == [c]
    assert fds.take("nothing") == []
    assert fds.close_unused() == ["http"]
    assert b.fileno() == -1 and a.fileno() != -1
    a.close()
    c.close()
