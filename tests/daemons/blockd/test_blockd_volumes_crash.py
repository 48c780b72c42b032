"""kill -9 of nefeli-blockd during NBD writes: flushed and FUA writes survive, nothing else tears, verify is clean."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from blockd_helpers import REPO, start_daemon
from free_ports import free_port
from peers import require_program
from volume_helpers import NEFELI, VolumeDaemon, qemu_io, read_all

MiB = 1 << 20


def test_kill_9_during_writes(tmp_path: Path) -> None:
    require_program("qemu-io", "qemu-img")
    port = free_port()
    vd = VolumeDaemon(start_daemon(tmp_path, "--nbd-listen", f"127.0.0.1:{port}"), port)
    vd.volume("create", "dur", "32M", "--block-size", "1M")
    uri = vd.uri("dur")
    qemu_io(uri, f"write -P 0x11 0 {8 * MiB}", "flush", f"write -f -P 0x22 {8 * MiB} {MiB}")  # flushed, then FUA
    vd.volume("snapshot", "dur", "dur@1")
    qemu_io(uri, f"write -P 0x44 {12 * MiB} {MiB}", "flush")
    # a writer that never flushes, killed with its server
    cmds = []
    for k in range(3000):
        cmds += ["-c", f"write -P 0x33 {16 * MiB + (k * 40_000) % (16 * MiB - 65536)} 65536"]
    writer = subprocess.Popen(["qemu-io", "-f", "raw", *cmds, uri], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(0.7)  # mid-stream
    vd.daemon.proc.kill()
    vd.daemon.proc.wait()
    writer.wait(60)

    vd = VolumeDaemon(start_daemon(tmp_path, "--nbd-listen", f"127.0.0.1:{port}"), port)
    got = read_all(uri, tmp_path / "after.raw")
    assert got[: 8 * MiB] == b"\x11" * (8 * MiB)
    assert got[8 * MiB : 9 * MiB] == b"\x22" * MiB
    assert got[9 * MiB : 12 * MiB] == bytes(3 * MiB) and got[13 * MiB : 16 * MiB] == bytes(3 * MiB)
    assert got[12 * MiB : 13 * MiB] == b"\x44" * MiB
    assert set(got[16 * MiB :]) <= {0, 0x33}  # unflushed: there or not, never another block's bytes
    snap = read_all(vd.uri("dur@1"), tmp_path / "snap.raw")
    assert snap[: 9 * MiB] == b"\x11" * (8 * MiB) + b"\x22" * MiB and snap[9 * MiB :] == bytes(23 * MiB)
    vd.daemon.stop_cleanly()
    r = subprocess.run(NEFELI + ["store", "verify", "--data", str(vd.data)], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
