"""Helpers for the `nefeli` client tests: a real nefeli-blockd on loopback, the CLI as a
subprocess, and a byte-counting TCP proxy.  (No tests here; imported by test_cli_*.)"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from free_ports import free_port

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
ACCOUNT = "alice"


def blockd_available() -> bool:
    try:
        return importlib.util.find_spec("daemons.blockd.main") is not None
    except ModuleNotFoundError:
        return False


def require_blockd() -> None:
    if not blockd_available():
        pytest.skip("nefeli-blockd not available")


class Server:
    """nefeli-blockd as a child process on 127.0.0.1, with a token for ACCOUNT."""

    def __init__(self, data: Path, extra: list[str] | None = None) -> None:
        self.data = data
        self.port = free_port()
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.account = ACCOUNT
        self.log = data.parent / f"{data.name}-blockd.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Server:
        self.data.mkdir(parents=True, exist_ok=True)
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [PY, "-m", "daemons.blockd.main", "--data", str(self.data), "--listen", f"127.0.0.1:{self.port}",
             "--nbd-listen", "127.0.0.1:0", *self.extra],
            cwd=REPO, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nefeli-blockd exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"nefeli-blockd did not answer /healthz:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)
        if not self.token:
            out = run_cli(["token", "create", self.account, "--data", str(self.data)], env={}, check=True)
            self.token = out.stdout.strip()
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def env(self, url: str | None = None) -> dict[str, str]:
        return {"NEFELI_URL": url or self.url, "NEFELI_TOKEN": self.token, "NEFELI_ACCOUNT": self.account}

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise KeyError(name)


def run_cli(
    argv: list[str], env: dict[str, str], *, check: bool = False, timeout: float = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("NEFELI_")}
    full.update(env)
    full.setdefault("XDG_CONFIG_HOME", "/nonexistent-nefeli-test")
    r = subprocess.run(
        [PY, "-m", "cli.main", *argv], cwd=cwd or REPO, env=full, capture_output=True, text=True, timeout=timeout
    )
    if check and r.returncode != 0:
        raise AssertionError(f"nefeli {' '.join(argv)} → {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
    return r


class CountingProxy:
    """TCP proxy on 127.0.0.1 counting bytes client→server (`up`) and back (`down`).

    With ``cut_up_after`` set, a connection stops forwarding once that many bytes went
    up in all, and is dropped (what came after never reaches the server) at :meth:`reset`.
    """

    def __init__(self, target_port: int, cut_up_after: int | None = None) -> None:
        self.target_port = target_port
        self.cut_up_after = cut_up_after
        self.held = threading.Event()  # set once a connection is held at the cut
        self.up = 0
        self.down = 0
        self.port = 0
        self._cut: asyncio.Event | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Counters back to zero; connections held at the cut are dropped, later ones pass."""
        self.cut_up_after = None
        if self._cut is not None:
            self._loop.call_soon_threadsafe(self._cut.set)
        self.up = self.down = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter, up: bool) -> None:
            try:
                while data := await r.read(1 << 16):
                    if up and self.cut_up_after is not None and self.up + len(data) > self.cut_up_after:
                        assert self._cut is not None
                        self.held.set()
                        await self._cut.wait()
                        return  # dropped: the rest never reaches the server
                    if up:
                        self.up += len(data)
                    else:
                        self.down += len(data)
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                try:
                    w.close()
                except Exception:
                    pass

        async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
            try:
                sr, sw = await asyncio.open_connection("127.0.0.1", self.target_port)
            except OSError:
                cw.close()
                return
            await asyncio.gather(pipe(cr, sw, True), pipe(sr, cw, False))

        async def start() -> None:
            self._cut = asyncio.Event()
            self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()


def write_random(path: Path, size: int, seed: int = 0) -> bytes:
    import random

    data = random.Random(seed).randbytes(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    require_blockd()
    s = Server(tmp_path_factory.mktemp("blockd") / "data").start()
    yield s
    s.stop()
