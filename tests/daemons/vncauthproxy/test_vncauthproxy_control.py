"""The control socket: compatibility framing, malformed requests, users, TLS, config errors."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vncauthproxy_peers import REPO, make_cert, metrics_text, reply_of, start_proxy, start_xvnc

OK_REQ = {"source_port": 0, "destination_address": "127.0.0.1", "destination_port": 1, "password": "pw"}


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemons.vncauthproxy.main", *args], input=stdin,
                          capture_output=True, text=True, cwd=REPO, timeout=60)


@pytest.fixture(scope="module")
def xvnc(tmp_path_factory):
    b = start_xvnc(tmp_path_factory.mktemp("xvnc"), "None")
    yield b
    b.close()


@pytest.fixture(scope="module")
def shared_proxy(tmp_path_factory):
    proxy = start_proxy(tmp_path_factory.mktemp("proxy"))
    yield proxy
    assert proxy.stop() == 0


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users"
    res = run_cli("passwd", "--users", str(path), "alice", stdin="alicepw\n")
    assert res.returncode == 0, res.stderr
    return path


def test_original_client_framing_and_replies(xvnc, tmp_path: Path) -> None:
    proxy = start_proxy(tmp_path)
    try:
        req = dict(OK_REQ, destination_port=xvnc.port)
        # The original client: one object, no newline, a single recv for the answer.
        with socket.create_connection(("127.0.0.1", proxy.control_port), timeout=10) as s:
            s.sendall(json.dumps(req).encode())
            reply = json.loads(s.recv(1024))
        assert reply["status"] == "OK" and set(reply) == {"source_port", "status", "proxy_address"}
        # Newline-terminated requests, two on one connection, two replies.
        out = proxy.raw_control((json.dumps(req) + "\n" + json.dumps(req) + "\n").encode())
        replies = [json.loads(x) for x in out.decode().splitlines()]
        assert [r["status"] for r in replies] == ["OK", "OK"]
        assert replies[0]["source_port"] != replies[1]["source_port"]
        # Unreachable backend: FAILED with the reason.
        reply = reply_of(proxy.raw_control(json.dumps(OK_REQ).encode() + b"\n"))
        assert reply == {"source_port": 0, "status": "FAILED", "proxy_address": None,
                         "reason": reply["reason"]}
        assert "cannot connect to backend 127.0.0.1:1" in reply["reason"]
    finally:
        proxy.stop()


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"this is not json\n", "not valid JSON"),
        (b"[1, 2]\n", "must be a JSON object"),
        (b'{"destination_address": "127.0.0.1", "password": "x"}\n', "missing required field destination_port"),
        (b'{"destination_address": "127.0.0.1", "destination_port": "5900", "password": "x"}\n',
         "destination_port must be an integer"),
        (b'{"destination_address": "127.0.0.1", "destination_port": 99999, "password": "x"}\n',
         "between 1 and 65535"),
        (b'{"destination_address": "127.0.0.1", "destination_port": 5900, "password": "x", "source_port": 80}\n',
         "outside the pool"),
        (b'{"destination_address": "127.0.0.1", "destination_port": 5900, "password": "x", "type": "spice"}\n',
         "type must be one of"),
        (b'{"destination_address": "127.0.0.1", "destination_port": 5900, "password": "x", "type": "vnc-wss"}\n',
         "vnc-wss is not available"),
        (b'{"destination_address": "127.0.0.1", "password": ' + b'"' + b"x" * 20000 + b'"}\n', "larger than"),
        (b'{"destination_address": "127.0.0.1"', "not valid JSON"),  # cut short, then EOF
    ],
)
def test_malformed_requests_get_reasons(raw: bytes, reason: str, shared_proxy) -> None:
    reply = reply_of(shared_proxy.raw_control(raw))
    assert reply["status"] == "FAILED" and reason in reply["reason"], reply
    assert shared_proxy.proc.poll() is None
    assert "nefeli_vncauthproxy_ports_in_use 0.0" in metrics_text(shared_proxy)


def test_bad_requests_in_a_row_do_not_hurt(xvnc, tmp_path: Path) -> None:
    proxy = start_proxy(tmp_path, "--control-timeout", "1")
    try:
        out = proxy.raw_control(b"garbage\n\x00\xff\n{}\n" + json.dumps(dict(OK_REQ, destination_port=xvnc.port)).encode() + b"\n")
        statuses = [json.loads(x)["status"] for x in out.decode().splitlines()]
        assert statuses == ["FAILED", "FAILED", "FAILED", "OK"]
        # A client that starts a request and stalls gets a reason after control_timeout.
        with socket.create_connection(("127.0.0.1", proxy.control_port), timeout=10) as s:
            s.sendall(b'{"destination_address": ')
            reply = json.loads(s.recv(1024))
        assert "no complete request within 1s" in reply["reason"]
        assert 'nefeli_vncauthproxy_control_requests_total{status="FAILED"} 4.0' in metrics_text(proxy)
    finally:
        proxy.stop()


def test_control_connections_beyond_the_limit_are_refused(xvnc, tmp_path: Path) -> None:
    proxy = start_proxy(tmp_path, "--max-control-connections", "2")
    try:
        idle = [socket.create_connection(("127.0.0.1", proxy.control_port), timeout=10) for _ in range(2)]
        proxy.wait_log("ready")
        with socket.create_connection(("127.0.0.1", proxy.control_port), timeout=10) as s:
            reply = json.loads(s.recv(1024))
            assert s.recv(1024) == b""  # and closed
        assert reply["status"] == "FAILED" and reply["reason"] == "too many control connections (max 2)"
        idle.pop().close()  # one slot free again: a request is served
        deadline = time.monotonic() + 10
        while (r := proxy.request(xvnc.port))["status"] != "OK" and time.monotonic() < deadline:
            time.sleep(0.05)  # until the proxy has seen the close
        assert r["status"] == "OK"
        for c in idle:
            c.close()
    finally:
        proxy.stop()


def test_users_file_auth_and_sighup(xvnc, tmp_path: Path, users_file: Path) -> None:
    proxy = start_proxy(tmp_path, "--users", str(users_file))
    try:
        assert proxy.request(xvnc.port, auth_user="alice", auth_password="alicepw")["status"] == "OK"
        for user, pw in (("alice", "wrong"), ("bob", "bobpw"), (None, None)):
            reply = proxy.request(xvnc.port, auth_user=user, auth_password=pw)
            assert reply == {"source_port": 0, "status": "FAILED", "proxy_address": None,
                             "reason": "authentication failed"}
        assert run_cli("passwd", "--users", str(users_file), "bob", stdin="bobpw\n").returncode == 0
        assert proxy.request(xvnc.port, auth_user="bob", auth_password="bobpw")["status"] == "FAILED"  # not yet
        proxy.proc.send_signal(signal.SIGHUP)
        proxy.wait_log("2 user(s)")
        assert proxy.request(xvnc.port, auth_user="bob", auth_password="bobpw")["status"] == "OK"
        # A broken users file on SIGHUP: the reload is refused, the old users stay.
        users_file.write_text(users_file.read_text() + "no colon here\n")
        proxy.proc.send_signal(signal.SIGHUP)
        line = proxy.wait_log("reload rejected")
        assert f"{users_file}:3: expected user:<crypt hash>" in line  # the reason, in that one line
        assert "Traceback" not in proxy.log_text()
        assert proxy.request(xvnc.port, auth_user="bob", auth_password="bobpw")["status"] == "OK"
    finally:
        proxy.stop()
    assert any("user=bob" in ln for ln in proxy.audit_lines())  # the sessions' audit lines name the user


def test_passwd_subcommand(tmp_path: Path) -> None:
    users = tmp_path / "users"
    assert run_cli("passwd", "--users", str(users), "carol", stdin="c1\n").returncode == 0
    first = users.read_text()
    assert first.startswith("carol:$6$") and len(first.split("$")[2]) == 16
    assert oct(users.stat().st_mode & 0o777) == "0o600"
    res = run_cli("passwd", "--users", str(users), "carol", stdin="c2\n")
    assert res.returncode == 0 and "changed carol" in res.stdout
    assert users.read_text() != first and users.read_text().count("carol:") == 1
    assert run_cli("passwd", "-d", "--users", str(users), "carol").returncode == 0
    assert users.read_text() == ""
    res = run_cli("passwd", "-d", "--users", str(users), "carol")
    assert res.returncode == 1 and "no user 'carol'" in res.stderr
    # The stored hash is the standard SHA-512 crypt: OpenSSL computes the same one.
    run_cli("passwd", "--users", str(users), "dave", stdin="secret\n")
    stored = users.read_text().strip().split(":", 1)[1]
    salt = stored.split("$")[2]
    openssl = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "secret"], capture_output=True, text=True)
    assert openssl.stdout.strip() == stored


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--port-range", "30000-20000"], "port range must satisfy"),
        (["--control-listen", "nonsense"], "expected HOST:PORT"),
        (["--backend-security", "rdp"], "unknown security type"),
        (["--control-tls-cert", "/nonexistent.pem"], "cannot load /nonexistent.pem"),
        (["--users", "/nonexistent-users"], "cannot read users file"),
        (["--drain-timeout", "30"], "must be below shutdown_timeout"),
    ],
)
def test_bad_config_exits_2(args: list[str], reason: str, tmp_path: Path) -> None:
    res = run_cli("--control-listen", "127.0.0.1:1", "--metrics-listen", "", *args)
    assert res.returncode == 2, res.stderr
    assert reason in res.stderr


def test_bad_users_line_exits_2(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("alice:$6$abc$def\nbroken line\n")
    res = run_cli("--control-listen", "127.0.0.1:1", "--metrics-listen", "", "--users", str(users))
    assert res.returncode == 2 and f"{users}:2: expected user:<crypt hash>" in res.stderr


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls_control_channel(xvnc, tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    proxy = start_proxy(tmp_path, "--control-tls-cert", str(cert), "--control-tls-key", str(key))
    try:
        reply = proxy.request(xvnc.port, enable_ssl=True, ca_cert=str(cert), strict=True)
        assert reply["status"] == "OK"
        res = run_cli("request", "--server", f"127.0.0.1:{proxy.control_port}", "--dest", f"127.0.0.1:{xvnc.port}",
                      "--password", "pw", "--tls", "--ca-cert", str(cert))
        assert res.returncode == 0 and json.loads(res.stdout)["status"] == "OK"
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_ciphers("ALL:@SECLEVEL=0")  # let the client side offer old versions at all
            ctx.minimum_version = ctx.maximum_version = version
            with socket.create_connection(("127.0.0.1", proxy.control_port), timeout=10) as raw:
                with pytest.raises(ssl.SSLError):
                    ctx.wrap_socket(raw, server_hostname="localhost")
        # A plain-text request on the TLS port gets no reply and does not hurt.
        with socket.create_connection(("127.0.0.1", proxy.control_port), timeout=10) as raw:
            raw.sendall(json.dumps(OK_REQ).encode() + b"\n")
            assert b"OK" not in raw.recv(1024)
        assert proxy.request(xvnc.port, enable_ssl=True, ca_cert=str(cert))["status"] == "OK"
    finally:
        proxy.stop()


def test_request_subcommand_reports_failure(tmp_path: Path) -> None:
    proxy = start_proxy(tmp_path)
    try:
        res = run_cli("request", "--server", f"127.0.0.1:{proxy.control_port}", "--dest", "127.0.0.1:1",
                      "--password", "pw")
        assert res.returncode == 1
        assert json.loads(res.stdout)["status"] == "FAILED"
    finally:
        proxy.stop()
