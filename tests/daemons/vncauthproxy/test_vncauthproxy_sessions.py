"""One-shot ports: one attempt per password, one client, timeouts, SIGTERM drain."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from vncauthproxy_peers import (
    metrics_text,
    read_server_init,
    recv_exact,
    rfb_client,
    start_proxy,
    start_xvnc,
    vncdotool,
)


@pytest.fixture(scope="module")
def xvnc(tmp_path_factory):
    b = start_xvnc(tmp_path_factory.mktemp("xvnc"), "None")
    yield b
    b.close()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_wrong_password_burns_the_port(xvnc, tmp_path: Path) -> None:
    proxy = start_proxy(tmp_path)
    try:
        reply = proxy.request(xvnc.port, password="right123")
        port = reply["source_port"]
        res = vncdotool("-s", f"127.0.0.1::{port}", "-p", "wrong123", "capture", str(tmp_path / "x.png"))
        assert res.returncode != 0
        assert "end=wrong password" in proxy.wait_log("end=wrong password")
        assert _refused(port)  # the right password is no use any more
        with pytest.raises(OSError):
            rfb_client(port, "right123")
        # 3.8 clients get the reason.
        reply = proxy.request(xvnc.port, password="right123")
        with pytest.raises(PermissionError, match="Authentication failed"):
            rfb_client(reply["source_port"], "nope")
        assert 'nefeli_vncauthproxy_sessions_total{end="auth_failed"} 2.0' in metrics_text(proxy)
    finally:
        proxy.stop()


def test_second_connection_is_refused_and_relay_works(xvnc, tmp_path: Path) -> None:
    proxy = start_proxy(tmp_path)
    try:
        port = proxy.request(xvnc.port, password="pw")["source_port"]
        first = rfb_client(port, "pw")
        assert _refused(port)
        width, height, _ = read_server_init(first)
        assert (width, height) == (320, 240)
        # FramebufferUpdateRequest (non-incremental, whole screen): the update comes back.
        first.sendall(b"\x03\x00\x00\x00\x00\x00" + width.to_bytes(2, "big") + height.to_bytes(2, "big"))
        assert recv_exact(first, 4)[0] == 0  # FramebufferUpdate
        first.close()
        proxy.wait_log("end=client closed")
        metrics = metrics_text(proxy)
        assert "nefeli_vncauthproxy_ports_in_use 0.0" in metrics
        assert 'nefeli_vncauthproxy_control_requests_total{status="OK"} 1.0' in metrics
    finally:
        proxy.stop()


def test_stalled_handshake_and_absent_client_are_dropped(xvnc, tmp_path: Path) -> None:
    proxy = start_proxy(tmp_path, "--handshake-timeout", "1", "--connect-timeout", "1.5")
    try:
        port = proxy.request(xvnc.port, password="pw")["source_port"]
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        assert recv_exact(s, 12) == b"RFB 003.008\n"
        s.sendall(b"RFB 003.008\n")  # ... and then nothing more
        assert recv_exact(s, 2) == b"\x01\x02"
        assert s.recv(100) == b""  # closed by the proxy
        s.close()
        assert "did not finish the handshake within 1s" in proxy.wait_log("did not finish the handshake")
        port = proxy.request(xvnc.port, password="pw")["source_port"]
        assert "no client within 1.5s" in proxy.wait_log("end=no client")
        assert _refused(port)
        # Garbage on the RFB port: closed, logged, the port is gone.
        port = proxy.request(xvnc.port, password="pw")["source_port"]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as g:
            g.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = g.recv(100)
            while data:
                data = g.recv(100)
        assert "client protocol error" in proxy.wait_log("client protocol error")
        assert _refused(port)
    finally:
        proxy.stop()


def test_sigterm_drains_open_sessions(xvnc, tmp_path: Path) -> None:
    proxy = start_proxy(tmp_path, "--drain-timeout", "3", "--shutdown-timeout", "10")
    try:
        busy = rfb_client(proxy.request(xvnc.port, password="pw")["source_port"], "pw")
        read_server_init(busy)
        waiting = proxy.request(xvnc.port, password="pw")["source_port"]
        t0 = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        proxy.wait_log("draining 1 session")
        assert _refused(proxy.control_port)  # no new requests
        assert _refused(waiting)  # a port still waiting for its client closes at once
        # The open session still works during the drain.
        busy.sendall(b"\x03\x00\x00\x00\x00\x00\x01\x40\x00\xf0")
        assert recv_exact(busy, 4)[0] == 0
        assert proxy.proc.wait(20) == 0
        assert time.monotonic() - t0 >= 2.5  # it was given the drain time, not cut at once
        busy.settimeout(5)
        rest = b"x"
        while rest:
            rest = busy.recv(1 << 20)
        busy.close()
        log = proxy.log_text()
        assert "end=drain timeout" in log and "end=proxy stopping before a client connected" in log
    finally:
        proxy.stop()


def test_idle_sessions_are_closed(xvnc, tmp_path: Path) -> None:
    proxy = start_proxy(tmp_path, "--idle-timeout", "1")
    try:
        s = rfb_client(proxy.request(xvnc.port, password="pw")["source_port"], "pw")
        read_server_init(s)
        s.settimeout(15)
        rest = b"x"
        while rest:  # nothing asked, nothing sent: the proxy closes the session
            rest = s.recv(65536)
        s.close()
        assert "end=idle for 1s" in proxy.wait_log("end=idle")
        assert 'nefeli_vncauthproxy_sessions_total{end="idle"} 1.0' in metrics_text(proxy)
    finally:
        proxy.stop()
