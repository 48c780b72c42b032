"""Listeners: address syntax, inherited sockets by name, binding, stale unix sockets."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from daemons.runtime.activation import ListenFds
from daemons.runtime.listeners import ListenAddress, bind, open_listener, parse_address
from free_ports import free_port


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", ListenAddress("tcp", "127.0.0.1", 8080)),
        ("[::1]:10809", ListenAddress("tcp", "::1", 10809)),
        (":8080", ListenAddress("tcp", "", 8080)),
        ("tcp:0.0.0.0:1", ListenAddress("tcp", "0.0.0.0", 1)),
        ("udp:0.0.0.0:67", ListenAddress("udp", "0.0.0.0", 67)),
        ("unix:/run/nefeli/nbd.sock", ListenAddress("unix", path="/run/nefeli/nbd.sock")),
        ("/run/x.sock", ListenAddress("unix", path="/run/x.sock")),
        ("localhost:0", ListenAddress("tcp", "localhost", 0)),
    ],
)
def test_addresses_parse_and_print_back(text: str, expected: ListenAddress) -> None:
    addr = parse_address(text)
    assert addr == expected
    assert parse_address(str(addr)) == addr


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("8080", "HOST:PORT"),
        ("::1:8080", "brackets"),
        ("[127.0.0.1]:80", "IPv6"),
        ("host:65536", "0-65535"),
        ("host:-1", "0-65535"),
        ("host:８０", "0-65535"),
        ("unix:relative.sock", "absolute"),
        ("unix:/" + "x" * 200, "too long"),
    ],
)
def test_bad_addresses_say_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_address(text)


@given(st.text(max_size=40))
def test_parser_never_raises_anything_but_valueerror(text: str) -> None:
    try:
        addr = parse_address(text)
    except ValueError:
        return
    assert parse_address(str(addr)) == addr


def test_inherited_socket_of_the_name_wins_and_others_stay(tmp_path: Path) -> None:
    http, nbd, unnamed = (socket.socket() for _ in range(3))
    fds = ListenFds(sockets={"http": [http], "nbd": [nbd], "unknown": [unnamed]})
    try:
        got = open_listener(fds, "http", "127.0.0.1:1", default=True)
        assert got == [http, unnamed]
        assert fds.names() == ["nbd"]
        # a non-default listener never takes unnamed sockets nor binds when inherited
        assert open_listener(fds, "nbd", "unix:" + str(tmp_path / "never.sock")) == [nbd]
        assert not (tmp_path / "never.sock").exists()
    finally:
        for s in (http, nbd, unnamed):
            s.close()


def test_configured_addresses_are_bound_and_listen() -> None:
    port = free_port()
    socks = open_listener(ListenFds(), "http", [f"127.0.0.1:{port}"])
    try:
        assert len(socks) == 1 and socks[0].getsockname() == ("127.0.0.1", port)
        c = socket.create_connection(("127.0.0.1", port), timeout=2)
        c.close()
    finally:
        for s in socks:
            s.close()


def test_empty_address_list_means_the_listener_is_off() -> None:
    assert open_listener(ListenFds(), "metrics", []) == []
    assert open_listener(ListenFds(), "metrics", "") == []


def test_udp_socket_is_bound_not_listening() -> None:
    port = free_port()
    s = bind(parse_address(f"udp:127.0.0.1:{port}"))
    try:
        assert s.type == socket.SOCK_DGRAM and s.getsockname()[1] == port
    finally:
        s.close()


def test_unix_socket_mode_and_stale_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "admin.sock"
    s = bind(parse_address(f"unix:{path}"), mode=0o600)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # a live listener: the address is in use, the file is left alone
    with pytest.raises(OSError, match="in use"):
        bind(parse_address(f"unix:{path}"))
    s.close()  # the file stays behind, as after a crash
    assert path.exists()
    again = bind(parse_address(f"unix:{path}"))
    again.close()


def test_a_file_that_is_not_a_socket_is_never_removed(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    path.write_bytes(b"precious")
    with pytest.raises(OSError, match="not a socket"):
        bind(parse_address(f"unix:{path}"))
    assert path.read_bytes() == b"precious"


def test_one_bad_address_closes_the_ones_already_bound() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = free_port()
    try:
        with pytest.raises(OSError):
            open_listener(ListenFds(), "http", [f"127.0.0.1:{port}", f"127.0.0.1:{taken.getsockname()[1]}"])
        # the first one was closed again: it can be bound now
        s = bind(parse_address(f"127.0.0.1:{port}"))
        s.close()
    finally:
        taken.close()
