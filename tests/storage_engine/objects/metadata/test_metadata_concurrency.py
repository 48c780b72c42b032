"""Concurrency: many writers on one container (tasks, connections, threads,
processes) keep the usage counters exact; readers see whole transactions only."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from storage_engine.objects.metadata import ContainerPolicy, MetadataStore, PutItem, SyncMetadataStore, errors
from storage_engine import errors as kinds
from metadata_support import mapref

A, C = "alice", "c"
REPO = Path(__file__).resolve().parents[4]


async def _check_consistent(md: MetadataStore) -> None:
    assert await md.maintenance.verify() == []
    listed = await md.listing.objects(A, C)
    usage = (await md.containers.get(A, C)).usage
    assert (usage.object_count, usage.bytes_used) == (len(listed), sum(e.size for e in listed))


async def _random_ops(md: MetadataStore, seed: int, n: int, serials: list[int]) -> None:
    rnd = random.Random(seed)
    for _ in range(n):
        name = f"o{rnd.randrange(15)}"
        op = rnd.random()
        try:
            if op < 0.55:
                r = await md.objects.put(A, C, name, map=mapref(f"{seed}-{rnd.random()}", rnd.randrange(1000)),
                                         modified_by=A)
                serials.append(r.version.serial)
            elif op < 0.75:
                await md.objects.delete(A, C, name, modified_by=A)
            elif op < 0.9:
                r = await md.objects.copy((A, C, name), (A, C, f"o{rnd.randrange(15)}"), modified_by=A)
                serials.append(r.version.serial)
            else:
                await md.objects.move((A, C, name), (A, C, f"o{rnd.randrange(15)}"), modified_by=A)
        except errors.ObjectNotFound:
            pass


@pytest.mark.parametrize("versioning", ["auto", "none"])
async def test_many_concurrent_tasks_on_one_container(tmp_path: Path, versioning: str) -> None:
    async with await MetadataStore.open(tmp_path / "m.db", synchronous="NORMAL") as md:
        await md.accounts.create(A)
        await md.containers.create(A, C, policy=ContainerPolicy(versioning=versioning))
        serials: list[int] = []
        await asyncio.gather(*(_random_ops(md, seed, 15, serials) for seed in range(40)))
        assert len(serials) == len(set(serials)) > 100
        await _check_consistent(md)


async def test_two_stores_on_one_file(tmp_path: Path) -> None:
    """Two writer connections (as the daemon and the CLI would have) contend for the lock."""
    path = tmp_path / "m.db"
    async with await MetadataStore.open(path, synchronous="NORMAL") as one, \
            await MetadataStore.open(path, synchronous="NORMAL") as two:
        await one.accounts.create(A)
        await one.containers.create(A, C)
        serials: list[int] = []
        await asyncio.gather(*(_random_ops(md, seed, 15, serials) for seed, md in
                               enumerate([one, two] * 10)))
        assert len(serials) == len(set(serials))
        await _check_consistent(one)
        await _check_consistent(two)


def test_threads_with_their_own_sync_stores(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with SyncMetadataStore(path) as s:
        s.accounts.create(A)
        s.containers.create(A, C, policy=ContainerPolicy(versioning="none"))

    def writer(k: int) -> None:
        with SyncMetadataStore(path, synchronous="NORMAL", busy_timeout=20) as s:
            for i in range(40):
                s.objects.put(A, C, f"t{k}-{i % 10}", map=mapref(f"{k}-{i}", 100 + i), modified_by=A)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with SyncMetadataStore(path) as s:
        assert s.maintenance.verify() == []
        usage = s.containers.get(A, C).usage
        assert usage.object_count == 50
        assert usage.bytes_used == 5 * sum(100 + i for i in range(30, 40))


def test_separate_processes(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with SyncMetadataStore(path) as s:
        s.accounts.create(A)
        s.containers.create(A, C)
    code = textwrap.dedent(f"""
        import sys, hashlib
        sys.path.insert(0, {str(REPO)!r})
        from storage_engine.objects.metadata import SyncMetadataStore, MapRef
        k = int(sys.argv[1])
        with SyncMetadataStore({str(path)!r}, busy_timeout=30) as s:
            for i in range(30):
                ref = MapRef("blake3", 10, hashlib.sha256(f"{{k}}-{{i}}".encode()).digest())
                s.objects.put("alice", "c", f"p{{i % 7}}", map=ref, modified_by="alice")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(k)]) for k in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    with SyncMetadataStore(path) as s:
        usage = s.containers.get(A, C).usage
        assert (usage.object_count, usage.history_count) == (7, 90 - 7)
        assert s.maintenance.verify() == []


async def test_readers_see_whole_transactions(tmp_path: Path) -> None:
    async with await MetadataStore.open(tmp_path / "m.db", synchronous="NORMAL", readers=3) as md:
        await md.accounts.create(A)
        await md.containers.create(A, C)
        done = asyncio.Event()

        async def write() -> None:
            for b in range(30):
                await md.objects.put_many(A, C, [PutItem(f"b{b:02d}-{i:02d}", mapref(f"{b}-{i}")) for i in range(25)],
                                          modified_by=A)
            done.set()

        async def read() -> int:
            n = 0
            while not done.is_set():
                page = await md.listing.objects(A, C)
                assert len(page) % 25 == 0
                assert len({e.name for e in page}) == len(page)
                assert (await md.containers.get(A, C)).usage.object_count % 25 == 0
                n += 1
                await asyncio.sleep(0)
            return n

        results = await asyncio.gather(write(), read(), read(), read())
        assert sum(r for r in results if r) > 3


async def test_busy_when_another_writer_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    async with await MetadataStore.open(path, busy_timeout=0.2) as md:
        await md.accounts.create(A)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(errors.Busy) as exc:
                await md.accounts.create("bob")
            assert isinstance(exc.value, kinds.Busy)
            assert [a.name for a in await md.accounts.list()] == [A]  # reads go on meanwhile
        finally:
            other.execute("ROLLBACK")
            other.close()
        await md.accounts.create("bob")
