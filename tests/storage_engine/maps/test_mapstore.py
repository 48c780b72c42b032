"""Map store: refcounts through object versions (overwrite, copy, delete, purge), zero entries, checks."""

from __future__ import annotations

import os
from collections.abc import Callable
import random
from pathlib import Path

import pytest

from hashmaps import SHA256_EMPTY, block_digests, top_hash
from storage_engine.blocks.errors import BadMap, MapNotFound, MissingBlocks
from storage_engine.maps.mapstore import MapKey, MapStore
from store_support import KiB, opened, random_block

BS = 16 * KiB


def put_object(store, scheme: str, data: bytes) -> MapKey:  # type: ignore[no-untyped-def]
    """What blockd does for a PUT: store the blocks, then reference the map."""
    mv = memoryview(data)
    blocks = [mv[o : o + BS] for o in range(0, len(data), BS)]
    hashes = block_digests(data, scheme, BS)
    store.put_many(scheme, list(zip(hashes, blocks)) if blocks else [])
    return MapStore(store).add(scheme, len(data), BS, hashes)


def refs(store, scheme: str, data: bytes) -> list[int]:  # type: ignore[no-untyped-def]
    return [store.refcount(scheme, h) for h in block_digests(data, scheme, BS)]


@pytest.mark.parametrize("scheme", ["blake3", "sha256"])
def test_refcounts_through_versions(tmp_path: Path, scheme: str) -> None:
    rnd = random.Random(10)
    a, b, c, d = (random_block(rnd, BS) for _ in range(4))
    with opened(tmp_path / "s") as store:
        v1 = put_object(store, scheme, a + b + c)
        assert refs(store, scheme, a + b + c) == [1, 1, 1]
        # overwrite: a new version references its map; the old version keeps its own
        v2 = put_object(store, scheme, a + b + d)
        assert refs(store, scheme, a + b + c + d) == [2, 2, 1, 1]
        # a copy of v2 is one more reference to the same map; blocks do not change
        assert put_object(store, scheme, a + b + d) == v2
        assert MapStore(store).refcount(v2) == 2
        assert refs(store, scheme, a + b + c + d) == [2, 2, 1, 1]
        assert store.verify().ok  # a map counts its blocks once, however many references it has
        assert store.stats().logical_bytes == 9 * BS  # but every version counts as data
        # purge old versions: v1's last reference goes, its blocks lose one ref each
        assert MapStore(store).drop(v1) == 0
        assert not MapStore(store).has(v1)
        assert refs(store, scheme, a + b + c + d) == [1, 1, 0, 1]
        # delete the object, then the copy
        assert MapStore(store).drop(v2) == 1
        assert refs(store, scheme, a + b + c + d) == [1, 1, 0, 1]
        assert MapStore(store).drop(v2) == 0
        assert refs(store, scheme, a + b + c + d) == [0, 0, 0, 0]
        with pytest.raises(MapNotFound):
            MapStore(store).drop(v2)
        st = store.stats()
        assert st.maps == 0 and st.referenced_blocks == 0 and st.logical_bytes == 0
        assert st.unreferenced_bytes == st.stored_bytes
        assert store.verify().ok
        # GC now reclaims all four blocks
        store.gc()
        assert store.stats().blocks == 0


def test_repeated_block_counts_per_entry(tmp_path: Path) -> None:
    rnd = random.Random(11)
    a = random_block(rnd, BS)
    with opened(tmp_path / "s") as store:
        key = put_object(store, "blake3", a + a + a)
        assert refs(store, "blake3", a) == [3]
        st = store.stats()
        assert st.logical_bytes == 3 * BS and st.dedup_ratio == pytest.approx(3.0)
        MapStore(store).drop(key)
        assert refs(store, "blake3", a) == [0]


