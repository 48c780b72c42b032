"""Corruption: a flipped byte is caught by reads (an error naming the digest) and by scrub; quarantine."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from hashmaps import block_digest, block_digests
from storage_engine.blocks.blockstore import BlockStore
from storage_engine.blocks.errors import BlockNotFound, CorruptBlock
from storage_engine.blocks.index import QuarantineReason
from storage_engine.blocks.records import HEADER_SIZE
from storage_engine.blocks.segments import segment_name
from storage_engine.maps.mapstore import MapStore
from store_support import KiB, compressible_block, flip_byte, opened, random_block

BS = 16 * KiB


def location(store: BlockStore, scheme: str, digest: bytes) -> tuple[Path, int, int]:
    info = store.info(scheme, digest)
    assert info is not None
    return store.seg_dir / segment_name(info.segment), info.offset, info.stored_len


@pytest.mark.parametrize("where", ["payload", "header", "compressed"])
@pytest.mark.parametrize("sealed", [True, False])
def test_flipped_byte_is_caught_by_read_and_scrub(tmp_path: Path, where: str, sealed: bool) -> None:
    rnd = random.Random(30)
    with opened(tmp_path / "s") as store:
        blocks = [random_block(rnd, BS) for _ in range(10)]
        if where == "compressed":
            blocks[3] = compressible_block(rnd, BS)
        ds = store.put_many("blake3", blocks)
        if sealed:
            store.rotate()
        victim = ds[3]
        path, off, stored = location(store, "blake3", victim)
        assert store.segments[store.info("blake3", victim).segment].sealed == sealed  # type: ignore[union-attr]
        flip_byte(path, off + (HEADER_SIZE + stored // 2 if where != "header" else 20))

        with pytest.raises(CorruptBlock) as exc:
            store.get("blake3", victim)
        assert victim.hex() in str(exc.value) and exc.value.digest == victim
        for d, b in zip(ds, blocks):  # the others are fine
            if d != victim:
                assert store.get("blake3", d) == b

        report = store.scrub()
        assert [b.digest for b in report.bad] == [victim] and report.checked == 10
        assert report.bad[0].code in (QuarantineReason.CHECKSUM, QuarantineReason.HEADER)
        assert store.has("blake3", victim)  # reporting alone changes nothing


def test_quarantine_and_repair_by_re_upload(tmp_path: Path) -> None:
    rnd = random.Random(31)
    with opened(tmp_path / "s") as store:
        data = random_block(rnd, 3 * BS)
        hashes = block_digests(data, "blake3", BS)
        store.put_many("blake3", [data[i * BS : (i + 1) * BS] for i in range(3)])
        key = MapStore(store).add("blake3", len(data), BS, hashes)
        store.rotate()
        path, off, stored = location(store, "blake3", hashes[1])
        flip_byte(path, off + HEADER_SIZE + 5)

        report = store.scrub(quarantine=True)
        assert report.quarantined == 1 and [b.digest for b in report.bad] == [hashes[1]]
        # out of service: missing (so clients re-upload), its bad bytes kept aside
        assert not store.has("blake3", hashes[1])
        assert MapStore(store).missing("blake3", len(data), BS, hashes) == [hashes[1]]
        with pytest.raises(BlockNotFound):
            store.get("blake3", hashes[1])
        assert list((store.path / "quarantine").glob(f"*{hashes[1].hex()}*"))
        assert store.quarantined() == [("blake3", hashes[1], 1)]
        st = store.stats()
        assert st.quarantined == 1 and st.dead_bytes == HEADER_SIZE + stored
        assert store.verify().ok  # the refcount waits in quarantine
        assert store.scrub().ok

        # a client re-uploads the block: it comes back with its refcount
        store.put("blake3", data[BS : 2 * BS])
        assert store.refcount("blake3", hashes[1]) == 1 and store.stats().quarantined == 0
        hmap = MapStore(store).get(key)
        assert b"".join(bytes(x) for x in MapStore(store).iter_data(hmap)) == data
        assert store.verify().ok
        store.gc()  # the bad record is dead bytes: compaction drops it
        assert store.stats().dead_bytes == 0 and store.scrub().ok


def test_quarantined_block_can_still_be_unreferenced(tmp_path: Path) -> None:
    rnd = random.Random(32)
    with opened(tmp_path / "s") as store:
        data = random_block(rnd, BS)
        d = store.put("blake3", data)
        key = MapStore(store).add("blake3", BS, BS, [d])
        store.rotate()
        path, off, _ = location(store, "blake3", d)
        flip_byte(path, off + HEADER_SIZE)
        store.scrub(quarantine=True)
        MapStore(store).drop(key)  # must not fail on the quarantined block
        assert store.quarantined() == [("blake3", d, 0)]
        assert store.verify().ok


def test_scrub_catches_data_stored_under_the_wrong_digest(tmp_path: Path) -> None:
    """verify=False trusts the caller; a lie is caught by scrub's re-hash."""
    with opened(tmp_path / "s") as store:
        data = os.urandom(1000)
        wrong = block_digest(b"something else", "sha256")
        store.put("sha256", data, wrong, verify=False)
        report = store.scrub(quarantine=True)
        assert [b.digest for b in report.bad] == [wrong]
        assert report.bad[0].code == QuarantineReason.DIGEST
        assert not store.has("sha256", wrong)


def test_corrupt_block_inside_an_object_read(tmp_path: Path) -> None:
    rnd = random.Random(33)
    with opened(tmp_path / "s") as store:
        data = random_block(rnd, 2 * BS)
        hashes = block_digests(data, "blake3", BS)
        store.put_many("blake3", [data[:BS], data[BS:]])
        key = MapStore(store).add("blake3", len(data), BS, hashes)
        path, off, _ = location(store, "blake3", hashes[0])
        flip_byte(path, off + HEADER_SIZE + 100)
        with pytest.raises(CorruptBlock, match=hashes[0].hex()):
            b"".join(bytes(x) for x in MapStore(store).iter_data(MapStore(store).get(key)))


def test_scrub_reads_the_whole_store_in_parallel(tmp_path: Path) -> None:
    rnd = random.Random(34)
    with opened(tmp_path / "s") as store:
        blocks = [random_block(rnd, rnd.randint(1, 40 * KiB)) for _ in range(200)]
        store.put_many("sha256", blocks)
        seen: list[tuple[int, int]] = []
        report = store.scrub(threads=2, progress=lambda done, total: seen.append((done, total)))
        assert report.ok and report.checked == len(set(blocks))
        assert seen and seen[-1][0] == seen[-1][1] == report.bytes
