"""The store drops what it has written (and synced) from the page cache, and reads ahead large records.

Residency is measured with mincore(2) on a mapping of each segment file, the
same call fincore(1) makes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import random
from pathlib import Path

import pytest

from hashmaps import block_digests
from storage_engine.blocks.blockstore import BlockStore
from storage_engine.maps.mapstore import MapStore
from store_support import KiB, MiB, opened, random_block, segment_paths

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]


def resident_bytes(path: Path) -> int:
    """Bytes of `path` in the page cache (whole pages)."""
    size = path.stat().st_size
    if size == 0:
        return 0
    # a private mapping is writable, which ctypes needs for an address; nothing is written
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as mm:
        pages = -(-size // mmap.PAGESIZE)
        vec = (ctypes.c_ubyte * pages)()
        anchor = ctypes.c_char.from_buffer(mm)
        try:
            if _libc.mincore(ctypes.addressof(anchor), size, vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
        finally:
            del anchor
        return sum(1 for v in vec if v & 1) * mmap.PAGESIZE


def resident_in_store(store: BlockStore) -> int:
    return sum(resident_bytes(p) for p in segment_paths(store))


def put_random(store: BlockStore, rnd: random.Random, n: int, size: int) -> list[tuple[bytes, bytes]]:
    blocks = [random_block(rnd, size) for _ in range(n)]  # random: stored raw, not compressed
    return list(zip(store.put_many("blake3", blocks), blocks))


@pytest.mark.parametrize("drop", [True, False])
def test_written_records_leave_the_page_cache_once_synced(tmp_path: Path, drop: bool) -> None:
    rnd = random.Random(1)
    with opened(tmp_path / "s", segment_size=64 * MiB, drop_cache_after_sync=drop) as store:
        stored = put_random(store, rnd, 8, 1 * MiB)
        store.flush()
        resident = resident_in_store(store)
        if drop:
            assert resident <= 64 * KiB, resident  # at most the unaligned tail pages
        else:
            assert resident >= 7 * MiB, resident
        for d, b in stored:  # dropping costs nothing but a read from disk
            assert store.get("blake3", d) == b


def test_small_commits_drop_once_a_megabyte_has_gathered(tmp_path: Path) -> None:
    rnd = random.Random(2)
    with opened(tmp_path / "s", segment_size=64 * MiB) as store:
        put_random(store, rnd, 1, 64 * KiB)
        store.flush()
        assert resident_in_store(store) >= 64 * KiB  # under the threshold: no syscall yet
        for _ in range(20):
            put_random(store, rnd, 1, 64 * KiB)
            store.flush()
        assert resident_in_store(store) < 1 * MiB


def test_gc_output_leaves_the_page_cache(tmp_path: Path) -> None:
    rnd = random.Random(3)
    bs = 256 * KiB
    with opened(tmp_path / "s", segment_size=64 * MiB) as store:
        keys = []
        for _ in range(8):
            data = random_block(rnd, 4 * bs)
            hashes = block_digests(data, "blake3", bs)
            store.put_many("blake3", [(h, data[i * bs : (i + 1) * bs]) for i, h in enumerate(hashes)])
            keys.append((MapStore(store).add("blake3", len(data), bs, hashes), data))
        for key, _ in keys[::2]:
            MapStore(store).drop(key)
        store.flush()
        report = store.gc(min_garbage_ratio=0.0)
        assert report.bytes_reclaimed > 0
        assert resident_in_store(store) <= 64 * KiB
        for key, data in keys[1::2]:
            hmap = MapStore(store).get(key)
            assert b"".join(bytes(x) for x in MapStore(store).iter_data(hmap)) == data


def test_large_reads_from_sealed_segments_come_back_whole(tmp_path: Path) -> None:
    """The read-ahead advice on a mapping must not change what a read returns."""
    rnd = random.Random(4)
    with opened(tmp_path / "s", segment_size=4 * MiB) as store:
        stored = put_random(store, rnd, 6, 1 * MiB + 123)  # rotates: earlier segments are sealed
        store.flush()
        for d, b in stored:
            assert bytes(store.get_buffer("blake3", d)) == b
