"""Stats are what they say, and the incremental counters always equal a full recount."""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from hashmaps import block_digests, zero_block_digest
from storage_engine.blocks.blockstore import BlockStore
from storage_engine.maps.mapstore import MapKey
from storage_engine.blocks.records import HEADER_SIZE
from storage_engine.blocks.stats import recount
from storage_engine.maps.mapstore import MapStore
from store_support import KiB, compressible_block, opened, small_config

BS = 4 * KiB


def test_stat_definitions(tmp_path: Path) -> None:
    rnd = random.Random(80)
    a, b = rnd.randbytes(BS), compressible_block(rnd, BS)
    with opened(tmp_path / "s") as store:
        ha, hb = store.put_many("blake3", [a, b])
        stored_b = store.info("blake3", hb).stored_len  # type: ignore[union-attr]
        MapStore(store).add("blake3", 3 * BS, BS, [ha, ha, hb])  # a twice: dedup inside one object
        MapStore(store).add("blake3", 2 * BS, BS, [hb, ha])
        store.put("blake3", rnd.randbytes(1000))  # unreferenced
        st = store.stats()
        assert st.blocks == 3 and st.referenced_blocks == 2 and st.unreferenced_blocks == 1
        assert st.logical_bytes == st.mapped_bytes == 5 * BS
        assert st.referenced_raw_bytes == 2 * BS
        assert st.dedup_ratio == 2.5
        assert st.raw_bytes == 2 * BS + 1000 and st.payload_bytes == BS + stored_b + 1000
        assert st.compression_ratio == (2 * BS + 1000) / (BS + stored_b + 1000)
        assert st.garbage_bytes == st.unreferenced_bytes == HEADER_SIZE + 1000
        assert st.stored_bytes == 3 * HEADER_SIZE + BS + stored_b + 1000
        assert st.maps == 2 and st.segments == 1
        assert st.as_dict()["dedup_ratio"] == 2.5
        # a copy of an object (another version on the same map) is logical data, not stored data
        key = MapStore(store).add("blake3", 2 * BS, BS, [hb, ha])
        st = store.stats()
        assert st.logical_bytes == 7 * BS and st.mapped_bytes == 5 * BS and st.dedup_ratio == 3.5
        MapStore(store).drop(key)
        MapStore(store).add("blake3", 3 * BS, BS, [ha, ha, zero_block_digest("blake3", BS)])  # zero blocks: logical only
        st = store.stats()
        assert st.logical_bytes == 8 * BS and st.mapped_bytes == 7 * BS
        assert store.verify().ok


class StoreMachine(RuleBasedStateMachine):
    """Random puts, map adds/drops, refcount batches, GC, corruption-free reopen."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="nefeli-stats-"))
        self.store = BlockStore.open(self.dir / "s", small_config(segment_size=16 * KiB))
        self.blocks: dict[bytes, bytes] = {}
        self.maps: dict[MapKey, int] = {}
        self.rnd = random.Random(0)

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(n=st.integers(1, 4), size=st.integers(1, 3 * BS), kind=st.sampled_from(["random", "text", "zero"]))
    def put(self, n: int, size: int, kind: str) -> None:
        blocks = []
        for _ in range(n):
            if kind == "random":
                blocks.append(self.rnd.randbytes(size))
            elif kind == "text":
                blocks.append(compressible_block(self.rnd, size))
            else:
                blocks.append(bytes(size))
        for d, b in zip(self.store.put_many("blake3", blocks), blocks):
            self.blocks[d] = b

    @rule(nblocks=st.integers(0, 5), reuse=st.booleans())
    def add_map(self, nblocks: int, reuse: bool) -> None:
        if reuse and self.maps:
            key = self.rnd.choice(sorted(self.maps, key=str))
            hmap = MapStore(self.store).get(key)
            MapStore(self.store).add(key.scheme, key.size, hmap.block_size, hmap.hashes)
            self.maps[key] += 1
            return
        stored = [b for b in self.blocks.values() if len(b) == BS]
        parts = [
            self.rnd.choice(stored) if stored and self.rnd.random() < 0.5 else self.rnd.randbytes(BS)
            for _ in range(nblocks)
        ]
        data = b"".join(parts)
        hashes = block_digests(data, "blake3", BS)
        self.store.put_many("blake3", parts)
        for h, p in zip(hashes, parts):
            self.blocks[h] = p
        key = MapStore(self.store).add("blake3", len(data), BS, hashes)
        self.maps[key] = self.maps.get(key, 0) + 1

    @rule()
    def drop_map(self) -> None:
        if self.maps:
            key = self.rnd.choice(sorted(self.maps, key=str))
            MapStore(self.store).drop(key)
            self.maps[key] -= 1
            if not self.maps[key]:
                del self.maps[key]

    @rule(ratio=st.sampled_from([0.0, 0.5]))
    def gc(self, ratio: float) -> None:
        self.store.gc(min_garbage_ratio=ratio)
        for d in list(self.blocks):
            if not self.store.has("blake3", d):
                del self.blocks[d]

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = BlockStore.open(self.dir / "s", small_config(segment_size=16 * KiB))
        assert self.store.recovery is not None and self.store.recovery.clean

    @invariant()
    def counters_match_a_recount(self) -> None:
        self.store.flush()
        with self.store.index.read() as r:
            stored = r.counters()
            rows = r.segments()
        fresh = recount(self.store)
        assert fresh.counters == stored
        for seg_id, row in fresh.rows.items():
            have = rows[seg_id]
            assert (have.records, have.indexed_bytes, have.unref_bytes) == (
                row.records,
                row.indexed_bytes,
                row.unref_bytes,
            )

    @invariant()
    def maps_and_blocks_are_readable(self) -> None:
        assert {k: rc for k, rc in MapStore(self.store).keys()} == self.maps
        for key in self.maps:
            hmap = MapStore(self.store).get(key)
            for i, h in enumerate(hmap.hashes):
                assert self.store.refcount("blake3", h) >= 1 or hmap.zero[i]
        for d, b in list(self.blocks.items())[:20]:
            assert self.store.get("blake3", d, len(b)) == b


TestStoreMachine = StoreMachine.TestCase
TestStoreMachine.settings = settings(max_examples=15, stateful_step_count=25, deadline=None)


def test_verify_repairs_drifted_counters(tmp_path: Path) -> None:
    with opened(tmp_path / "s") as store:
        d = store.put("blake3", b"x" * 1000)
        MapStore(store).add("blake3", 1000, 1000, [d])
        store.change_refcounts("blake3", {d: 3})  # refs the maps do not explain

        def skew(w):  # type: ignore[no-untyped-def]
            w.c.logical_bytes += 12345

        store.index.run_write(skew)
        report = store.verify()
        assert not report.ok and report.refcount_drift == 1 and report.counters_drift
        report = store.verify(repair=True)
        assert report.repaired
        assert store.verify().ok and store.refcount("blake3", d) == 1
