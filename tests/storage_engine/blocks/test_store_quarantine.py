"""The quarantine after scrub: which maps and objects a bad block damages, healing
by re-upload, forgetting entries nobody needs, and `nefeli store quarantine`."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from cli.main import main
from hashmaps import block_digests, top_hash
from storage_engine.blocks.layout import store_dir
from storage_engine.objects.metadata import MapRef, SyncMetadataStore
from storage_engine.blocks.quarantine import maps_needing
from storage_engine.blocks.records import HEADER_SIZE
from storage_engine.blocks.segments import segment_name
from storage_engine.maps.mapstore import MapStore
from store_support import KiB, flip_byte, opened, random_block

BS = 16 * KiB


def corrupt(store, digest: bytes) -> None:  # type: ignore[no-untyped-def]
    info = store.info("blake3", digest)
    flip_byte(store.seg_dir / segment_name(info.segment), info.offset + HEADER_SIZE + info.stored_len // 2)


def add_object(store, data: bytes):  # type: ignore[no-untyped-def]
    hashes = block_digests(data, "blake3", BS)
    store.put_many("blake3", [data[o : o + BS] for o in range(0, len(data), BS)])
    return hashes, MapStore(store).add("blake3", len(data), BS, hashes)


def test_quarantine_lists_damaged_maps_heals_and_forgets(tmp_path: Path) -> None:
    rnd = random.Random(90)
    shared = random_block(rnd, BS)
    a = shared + random_block(rnd, BS)
    b = random_block(rnd, BS) + shared
    c = random_block(rnd, 2 * BS)
    with opened(tmp_path / "s") as store:
        ha, ka = add_object(store, a)
        _hb, kb = add_object(store, b)
        hc, kc = add_object(store, c)
        store.rotate()
        corrupt(store, ha[0])  # the shared block: damages a and b
        corrupt(store, hc[1])  # c's own block
        report = store.scrub(quarantine=True)
        assert report.quarantined == 2
        q = store.quarantined_blocks()
        assert [(x.digest, x.refcount) for x in q] == [(ha[0], 2), (hc[1], 1)]  # most referenced first
        assert all(x.reason == "checksum" and x.copies and x.copies[0].exists() for x in q)
        needing = maps_needing(store, q)
        assert sorted(map(str, needing[("blake3", ha[0])])) == sorted([str(ka), str(kb)])
        assert needing[("blake3", hc[1])] == [kc]
        # nothing unreferenced yet: forgetting keeps both
        assert store.forget_quarantined() == 0 and len(store.quarantined_blocks()) == 2
        # c is deleted: its bad block is needed by nobody and can be forgotten, with its copy
        copies = store.quarantined_blocks()[1].copies
        MapStore(store).drop(kc)
        assert store.forget_quarantined() == 1
        assert [x.digest for x in store.quarantined_blocks()] == [ha[0]]
        assert not any(p.exists() for p in copies)
        # re-uploading the shared content heals a and b
        store.put("blake3", shared)
        assert store.quarantined_blocks() == [] and store.get("blake3", ha[0]) == shared
        assert store.stats().quarantined == 0
        assert store.verify().ok


@pytest.fixture
def data_dir(tmp_path: Path) -> tuple[Path, list[bytes]]:
    rnd = random.Random(91)
    data = random_block(rnd, 3 * BS)
    with opened(store_dir(tmp_path)) as store:
        hashes, key = add_object(store, data)
        store.rotate()
        corrupt(store, hashes[1])
        assert store.scrub(quarantine=True).quarantined == 1
    with SyncMetadataStore(tmp_path / "meta.db") as md:
        md.accounts.create("alice")
        md.containers.create("alice", "photos")
        ref = MapRef("blake3", len(data), top_hash(hashes, len(data), "blake3"))
        assert ref.top_hash == key.top
        md.objects.put("alice", "photos", "holiday/sea.jpg", map=ref, modified_by="alice")
    return tmp_path, hashes


def test_cli_names_the_damaged_objects(data_dir: tuple[Path, list[bytes]], capsys: pytest.CaptureFixture[str]) -> None:
    path, hashes = data_dir
    rc = main(["store", "quarantine", "--data", str(path)])
    out = capsys.readouterr().out
    assert rc == 1  # damaged objects: a non-zero status for scripts
    assert f"blake3:{hashes[1].hex()}" in out and "checksum" in out
    assert "alice/photos/holiday/sea.jpg@" in out and "upload the damaged objects again" in out
    rc = main(["store", "quarantine", "--data", str(path), "--json"])
    d = json.loads(capsys.readouterr().out)
    [blk] = d["blocks"]
    assert blk["digest"] == hashes[1].hex() and blk["refcount"] == 1
    assert blk["maps"][0]["objects"][0].startswith("alice/photos/holiday/sea.jpg@")


def test_cli_forget_after_the_object_is_gone(data_dir: tuple[Path, list[bytes]], capsys: pytest.CaptureFixture[str]) -> None:
    path, hashes = data_dir
    with opened(store_dir(path)) as store:
        for key, _rc in MapStore(store).keys():
            MapStore(store).drop(key)
    rc = main(["store", "quarantine", "--data", str(path)])
    out = capsys.readouterr().out
    assert rc == 0 and "--forget" in out
    rc = main(["store", "quarantine", "--data", str(path), "--forget"])
    out = capsys.readouterr().out
    assert rc == 0 and "0 block(s), 1 unreferenced forgotten" in out
    assert not list((store_dir(path) / "quarantine").glob("*.rec"))
