"""Block store benchmarks (issue: block store), pytest-benchmark.

Run: .venv/bin/python -m pytest benchmarks/bench_store.py --benchmark-enable --benchmark-only
(benchmarks/store_compare.py prints the same workloads as ratios against the goals.)
Scratch data goes to $NEFELI_BENCH_DIR (default /var/tmp): about 5 GiB.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench_store_workloads import (
    GiB,
    Blocks,
    half_garbage,
    ingest,
    open_store,
    plain_write,
    random_reads,
    scratch_dir,
    unique_blocks,
)
from storage_engine.blocks.blockstore import BlockStore


@pytest.fixture(scope="module")
def one_gib() -> Blocks:
    return unique_blocks(GiB, seed=1)


@pytest.fixture
def scratch() -> Iterator[Path]:
    with scratch_dir() as d:
        yield d


def _fresh(scratch: Path, counter: list[int], **cfg: object) -> tuple[tuple[BlockStore], dict[str, object]]:
    counter[0] += 1
    os.sync()
    return (open_store(scratch / f"s{counter[0]}", **cfg),), {}


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "trusted"])
def test_ingest_1gib_unique(benchmark, one_gib: Blocks, scratch: Path, verify: bool) -> None:  # type: ignore[no-untyped-def]
    """1 GiB of unique 4 MiB blake3 blocks, compression off, durable at return."""
    counter = [0]
    stores: list[BlockStore] = []

    def setup():  # type: ignore[no-untyped-def]
        args, kwargs = _fresh(scratch, counter)
        stores.append(args[0])
        return args, kwargs

    benchmark.extra_info["bytes"] = GiB
    benchmark.pedantic(lambda s: s.put_many("blake3", one_gib, verify=verify), setup=setup, rounds=3)
    for s in stores:
        s.close()


def test_plain_buffered_write_and_fsync(benchmark, one_gib: Blocks, scratch: Path) -> None:  # type: ignore[no-untyped-def]
    """The baseline of the ingest goal: the same bytes, buffered writes, one fsync."""
    counter = [0]

    def setup():  # type: ignore[no-untyped-def]
        counter[0] += 1
        os.sync()
        return (scratch / f"plain{counter[0]}",), {}

    benchmark.extra_info["bytes"] = GiB
    benchmark.pedantic(lambda p: plain_write(p, one_gib), setup=setup, rounds=3)


def test_reingest_1gib_duplicates(benchmark, one_gib: Blocks, scratch: Path) -> None:  # type: ignore[no-untyped-def]
    """The same 1 GiB again: every block a duplicate of a referenced one (one lookup each)."""
    store = open_store(scratch / "s")
    try:
        ingest(store, one_gib)
        store.change_refcounts("blake3", {d: 1 for d, _ in one_gib})
        benchmark.extra_info["bytes"] = GiB
        benchmark.pedantic(lambda: store.put_many("blake3", one_gib), rounds=10)
    finally:
        store.close()


@pytest.fixture(scope="module")
def store_4gib() -> Iterator[tuple[BlockStore, list[bytes]]]:
    with scratch_dir() as d:
        store = open_store(d / "s")
        digests: list[bytes] = []
        for part in range(4):
            blocks = unique_blocks(GiB, seed=100 + part)
            store.put_many("blake3", blocks, verify=False)
            digests += [dg for dg, _ in blocks]
            del blocks
        store.rotate()
        random_reads(store, digests, 2048)  # warm the page cache and the mappings
        try:
            yield store, digests
        finally:
            store.close()


def test_random_reads_4gib_warm(benchmark, store_4gib: tuple[BlockStore, list[bytes]]) -> None:  # type: ignore[no-untyped-def]
    """Random 4 MiB blocks from a 4 GiB store in the page cache: verified, zero-copy."""
    store, digests = store_4gib
    benchmark.extra_info["bytes"] = 256 * 4 * (1 << 20)
    benchmark.pedantic(lambda: random_reads(store, digests, 256), rounds=5)


def test_gc_half_garbage(benchmark, scratch: Path) -> None:  # type: ignore[no-untyped-def]
    """GC of a 1 GiB store where every other block is garbage."""
    counter = [0]
    garbage: list[int] = []

    def setup():  # type: ignore[no-untyped-def]
        counter[0] += 1
        store = open_store(scratch / f"g{counter[0]}")
        blocks = unique_blocks(GiB, seed=200 + counter[0])
        store.put_many("blake3", blocks, verify=False)
        garbage.append(half_garbage(store, blocks))
        os.sync()
        return (store,), {}

    def run(store: BlockStore) -> None:
        report = store.gc()
        assert report.bytes_reclaimed >= garbage[-1]
        store.close()

    benchmark.extra_info["bytes"] = GiB // 2
    benchmark.pedantic(run, setup=setup, rounds=2)
