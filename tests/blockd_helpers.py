"""A real nefeli-blockd process on loopback for the test_blockd_* tests, and a tiny client.

The client is http.client: it sends paths exactly as given (no normalisation of
`..`), any method (COPY, MOVE), and chunked bodies on request.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from free_ports import free_port

REPO = Path(__file__).resolve().parent.parent


class Resp:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def h(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Resp {self.status} {self.body[:200]!r}>"


class Client:
    def __init__(self, port: int, token: str | None = None, account: str = "demo") -> None:
        self.port = port
        self.token = token
        self.account = account

    def with_token(self, token: str | None, account: str | None = None) -> Client:
        return Client(self.port, token, account or self.account)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        *,
        auth: bool = True,
        chunked: bool = False,
        timeout: float = 60,
    ) -> Resp:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if auth and self.token and "X-Auth-Token" not in hdrs:
                hdrs["X-Auth-Token"] = self.token
            if chunked:
                conn.putrequest(method, path, skip_accept_encoding=True)
                for k, v in hdrs.items():
                    conn.putheader(k, v)
                conn.putheader("Transfer-Encoding", "chunked")
                conn.endheaders()
                for part in body or []:
                    if part:
                        conn.send(b"%x\r\n%s\r\n" % (len(part), part))
                conn.send(b"0\r\n\r\n")
            else:
                if body is None and method in ("PUT", "POST"):
                    hdrs.setdefault("Content-Length", "0")
                conn.request(method, path, body=body, headers=hdrs)  # type: ignore[arg-type]
            r = conn.getresponse()
            data = r.read()
            return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            conn.close()

    # path helpers
    def p(self, *parts: str, api: str = "pithos", account: str | None = None, query: str = "") -> str:
        prefix = "/object-store/v1" if api == "pithos" else "/v1"
        segs = [account or self.account, *parts]
        path = prefix + "/" + "/".join(quote(s, safe="/") for s in segs)
        return path + (("?" + query) if query else "")

    def put_container(self, name: str, *, scheme: str | None = None, block_size: int | None = None, **extra: str) -> Resp:
        h = dict(extra)
        if scheme:
            h["X-Container-Policy-Block-Hash"] = scheme
        if block_size:
            h["X-Container-Policy-Block-Size"] = str(block_size)
        return self.request("PUT", self.p(name), headers=h)

    def put(self, cont: str, name: str, data: bytes, api: str = "pithos", **headers: str) -> Resp:
        return self.request("PUT", self.p(cont, name, api=api), data, headers)

    def get(self, cont: str, name: str, api: str = "pithos", query: str = "", **headers: str) -> Resp:
        return self.request("GET", self.p(cont, name, api=api, query=query), headers=headers)


class Daemon:
    def __init__(self, data: Path, port: int, proc: subprocess.Popen[bytes], token: str, log: Path) -> None:
        self.data = data
        self.port = port
        self.proc = proc
        self.token = token
        self.log = log

    def client(self, token: str | None = None, account: str = "demo") -> Client:
        return Client(self.port, self.token if token is None else token, account)

    def meta(self) -> Any:
        from storage_engine.objects.metadata import SyncMetadataStore

        return SyncMetadataStore(self.data / "meta.db", synchronous="NORMAL", busy_timeout=10)

    def new_account(self, name: str) -> str:
        with self.meta() as m:
            m.accounts.ensure(name)
            return m.tokens.create(name).token

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def stop_cleanly(self) -> None:
        """SIGTERM; the daemon must exit 0 with no traceback or ERROR line in its log."""
        assert self.stop() == 0
        log = self.log.read_text()
        assert "Traceback" not in log and " ERROR " not in log, log[-3000:]


def start_daemon(tmp: Path, *extra: str) -> Daemon:
    data = tmp / "data"
    port = free_port()
    log = tmp / "blockd.log"
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "daemons.blockd.main", "--data", str(data),
            "--listen", f"127.0.0.1:{port}", "--db-synchronous", "NORMAL", "--log-format", "text",
            "--nbd-listen", "127.0.0.1:0", *extra,
        ],
        # appended to: a restart on the same directory keeps the first start's token line
        cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=open(log, "ab"),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"blockd exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            r = Client(port).request("GET", "/healthz", auth=False, timeout=2)
            if r.status == 200:
                break
        except OSError:
            pass
        time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("blockd did not become healthy: " + log.read_text()[-2000:])
    token = ""
    for line in log.read_text().splitlines():
        if line.strip().startswith("token:"):
            token = line.split()[-1]
    assert token, log.read_text()
    return Daemon(data, port, proc, token, log)


# --- independent Pithos hashing (hashlib only) -------------------------------------


def sha_block(block: bytes) -> bytes:
    return hashlib.sha256(block.rstrip(b"\0")).digest()


def sha_hashes(data: bytes, bs: int) -> list[bytes]:
    if not data:
        return [hashlib.sha256(b"").digest()]
    return [sha_block(data[i : i + bs]) for i in range(0, len(data), bs)]


def sha_top(hashes: list[bytes]) -> bytes:
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    n = 1
    while n < len(hashes):
        n *= 2
    level = hashes + [b"\0" * 32] * (n - len(hashes))
    while len(level) > 1:
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


def chunks(data: bytes, n: int) -> Iterator[bytes]:
    for i in range(0, len(data), n):
        yield data[i : i + n]
