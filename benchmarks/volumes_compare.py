"""nefeli volumes over NBD beside `qemu-nbd -t` on a raw file (and a qcow2 overlay), same disk, same clients.

    python benchmarks/volumes_compare.py [--rounds 3] [--big-gib 25] [--quick] [--only io|snapshot|disk] [--dir /var/tmp]

Prints medians of the rounds side by side with the ratio nefeli / qemu-nbd:
sequential write and read of 1 GiB (nbdcopy --flush; nbdcopy ... null:),
4 KiB random read and write IOPS at queue depth 16 (fio's nbd engine),
snapshot and clone time of a 100 GiB volume with 1 GiB and with --big-gib
written (admin API round trip), disk used by 10 clones of a 2 GiB image with
1 % rewritten each (against 10 qcow2 overlays), and the latency of a 4 KiB
write to a block a clone shares (against qemu-nbd on a qcow2 overlay).
Needs qemu-utils, libnbd-bin and fio, and --big-gib + 8 GiB free under --dir
(everything is deleted at the end; the store of the first parts before the disk figure,
which gets a fresh store of its own).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from net import nbd  # noqa: E402
from net.volume_admin import AdminRequest, LineFramer, parse_reply  # noqa: E402

GiB = 1 << 30
MiB = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{proc.args[0]} did not start")
        time.sleep(0.05)
    time.sleep(0.2)


class Nefeli:
    """One nefeli-blockd with its own data directory under ROOT/NAME."""

    def __init__(self, root: Path, name: str) -> None:
        self.data = root / name
        self.sock = self.data / "nbd.sock"
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemons.blockd.main", "--data", str(self.data), "--listen",
             f"127.0.0.1:{self.port}", "--nbd-listen", "", "--db-synchronous", "NORMAL", "--no-access-log"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(root / f"{name}.log", "wb"),
        )
        wait_for(self.data / "volumes-admin.sock", self.proc)

    def uri(self, name: str) -> str:
        return f"nbd+unix:///{name}?socket={self.sock}"

    def admin(self, op: str, **args: object) -> object:
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(self.data / "volumes-admin.sock"))
        s.sendall(AdminRequest(op, dict(args)).encode())
        framer = LineFramer(max_line=64 << 20)
        try:
            while True:
                for line in framer.feed(s.recv(65536)):
                    msg = parse_reply(line)
                    if getattr(msg, "ok", None) is not None:
                        if not msg.ok:  # type: ignore[union-attr]
                            raise RuntimeError(msg.error)  # type: ignore[union-attr]
                        return msg.result  # type: ignore[union-attr]
        finally:
            s.close()

    def frozen_extents(self) -> int:
        """Frozen extents in the store, referenced or not (`ls` only shows the referenced ones)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=30) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("nefeli_blockd_volume_frozen_extents "):
                    return int(float(line.split()[1]))
        raise RuntimeError("blockd's /metrics has no volume_frozen_extents")

    def settle(self) -> None:
        """Wait until the freezer has hashed every frozen extent into the block store and
        deleted it: only then does the disk hold each block once."""
        while self.frozen_extents() or any(v["blocks"]["frozen"] for v in self.admin("ls")):  # type: ignore[union-attr]
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


