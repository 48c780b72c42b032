"""Volume administration through nefeli-blockd: the CLI, publish/clone of objects, the Ganeti provider scripts."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

from blockd_helpers import REPO
from volume_helpers import NEFELI, VolumeDaemon, qemu_io, read_all, vd  # noqa: F401  (vd is a fixture)

MiB = 1 << 20


def test_cli_through_the_daemon(vd: VolumeDaemon) -> None:
    info = json.loads(vd.volume("create", "cli1", "10G", "--json").stdout)
    assert info["size"] == 10 << 30 and info["blocks"]["zero"] == 2560
    vd.volume("snapshot", "cli1", "cli1@a")
    vd.volume("resize", "cli1", "12G")
    assert vd.info("cli1")["size"] == 12 << 30
    ls = json.loads(vd.volume("ls", "--json").stdout)
    assert {"cli1", "cli1@a"} <= {v["name"] for v in ls}
    assert json.loads(vd.volume("diff", "cli1@a", "cli1", "--json").stdout) == []
    bad = vd.volume("create", "cli1", "1G", check=False)
    assert bad.returncode == 1 and "exists" in bad.stderr
    bad = vd.volume("create", "x", "12Q", check=False)
    assert bad.returncode == 2 and "bad size" in bad.stderr
    vd.volume("rm", "cli1", "cli1@a")
    assert vd.volume("info", "cli1", check=False).returncode == 1


def test_admin_socket_is_owner_only(vd: VolumeDaemon) -> None:
    mode = os.stat(vd.data / "volumes-admin.sock").st_mode & 0o777
    assert mode == 0o600


def test_publish_a_snapshot_and_clone_an_object(vd: VolumeDaemon, tmp_path: Path) -> None:
    c = vd.daemon.client()
    assert c.put_container("images", scheme="blake3", block_size=4 * MiB).status in (201, 202)
    vd.volume("create", "golden", "12M")
    data = random.Random(5).randbytes(5 * MiB + 123)
    qemu_io(vd.uri("golden"), "flush")
    src = tmp_path / "g.raw"
    src.write_bytes(data)
    subprocess.run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(src), vd.uri("golden")], check=True,
                   timeout=60)
    vd.volume("snapshot", "golden", "golden@v1")
    r = json.loads(vd.volume("publish", "golden@v1", "demo/images/golden.img", "--json").stdout)
    assert r["bytes"] == 12 * MiB
    got = c.get("images", "golden.img")
    assert got.status == 200 and got.body[: len(data)] == data and got.body[len(data) :] == bytes(12 * MiB - len(data))
    # an object (uploaded through the object API) cloned into a volume: no data moves
    img = random.Random(6).randbytes(9 * MiB + 1)
    assert c.put("images", "upload.img", img).status == 201
    info = json.loads(vd.volume("clone", "images/upload.img", "vm-from-img", "--account", "demo", "--json").stdout)
    assert info["blocks"]["shared"] == 2 and info["size"] == -(-len(img) // 512) * 512
    assert read_all(vd.uri("vm-from-img"), tmp_path / "vm.raw")[: len(img)] == img
    bad = vd.volume("publish", "golden", "demo/images/x", check=False)
    assert bad.returncode == 1 and "not a snapshot" in bad.stderr


def _provider(where: Path, action: str, **env: str) -> subprocess.CompletedProcess[str]:
    """As Ganeti runs it: a cleaned environment, cwd the provider directory."""
    return subprocess.run([str(where / action)], cwd=where, env=env, capture_output=True, text=True, timeout=120)


def test_ganeti_provider_scripts(vd: VolumeDaemon, tmp_path: Path) -> None:
    root = tmp_path / "extstorage"
    subprocess.run(NEFELI + ["volume", "provider", "install", str(root), "--data", str(vd.data)], cwd=REPO,
                   check=True, capture_output=True, timeout=60)
    where = root / "nefeli"
    for name in ("create", "attach", "detach", "remove", "grow", "setinfo", "verify", "snapshot", "open", "close"):
        assert os.access(where / name, os.X_OK), name
    params = (where / "parameters.list").read_text().split("\n")
    assert params[0].startswith("origin ")

    disk = "3f2a1c9e-aaaa-bbbb-cccc-123456789abc.ext.disk0"
    assert _provider(where, "verify", EXTP_ORIGIN="golden@v1").returncode == 0
    bad = _provider(where, "verify", EXTP_COLOUR="blue")
    assert bad.returncode != 0 and "colour" in bad.stderr
    # Ganeti passes its own disk parameters too (provider always, access from the diskparams)
    ganeti = {"EXTP_PROVIDER": "nefeli", "EXTP_ACCESS": "userspace"}
    assert _provider(where, "verify", EXTP_ORIGIN="golden@v1", **ganeti).returncode == 0
    r = _provider(where, "create", VOL_NAME=disk, VOL_SIZE="1024", **ganeti)
    assert r.returncode == 0, r.stderr
    for _ in range(2):  # attach is idempotent
        r = _provider(where, "attach", VOL_NAME=disk, VOL_SIZE="1024")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.split("\n")
        assert lines[0] == "" and lines[1] == f"kvm:nbd+unix:///{disk}?socket={vd.data.resolve() / 'nbd.sock'}"
    uri = lines[1][len("kvm:") :]
    assert qemu_io(uri, "write -P 0x61 1000 5000", "read -P 0x61 1000 5000").returncode == 0
    assert _provider(where, "grow", VOL_NAME=disk, VOL_SIZE="1024", VOL_NEW_SIZE="2048").returncode == 0
    assert vd.info(disk)["size"] == 2048 * MiB
    assert _provider(where, "setinfo", VOL_NAME=disk, VOL_METADATA="originstname+vm1").returncode == 0
    assert vd.info(disk)["metadata"] == "originstname+vm1"
    r = _provider(where, "snapshot", VOL_NAME=disk, VOL_SNAPSHOT_NAME=disk + ".snap1", VOL_SNAPSHOT_SIZE="2048")
    assert r.returncode == 0, r.stderr
    for action in ("open", "close", "detach", "detach"):
        assert _provider(where, action, VOL_NAME=disk, VOL_OPEN_EXCLUSIVE="True").returncode == 0
    assert _provider(where, "remove", VOL_NAME=disk).returncode == 0
    assert _provider(where, "remove", VOL_NAME=disk).returncode == 0  # already gone: still fine
    # a disk cloned from an image (origin), as Synnefo creates VM disks
    clone = "3f2a1c9e-aaaa-bbbb-cccc-123456789abc.ext.disk1"
    r = _provider(where, "create", VOL_NAME=clone, VOL_SIZE="100", EXTP_ORIGIN="demo/images/golden.img")
    assert r.returncode == 0, r.stderr
    assert vd.info(clone)["size"] == 100 * MiB and vd.info(clone)["blocks"]["shared"] == 2
    r = _provider(where, "attach", VOL_NAME="no-such-disk")
    assert r.returncode != 0 and "no-such-disk" in r.stderr
    r = _provider(where, "create", VOL_NAME=disk)
    assert r.returncode != 0 and "VOL_SIZE" in r.stderr


def test_cli_without_a_daemon_opens_the_store(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run = lambda *a: subprocess.run(NEFELI + ["volume", *a, "--data", str(data)], cwd=REPO, capture_output=True,
                                    text=True, timeout=120)
    assert run("create", "off", "1M").returncode == 0
    src = tmp_path / "f.raw"
    src.write_bytes(random.Random(1).randbytes(MiB))
    assert run("import", str(src), "imp", "--no-progress").returncode == 0
    assert run("export", "imp", str(tmp_path / "back.raw"), "--no-progress").returncode == 0
    assert (tmp_path / "back.raw").read_bytes() == src.read_bytes()
    out = run("ls", "--json")
    assert {v["name"] for v in json.loads(out.stdout)} == {"off", "imp"}


def test_nbd_socket_by_name_from_socket_activation(tmp_path: Path) -> None:
    """systemd passes `http` and `nbd`; blockd serves NBD on the one named nbd (and binds no default)."""
    import time

    from blockd_helpers import Client
    from free_ports import free_port
    from peers import require_program

    require_program("systemd-socket-activate", "nbdinfo")
    http, nbd_port = free_port(), free_port()
    proc = subprocess.Popen(
        ["systemd-socket-activate", "-l", f"127.0.0.1:{http}", "-l", f"127.0.0.1:{nbd_port}", "--fdname=http:nbd",
         str(REPO / ".venv" / "bin" / "python"), "-m", "daemons.blockd.main", "--data", str(tmp_path / "d"),
         "--db-synchronous", "NORMAL", "--nbd-socket", ""],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "log", "wb"),
    )
    try:
        for _ in range(300):  # the first connection starts the daemon
            try:
                if Client(http).request("GET", "/healthz", auth=False, timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        run = subprocess.run(NEFELI + ["volume", "create", "act", "1M", "--data", str(tmp_path / "d")], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        out = subprocess.run(["nbdinfo", "--size", f"nbd://127.0.0.1:{nbd_port}/act"], capture_output=True,
                             text=True, timeout=60)
        assert out.stdout.strip() == str(MiB), out.stderr + (tmp_path / "log").read_text()[-2000:]
    finally:
        proc.terminate()
        proc.wait(30)


def test_metrics_show_volumes_and_nbd(vd: VolumeDaemon) -> None:
    vd.volume("create", "metered", "4M")
    qemu_io(vd.uri("metered"), "write -P 3 0 8192", "read -P 3 0 8192")
    body = vd.daemon.client().request("GET", "/metrics", auth=False).body.decode()
    values = {}
    for line in body.splitlines():
        if line.startswith("nefeli_blockd_") and " " in line:
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    assert values["nefeli_blockd_volumes"] >= 1
    assert values["nefeli_blockd_nbd_bytes_written_total"] >= 8192
    assert values["nefeli_blockd_nbd_bytes_read_total"] >= 8192
    assert "nefeli_blockd_nbd_protocol_errors_total" in values
