"""nefeli-vncauthproxy beside a direct connection and beside websockify, in one run.

    .venv/bin/python benchmarks/vncauthproxy_compare.py [--rounds 5] [--mib 512]

1. Bulk relay: a synthetic RFB server streams raw FramebufferUpdates; a client
   reads them directly and through the proxy (vnc). Goal: >= 0.9x direct.
2. WebSocket: the same stream through the proxy's vnc-ws port and through
   websockify (Debian) in front of the same server. Goal: >= 1.5x websockify.
3. 1000 concurrent idle sessions (both handshakes done): the proxy's RSS. Goal <= 150 MB.
4. Control request -> listening port: p50/p99 latency of the OK reply.

Every figure is the median of several rounds; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import aiohttp  # noqa: E402

from daemons.vncauthproxy.client import request_forwarding  # noqa: E402
from free_ports import free_port  # noqa: E402
from net import rfb  # noqa: E402

MiB = 1 << 20
WIDTH, HEIGHT = 1024, 768
SERVER_INIT = struct.pack(">HHBBBBHHHBBB3x", WIDTH, HEIGHT, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
SERVER_INIT += struct.pack(">I", 5) + b"bench"
UPDATE = b"\x00\x00" + struct.pack(">H", 1) + struct.pack(">HHHHi", 0, 0, WIDTH, HEIGHT, 0)
PIXELS = os.urandom(WIDTH * HEIGHT * 4)


# ----------------------------------------------------------------------- synthetic RFB server


class _Server(asyncio.Protocol):
    """RFB 3.8, security None; after ClientInit and a FramebufferUpdateRequest it streams
    raw full-screen updates until the client goes away."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]
        self.t.set_write_buffer_limits(high=4 * MiB)
        self.buf = b""
        self.stage = 0
        self.paused = False
        self.streaming = False
        self.t.write(b"RFB 003.008\n")

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.stage == 0 and len(self.buf) >= 12:
            self.buf = self.buf[12:]
            self.t.write(b"\x01\x01")
            self.stage = 1
        if self.stage == 1 and len(self.buf) >= 1:
            self.buf = self.buf[1:]
            self.t.write(b"\x00\x00\x00\x00")
            self.stage = 2
        if self.stage == 2 and len(self.buf) >= 1:  # ClientInit
            self.buf = self.buf[1:]
            self.t.write(SERVER_INIT)
            self.stage = 3
        if self.stage == 3 and len(self.buf) >= 10 and not self.streaming:
            self.streaming = True
            self._pump()
        if self.stage == 3:
            self.buf = b""

    def _pump(self) -> None:
        while not self.paused and not self.t.is_closing():
            self.t.write(UPDATE)
            self.t.write(PIXELS)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.streaming:
            asyncio.get_running_loop().call_soon(self._pump)


def serve(port: int) -> None:
    import uvloop

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Server, "127.0.0.1", port, backlog=4096)
        await server.serve_forever()

    uvloop.run(main())


# ----------------------------------------------------------------------- clients


def rfb_stream_tcp(port: int, password: str | None, total: int) -> float:
    """Handshake (VNC auth through the proxy, None directly), then read ``total`` bytes; seconds."""
    s = socket.create_connection(("127.0.0.1", port))
    c = rfb.ClientConnection()
    rest = _handshake(c, s.recv, s.sendall, password)
    s.sendall(b"\x01")
    s.sendall(b"\x03\x00\x00\x00\x00\x00" + struct.pack(">HH", WIDTH, HEIGHT))
    buf = bytearray(4 * MiB)
    view = memoryview(buf)
    got = len(rest)
    t0 = time.perf_counter()
    while got < total:
        n = s.recv_into(view)
        if not n:
            raise ConnectionError("stream ended early")
        got += n
    dt = time.perf_counter() - t0
    s.close()
    return dt


def _handshake(c: rfb.ClientConnection, recv, send, password: str | None) -> bytes:
    while True:
        ev = c.next_event()
        if ev is rfb.NEED_DATA:
            c.receive_data(recv(4096))
        elif ev is rfb.OUR_TURN:
            if c.state is rfb.ClientState.SEND_VERSION:
                send(c.send(c.reply_version()))
            elif c.state is rfb.ClientState.SEND_SECURITY_CHOICE:
                send(c.send(rfb.SecurityChoice(2 if password else 1)))
            elif c.state is rfb.ClientState.SEND_AUTH_RESPONSE:
                send(c.send(rfb.VncAuthResponse(rfb.vnc_auth_response(password.encode(), c.challenge))))
        elif ev is rfb.DONE:
            return c.trailing_data
        elif ev is rfb.CLOSED:
            raise ConnectionError(f"handshake failed: {c.failure}")


async def rfb_stream_ws(url: str, password: str | None, total: int) -> float:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, protocols=("binary",), max_msg_size=0, compress=0) as ws:
            c = rfb.ClientConnection()
            pending: list[bytes] = []
            while True:
                ev = c.next_event()
                if ev is rfb.NEED_DATA:
                    c.receive_data((await ws.receive()).data)
                elif ev is rfb.OUR_TURN:
                    if c.state is rfb.ClientState.SEND_VERSION:
                        await ws.send_bytes(c.send(c.reply_version()))
                    elif c.state is rfb.ClientState.SEND_SECURITY_CHOICE:
                        await ws.send_bytes(c.send(rfb.SecurityChoice(2 if password else 1)))
                    elif c.state is rfb.ClientState.SEND_AUTH_RESPONSE:
                        resp = rfb.vnc_auth_response(password.encode(), c.challenge)  # type: ignore[union-attr]
                        await ws.send_bytes(c.send(rfb.VncAuthResponse(resp)))
                elif ev is rfb.DONE:
                    pending.append(c.trailing_data)
                    break
                elif ev is rfb.CLOSED:
                    raise ConnectionError(f"handshake failed: {c.failure}")
            await ws.send_bytes(b"\x01")
            await ws.send_bytes(b"\x03\x00\x00\x00\x00\x00" + struct.pack(">HH", WIDTH, HEIGHT))
            got = sum(map(len, pending))
            t0 = time.perf_counter()
            while got < total:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.BINARY:
                    raise ConnectionError(f"stream ended early: {msg.type}")
                got += len(msg.data)
            return time.perf_counter() - t0


