"""Crash safety: kill -9 a writer at random moments, then check what the store promises.

After every kill: the store opens (recovery), every put that returned reads back
and re-hashes to its digest, every map the writer finished adding (and did not
finish dropping) is there with all its blocks, no index entry points at a torn
record (scrub re-reads every one), and counters and refcounts agree with the
maps (verify).  The writer runs puts, map adds and drops and GC on several
threads, so kills land in appends, group commits, map transactions and
compactions alike; half of its map adds ride in the commit of their own
blocks (begin_put with the map add as an op) and half of its drops in the
puts' next commit (run_ops).

The object service is killed the same way (test_kill_9_object_service): its
one-block PUTs commit block and map reference together, then the metadata;
deletes and replacements drop references after the metadata commit.  After
every kill each version the metadata holds has its map and blocks (at most a
leaked reference, never a missing one), and every write that returned is there.

Also: deterministic torn tails, half-written headers, unknown and orphaned
segment files, missing segment files.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from hashmaps import block_digest
from storage_engine.blocks.blockstore import BlockStore
from storage_engine.blocks.index import SegState
from storage_engine.maps.mapstore import MapKey, MapStore
from storage_engine.blocks.records import HEADER_SIZE, encode_record
from storage_engine.blocks.segments import FLAG_COMPACTION, SEGMENT_HEADER_SIZE, Segment, segment_name
from store_support import KiB, opened, random_block, small_config

REPO = Path(__file__).resolve().parents[3]

WRITER = r"""
import os, random, sys, threading, time
path, log_path, seed, repo, durability = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
sys.path.insert(0, repo)
from hashmaps import block_digests, top_hash
from storage_engine.blocks.blockstore import BlockStore
from storage_engine.blocks.config import StoreConfig
from storage_engine.maps.mapstore import MapStore

BS = 16384
store = BlockStore.open(path, StoreConfig(
    segment_size=512 * 1024, durability=durability, group_window_ms=1.0,
    gc_grace_seconds=2, reserve_bytes=0, threads=2))
fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

def log(text):
    os.write(fd, (text + "\n").encode())

