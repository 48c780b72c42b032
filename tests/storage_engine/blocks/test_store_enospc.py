"""A full disk (a small tmpfs): puts fail cleanly with StoreFull and the store stays usable."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashmaps import block_digest
from peers import require_root
from storage_engine.blocks.blockstore import BlockStore
from storage_engine.blocks.errors import StoreFull
from storage_engine.maps.mapstore import MapStore
from store_support import KiB, MiB, small_config


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    require_root("mounts a small tmpfs to fill it")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], check=False).returncode:
            subprocess.run(["umount", "-l", str(mnt)], check=False)  # a failed test left files open
        shutil.rmtree(mnt, ignore_errors=True)


def free_bytes(path: Path) -> int:
    v = os.statvfs(path)
    return v.f_bavail * v.f_frsize


@pytest.mark.parametrize("durability", ["group", "each"])
def test_enospc_fails_the_put_and_leaves_the_store_usable(small_fs: Path, durability: str) -> None:
    rnd = random.Random(50)
    cfg = dict(segment_size=1 * MiB, reserve_bytes=1 * MiB, compression=False, durability=durability)
    store = BlockStore.open(small_fs / "s", small_config(**cfg))
    acked: list[tuple[bytes, bytes, object]] = []
    failed: list[bytes] = []
    try:
        with pytest.raises(StoreFull):
            for _ in range(1000):
                data = rnd.randbytes(200 * KiB)
                d = block_digest(data, "blake3")
                try:
                    store.put("blake3", data, d)
                except StoreFull:
                    failed.append(data)
                    raise
                acked.append((d, data, MapStore(store).add("blake3", len(data), len(data), [d])))
        assert free_bytes(small_fs) < 300 * KiB
        # still serving: every acked block reads back, the failed one is absent (or intact)
        for d, data, _ in acked:
            assert store.get("blake3", d) == data
        bad = block_digest(failed[0], "blake3")
        assert not store.has("blake3", bad) or store.get("blake3", bad) == failed[0]
        # further puts keep failing cleanly, without corrupting anything
        for _ in range(3):
            with pytest.raises(StoreFull):
                store.put("blake3", rnd.randbytes(300 * KiB))
        assert store.verify().ok and store.scrub().ok

        # free space the store's way: drop half the objects (metadata only) and collect
        for _d, _data, key in acked[::2]:
            MapStore(store).drop(key)  # type: ignore[arg-type]
        report = store.gc()
        assert report.bytes_reclaimed > 0 and report.stopped is None
        more = rnd.randbytes(200 * KiB)
        d_more = store.put("blake3", more)
        assert store.get("blake3", d_more) == more
        for d, data, _ in acked[1::2]:
            assert store.get("blake3", d) == data
        assert store.verify().ok
    finally:
        store.close()
    # and it reopens cleanly
    with BlockStore.open(small_fs / "s", small_config(**cfg)) as store:
        for d, data, _ in acked[1::2]:
            assert store.get("blake3", d) == data
        assert store.get("blake3", d_more) == more
        assert store.verify().ok and store.scrub().ok


def test_enospc_while_the_store_is_reopened(small_fs: Path) -> None:
    """Fill the disk behind the store's back; it still opens, reads, and refuses puts cleanly."""
    rnd = random.Random(51)
    cfg = small_config(segment_size=512 * KiB, reserve_bytes=0, compression=False)
    with BlockStore.open(small_fs / "s", cfg) as store:
        ds = store.put_many("blake3", [rnd.randbytes(100 * KiB) for _ in range(20)])
    ballast = small_fs / "ballast"
    with open(ballast, "wb") as f:
        try:
            while True:
                f.write(b"\xaa" * (64 * KiB))
                f.flush()
        except OSError:
            pass
    with BlockStore.open(small_fs / "s", cfg) as store:
        for d in ds:
            assert block_digest(store.get("blake3", d), "blake3") == d
        with pytest.raises(StoreFull):
            for _ in range(100):
                store.put("blake3", rnd.randbytes(100 * KiB))
        ballast.unlink()
        d = store.put("blake3", b"room again" * 1000)
        assert store.get("blake3", d) == b"room again" * 1000
        assert store.verify().ok