class QemuNbd:
    def __init__(self, root: Path, image: Path, fmt: str, name: str) -> None:
        self.sock = root / f"qemu-{name}.sock"
        self.proc = subprocess.Popen(
            ["qemu-nbd", "-t", "--shared=16", "-f", fmt, "-x", name, "--socket", str(self.sock), str(image)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.name = name
        wait_for(self.sock, self.proc)

    def uri(self) -> str:
        return f"nbd+unix:///{self.name}?socket={self.sock}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t


def fill(uri: str, offset: int, length: int) -> None:
    """Write non-zero data over [offset, offset+length) with qemu-io (256 MiB per request, one flush)."""
    step = 256 * MiB
    cmds = []
    for k, pos in enumerate(range(offset, offset + length, step)):
        cmds += ["-c", f"write -P {1 + k % 250} {pos} {min(step, offset + length - pos)}"]
    subprocess.run(["qemu-io", "-f", "raw", *cmds, "-c", "flush", uri], check=True, stdout=subprocess.DEVNULL)


def drop_caches() -> None:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        pass  # not root: warm-cache figures


def fio_iops(uri: str, rw: str, seconds: int) -> float:
    out = subprocess.run(
        ["fio", "--name=b", "--ioengine=nbd", f"--uri={uri}", f"--rw={rw}", "--bs=4k", "--iodepth=16",
         "--size=1g", "--time_based", f"--runtime={seconds}", "--output-format=json", "--randrepeat=1"],
        check=True, capture_output=True, text=True,
    ).stdout
    job = json.loads(out[out.index("{"):])["jobs"][0]  # fio's nbd engine prints a line first
    return float(job["read" if "read" in rw else "write"]["iops"])


def du(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_blocks * 512
    return total


class RawNbd:
    """A minimal blocking NBD client (structured replies off) for latency figures."""

    def __init__(self, sock_path: Path, export: str) -> None:
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(str(sock_path))
        self._recv(18)
        self.s.sendall(struct.pack(">I", 3))
        name = export.encode()
        data = struct.pack(">I", len(name)) + name + struct.pack(">H", 0)
        self.s.sendall(b"IHAVEOPT" + struct.pack(">II", nbd.OPT_GO, len(data)) + data)
        while True:
            _m, _o, kind, length = struct.unpack(">QIII", self._recv(20))
            self._recv(length)
            if kind == nbd.REP_ACK:
                break
            if kind != nbd.REP_INFO:
                raise RuntimeError(f"GO refused: {kind:#x}")
        self.cookie = 0

    def _recv(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.s.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return bytes(out)

    def write(self, offset: int, data: bytes) -> float:
        self.cookie += 1
        t = time.perf_counter()
        self.s.sendall(struct.pack(">IHHQQI", nbd.REQUEST_MAGIC, 0, nbd.CMD_WRITE, self.cookie, offset, len(data)) + data)
        _magic, err, _cookie = struct.unpack(">IIQ", self._recv(16))
        if err:
            raise RuntimeError(f"write error {err}")
        return time.perf_counter() - t

    def close(self) -> None:
        self.s.sendall(struct.pack(">IHHQQI", nbd.REQUEST_MAGIC, 0, nbd.CMD_DISC, 0, 0, 0))
        self.s.close()


def row(label: str, ours: float, theirs: float | None, unit: str, higher_better: bool = True,
        rounds: list[float] | None = None) -> None:
    if rounds is not None:  # one-sided timings: the rounds too, the first one before the freezer runs
        print(f"  {label:<44} nefeli {ours:>10.1f} {unit:<6} (rounds: {', '.join(f'{x:.1f}' for x in rounds)})")
    elif theirs:
        ratio = ours / theirs
        print(f"  {label:<44} nefeli {ours:>10.1f} {unit:<6} qemu-nbd {theirs:>10.1f} {unit:<6} ratio {ratio:5.2f}"
              f"{'' if higher_better else ' (lower is better)'}")
    else:
        print(f"  {label:<44} nefeli {ours:>10.1f} {unit}")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def sequential_and_random(nef: Nefeli, root: Path, src: Path, rounds: int, fio_seconds: int) -> None:
    """Sequential write and read of 1 GiB, 4 KiB random IOPS: nefeli beside qemu-nbd on a raw file."""
    raw = root / "qemu.raw"
    results: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        results.setdefault(key, []).append(value)

    for _ in range(rounds):
        try:
            nef.admin("rm", name="seq")
        except RuntimeError:
            pass
        nef.admin("create", name="seq", size=GiB)
        raw.unlink(missing_ok=True)
        with open(raw, "wb") as f:
            f.truncate(GiB)
        q = QemuNbd(root, raw, "raw", "seq")
        try:
            add("write_nefeli", GiB / MiB / timed(["nbdcopy", "--flush", str(src), nef.uri("seq")]))
            add("write_qemu", GiB / MiB / timed(["nbdcopy", "--flush", str(src), q.uri()]))
            drop_caches()
            add("read_nefeli", GiB / MiB / timed(["nbdcopy", nef.uri("seq"), "null:"]))
            drop_caches()
            add("read_qemu", GiB / MiB / timed(["nbdcopy", q.uri(), "null:"]))
            for uri in (nef.uri("seq"), q.uri()):  # both warm: the figures are the servers', not the disk's
                subprocess.run(["nbdcopy", uri, "null:"], check=True)
            for rw in ("randread", "randwrite"):
                add(f"{rw}_nefeli", fio_iops(nef.uri("seq"), rw, fio_seconds))
                add(f"{rw}_qemu", fio_iops(q.uri(), rw, fio_seconds))
        finally:
            q.stop()
    raw.unlink(missing_ok=True)
    nef.admin("rm", name="seq")
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"volumes_compare: medians of {rounds} round(s)")
    row("sequential write 1 GiB (nbdcopy --flush)", med["write_nefeli"], med["write_qemu"], "MiB/s")
    row("sequential read 1 GiB (nbdcopy ... null:)", med["read_nefeli"], med["read_qemu"], "MiB/s")
    row("4 KiB random read, qd16 (fio nbd)", med["randread_nefeli"], med["randread_qemu"], "IOPS")
    row("4 KiB random write, qd16 (fio nbd)", med["randwrite_nefeli"], med["randwrite_qemu"], "IOPS")


def snapshot_and_clone(nef: Nefeli, rounds: int, big_gib: int) -> None:
    """Snapshot and clone of a 100 GiB volume with 1 GiB and with BIG GiB written (admin round trips).

    The freezer hashes each new snapshot's blocks meanwhile, as it would in production; the
    timings must not depend on how much data the volume holds."""
    for gib in (1, big_gib):
        name = f"big{gib}"
        nef.admin("create", name=name, size=100 * GiB)
        fill(nef.uri(name), 0, gib * GiB)
        snaps, clones = [], []
        for r in range(rounds):
            t = time.perf_counter()
            nef.admin("snapshot", volume=name, snapshot=f"{name}@{r}")
            snaps.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            nef.admin("clone", source=f"{name}@{r}", name=f"{name}-c{r}")
            clones.append((time.perf_counter() - t) * 1000)
            fill(nef.uri(name), 0, 64 * MiB)  # own some blocks again
        row(f"snapshot of 100 GiB, {gib} GiB written", statistics.median(snaps), None, "ms", rounds=snaps)
        row(f"clone of that snapshot, {gib} GiB written", statistics.median(clones), None, "ms", rounds=clones)
        for r in range(rounds):
            nef.admin("rm", name=f"{name}-c{r}")
            nef.admin("rm", name=f"{name}@{r}")
        nef.admin("rm", name=name)


def clones_disk_and_cow(root: Path, src: Path) -> None:
    """Disk used by a 2 GiB image and 10 clones with 1 % rewritten each (5 whole 4 MiB blocks),
    against a raw base and 10 qcow2 overlays; then the latency of a 4 KiB copy-on-write.

    A fresh daemon and store of its own: nothing freed or hashed later by earlier steps
    can move the figure, and it is taken once the freezer has settled."""
    nef = Nefeli(root, "disk")
    try:
        before = du(nef.data)
        nef.admin("create", name="image", size=2 * GiB)
        image = root / "image.raw"
        with open(image, "wb") as f:
            f.write(src.read_bytes())
            more = random.Random(2)
            for _ in range(GiB // (64 * MiB)):
                f.write(more.randbytes(64 * MiB))
        subprocess.run(["nbdcopy", "--flush", str(image), nef.uri("image")], check=True)
        image.unlink()
        nef.admin("snapshot", volume="image", snapshot="image@gold")
        base = root / "base.raw"
        subprocess.run(["nbdcopy", nef.uri("image@gold"), str(base)], check=True)
        rnd = random.Random(7)
        blob = rnd.randbytes(4 * MiB)
        overlays_bytes = 0
        for k in range(10):
            nef.admin("clone", source="image@gold", name=f"vm{k}")
            ov = root / f"vm{k}.qcow2"
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(ov)],
                           check=True)
            q = QemuNbd(root, ov, "qcow2", f"vm{k}")
            c1, c2 = RawNbd(nef.sock, f"vm{k}"), RawNbd(q.sock, f"vm{k}")
            for _ in range(5):
                off = rnd.randrange(0, 512) * 4 * MiB
                c1.write(off, blob)
                c2.write(off, blob)
            c1.close()
            c2.close()
            q.stop()
            overlays_bytes += ov.stat().st_blocks * 512
        nef.admin("rm", name="image")  # the image lives on as its snapshot
        nef.settle()
        subprocess.run(["sync"], check=True)
        used = du(nef.data) - before
        theirs = base.stat().st_blocks * 512 + overlays_bytes
        row("disk for a 2 GiB image + 10 clones (1 % each)", used / MiB, theirs / MiB, "MiB", higher_better=False)
        print(f"  {'':<44} nefeli / 2 GiB = {used / (2 * GiB):.2f} (target <= 1.2)")

        ov = root / "lat.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(ov)], check=True)
        q = QemuNbd(root, ov, "qcow2", "lat")
        nef.admin("clone", source="image@gold", name="lat")
        c1, c2 = RawNbd(nef.sock, "lat"), RawNbd(q.sock, "lat")
        small = rnd.randbytes(4096)
        ours, theirs_ms = [], []
        for i in range(400):
            off = i * 4 * MiB + rnd.randrange(0, 1000) * 4096
            ours.append(c1.write(off, small) * 1000)
            theirs_ms.append(c2.write(off, small) * 1000)
        c1.close()
        c2.close()
        q.stop()
        ours.sort()
        theirs_ms.sort()
        row("CoW 4 KiB write, p50 (qcow2 overlay)", ours[len(ours) // 2], theirs_ms[len(theirs_ms) // 2], "ms", False)
        row("CoW 4 KiB write, p99 (qcow2 overlay)", ours[int(len(ours) * 0.99)],
            theirs_ms[int(len(theirs_ms) * 0.99)], "ms", False)
    finally:
        nef.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--big-gib", type=int, default=25, help="data written before the second snapshot/clone timing")
    ap.add_argument("--fio-seconds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one round, 4 GiB instead of --big-gib (a smoke run)")
    ap.add_argument("--only", choices=("io", "snapshot", "disk"), action="append",
                    help="run only these parts (repeatable; default: all)")
    ap.add_argument("--dir", default="/var/tmp", help="where to put the data (a temporary directory in it; "
                    "it needs --big-gib + 8 GiB free)")
    args = ap.parse_args()
    for prog in ("qemu-nbd", "qemu-img", "nbdcopy", "fio"):
        if shutil.which(prog) is None:
            print(f"volumes_compare: needs {prog} (qemu-utils, libnbd-bin, fio)", file=sys.stderr)
            return 2
    if args.quick:
        args.rounds, args.big_gib = 1, 4
    parts = set(args.only or ("io", "snapshot", "disk"))
    need = ((args.big_gib if "snapshot" in parts else 0) + 8) * GiB
    free = shutil.disk_usage(args.dir).free
    if free < need:
        print(f"volumes_compare: {args.dir} has {free / GiB:.1f} GiB free, needs {need / GiB:.0f} GiB "
              f"(lower --big-gib or pick --dir)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="nefeli-vol-bench-", dir=args.dir))
    print(f"volumes_compare: data in {root}, load average at start {load()}")
    src = root / "src.raw"
    with open(src, "wb") as f:
        rnd = random.Random(1)
        for _ in range(GiB // (64 * MiB)):
            f.write(rnd.randbytes(64 * MiB))
    try:
        if parts & {"io", "snapshot"}:
            nef = Nefeli(root, "io")
            try:
                if "io" in parts:
                    sequential_and_random(nef, root, src, args.rounds, args.fio_seconds)
                if "snapshot" in parts:
                    snapshot_and_clone(nef, args.rounds, args.big_gib)
            finally:
                nef.stop()  # its freezer stops mid-hash: no CPU taken from what follows
                shutil.rmtree(nef.data, ignore_errors=True)
        if "disk" in parts:
            clones_disk_and_cow(root, src)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"volumes_compare: load average at end {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