@pytest.mark.parametrize("scheme", ["blake3", "sha256"])
def test_zero_blocks_are_flags_in_the_map(tmp_path: Path, scheme: str) -> None:
    rnd = random.Random(12)
    data = random_block(rnd, BS) + bytes(BS) + random_block(rnd, 100) + bytes(BS - 100) + bytes(5000)
    with opened(tmp_path / "s") as store:
        key = put_object(store, scheme, data)
        hmap = MapStore(store).get(key)
        assert hmap.zero == [False, True, False, True]
        assert hmap.hashes == block_digests(data, scheme, BS)
        assert b"".join(bytes(x) for x in MapStore(store).iter_data(hmap)) == data
        assert store.stats().blocks == 2
        assert MapStore(store).missing(scheme, len(data), BS, hmap.hashes) == []


def test_missing_blocks_leave_everything_unchanged(tmp_path: Path) -> None:
    rnd = random.Random(13)
    a, b = random_block(rnd, BS), random_block(rnd, BS)
    hashes = block_digests(a + b, "blake3", BS)
    with opened(tmp_path / "s") as store:
        store.put("blake3", a)
        assert MapStore(store).missing("blake3", 2 * BS, BS, hashes) == [hashes[1]]
        with pytest.raises(MissingBlocks) as exc:
            MapStore(store).add("blake3", 2 * BS, BS, hashes)
        assert exc.value.digests == [hashes[1]]
        assert store.refcount("blake3", hashes[0]) == 0
        assert store.stats().maps == 0
        store.put("blake3", b)
        MapStore(store).add("blake3", 2 * BS, BS, hashes)
        assert refs(store, "blake3", a + b) == [1, 1]


def test_bad_maps(tmp_path: Path) -> None:
    rnd = random.Random(14)
    a = random_block(rnd, BS)
    with opened(tmp_path / "s") as store:
        h = store.put("blake3", a)
        with pytest.raises(BadMap):
            MapStore(store).add("blake3", 2 * BS, BS, [h])  # two blocks' worth, one hash
        with pytest.raises(BadMap):
            MapStore(store).add("blake3", BS, BS, [h], top=os.urandom(32))
        with pytest.raises(BadMap):
            MapStore(store).add("blake3", BS, BS, [h[:31]])
        key = MapStore(store).add("blake3", BS, BS, h, top=top_hash([h], BS, "blake3"))  # packed form
        assert MapStore(store).get(key).hashes == [h]


def test_empty_objects(tmp_path: Path) -> None:
    with opened(tmp_path / "s") as store:
        k1 = MapStore(store).add("sha256", 0, BS, [])
        k2 = MapStore(store).add("sha256", 0, BS, [SHA256_EMPTY])
        assert k1 == k2 and k1.top == SHA256_EMPTY and MapStore(store).refcount(k1) == 2
        assert MapStore(store).get(k1).hashes == [SHA256_EMPTY]
        k3 = MapStore(store).add("blake3", 0, BS, [])
        assert MapStore(store).get(k3).hashes == [] and k3.top == top_hash([], 0, "blake3")
        assert store.stats().blocks == 0


def test_map_keys_survive_reopen(tmp_path: Path) -> None:
    rnd = random.Random(15)
    data = random_block(rnd, 3 * BS + 7)
    with opened(tmp_path / "s") as store:
        key = put_object(store, "blake3", data)
    with opened(tmp_path / "s") as store:
        assert MapStore(store).keys() == [(key, 1)]
        hmap = MapStore(store).get(key)
        assert b"".join(bytes(x) for x in MapStore(store).iter_data(hmap)) == data
        assert str(key).startswith("blake3:")


def test_reconcile_with_the_metadata_truth(tmp_path: Path) -> None:
    """Leaked references (a crash between map add and metadata commit) are fixed from the truth."""
    rnd = random.Random(16)
    a, b, c = (random_block(rnd, BS) for _ in range(3))
    with opened(tmp_path / "s") as store:
        k1 = put_object(store, "blake3", a + b)
        k2 = put_object(store, "blake3", b + c)
        put_object(store, "blake3", b + c)  # k2 twice, but the metadata knows one version
        leaked = put_object(store, "blake3", c)  # no version references it at all
        ghost = MapKey("blake3", 5, bytes(32))
        report = MapStore(store).reconcile({k1: 1, k2: 1, ghost: 1})
        assert (report.changed, report.dropped, report.missing) == (2, 1, [ghost])
        assert dict(MapStore(store).keys()) == {k1: 1, k2: 1}
        assert not MapStore(store).has(leaked)
        assert refs(store, "blake3", a + b + c) == [1, 2, 1]
        assert store.verify().ok
        assert MapStore(store).reconcile({k1: 1, k2: 1}).changed == 0


