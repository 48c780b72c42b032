"""blockd on the shared runtime: access lines, aiohttp's refusals, named sockets, /metrics."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from blockd_helpers import REPO, Client, start_daemon


def access_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if "nefeli-blockd.access" in line]


def test_one_access_line_per_request_with_transaction_id_and_reason(tmp_path: Path) -> None:
    d = start_daemon(tmp_path)
    try:
        c = d.client()
        c.put_container("photos")
        put = c.put("photos", "a.jpg", b"hello")
        assert put.status == 201
        missing = c.get("nope", "x")
        assert missing.status == 404
    finally:
        d.stop_cleanly()
    lines = access_lines(d.log)
    puts = [line for line in lines if '"PUT /object-store/v1/demo/photos/a.jpg" 201 in=5 ' in line]
    assert len(puts) == 1, lines
    assert puts[0].endswith(f"tx={put.h('X-Trans-Id')}")
    gets = [line for line in lines if '"GET /object-store/v1/demo/nope/x" 404 ' in line]
    assert len(gets) == 1 and re.search(r" reason='.+'$", gets[0]), gets
    assert " INFO " in gets[0]


def test_no_access_log_turns_the_lines_off(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, "--no-access-log")
    try:
        assert d.client().put_container("c").status == 201
    finally:
        d.stop_cleanly()
    assert access_lines(d.log) == []


def test_a_malformed_request_is_one_warning_line_and_the_daemon_serves_on(tmp_path: Path) -> None:
    d = start_daemon(tmp_path)
    try:
        with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n")
            answer = s.recv(4096)
        assert answer.split(b" ", 2)[1] == b"400"
        assert Client(d.port).request("GET", "/healthz").status == 200
    finally:
        d.stop_cleanly()  # also: no Traceback, no ERROR line
    refused = [line for line in d.log.read_text().splitlines() if "refused a malformed request" in line]
    assert len(refused) == 1 and " WARNING " in refused[0], refused


def test_blockd_serves_only_its_own_socket_names(tmp_path: Path) -> None:
    """An inherited socket named 'http' is served; one under another name is closed, not served."""
    http, other = socket.socket(), socket.socket()
    for s in (http, other):
        s.bind(("127.0.0.1", 0))
        s.listen(16)
    other_port = other.getsockname()[1]
    code = (
        "import os,sys;a,b=int(sys.argv[1]),int(sys.argv[2]);os.dup2(a,3);os.dup2(b,4);"
        "[os.close(f) for f in (a,b) if f not in (3,4)];"
        "os.environ['LISTEN_FDS']='2';os.environ['LISTEN_PID']=str(os.getpid());"
        "os.environ['LISTEN_FDNAMES']='http:bogus';"
        "os.execv(sys.executable,[sys.executable,'-m','daemons.blockd.main']+sys.argv[3:])"
    )
    log = tmp_path / "log"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(http.fileno()), str(other.fileno()), "--data", str(tmp_path / "d"),
         "--listen", "127.0.0.1:1", "--db-synchronous", "NORMAL", "--log-format", "text", "--nbd-listen", "127.0.0.1:0"],
        cwd=str(REPO), env=dict(os.environ, PYTHONPATH=str(REPO)), pass_fds=(http.fileno(), other.fileno()),
        stderr=open(log, "wb"),
    )
    port = http.getsockname()[1]
    http.close()
    other.close()
    try:
        for _ in range(400):
            try:
                assert Client(port).request("GET", "/healthz", timeout=1).status == 200
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError(log.read_text())
        assert "closed inherited sockets nefeli-blockd does not serve: bogus" in log.read_text()
        try:
            socket.create_connection(("127.0.0.1", other_port), timeout=2).close()
            raise AssertionError("the socket named 'bogus' is still listening")
        except ConnectionRefusedError:
            pass
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()


def test_metrics_is_a_prometheus_exposition_with_typed_families(tmp_path: Path) -> None:
    d = start_daemon(tmp_path)
    try:
        c = d.client()
        c.put_container("c")
        c.put("c", "o", b"x" * 100)
        c.put("c", "o2", b"x" * 100)  # same content: one dedup hit
        text = Client(d.port).request("GET", "/metrics").body.decode()
    finally:
        d.stop_cleanly()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["nefeli_blockd_requests"].type == "counter"
    assert families["nefeli_blockd_request_duration_seconds"].type == "histogram"
    assert families["nefeli_blockd_blocks"].type == "gauge"
    dedup = families["nefeli_blockd_blocks_deduplicated"]
    assert dedup.type == "counter" and dedup.samples[0].value >= 1
    puts = [s for s in families["nefeli_blockd_requests"].samples
            if s.labels == {"method": "PUT", "status": "201"}]
    assert puts and puts[0].value == 3  # the container and the two objects
