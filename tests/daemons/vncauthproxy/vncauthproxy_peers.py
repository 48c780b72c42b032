"""Shared helpers of the vncauthproxy tests: the daemon as a process, real VNC peers.

Xvnc (TigerVNC) and QEMU's VNC server run as backends in temporary
directories; vncdotool (in its own venv, scripts/test-peers/vncauthproxy.sh)
is the client. One-shot port pools are taken from 61000-64999: above the
kernel's ephemeral range here and outside what tests/free_ports.py hands out.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.x509.oid import NameOID

from free_ports import free_port
from net import rfb
from peers import require_program

REPO = Path(__file__).resolve().parents[3]
VNCDOTOOL = "/opt/nefeli-peers/vncdotool/bin/vncdotool"
_given_ranges: set[int] = set()
_rng = random.Random(os.getpid() ^ int(time.time()))


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pool_range(size: int = 6) -> tuple[int, int]:
    """A small block of ports for one proxy's pool, free now and not handed out before."""
    for _ in range(200):
        low = _rng.randrange(61000, 65000 - size)
        block = low // size
        if block in _given_ranges:
            continue
        if all(_bindable(p) for p in range(low, low + size)):
            _given_ranges.add(block)
            return low, low + size - 1
    raise RuntimeError("no free port block for a pool")