def test_concurrent_adds_and_drops_share_transactions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Map adds and drops from many threads are grouped into shared index
    transactions; the ones that fail (missing blocks, unknown maps) fail alone."""
    import threading

    from storage_engine.blocks.index import Index

    groups: list[int] = []
    real = Index._run_group

    def counting(self, group, isolated, on_full):  # type: ignore[no-untyped-def]
        groups.append(len(group))
        return real(self, group, isolated, on_full)

    monkeypatch.setattr(Index, "_run_group", counting)
    rnd = random.Random(21)
    shared = random_block(rnd, BS)
    datas = [shared + random_block(rnd, BS) for _ in range(24)]
    never_stored = random_block(rnd, BS)
    with opened(tmp_path / "s") as store:
        for d in datas:
            store.put_many("blake3", list(zip(block_digests(d, "blake3", BS), [d[:BS], d[BS:]])))
        bad_hashes = block_digests(shared + never_stored, "blake3", BS)
        results: dict[int, object] = {}
        start = threading.Barrier(16)

        def worker(t: int) -> None:
            start.wait()
            for k in range(t, len(datas), 16):
                results[k] = MapStore(store).add("blake3", 2 * BS, BS, block_digests(datas[k], "blake3", BS))
            try:
                MapStore(store).add("blake3", 2 * BS, BS, bad_hashes)
            except MissingBlocks as exc:
                results[100 + t] = exc.digests
            try:
                MapStore(store).drop(MapKey("blake3", 2 * BS, bytes(32)))
            except MapNotFound:
                results[200 + t] = "not found"

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for k, d in enumerate(datas):
            assert results[k] == MapKey("blake3", 2 * BS, top_hash(block_digests(d, "blake3", BS), 2 * BS, "blake3"))
        assert all(results[100 + t] == [bad_hashes[1]] for t in range(16))
        assert all(results[200 + t] == "not found" for t in range(16))
        assert store.refcount("blake3", block_digests(shared, "blake3", BS)[0]) == len(datas)
        assert store.stats().maps == len(datas)
        assert max(groups) > 1  # some writes did share a transaction
        # drops, concurrently, down to nothing
        keys = [results[k] for k in range(len(datas))]

        def dropper(t: int) -> None:
            for key in keys[t::8]:
                assert MapStore(store).drop(key) == 0  # type: ignore[arg-type]

        threads = [threading.Thread(target=dropper, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert store.stats().maps == 0
        assert store.refcount("blake3", block_digests(shared, "blake3", BS)[0]) == 0
        assert store.verify().ok


def test_group_with_an_unexpected_failure_runs_each_write_alone(tmp_path: Path) -> None:
    """A failure the grouped writes do not expect aborts the shared transaction;
    each write then runs on its own, so only the faulty one fails."""
    from storage_engine.blocks.index import _GroupedWrite

    rnd = random.Random(22)
    data = random_block(rnd, BS)
    with opened(tmp_path / "s") as store:
        put_object(store, "blake3", data)
        key = MapKey("blake3", BS, top_hash(block_digests(data, "blake3", BS), BS, "blake3"))

        def good(w):  # type: ignore[no-untyped-def]
            rc = w.map_refcount(key.pack())
            w.set_map_refcount(key.pack(), rc + 1)
            return rc + 1

        def faulty(w):  # type: ignore[no-untyped-def]
            w.set_map_refcount(key.pack(), 1000)
            raise RuntimeError("bug")

        group = [_GroupedWrite(good), _GroupedWrite(faulty), _GroupedWrite(good)]
        with store.index._write_lock:
            store.index._run_group(group, (MapNotFound,), None)
        assert [g.done for g in group] == [True, True, True]
        assert (group[0].value, group[2].value) == (2, 3)
        assert isinstance(group[1].error, RuntimeError)
        assert MapStore(store).refcount(key) == 3


# --- the stored map encoding ----------------------------------------------------

from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from storage_engine.blocks.map_format import CODEC_ZSTD, MAP_HEADER, MAP_MAGIC, decode_map, encode_map  # noqa: E402

_KEY_ANY = MapKey("blake3", 0, bytes(32))


@given(st.lists(st.tuples(st.binary(min_size=32, max_size=32), st.booleans()), max_size=300),
       st.integers(1, 1 << 31))
def test_map_encoding_round_trips(entries: list[tuple[bytes, bool]], block_size: int) -> None:
    hashes = [h for h, _ in entries]
    zero = [z for _, z in entries]
    m = decode_map(_KEY_ANY, encode_map(block_size, hashes, zero))
    assert (m.block_size, m.hashes, m.zero) == (block_size, hashes, zero)


ZSTD_FRAME_MAGIC = b"\x28\xb5\x2f\xfd"


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_map_decoder_refuses_garbage(blob: bytes) -> None:
    """Bytes that do not start as a map does: BadMap, whatever follows."""
    assume(blob[:8] != MAP_HEADER.pack(MAP_MAGIC, CODEC_ZSTD, 0, 0, 0, 0)[:8])
    with pytest.raises(BadMap):
        decode_map(_KEY_ANY, blob)


@settings(max_examples=300)
@given(
    st.integers(0, (1 << 32) - 1),
    st.integers(0, 1 << 20),
    st.binary(max_size=200).filter(lambda b: not b.startswith(ZSTD_FRAME_MAGIC)),
)
def test_map_decoder_refuses_a_good_header_over_a_garbage_body(block_size: int, count: int, body: bytes) -> None:
    """A well-formed header over a body that is no zstd frame: BadMap, not a crash."""
    with pytest.raises(BadMap):
        decode_map(_KEY_ANY, MAP_HEADER.pack(MAP_MAGIC, CODEC_ZSTD, 0, 0, block_size, count) + body)


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b"NFM2" + b[4:],  # another magic
        lambda b: b[:4] + b"\x02" + b[5:],  # another codec
        lambda b: b[:5] + b"\x01" + b[6:],  # flags set
        lambda b: b[:-1],  # the frame cut short (its content checksum never read)
        lambda b: b + b"\0",  # a byte after the frame
        lambda b: b[:12] + (int.from_bytes(b[12:20], "little") + 1).to_bytes(8, "little") + b[20:],  # count off by one
    ],
    ids=["magic", "codec", "flags", "cut", "trailing", "count"],
)
def test_map_decoder_refuses_each_damage_to_a_real_map(change: Callable[[bytes], bytes]) -> None:
    hashes = [bytes([i]) * 32 for i in range(5)]
    blob = encode_map(4096, hashes, [False, True, False, False, True])
    assert decode_map(_KEY_ANY, blob).hashes == hashes
    with pytest.raises(BadMap):
        decode_map(_KEY_ANY, change(blob))


@given(st.integers(0, (1 << 64) - 1), st.binary(max_size=64))
def test_map_decoder_refuses_lying_counts(count: int, tail: bytes) -> None:
    """A header claiming any number of entries over a body that does not hold them:
    BadMap, and no allocation sized by the claim."""
    import zstandard

    blob = MAP_HEADER.pack(MAP_MAGIC, CODEC_ZSTD, 0, 0, 4096, count) + zstandard.ZstdCompressor().compress(tail)
    try:
        m = decode_map(_KEY_ANY, blob)
    except BadMap:
        return
    assert len(m.hashes) == count and 32 * count + (count + 7) // 8 == len(tail)