def make(r, n):
    kind = r.random()
    if kind < 0.1:
        return bytes(n)
    if kind < 0.3:
        return (r.randbytes(8).hex().encode() * (n // 16 + 1))[:n]
    if kind < 0.4:
        return r.randbytes(n // 2) + bytes(n - n // 2)
    return r.randbytes(n)

maps = MapStore(store)
live = [k for k, _ in maps.keys()]
lock = threading.Lock()

def putter(tid):
    r = random.Random(seed * 1000 + tid)
    while True:
        scheme = r.choice(("blake3", "sha256"))
        if r.random() < 0.5:
            blocks = [make(r, r.randint(1, 64 * 1024)) for _ in range(r.randint(1, 6))]
            if r.random() < 0.3:
                blocks.append(b"shared %d" % r.randint(0, 20))
            ds = store.put_many(scheme, blocks)
            log("\n".join(f"P {scheme} {d.hex()} {len(b)}" for d, b in zip(ds, blocks)))
        else:
            size = r.choice((0, r.randint(1, 5 * BS)))
            data = b"".join(make(r, BS) for _ in range(size // BS + 1))[:size]
            hashes = block_digests(data, scheme, BS)
            mv = memoryview(data)
            items = [(h, mv[i * BS:(i + 1) * BS]) for i, h in enumerate(hashes) if i * BS < size]
            top = top_hash(hashes, size, scheme).hex()
            if r.random() < 0.5:
                store.put_many(scheme, items)
                log(f"a {scheme} {size} {top}")
                key = maps.add(scheme, size, BS, hashes)
            else:  # the blocks and the map reference in one commit
                log(f"a {scheme} {size} {top}")
                key, op = maps.prepare_add(scheme, size, BS, hashes)
                store.finish_put(store.begin_put(scheme, items, ops=[op]))
            log(f"A {scheme} {size} {top}")
            with lock:
                live.append(key)

def maintainer():
    r = random.Random(seed * 1000 + 99)
    while True:
        time.sleep(r.uniform(0.005, 0.04))
        key = None
        with lock:
            if live and r.random() < 0.7:
                key = live.pop(r.randrange(len(live)))
        if key is not None:
            log(f"d {key.scheme} {key.size} {key.top.hex()}")
            if r.random() < 0.5:
                maps.drop(key)
            else:  # grouped into the puts' next commit
                op = maps.prepare_drop(key)
                store.run_ops([op])
                if op.error is not None:
                    raise op.error
            log(f"D {key.scheme} {key.size} {key.top.hex()}")
        if r.random() < 0.25:
            store.gc()  # grace 2 s: this run's puts stay, older garbage goes

for target, arg in [(putter, 0), (putter, 1), (putter, 2), (maintainer, None)]:
    threading.Thread(target=target, args=(() if arg is None else (arg,)), daemon=True).start()
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def run_writer(store_dir: Path, log_path: Path, seed: int, durability: str, kill_after: float) -> None:
    kill_9_after([WRITER, str(store_dir), str(log_path), str(seed), str(REPO), durability], kill_after)


def kill_9_after(args: list[str], kill_after: float) -> None:
    """Run ``python -c *args``, wait for its "ready", let it work ``kill_after`` s, kill -9 it."""
    proc = subprocess.Popen([sys.executable, "-c", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != b"ready":
            proc.kill()
            raise AssertionError(f"writer did not start: {line!r} {proc.stderr.read()!r}")  # type: ignore[union-attr]
        time.sleep(kill_after)
        if proc.poll() is not None:
            raise AssertionError(f"writer died on its own: {proc.stderr.read()!r}")  # type: ignore[union-attr]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()


def parse(log_path: Path) -> list[list[str]]:
    text = log_path.read_text() if log_path.exists() else ""
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # the last line may be torn by the kill
    return [line.split() for line in text.splitlines() if line]


def crash_loop(tmp_path: Path, iterations: int, durability: str, seed: int) -> None:
    store_dir = tmp_path / "store"
    rnd = random.Random(seed)
    maps: Counter[MapKey] = Counter()
    puts_checked = 0
    for it in range(iterations):
        log_path = tmp_path / f"log{it}"
        run_writer(store_dir, log_path, seed * 100 + it, durability, rnd.uniform(0.02, 0.6))
        lines = parse(log_path)
        store = BlockStore.open(store_dir, small_config(segment_size=512 * KiB, gc_grace_seconds=5))
        try:
            # every put that returned reads back and re-hashes to its digest
            for words in lines:
                if words[0] == "P":
                    scheme, digest, length = words[1], bytes.fromhex(words[2]), int(words[3])
                    data = store.get(scheme, digest, length)
                    assert len(data) == length and block_digest(data, scheme) == digest, (it, words)
                    puts_checked += 1
            # maps: finished adds and drops are exact; ones in flight may or may not have landed
            adding: Counter[MapKey] = Counter()
            dropping: Counter[MapKey] = Counter()
            for words in lines:
                if words[0] in "aAdD":
                    key = MapKey(words[1], int(words[2]), bytes.fromhex(words[3]))
                    if words[0] == "a":
                        adding[key] += 1
                    elif words[0] == "A":
                        adding[key] -= 1
                        maps[key] += 1
                    elif words[0] == "d":
                        dropping[key] += 1
                    else:
                        dropping[key] -= 1
                        maps[key] -= 1
            for key in set(adding) | set(dropping):
                actual = MapStore(store).refcount(key)
                assert maps[key] - dropping[key] <= actual <= maps[key] + adding[key], (it, key, actual)
                maps[key] = actual
            for key, n in list(maps.items()):
                assert MapStore(store).refcount(key) == n, (it, key)
                if n == 0:
                    del maps[key]
                    continue
                hmap = MapStore(store).get(key)
                for i, (h, z) in enumerate(zip(hmap.hashes, hmap.zero)):
                    if not z:
                        data = store.get(key.scheme, h, hmap.block_length(i))
                        assert block_digest(data, key.scheme) == h
            assert {k for k, _ in MapStore(store).keys()} == set(maps)
            # no entry points at a torn record; counters and refcounts agree with the maps
            scrub = store.scrub()
            assert scrub.ok, (it, [str(b) for b in scrub.bad])
            report = store.verify()
            assert report.ok, (it, report.problems[:5])
        finally:
            store.close()
    assert puts_checked > iterations  # the kills did land while work was going on


def test_kill_9_writer_group_commit(tmp_path: Path) -> None:
    crash_loop(tmp_path, iterations=30, durability="group", seed=1)


@pytest.mark.slow
def test_kill_9_writer_more_iterations(tmp_path: Path) -> None:
    crash_loop(tmp_path / "group", iterations=30, durability="group", seed=2)
    crash_loop(tmp_path / "each", iterations=20, durability="each", seed=3)


OBJECT_WRITER = r"""
import asyncio, hashlib, os, random, sys
path, log_path, seed, repo = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, repo)
from storage_engine.blocks.config import StoreConfig
from storage_engine.objects.metadata import ContainerPolicy, errors as merr
from storage_engine.objects.byte_sources import BytesSource
from storage_engine.objects.store import ObjectStore

BS = 16384
fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

def log(text):
    os.write(fd, (text + "\n").encode())

async def worker(s, conts, k):
    r = random.Random(seed * 1000 + k)
    while True:
        cont = r.choice(conts)
        name = f"{cont.name}/w{k}-{r.randrange(6)}"
        if r.random() < 0.2:
            log(f"x {name}")
            try:
                await s.delete("a", cont.name, name.split("/", 1)[1], modified_by="a")
            except merr.ObjectNotFound:
                pass
            log(f"X {name}")
            continue
        kind = r.random()
        if kind < 0.3:  # content other writers store too (dedup, shared maps)
            data = b"shared %d" % r.randrange(8)
        elif kind < 0.85:  # one block: block and map reference in one commit
            data = r.randbytes(r.randint(1, BS))
        else:  # several blocks
            data = r.randbytes(r.randint(BS + 1, 3 * BS))
        log(f"w {name}")
        await s.put_stream("a", cont, name.split("/", 1)[1], BytesSource(data), length=len(data), modified_by="a")
        log(f"W {name} {hashlib.md5(data).hexdigest()}")

async def main():
    s = await ObjectStore.open(path, store_config=StoreConfig(
        segment_size=512 * 1024, gc_grace_seconds=2, reserve_bytes=0, threads=2))
    await s.meta.accounts.ensure("a")
    conts = []
    for name, versioning in (("keep", "auto"), ("replace", "none")):
        try:
            conts.append(await s.meta.containers.get("a", name))
        except merr.ContainerNotFound:
            conts.append(await s.meta.containers.create(
                "a", name, policy=ContainerPolicy(versioning=versioning, hash_scheme="sha256", block_size=BS)))
    print("ready", flush=True)
    await asyncio.gather(*(worker(s, conts, k) for k in range(6)))

asyncio.run(main())
"""


async def check_object_service(data_dir: Path, lines: list[list[str]], state: dict[str, str | None]) -> int:
    """Every version has its map and blocks; every finished write is what the store
    holds (names with a write in flight at the kill may hold either); returns how
    many finished writes were checked.  ``state`` (name -> MD5, None = deleted)
    carries over between kills."""
    import hashlib

    from storage_engine.objects.metadata import errors as merr
    from storage_engine.objects.store import ObjectStore

    in_flight: set[str] = set()
    for words in lines:
        op, name = words[0], words[1]
        if op in "wx":
            in_flight.add(name)
        elif op == "W":
            in_flight.discard(name)
            state[name] = words[2]
        elif op == "X":
            in_flight.discard(name)
            state[name] = None
    for name in in_flight:  # either outcome may have landed: unknown until its next finished write
        state.pop(name, None)
    s = await ObjectStore.open(data_dir)
    try:
        store = s.blocks.store
        maps = s.maps.sync
        rows = await s.meta.backend.read(
            lambda conn: conn.execute(
                "SELECT map_scheme, map_size, map_hash FROM versions WHERE map_hash IS NOT NULL"
            ).fetchall()
        )
        uses: Counter[MapKey] = Counter(MapKey(sc, size, bytes(top)) for sc, size, top in rows)
        for key, n in uses.items():
            assert maps.refcount(key) >= n, (key, maps.refcount(key), n)  # leaked at most
            hmap = maps.get(key)
            for i, (h, z) in enumerate(zip(hmap.hashes, hmap.zero)):
                if not z:
                    assert block_digest(store.get(key.scheme, h, hmap.block_length(i)), key.scheme) == h
        checked = 0
        for name, md5 in state.items():
            cont, obj = name.split("/", 1)
            try:
                v = await s.meta.objects.get("a", cont, obj)
            except merr.ObjectNotFound:
                v = None
            if md5 is None:
                assert v is None or v.map is None, name
            else:
                assert v is not None and v.map is not None, name
                got = b"".join([bytes(x) async for x in s.read(v)])
                assert hashlib.md5(got).hexdigest() == md5, name
            checked += 1
        report = store.verify()
        assert report.ok, report.problems[:5]
        return checked
    finally:
        await s.close()


def test_kill_9_object_service(tmp_path: Path) -> None:
    """kill -9 at every commit boundary of a PUT: after the block + map-reference
    commit and before the metadata commit a reference leaks, nothing more."""
    import asyncio

    data_dir = tmp_path / "data"
    rnd = random.Random(7)
    state: dict[str, str | None] = {}
    checked = 0
    for it in range(12):
        log_path = tmp_path / f"olog{it}"
        kill_9_after([OBJECT_WRITER, str(data_dir), str(log_path), str(700 + it), str(REPO)], rnd.uniform(0.1, 0.8))
        checked += asyncio.run(check_object_service(data_dir, parse(log_path), state))
    assert checked > 12  # the kills did land while writes were going on


# --- deterministic recovery cases --------------------------------------------------------


def _active_segment(store: BlockStore) -> Segment:
    assert store.active is not None
    return store.active


def test_torn_tail_is_cut_and_uncommitted_records_reindexed(tmp_path: Path) -> None:
    rnd = random.Random(40)
    blocks = [random_block(rnd, 10 * KiB) for _ in range(5)]
    with opened(tmp_path / "s") as store:
        ds = store.put_many("blake3", blocks)
        seg = _active_segment(store)
        path, end = seg.path, seg.write_end
    extra = random_block(rnd, 3000)
    d_extra = block_digest(extra, "blake3")
    record = encode_record(2, d_extra, extra, len(extra), 0)
    torn = encode_record(2, block_digest(b"torn", "blake3"), b"torn" * 500, 2000, 0)
    with open(path, "ab") as f:  # a whole record no commit covered, then a torn one
        f.write(record)
        f.write(torn[: len(torn) // 2])
    with opened(tmp_path / "s") as store:
        rec = store.recovery
        assert rec is not None and rec.reindexed == 1 and len(rec.tails_cut) == 1
        assert path.stat().st_size == end + len(record)
        assert store.get("blake3", d_extra) == extra and store.refcount("blake3", d_extra) == 0
        for d, b in zip(ds, blocks):
            assert store.get("blake3", d) == b
        assert store.verify().ok and store.scrub().ok
        d_next = store.put("blake3", b"after recovery" * 10)  # appends continue after the cut
        assert store.get("blake3", d_next) == b"after recovery" * 10
    with opened(tmp_path / "s") as store:
        assert store.recovery is not None and store.recovery.clean


@pytest.mark.parametrize("junk", [b"\0" * 100, b"NFR1" + b"\xff" * 60, os.urandom(64), b"NF"])
def test_torn_or_garbage_header_is_cut(tmp_path: Path, junk: bytes) -> None:
    with opened(tmp_path / "s") as store:
        d = store.put("blake3", b"x" * 5000)
        path, end = _active_segment(store).path, _active_segment(store).write_end
    with open(path, "ab") as f:
        f.write(junk)
    with opened(tmp_path / "s") as store:
        assert path.stat().st_size == end
        assert store.get("blake3", d) == b"x" * 5000
        assert store.verify().ok


def test_unknown_segment_files(tmp_path: Path) -> None:
    """A segment created just before a crash (records, but no commit) is scanned; a
    compaction output nobody committed, or a file whose header never landed, is removed."""
    with opened(tmp_path / "s") as store:
        store.put("blake3", b"base" * 100)
        uuid, seg_dir = store.uuid, store.seg_dir
        next_id = store.next_segment
    data = os.urandom(4000)
    fresh = Segment.create(seg_dir, next_id, uuid)
    fresh.append([encode_record(2, block_digest(data, "blake3"), data, len(data), 0)])
    compaction = Segment.create(seg_dir, next_id + 1, uuid, FLAG_COMPACTION)
    compaction.append([encode_record(2, block_digest(b"c" * 99, "blake3"), b"c" * 99, 99, 0)])
    (seg_dir / segment_name(next_id + 2)).write_bytes(b"NFSEG\0\0")  # torn header
    del fresh, compaction
    with opened(tmp_path / "s") as store:
        rec = store.recovery
        assert rec is not None and rec.reindexed == 1 and len(rec.removed_files) == 2
        assert store.get("blake3", block_digest(data, "blake3")) == data
        assert not store.has("blake3", block_digest(b"c" * 99, "blake3"))
        assert sorted(p.name for p in seg_dir.glob("*.seg")) == [segment_name(1), segment_name(next_id)]
        assert store.verify().ok
        new_seg = store.put("blake3", os.urandom(300 * KiB))  # ids are never reused
        assert store.info("blake3", new_seg).segment > next_id + 2  # type: ignore[union-attr]


@pytest.mark.parametrize("cut", ["in the header", "in the payload", "one byte short"])
def test_unknown_segment_with_a_torn_tail(tmp_path: Path, cut: str) -> None:
    """A segment the index never recorded whose last record was cut by the crash: the
    whole records before it are indexed, the torn one is cut off the file and never
    served, and the next write appends where the intact records end."""
    with opened(tmp_path / "s") as store:
        store.put("blake3", b"base" * 100)
        uuid, seg_dir = store.uuid, store.seg_dir
        next_id = store.next_segment
    whole = [os.urandom(3000), os.urandom(5000)]
    torn = os.urandom(4000)
    fresh = Segment.create(seg_dir, next_id, uuid)
    fresh.append([encode_record(2, block_digest(d, "blake3"), d, len(d), 0) for d in whole])
    intact_end = fresh.write_end
    record = encode_record(2, block_digest(torn, "blake3"), torn, len(torn), 0)
    keep = {"in the header": HEADER_SIZE // 2, "in the payload": HEADER_SIZE + 1000, "one byte short": len(record) - 1}
    fresh.append([record[: keep[cut]]])
    del fresh
    path = seg_dir / segment_name(next_id)
    assert path.stat().st_size == intact_end + keep[cut]
    with opened(tmp_path / "s") as store:
        rec = store.recovery
        assert rec is not None and rec.reindexed == 2
        assert [(seg, n) for seg, n, _why in rec.tails_cut] == [(next_id, keep[cut])]
        assert path.stat().st_size == intact_end
        for d in whole:
            assert store.get("blake3", block_digest(d, "blake3")) == d
        assert not store.has("blake3", block_digest(torn, "blake3"))
        assert store.verify().ok
        again = store.put("blake3", torn)  # stored whole this time, readable
        assert store.get("blake3", again) == torn
    with opened(tmp_path / "s") as store:
        assert store.recovery is not None and store.recovery.clean
        assert store.get("blake3", block_digest(torn, "blake3")) == torn


def test_missing_segment_quarantines_its_blocks(tmp_path: Path) -> None:
    rnd = random.Random(41)
    with opened(tmp_path / "s") as store:
        ds = store.put_many("blake3", [random_block(rnd, 100 * KiB) for _ in range(6)])
        key = MapStore(store).add("blake3", 100 * KiB, 100 * KiB, [ds[0]])
        lost = store.info("blake3", ds[0]).segment  # type: ignore[union-attr]
        store.rotate()
    (tmp_path / "s" / "segments" / segment_name(lost)).unlink()
    with opened(tmp_path / "s") as store:
        rec = store.recovery
        assert rec is not None and rec.lost_blocks >= 1
        assert not store.has("blake3", ds[0])  # never claims a block it cannot return
        assert MapStore(store).missing("blake3", 100 * KiB, 100 * KiB, [ds[0]]) == [ds[0]]
        assert ("blake3", ds[0], 1) in store.quarantined()
        assert store.verify().ok and store.scrub().ok
        assert MapStore(store).refcount(key) == 1


def test_deleted_segment_rows_lose_their_files(tmp_path: Path) -> None:
    """A crash after GC's switch but before the unlink: the next open removes the file."""
    with opened(tmp_path / "s") as store:
        d = store.put("blake3", b"gone" * 100)
        seg_id = store.info("blake3", d).segment  # type: ignore[union-attr]
        store.rotate()

        def mark(w):  # type: ignore[no-untyped-def]
            e = w.block(b"\x02" + d)
            w.delete_block(b"\x02" + d, e)
            w.segment(seg_id).state = SegState.DELETED

        store.index.run_write(mark)
    with opened(tmp_path / "s") as store:
        assert store.recovery is not None and store.recovery.removed_files == [segment_name(seg_id)]
        assert not (store.seg_dir / segment_name(seg_id)).exists()
        assert store.verify().ok


def test_header_size_constants() -> None:
    assert HEADER_SIZE == 64 and SEGMENT_HEADER_SIZE == 64
