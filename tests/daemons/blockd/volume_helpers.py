"""A nefeli-blockd with its NBD export for the volume tests, and helpers for the NBD clients."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from blockd_helpers import REPO, Daemon, start_daemon
from free_ports import free_port
from peers import require_program

NEFELI = [str(REPO / ".venv" / "bin" / "python"), "-m", "cli.main"]


class VolumeDaemon:
    def __init__(self, daemon: Daemon, nbd_port: int) -> None:
        self.daemon = daemon
        self.nbd_port = nbd_port

    @property
    def data(self) -> Path:
        return self.daemon.data

    @property
    def socket(self) -> Path:
        return self.daemon.data / "nbd.sock"

    def uri(self, name: str) -> str:
        return f"nbd+unix:///{name}?socket={self.socket}"

    def tcp_uri(self, name: str = "") -> str:
        return f"nbd://127.0.0.1:{self.nbd_port}/{name}"

    def volume(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`nefeli volume ARGS --data DIR` (through the daemon's admin socket)."""
        cmd = NEFELI + ["volume", *args, "--data", str(self.data)]
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, check=check)

    def info(self, name: str) -> dict:
        return json.loads(self.volume("info", name, "--json").stdout)


def start_volume_daemon(tmp: Path) -> VolumeDaemon:
    port = free_port()
    return VolumeDaemon(start_daemon(tmp, "--nbd-listen", f"127.0.0.1:{port}"), port)


@pytest.fixture(scope="module")
def vd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VolumeDaemon]:
    require_program("qemu-io", "qemu-img", "nbdinfo", "nbdcopy")
    d = start_volume_daemon(tmp_path_factory.mktemp("volumes"))
    yield d
    d.daemon.stop_cleanly()


def qemu_io(uri: str, *commands: str, check: bool = True, read_only: bool = False) -> subprocess.CompletedProcess[str]:
    args = ["qemu-io", "-f", "raw"] + (["-r"] if read_only else [])
    for c in commands:
        args += ["-c", c]
    return subprocess.run(args + [uri], capture_output=True, text=True, timeout=120, check=check)


def read_all(uri: str, dest: Path) -> bytes:
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "raw", uri, str(dest)], check=True, timeout=120,
                   capture_output=True)
    return dest.read_bytes()