# ----------------------------------------------------------------------- processes


class Proxy:
    def __init__(self, tmp: Path, low: int, high: int, *extra: str) -> None:
        self.control = free_port()
        cmd = [sys.executable, "-m", "daemons.vncauthproxy.main", "--control-listen", f"127.0.0.1:{self.control}",
               "--port-range", f"{low}-{high}", "--proxy-address", "127.0.0.1", "--metrics-listen", "",
               "--log-level", "warning", "--connect-timeout", "600", "--max-sessions", "5000", *extra]
        self.proc = subprocess.Popen(cmd, cwd=tmp, env={**os.environ, "PYTHONPATH": str(REPO)},
                                     stderr=(tmp / "proxy.log").open("wb"))
        wait_port(self.control)

    def request(self, dest: int, password: str = "benchpw", kind: str = "vnc") -> int:
        reply = request_forwarding(0, "127.0.0.1", dest, password, server_address="127.0.0.1",
                                   server_port=self.control, console_type=kind)
        if reply["status"] != "OK":
            raise RuntimeError(reply)
        return int(reply["source_port"])

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def median_rate(fn, rounds: int, total: int) -> float:
    rates = [total / fn() / 1e6 for _ in range(rounds)]
    return statistics.median(rates)


def row(name: str, ours: float, theirs: float, goal: float, unit: str) -> None:
    ratio = ours / theirs
    verdict = "ok" if ratio >= goal else "BELOW GOAL"
    print(f"{name:<44} {ours:9.1f} vs {theirs:9.1f} {unit}  {ratio:5.2f}x (goal >= {goal}x) {verdict}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mib", type=int, default=512, help="bytes streamed per TCP round")
    ap.add_argument("--ws-mib", type=int, default=256, help="bytes streamed per WebSocket round")
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return
    import resource
    import tempfile

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = Path(tempfile.mkdtemp(prefix="vncauthproxy-bench-"))
    backend_port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(backend_port)])
    wait_port(backend_port)
    low, high = 61000, 61000 + args.sessions + 600
    proxy = Proxy(tmp, low, high)
    websockify = None
    try:
        print(f"cores: {os.cpu_count()}, rounds: {args.rounds} (medians)")
        total = args.mib * MiB
        direct = median_rate(lambda: rfb_stream_tcp(backend_port, None, total), args.rounds, total)
        cpu0 = proxy.cpu_seconds()
        via = median_rate(lambda: rfb_stream_tcp(proxy.request(backend_port), "benchpw", total), args.rounds, total)
        per_gib = (proxy.cpu_seconds() - cpu0) / (args.rounds * total / (1 << 30))
        row("relay throughput, proxy vs direct", via, direct, 0.9, "MB/s")
        print(f"  proxy CPU per GiB relayed: {per_gib:.2f} s (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")

        wtotal = args.ws_mib * MiB
        ours = median_rate(
            lambda: asyncio.run(rfb_stream_ws(f"ws://127.0.0.1:{proxy.request(backend_port, kind='vnc-ws')}/", "benchpw", wtotal)),
            args.rounds, wtotal)
        if shutil.which("websockify"):
            wport = free_port()
            websockify = subprocess.Popen(["websockify", f"127.0.0.1:{wport}", f"127.0.0.1:{backend_port}"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
            wait_port(wport)
            theirs = median_rate(lambda: asyncio.run(rfb_stream_ws(f"ws://127.0.0.1:{wport}/", None, wtotal)),
                                 args.rounds, wtotal)
            row("WebSocket throughput, vnc-ws vs websockify", ours, theirs, 1.5, "MB/s")
        else:
            print(f"WebSocket throughput, vnc-ws: {ours:.1f} MB/s (websockify not installed)")

        latencies = []
        for _ in range(200):
            t0 = time.perf_counter()
            port = proxy.request(backend_port)
            latencies.append((time.perf_counter() - t0) * 1000)
            socket.create_connection(("127.0.0.1", port)).close()  # ends that session
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"control request -> listening port (backend handshake included): p50 {p50:.2f} ms, p99 {p99:.2f} ms")

        time.sleep(1.0)
        base = proxy.rss_mib()
        clients = []
        for _ in range(args.sessions):
            s = socket.create_connection(("127.0.0.1", proxy.request(backend_port)))
            _handshake(rfb.ClientConnection(), s.recv, s.sendall, "benchpw")
            s.sendall(b"\x01")
            clients.append(s)
        for s in clients:  # ServerInit arrived: every session is relaying
            s.settimeout(10)
            s.recv(4096)
        time.sleep(1.0)
        rss = proxy.rss_mib()
        verdict = "ok" if rss <= 150 else "BELOW GOAL"
        print(f"{args.sessions} idle relaying sessions: proxy RSS {rss:.1f} MiB (idle proxy {base:.1f} MiB;"
              f" goal <= 150 MB) {verdict}")
        for s in clients:
            s.close()
    finally:
        proxy.stop()
        if websockify is not None:
            websockify.terminate()
            websockify.wait()
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
