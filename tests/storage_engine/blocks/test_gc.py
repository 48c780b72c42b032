"""GC: reclaims exactly the garbage (as disk space), keeps every live block readable, never stalls readers."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from hashmaps import block_digests
from storage_engine.blocks.blockstore import BlockStore
from storage_engine.blocks.segments import SEGMENT_HEADER_SIZE
from storage_engine.maps.mapstore import MapStore
from store_support import (
    KiB,
    MiB,
    allocated_size,
    apparent_size,
    compressible_block,
    open_deleted_fds,
    opened,
    random_block,
    segment_paths,
)

BS = 16 * KiB


def build(store: BlockStore, rnd: random.Random, objects: int = 40, blocks: int = 6) -> list[tuple[object, bytes]]:
    """Objects of random (some compressible) blocks, each block shared by at most a few objects."""
    pool = [random_block(rnd, BS) if rnd.random() < 0.7 else compressible_block(rnd, BS) for _ in range(objects * 3)]
    out = []
    for _ in range(objects):
        data = b"".join(rnd.choice(pool) for _ in range(blocks - 1)) + random_block(rnd, rnd.randint(1, BS))
        hashes = block_digests(data, "blake3", BS)
        mv = memoryview(data)
        store.put_many("blake3", [(h, mv[i * BS : (i + 1) * BS]) for i, h in enumerate(hashes)])
        out.append((MapStore(store).add("blake3", len(data), BS, hashes), data))
    return out


def read_object(store: BlockStore, key: object) -> bytes:
    hmap = MapStore(store).get(key)  # type: ignore[arg-type]
    return b"".join(bytes(x) for x in MapStore(store).iter_data(hmap))


def test_gc_reclaims_exactly_the_garbage(tmp_path: Path) -> None:
    rnd = random.Random(20)
    with opened(tmp_path / "s") as store:
        objects = build(store, rnd)
        loose = store.put_many("blake3", [random_block(rnd, 5000) for _ in range(10)])  # never referenced
        for key, _data in objects[::2]:
            MapStore(store).drop(key)
        live = objects[1::2]
        store.flush()
        entries = [b for b in store.iter_blocks() if not b.zero]
        garbage = sum(b.record_len for b in entries if b.refcount == 0)
        live_bytes = sum(b.record_len for b in entries if b.refcount > 0)
        assert garbage > 0 and all(store.refcount("blake3", d) == 0 for d in loose)
        st = store.stats()
        assert st.garbage_bytes == garbage and st.dead_bytes == 0
        files_before = segment_paths(store)
        size_before = apparent_size(files_before)
        alloc_before = allocated_size(files_before)

        report = store.gc()

        files_after = segment_paths(store)
        size_after = apparent_size(files_after)
        # what is left is exactly the live records (plus one header per segment file)
        assert size_after == live_bytes + SEGMENT_HEADER_SIZE * len(files_after)
        assert size_before - size_after == garbage + SEGMENT_HEADER_SIZE * (len(files_before) - len(files_after))
        assert report.bytes_reclaimed == size_before - size_after
        # and the file system agrees (allocation rounds to 4 KiB pages per file)
        alloc_after = allocated_size(files_after)
        assert alloc_before - alloc_after >= garbage - 4096 * len(files_before)
        assert not open_deleted_fds(store.seg_dir)
        st = store.stats()
        assert st.garbage_bytes == 0 and st.stored_bytes == live_bytes and st.disk_bytes == alloc_after
        assert st.blocks == sum(1 for b in entries if b.refcount > 0)
        for key, data in live:
            assert read_object(store, key) == data
        for d in loose:
            assert not store.has("blake3", d)
        assert store.verify().ok and store.scrub().ok
    with opened(tmp_path / "s") as store:  # and the result is durable
        assert store.recovery is not None and store.recovery.clean
        for key, data in live:
            assert read_object(store, key) == data
        assert store.verify().ok


def test_gc_respects_the_grace_period(tmp_path: Path) -> None:
    rnd = random.Random(21)
    with opened(tmp_path / "s", gc_grace_seconds=3600) as store:
        ds = store.put_many("blake3", [random_block(rnd, 5000) for _ in range(20)])
        report = store.gc()
        assert report.blocks_removed == 0
        assert all(store.has("blake3", d) for d in ds)
        report = store.gc(grace_seconds=0)
        assert report.blocks_removed == 20 and not any(store.has("blake3", d) for d in ds)


def test_gc_min_garbage_ratio(tmp_path: Path) -> None:
    rnd = random.Random(22)
    with opened(tmp_path / "s") as store:
        objects = build(store, rnd, objects=20)
        MapStore(store).drop(objects[0][0])
        report = store.gc(min_garbage_ratio=0.9)
        assert report.segments_compacted == 0
        report = store.gc(min_garbage_ratio=0.0)
        assert report.segments_compacted >= 1
        assert store.stats().garbage_bytes == 0


def _before_the_switch(monkeypatch: pytest.MonkeyPatch, action) -> list[int]:  # type: ignore[no-untyped-def]
    """Run `action` once, after GC has scanned and copied but before it switches the index."""
    import storage_engine.blocks.gc as gc_module

    original = gc_module._Outputs.sync
    fired: list[int] = []

    def hooked(self):  # type: ignore[no-untyped-def]
        if not fired:
            fired.append(1)
            action()
        return original(self)

    monkeypatch.setattr(gc_module._Outputs, "sync", hooked)
    return fired


def test_gc_skips_a_block_re_referenced_before_the_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A map add that lands between GC's scan and its switch keeps the block alive."""
    rnd = random.Random(23)
    with opened(tmp_path / "s") as store:
        data = random_block(rnd, BS)
        key = MapStore(store).add("blake3", BS, BS, [store.put("blake3", data)])
        MapStore(store).drop(key)
        fired = _before_the_switch(
            monkeypatch, lambda: MapStore(store).add("blake3", BS, BS, block_digests(data, "blake3", BS))
        )
        report = store.gc()
        monkeypatch.undo()
        assert fired and report.conflicts == 1 and report.segments_compacted == 0
        assert read_object(store, key) == data
        assert store.verify().ok
        MapStore(store).drop(key)
        store.gc()
        assert store.stats().blocks == 0 and store.verify().ok