def wait_port(port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


# ----------------------------------------------------------------------- certificates


def make_cert(tmp: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate for ``name`` and 127.0.0.1 (its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


# ----------------------------------------------------------------------- backends


def tigervnc_password_file(path: Path, password: str) -> Path:
    """TigerVNC's obfuscated password file: DES of the password under VNC's fixed key.

    The fixed key 23,82,107,6,35,78,88,7 is e84ad660c4721ae0 once its bits are
    mirrored for standard DES (the same quirk as VNC authentication).
    """
    key = bytes.fromhex("e84ad660c4721ae0")
    enc = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    path.write_bytes(enc.update(password.encode()[:8].ljust(8, b"\0")) + enc.finalize())
    path.chmod(0o600)
    return path


@dataclass
class Backend:
    proc: subprocess.Popen
    port: int
    name: str
    log: Path

    def close(self) -> None:
        stop(self.proc, timeout=5)


def _free_display() -> int:
    for _ in range(200):
        n = random.randrange(100, 900)
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise RuntimeError("no free X display number")


def start_xvnc(tmp: Path, security: str = "None", password: str | None = None, cert: tuple[Path, Path] | None = None) -> Backend:
    require_program("Xvnc")
    port = free_port()
    display = _free_display()
    args = ["Xvnc", f":{display}", "-rfbport", str(port), "-interface", "127.0.0.1", "-SecurityTypes", security,
            "-geometry", "320x240", "-depth", "24", "-nolisten", "tcp", "-AlwaysShared"]
    if password is not None:
        args += ["-PasswordFile", str(tigervnc_password_file(tmp / f"xvnc{display}.passwd", password))]
    if cert is not None:
        args += ["-X509Cert", str(cert[0]), "-X509Key", str(cert[1])]
    log = tmp / f"xvnc{display}.log"
    proc = subprocess.Popen(args, cwd=tmp, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, "HOME": str(tmp)})
    wait_port(port, proc=proc)
    # A plaid root window, so that screenshots compared below are not all black.
    require_program("xsetroot")
    subprocess.run(["xsetroot", "-display", f":{display}", "-mod", "5", "5", "-fg", "#ff8000", "-bg", "#003366"],
                   check=True, timeout=20, capture_output=True)
    return Backend(proc, port, f"Xvnc {security}", log)


def start_qemu(tmp: Path, password: str | None = None) -> Backend:
    require_program("qemu-system-x86_64")
    port = free_port()
    display = port - 5900
    vnc = f"127.0.0.1:{display}"
    args = ["qemu-system-x86_64", "-machine", "none", "-display", "none", "-nodefaults", "-monitor", "none"]
    if password is not None:
        args += ["-object", f"secret,id=pw,data={password}"]
        vnc += ",password-secret=pw"
    args += ["-vnc", vnc]
    log = tmp / f"qemu{port}.log"
    proc = subprocess.Popen(args, cwd=tmp, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_port(port, proc=proc)
    return Backend(proc, port, "QEMU", log)


# ----------------------------------------------------------------------- the proxy


@dataclass
class ProxyProc:
    proc: subprocess.Popen
    control_port: int
    metrics_port: int
    pool: tuple[int, int]
    log: Path
    tmp: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def log_text(self) -> str:
        return self.log.read_text("utf-8", "replace")

    def audit_lines(self) -> list[str]:
        return [ln for ln in self.log_text().splitlines() if "nefeli-vncauthproxy.audit" in ln]

    def wait_log(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ln in self.log_text().splitlines():
                if text in ln:
                    return ln
            time.sleep(0.05)
        raise AssertionError(f"no log line with {text!r}:\n{self.log_text()[-3000:]}")

    def request(self, dest_port: int, password: str = "onetime1", **kw: Any) -> dict[str, Any]:
        from daemons.vncauthproxy.client import request_forwarding

        return request_forwarding(kw.pop("sport", 0), "127.0.0.1", dest_port, password,
                                  server_address="127.0.0.1", server_port=self.control_port, **kw)

    def raw_control(self, data: bytes, *, shut: bool = True, timeout: float = 10.0) -> bytes:
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=timeout) as s:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
                if not shut and out.endswith(b"\n"):
                    return out

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        return stop(self.proc, sig, timeout)


def start_proxy(tmp: Path, *args: str, pool_size: int = 6, wait: bool = True) -> ProxyProc:
    control, metrics = free_port(), free_port()
    low, high = pool_range(pool_size)
    log = tmp / f"proxy{control}.log"
    cmd = [sys.executable, "-m", "daemons.vncauthproxy.main", "--control-listen", f"127.0.0.1:{control}",
           "--port-range", f"{low}-{high}", "--proxy-address", "127.0.0.1",
           "--metrics-listen", f"127.0.0.1:{metrics}", "--log-format", "text", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=log.open("wb"), env=env)
    p = ProxyProc(proc, control, metrics, (low, high), log, tmp)
    if wait:
        wait_port(control, proc=proc)
    return p


# ----------------------------------------------------------------------- clients


def vncdotool(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[bytes]:
    if not Path(VNCDOTOOL).exists():
        require_program(VNCDOTOOL)  # skips, or fails under CI: the peer script did not run
    return subprocess.run([VNCDOTOOL, *args], capture_output=True, timeout=timeout)


def capture(server: str, out: Path, password: str | None = None) -> bytes:
    args = ["-s", server] + (["-p", password] if password else []) + ["capture", str(out)]
    res = vncdotool(*args)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    return out.read_bytes()


def rfb_client(port: int, password: str, timeout: float = 10.0) -> socket.socket:
    """A raw client through the proxy's RFB server side (VNC auth); returns the socket after ClientInit."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    c = rfb.ClientConnection()
    while True:
        ev = c.next_event()
        if ev is rfb.NEED_DATA:
            data = s.recv(4096)
            if not data:
                raise ConnectionError("closed during handshake")
            c.receive_data(data)
        elif ev is rfb.OUR_TURN:
            if c.state is rfb.ClientState.SEND_VERSION:
                s.sendall(c.send(c.reply_version()))
            elif c.state is rfb.ClientState.SEND_SECURITY_CHOICE:
                s.sendall(c.send(rfb.SecurityChoice(2)))
            elif c.state is rfb.ClientState.SEND_AUTH_RESPONSE:
                assert c.challenge is not None
                s.sendall(c.send(rfb.VncAuthResponse(rfb.vnc_auth_response(password.encode(), c.challenge))))
        elif ev is rfb.DONE:
            s.sendall(b"\x01")  # ClientInit, shared
            return s
        elif ev is rfb.CLOSED:
            s.close()
            raise PermissionError(c.failure)


def read_server_init(s: socket.socket) -> tuple[int, int, bytes]:
    """ServerInit: width, height, name."""
    head = recv_exact(s, 24)
    width, height = int.from_bytes(head[0:2], "big"), int.from_bytes(head[2:4], "big")
    name = recv_exact(s, int.from_bytes(head[20:24], "big"))
    return width, height, name


def recv_exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError(f"closed after {len(out)} of {n} bytes")
        out += chunk
    return out


def metrics_text(proxy: ProxyProc) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}/metrics", timeout=10) as r:
        return r.read().decode()


def reply_of(data: bytes) -> dict[str, Any]:
    return json.loads(data.decode().splitlines()[0])


class Flood:
    """Sends distinct 1 MiB chunks into a socket until cancelled; ``sent`` counts whole
    chunks the kernel took, ``data(n)`` is what the first ``n`` bytes must be."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.sent = 0

    async def run(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            chunk = len(self.chunks).to_bytes(4, "big") * (1 << 18)  # 1 MiB, distinct per chunk
            self.chunks.append(chunk)
            await loop.sock_sendall(sock, chunk)
            self.sent += len(chunk)

    def data(self, n: int) -> bytes:
        return b"".join(self.chunks)[:n]
