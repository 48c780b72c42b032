"""The nefeli ExtStorage provider under a live single-node Ganeti 3.0 (Debian's ganeti, fake hypervisor).

Ganeti runs in its own namespaces (tests/ganeti_cluster.py) and finds the
provider where `nefeli volume provider install` put it, in its ExtStorage
search path (/srv/ganeti/extstorage, a tmpfs of the cluster's mount
namespace). nefeli-blockd runs outside; the provider scripts, run by Ganeti's
node daemon with a cleaned environment, reach it through its admin socket
under the data directory. Each step is checked on both sides: what Ganeti
reports, and the volume as blockd has it (`nefeli volume ls/info`).
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from blockd_helpers import REPO
from ganeti_cluster import INSTANCE_ARGS, GanetiCluster, require_cluster_peers
from peers import require_program
from volume_helpers import NEFELI, VolumeDaemon, qemu_io, read_all, start_volume_daemon

pytestmark = [pytest.mark.peer("ganeti"), pytest.mark.root]
MiB = 1 << 20
GiB = 1 << 30
VM = "vm1.example.test"


@pytest.fixture
def cluster_and_blockd(tmp_path: Path) -> Iterator[tuple[GanetiCluster, VolumeDaemon]]:
    require_cluster_peers()
    require_program("qemu-io", "qemu-img")
    vd = start_volume_daemon(tmp_path)
    cluster = GanetiCluster(tmp_path / "state", "diskless,file,ext")
    try:
        cluster.start()
        yield cluster, vd
    finally:
        cluster.stop()
        vd.daemon.stop_cleanly()


def _volumes(vd: VolumeDaemon) -> dict[str, dict]:
    return {v["name"]: v for v in json.loads(vd.volume("ls", "--json").stdout)}


def _disks(cluster: GanetiCluster) -> list[tuple[str, int]]:
    """(ExtStorage volume name, size in MiB) of each of the instance's disks, from Ganeti's config."""
    out = cluster.run("gnt-instance", "list", "--no-headers", "--separator=|", "-o", "disk.sizes", VM).stdout.strip()
    sizes = [int(s) for s in out.split(",")]
    config = json.loads((cluster.state / "lib" / "config.data").read_text())
    (inst,) = [i for i in config["instances"].values() if i["name"] == VM]
    names = []
    for uuid in inst["disks"]:
        provider, vol = config["disks"][uuid]["logical_id"]
        assert provider == "nefeli"
        names.append(vol)
    return list(zip(names, sizes, strict=True))


def test_instance_disks_are_created_grown_and_removed_in_blockd(
        cluster_and_blockd: tuple[GanetiCluster, VolumeDaemon], tmp_path: Path) -> None:
    cluster, vd = cluster_and_blockd
    r = cluster.run(*NEFELI, "volume", "provider", "install", "/srv/ganeti/extstorage", "--data", str(vd.data),
                    cwd=REPO)
    assert "/srv/ganeti/extstorage/nefeli" in r.stdout
    diagnose = cluster.run("gnt-storage", "diagnose").stdout
    assert "Provider: nefeli" in diagnose and "status: valid" in diagnose and "origin" in diagnose, diagnose
    assert _volumes(vd) == {}

    # add: Ganeti's create (with its own EXTP_PROVIDER and EXTP_ACCESS), attach, setinfo, then start
    cluster.run("gnt-instance", "add", "-t", "ext", "--disk", "0:size=1G,provider=nefeli", *INSTANCE_ARGS, VM)
    assert cluster.run("gnt-instance", "list", "--no-headers", "-o", "status", VM).stdout.strip() == "running"
    ((disk0, size0),) = _disks(cluster)
    assert size0 == 1024 and disk0.endswith(".ext.disk0")
    vols = _volumes(vd)
    assert set(vols) == {disk0}
    assert vols[disk0]["size"] == GiB and vols[disk0]["blocks"]["zero"] == GiB // vols[disk0]["block_size"]
    assert vols[disk0]["metadata"] == f"originstname+{VM}" and not vols[disk0]["snapshot"]
    # what the guest would write, through the NBD export the attach script names
    assert qemu_io(vd.uri(disk0), "write -P 0x5a 4095 10000", "flush").returncode == 0

    # grow-disk: Ganeti's grow (VOL_SIZE, VOL_NEW_SIZE), the data stays
    cluster.run("gnt-instance", "grow-disk", VM, "0", "1G")
    assert _disks(cluster) == [(disk0, 2048)]
    assert vd.info(disk0)["size"] == 2 * GiB
    assert qemu_io(vd.uri(disk0), "read -P 0x5a 4095 10000", "read -P 0 14095 100000", read_only=True).returncode == 0
    cluster.run("gnt-instance", "grow-disk", "--absolute", VM, "0", "3G")
    assert vd.info(disk0)["size"] == 3 * GiB

    # a second disk cloned from a golden image's snapshot (origin=, as Synnefo creates VM disks)
    vd.volume("create", "golden", "64M")
    image = random.Random(12).randbytes(9 * MiB + 7)
    src = tmp_path / "golden.raw"
    src.write_bytes(image)
    subprocess.run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(src), vd.uri("golden")], check=True,
                   timeout=120)
    vd.volume("snapshot", "golden", "golden@v1")
    cluster.run("gnt-instance", "modify", "--disk", "add:size=1G,provider=nefeli,origin=golden@v1", VM)
    (_, (disk1, size1)) = _disks(cluster)
    assert size1 == 1024 and disk1 != disk0
    clone = vd.info(disk1)
    assert clone["size"] == GiB and clone["parent"] == "golden@v1" and clone["blocks"]["shared"] == 3
    assert read_all(vd.uri(disk1), tmp_path / "disk1.raw")[: len(image)] == image
    cluster.run("gnt-instance", "shutdown", VM)  # the fake hypervisor has no hotplug
    cluster.run("gnt-instance", "modify", "--disk", "1:remove", VM)
    assert set(_volumes(vd)) == {disk0, "golden", "golden@v1"}

    # the provider's one-line errors reach the operator through Ganeti, and nothing is left behind
    for disk, words in (("add:size=1G,provider=nefeli,origin=nosuch@v1", ("nefeli create", "nosuch@v1")),
                        ("add:size=1G,provider=nefeli,colour=blue", ("colour",))):
        r = cluster.run("gnt-instance", "modify", "--disk", disk, VM, check=False)
        assert r.returncode != 0 and all(w in r.stdout + r.stderr for w in words), (disk, r.stdout, r.stderr)
        assert set(_volumes(vd)) == {disk0, "golden", "golden@v1"} and len(_disks(cluster)) == 1

    # remove: shutdown, detach, remove; the volume is gone from blockd, the image stays
    cluster.run("gnt-instance", "remove", "-f", VM)
    assert cluster.run("gnt-instance", "list", "--no-headers", "-o", "name").stdout.strip() == ""
    assert set(_volumes(vd)) == {"golden", "golden@v1"}
    assert vd.volume("info", disk0, check=False).returncode == 1
    # Ganeti logs each action it ran but attach (whose output it reads): all of them were used
    logs = {p.name.split("-")[0] for p in (cluster.state / "log" / "extstorage").iterdir()}
    assert logs == {"create", "open", "setinfo", "grow", "detach", "remove"}, logs
