"""Workloads shared by bench_store.py (pytest-benchmark) and store_compare.py (ratios vs goals).

Holds no benchmarks itself.  Scratch stores go under $NEFELI_BENCH_DIR (default
/var/tmp), which should be on the disk being measured.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import blake3

from storage_engine.blocks.blockstore import BlockStore
from storage_engine.blocks.config import StoreConfig

MiB = 1 << 20
GiB = 1 << 30
BLOCK = 4 * MiB

Blocks = list[tuple[bytes, memoryview]]


def scratch_root() -> Path:
    root = Path(os.environ.get("NEFELI_BENCH_DIR", "/var/tmp"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def scratch_dir(prefix: str = "nefeli-bench-") -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=scratch_root()))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def unique_blocks(total: int, seed: int = 1, block: int = BLOCK) -> Blocks:
    """`total` bytes of unique, incompressible data in blocks, with their blake3 digests
    (hashed up front: the ingest path gets (digest, data) pairs, as blockd does)."""
    data = bytearray(total)
    mv = memoryview(data)
    for i in range(0, total, block):
        mv[i : i + block] = blake3.blake3(b"%d:%d" % (seed, i)).digest(length=min(block, total - i))
    views = [mv[i : i + block] for i in range(0, total, block)]
    return [(blake3.blake3(v, max_threads=blake3.blake3.AUTO).digest(), v) for v in views]


def bench_config(**overrides: object) -> StoreConfig:
    base: dict[str, object] = dict(compression=False, reserve_bytes=0, gc_grace_seconds=0)
    base.update(overrides)
    return StoreConfig(**base)  # type: ignore[arg-type]


def open_store(path: Path, **overrides: object) -> BlockStore:
    return BlockStore.open(path, bench_config(**overrides))


def drop_caches_for(path: Path) -> None:
    """Push a store's dirty pages out so one run does not bill the next."""
    os.sync()


def ingest(store: BlockStore, blocks: Blocks) -> int:
    """Put every block (one put_many: the store pipelines hashing, appends and commits)."""
    store.put_many("blake3", blocks)
    return sum(len(v) for _, v in blocks)


def plain_write(path: Path, blocks: Blocks) -> int:
    """The baseline: the same bytes with buffered writes and one fsync."""
    with open(path, "wb") as f:
        for _, v in blocks:
            f.write(v)
        f.flush()
        os.fsync(f.fileno())
    return sum(len(v) for _, v in blocks)


def random_reads(store: BlockStore, digests: list[bytes], count: int, seed: int = 7) -> int:
    """Read `count` random blocks (verified, zero-copy); returns bytes read."""
    rnd = random.Random(seed)
    total = 0
    for _ in range(count):
        buf = store.get_buffer("blake3", rnd.choice(digests))
        total += len(buf)
        del buf
    return total


def half_garbage(store: BlockStore, blocks: Blocks) -> int:
    """Reference every other block, leaving half of the store garbage; returns garbage bytes."""
    store.change_refcounts("blake3", {d: 1 for d, _ in blocks[::2]})
    store.flush()
    return store.stats().garbage_bytes


def timed(fn, *args, **kwargs) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out
