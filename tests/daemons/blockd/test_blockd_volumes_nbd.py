"""Volumes over NBD, driven by the real clients: nbdinfo, qemu-io, qemu-img, nbdcopy (libnbd-bin, qemu-utils)."""

from __future__ import annotations

import json
import random
import socket
import struct
import subprocess
import threading
from pathlib import Path

import pytest
from volume_helpers import VolumeDaemon, qemu_io, read_all, vd  # noqa: F401  (vd is a fixture)

from net import nbd

MiB = 1 << 20
pytestmark = pytest.mark.peer("qemu-utils")


def image(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def imported(vd: VolumeDaemon, tmp_path: Path, name: str, data: bytes) -> None:
    src = tmp_path / f"{name}.raw"
    src.write_bytes(data)
    vd.volume("import", str(src), name, "--block-size", "1M", "--no-progress")


def test_nbdinfo_lists_exports_with_sizes(vd: VolumeDaemon) -> None:
    vd.volume("create", "list-a", "64M")
    vd.volume("snapshot", "list-a", "list-a@1")
    out = subprocess.run(["nbdinfo", "--list", "--json", vd.tcp_uri()], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    exports = {e["export-name"]: e for e in json.loads(out)["exports"]}
    assert exports["list-a"]["export-size"] == 64 * MiB and not exports["list-a"]["is_read_only"]
    assert exports["list-a@1"]["is_read_only"] and exports["list-a"]["can_multi_conn"]
    assert "base:allocation" in exports["list-a"]["contexts"]


def test_qemu_io_into_a_clone_against_a_model(vd: VolumeDaemon, tmp_path: Path) -> None:
    base = image(24 * MiB, 1)
    imported(vd, tmp_path, "img", base)
    vd.volume("snapshot", "img", "img@gold")
    vd.volume("clone", "img@gold", "vm1")
    model = bytearray(base)
    rnd = random.Random(2)
    cmds = []
    for k in range(40):  # unaligned offsets, many across the 1 MiB block boundaries
        off = rnd.randrange(0, len(model) - 300_000)
        n = rnd.randrange(1, 300_000)
        pat = rnd.randrange(1, 255)
        cmds.append(f"write -P {pat} {off} {n}")
        model[off : off + n] = bytes([pat]) * n
    cmds.append(f"write -P 7 {MiB - 3} 6")  # straddles one boundary by a few bytes
    model[MiB - 3 : MiB + 3] = bytes([7]) * 6
    cmds.append("flush")
    qemu_io(vd.uri("vm1"), *cmds)
    assert read_all(vd.uri("vm1"), tmp_path / "vm1.raw") == model
    # the snapshot and the parent still read the old bytes
    assert read_all(vd.uri("img@gold"), tmp_path / "gold.raw") == base
    subprocess.run(["nbdcopy", vd.uri("img"), str(tmp_path / "img.raw")], check=True, timeout=60)
    assert (tmp_path / "img.raw").read_bytes() == base
    # written blocks are the clone's, the rest still shared with the snapshot
    info = vd.info("vm1")
    assert info["blocks"]["owned"] < 24 and info["parent"] == "img@gold"
    diff = json.loads(vd.volume("diff", "img@gold", "vm1", "--json").stdout)
    changed = set()
    for r in diff:
        changed.update(range(r["offset"] // MiB, (r["offset"] + r["length"]) // MiB))
    truly = {i for i in range(24) if model[i * MiB : (i + 1) * MiB] != base[i * MiB : (i + 1) * MiB]}
    assert truly <= changed and len(changed) == info["blocks"]["owned"]


def test_map_trim_write_zeroes_and_compare(vd: VolumeDaemon, tmp_path: Path) -> None:
    vd.volume("create", "sparse", "16M", "--block-size", "1M")
    uri = vd.uri("sparse")
    qemu_io(uri, f"write -P 0x5a {2 * MiB} {3 * MiB}", f"write -P 0x33 {10 * MiB + 17} 100", "flush")
    qemu_io(uri, f"discard {3 * MiB} {MiB}", f"write -z -u {4 * MiB} {MiB}", f"write -z {2 * MiB + 10} 20")
    out = subprocess.run(["nbdinfo", "--map", "--json", uri], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    extents = [(e["offset"], e["length"], e["type"]) for e in json.loads(out)]
    data = {(off, n) for off, n, t in extents if t == 0}
    assert data == {(2 * MiB, MiB), (10 * MiB, MiB)}, extents
    model = bytearray(16 * MiB)
    model[2 * MiB : 3 * MiB] = b"\x5a" * MiB
    model[2 * MiB + 10 : 2 * MiB + 30] = bytes(20)
    model[10 * MiB + 17 : 10 * MiB + 117] = b"\x33" * 100
    raw = tmp_path / "model.raw"
    raw.write_bytes(model)
    r = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", uri, str(raw)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert vd.info("sparse")["blocks"]["owned"] == 2  # trimmed and zeroed blocks store nothing


def test_nbdcopy_multi_conn_round_trip(vd: VolumeDaemon, tmp_path: Path) -> None:
    vd.volume("create", "mc", "32M")
    src = tmp_path / "src.raw"
    data = image(32 * MiB, 3)
    src.write_bytes(data)
    subprocess.run(["nbdcopy", "--connections=4", "--requests=16", str(src), vd.uri("mc")], check=True, timeout=120)
    subprocess.run(["nbdcopy", "--connections=4", vd.tcp_uri("mc"), str(tmp_path / "back.raw")], check=True,
                   timeout=120)
    assert (tmp_path / "back.raw").read_bytes() == data


def test_concurrent_writers_on_two_volumes_and_on_one(vd: VolumeDaemon, tmp_path: Path) -> None:
    for name in ("cw1", "cw2"):
        vd.volume("create", name, "8M", "--block-size", "1M")
    jobs = [
        ("cw1", [f"write -P 1 0 {4 * MiB}", "flush"]),
        ("cw1", [f"write -P 2 {4 * MiB - 100} {100}", f"write -P 3 {5 * MiB} {3 * MiB}", "flush"]),
        ("cw2", [f"write -P 4 {MiB + 1} {5 * MiB}", "flush"]),
        ("cw2", [f"write -P 5 0 {MiB}", "flush"]),
    ]
    errors: list[BaseException] = []

    def run(name: str, cmds: list[str]) -> None:
        try:
            qemu_io(vd.uri(name), *cmds)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    want1 = bytearray(8 * MiB)
    want1[: 4 * MiB] = b"\1" * (4 * MiB)
    want1[4 * MiB - 100 : 4 * MiB] = b"\2" * 100  # writers 1 and 2 overlap: the later one is unordered
    want1[5 * MiB :] = b"\3" * (3 * MiB)
    got1 = read_all(vd.uri("cw1"), tmp_path / "cw1.raw")
    assert got1[: 4 * MiB - 100] == want1[: 4 * MiB - 100] and got1[4 * MiB :] == want1[4 * MiB :]
    assert got1[4 * MiB - 100 : 4 * MiB] in (b"\1" * 100, b"\2" * 100)
    want2 = bytearray(8 * MiB)
    want2[MiB + 1 : 6 * MiB + 1] = b"\4" * (5 * MiB)
    want2[:MiB] = b"\5" * MiB
    assert read_all(vd.uri("cw2"), tmp_path / "cw2.raw") == want2


def test_snapshots_export_read_only(vd: VolumeDaemon) -> None:
    vd.volume("create", "ro", "4M")
    vd.volume("snapshot", "ro", "ro@1")
    r = qemu_io(vd.uri("ro@1"), "write -P 1 0 512", check=False)
    assert r.returncode != 0 and "permission denied" in (r.stdout + r.stderr).lower()  # qemu sees READ_ONLY
    assert qemu_io(vd.uri("ro@1"), "read -P 0 0 4096", read_only=True).returncode == 0
    # a client that ignores the read-only flag gets EPERM
    s = _handshake(vd.nbd_port, "ro@1")
    s.sendall(_request(nbd.CMD_WRITE, 1, 0, 4) + b"abcd")
    assert struct.unpack(">IIQ", _recv(s, 16))[1:] == (nbd.EPERM, 1)
    s.close()


# ---------------------------------------------------------------- misbehaving clients


def _handshake(port: int, export: str, size: int | None = None) -> socket.socket:
    """A raw client through NBD_OPT_GO, simple replies."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    hello = _recv(s, 18)
    assert hello[:16] == b"NBDMAGICIHAVEOPT"
    s.sendall(struct.pack(">I", 3))
    name = export.encode()
    data = struct.pack(">I", len(name)) + name + struct.pack(">H", 0)
    s.sendall(b"IHAVEOPT" + struct.pack(">II", nbd.OPT_GO, len(data)) + data)
    while True:
        magic, _opt, kind, length = struct.unpack(">QIII", _recv(s, 20))
        body = _recv(s, length)
        if kind == nbd.REP_ACK:
            return s
        assert kind == nbd.REP_INFO, (hex(kind), body)


def _recv(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def _request(kind: int, cookie: int, offset: int, length: int, flags: int = 0) -> bytes:
    return struct.pack(">IHHQQI", nbd.REQUEST_MAGIC, flags, kind, cookie, offset, length)


def _closed(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_misbehaving_clients_are_refused_and_others_served(vd: VolumeDaemon) -> None:
    vd.volume("create", "victim", "4M")
    good = _handshake(vd.nbd_port, "victim")

    # read past the end and an unknown command: error replies, connection kept
    bad = _handshake(vd.nbd_port, "victim")
    bad.sendall(_request(nbd.CMD_READ, 1, 4 * MiB - 10, 20) + _request(42, 2, 0, 0))
    for cookie in (1, 2):
        magic, err, got = struct.unpack(">IIQ", _recv(bad, 16))
        assert (magic, err, got) == (nbd.SIMPLE_REPLY_MAGIC, nbd.EINVAL, cookie)
    bad.sendall(_request(nbd.CMD_READ, 3, 0, 8))
    assert struct.unpack(">IIQ", _recv(bad, 16))[1:] == (0, 3) and _recv(bad, 8) == bytes(8)

    # bad magic and an oversized write: dropped
    bad.sendall(b"\xde\xad\xbe\xef" + bytes(24))
    assert _closed(bad)
    huge = _handshake(vd.nbd_port, "victim")
    huge.sendall(_request(nbd.CMD_WRITE, 9, 0, 1 << 30))
    assert _closed(huge)
    junk = socket.create_connection(("127.0.0.1", vd.nbd_port), timeout=10)
    _recv(junk, 18)
    junk.sendall(b"\xff" * 64)  # unknown client flags
    assert _closed(junk)

    # the good connection never noticed
    good.sendall(_request(nbd.CMD_READ, 5, 100, 4))
    assert struct.unpack(">IIQ", _recv(good, 16))[1:] == (0, 5) and _recv(good, 4) == bytes(4)
    good.sendall(_request(nbd.CMD_DISC, 6, 0, 0))
    assert qemu_io(vd.uri("victim"), "write -P 9 0 10", "read -P 9 0 10").returncode == 0
    for s in (good, bad, huge, junk):
        s.close()
    assert "Traceback" not in vd.daemon.log.read_text()


def test_unknown_export_and_unknown_option(vd: VolumeDaemon) -> None:
    s = socket.create_connection(("127.0.0.1", vd.nbd_port), timeout=10)
    _recv(s, 18)
    s.sendall(struct.pack(">I", 3))
    s.sendall(b"IHAVEOPT" + struct.pack(">II", 99, 3) + b"abc")
    magic, opt, kind, length = struct.unpack(">QIII", _recv(s, 20))
    assert (opt, kind) == (99, nbd.REP_ERR_UNSUP)
    _recv(s, length)
    data = struct.pack(">I", 4) + b"nope" + struct.pack(">H", 0)
    s.sendall(b"IHAVEOPT" + struct.pack(">II", nbd.OPT_GO, len(data)) + data)
    magic, opt, kind, length = struct.unpack(">QIII", _recv(s, 20))
    assert (opt, kind) == (nbd.OPT_GO, nbd.REP_ERR_UNKNOWN)
    s.close()