def test_gc_skips_a_block_put_again_before_the_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A duplicate put of an unreferenced block during GC: the put's block must survive."""
    rnd = random.Random(24)
    with opened(tmp_path / "s") as store:
        data = random_block(rnd, 5000)
        d = store.put("blake3", data)
        fired = _before_the_switch(monkeypatch, lambda: store.put("blake3", data))
        report = store.gc(grace_seconds=0)
        monkeypatch.undo()
        assert fired and report.conflicts == 1 and report.segments_compacted == 0
        assert store.get("blake3", d) == data
        assert store.verify().ok


def test_gc_compacts_the_open_segment(tmp_path: Path) -> None:
    with opened(tmp_path / "s", segment_size=1 * MiB) as store:
        keep = store.put("blake3", b"keep" * 1000)
        key = MapStore(store).add("blake3", 4000, 4000, [keep])
        store.put_many("blake3", [os.urandom(3000) for _ in range(10)])
        assert len(segment_paths(store)) == 1
        report = store.gc()
        assert report.blocks_removed == 10
        assert store.stats().garbage_bytes == 0
        assert read_object(store, key) == b"keep" * 1000
        d = store.put("blake3", b"after gc" * 100)  # puts continue in a fresh segment
        assert store.get("blake3", d) == b"after gc" * 100


def test_gc_never_stalls_or_fails_readers(tmp_path: Path) -> None:
    rnd = random.Random(25)
    with opened(tmp_path / "s") as store:
        objects = build(store, rnd, objects=60)
        for key, _ in objects[::2]:
            MapStore(store).drop(key)
        live = objects[1::2]
        held = store.get_buffer("blake3", MapStore(store).get(live[0][0]).hashes[0])  # a view across GC
        held_copy = bytes(held)
        stop = threading.Event()
        errors: list[BaseException] = []
        worst = [0.0]
        reads = [0]

        def reader(seed: int) -> None:
            r = random.Random(seed)
            try:
                while not stop.is_set():
                    key, data = r.choice(live)
                    t0 = time.perf_counter()
                    got = read_object(store, key)
                    worst[0] = max(worst[0], time.perf_counter() - t0)
                    reads[0] += 1
                    assert got == data
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        report = store.gc()
        time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
        assert not errors, errors[0]
        assert report.segments_compacted > 0 and reads[0] > 10
        assert worst[0] < 1.0
        # the view taken before GC still shows the right bytes; its file is gone but mapped
        assert bytes(held) == held_copy
        assert open_deleted_fds(store.seg_dir)
        del held
        assert not open_deleted_fds(store.seg_dir)


def test_gc_with_concurrent_puts_and_map_changes(tmp_path: Path) -> None:
    rnd = random.Random(26)
    with opened(tmp_path / "s") as store:
        objects = build(store, rnd, objects=30)
        for key, _ in objects[::3]:
            MapStore(store).drop(key)
        live = [o for i, o in enumerate(objects) if i % 3]
        added: list[tuple[object, bytes]] = []
        errors: list[BaseException] = []

        def writer() -> None:
            r = random.Random(99)
            try:
                for _ in range(20):
                    data = random_block(r, 3 * BS)
                    hashes = block_digests(data, "blake3", BS)
                    store.put_many("blake3", [data[i * BS : (i + 1) * BS] for i in range(3)])
                    added.append((MapStore(store).add("blake3", len(data), BS, hashes), data))
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=writer)
        t.start()
        for _ in range(3):
            store.gc(grace_seconds=5)
        t.join()
        assert not errors
        for key, data in live + added:
            assert read_object(store, key) == data
        assert store.verify().ok


def test_gc_frees_space_on_the_file_system(tmp_path: Path) -> None:
    """Measured with statvfs on a private tmpfs: freed space equals the garbage."""
    from peers import require_root

    require_root("mounts a tmpfs to measure freed space")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], check=True)
    try:
        rnd = random.Random(27)
        with opened(mnt / "s", segment_size=1 * MiB, compression=False) as store:
            objects = build(store, rnd, objects=60, blocks=8)
            for key, _ in objects[::2]:
                MapStore(store).drop(key)
            store.flush()
            garbage = store.stats().garbage_bytes

            def free() -> int:
                v = os.statvfs(mnt)
                return v.f_bavail * v.f_frsize

            before = free()
            store.gc()
            freed = free() - before
            segments = len(segment_paths(store))
            assert garbage - 4096 * 8 <= freed <= garbage + 4096 * (segments + 8), (garbage, freed)
    finally:
        if subprocess.run(["umount", str(mnt)], check=False).returncode:
            subprocess.run(["umount", "-l", str(mnt)], check=False)  # a failed test left files open
        shutil.rmtree(mnt, ignore_errors=True)
