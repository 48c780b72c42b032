"""storage_engine/volumes: thin volumes against a byte-for-byte reference model."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage_engine.blocks.blockstore import BlockStore
from storage_engine.volumes import VolumeBusy, VolumeError, VolumeExists, VolumeNotFound, VolumeReadOnly, VolumeStore

BS = 64 * 1024
SIZE = 8 * BS


@pytest.fixture
def vs(tmp_path: Path) -> Iterator[VolumeStore]:
    blocks = BlockStore.open(tmp_path / "blocks")
    store = VolumeStore(blocks, owns_blocks=True)
    yield store
    store.close()


def read_all(vs: VolumeStore, name: str) -> bytes:
    vol = vs.open(name)
    try:
        return bytes(vol.read(0, vol.size))
    finally:
        vs.release(vol)


def pattern(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def test_create_reads_zeros_and_stores_nothing(vs: VolumeStore) -> None:
    info = vs.create("v", SIZE, block_size=BS)
    assert (info.size, info.block_size, info.scheme, info.snapshot) == (SIZE, BS, "blake3", False)
    vol = vs.open("v")
    assert vol.read(0, SIZE) == bytes(SIZE)
    vol.write(100, bytes(3 * BS))  # zeros into zero blocks
    vol.write(0, bytes(BS))
    assert vs.info("v").blocks["owned"] == 0 and vs.disk_bytes() == 0


def test_unaligned_writes_across_blocks_persist(tmp_path: Path, vs: VolumeStore) -> None:
    vs.create("v", SIZE, block_size=BS)
    vol = vs.open("v")
    model = bytearray(SIZE)
    for off, n, seed in ((BS - 7, 20, 1), (3 * BS + 5, 2 * BS + 11, 2), (0, 1, 3), (SIZE - 3, 3, 4)):
        data = pattern(n, seed)
        vol.write(off, data)
        model[off : off + n] = data
    assert vol.read(0, SIZE) == model
    vol.flush()
    vs.release(vol)
    vs.close()
    again = VolumeStore(BlockStore.open(tmp_path / "blocks"), owns_blocks=True)
    try:
        assert again.open("v").read(0, SIZE) == model
    finally:
        again.close()


def test_bad_arguments_change_nothing(vs: VolumeStore) -> None:
    with pytest.raises(VolumeError):
        vs.create("bad/name", SIZE)
    with pytest.raises(VolumeError):
        vs.create("v", 1000)  # not a multiple of 512
    with pytest.raises(VolumeError):
        vs.create("v", SIZE, block_size=3000)
    vs.create("v", SIZE, block_size=BS)
    with pytest.raises(VolumeExists):
        vs.create("v", SIZE, block_size=BS)
    with pytest.raises(VolumeNotFound):
        vs.info("nope")
    with pytest.raises(ValueError):
        vs.open("v").read(SIZE - 1, 2)
    assert vs.names() == ["v"]


def test_snapshot_and_clone_share_until_written(vs: VolumeStore) -> None:
    vs.create("v", SIZE, block_size=BS)
    vol = vs.open("v")
    base = pattern(SIZE, 5)
    vol.write(0, base)
    vs.snapshot("v", "s1")
    assert vs.info("v").blocks["frozen"] == 8 and vs.info("s1").snapshot
    vs.clone("s1", "c1")
    c1 = vs.open("c1")
    c1.write(BS + 10, b"clone")  # partial: copies only this block
    vol.write(2 * BS, b"parent")
    assert vs.info("c1").blocks == {"zero": 0, "shared": 0, "owned": 1, "frozen": 7}
    s1 = vs.open("s1")
    assert s1.read(0, SIZE) == base
    want_c = bytearray(base)
    want_c[BS + 10 : BS + 15] = b"clone"
    want_v = bytearray(base)
    want_v[2 * BS : 2 * BS + 6] = b"parent"
    assert c1.read(0, SIZE) == want_c and vol.read(0, SIZE) == want_v
    with pytest.raises(VolumeReadOnly):
        s1.write(0, b"x")
    with pytest.raises(VolumeReadOnly):
        vs.snapshot("s1", "s2")

    # hashing the frozen extent changes no byte and frees the extent file
    assert vs.freeze_pending() == 1
    assert s1.read(0, SIZE) == base and c1.read(0, SIZE) == want_c and vol.read(0, SIZE) == want_v
    assert vs.info("s1").blocks["shared"] == 8 and vs.info("c1").blocks["frozen"] == 0
    assert vs.blocks.verify().ok


def test_identical_data_in_two_volumes_is_stored_once(vs: VolumeStore) -> None:
    data = pattern(4 * BS, 9)
    for name in ("a", "b"):
        vs.create(name, SIZE, block_size=BS)
        vs.open(name).write(0, data)
        vs.snapshot(name, name + "@1")
    vs.freeze_pending()
    assert vs.blocks.stats().blocks == 4
    assert vs.disk_bytes() == 0  # nothing owned anywhere any more


def test_clone_of_an_object_map_moves_no_data(vs: VolumeStore) -> None:
    image = pattern(3 * BS + 1000, 11)  # a short last block
    blocks = [image[i : i + BS] for i in range(0, len(image), BS)]
    digests = vs.blocks.put_many("blake3", blocks)
    key = vs.backing.maps.add("blake3", len(image), BS, digests)
    hmap = vs.backing.maps.get(key)
    vs.clone_map(hmap, "vm")
    vol = vs.open("vm")
    assert vol.size == -(-len(image) // 512) * 512
    assert vol.read(0, len(image)) == image and vol.read(len(image), vol.size - len(image)) == bytes(vol.size - len(image))
    assert vs.backing.maps.refcount(key) == 2
    assert vs.info("vm").blocks["shared"] == 3
    vol.write(5, b"hello")
    assert vs.info("vm").blocks["shared"] == 2
    assert vs.blocks.get("blake3", digests[0]) == blocks[0]  # the image is untouched
    vs.release(vol)
    vs.delete("vm")
    assert vs.backing.maps.refcount(key) == 1


def test_trim_and_write_zeroes_store_nothing(vs: VolumeStore) -> None:
    vs.create("v", SIZE, block_size=BS)
    vol = vs.open("v")
    vol.write(0, pattern(SIZE, 3))
    vol.flush()
    used = vs.disk_bytes()
    vol.zero(0, 4 * BS)  # whole blocks: entries back to zero, space freed
    vol.zero(5 * BS + 100, 50)  # part of a block: zeros written
    vol.flush()
    assert vs.info("v").blocks["zero"] == 4 and vs.disk_bytes() <= used // 2 + BS
    want = bytearray(pattern(SIZE, 3))
    want[: 4 * BS] = bytes(4 * BS)
    want[5 * BS + 100 : 5 * BS + 150] = bytes(50)
    assert vol.read(0, SIZE) == want
    vol.zero(6 * BS, BS, no_hole=True)  # NO_HOLE: allocated zeros
    want[6 * BS : 7 * BS] = bytes(BS)
    assert vol.read(0, SIZE) == want and vs.info("v").blocks["owned"] == 4


def test_allocation_runs(vs: VolumeStore) -> None:
    vs.create("v", SIZE, block_size=BS)
    vol = vs.open("v")
    vol.write(2 * BS, b"x")
    assert vol.allocation(BS + 5, 3 * BS) == [(BS + 5, BS - 5, True), (2 * BS, BS, False), (3 * BS, BS + 5, True)]


def test_resize_grow_and_shrink_never_resurrect_bytes(vs: VolumeStore) -> None:
    vs.create("v", SIZE, block_size=BS)
    vol = vs.open("v")
    data = pattern(SIZE, 4)
    vol.write(0, data)
    vs.snapshot("v", "s")
    vs.clone("s", "c")
    c = vs.open("c")
    for name, v in (("v", vol), ("c", c)):
        vs.resize(name, 2 * BS + 512)
        assert v.read(0, v.size) == data[: 2 * BS + 512]
        vs.resize(name, SIZE * 2)
        assert v.read(0, v.size) == data[: 2 * BS + 512] + bytes(SIZE * 2 - 2 * BS - 512)
    assert vs.open("s").read(0, SIZE) == data
    with pytest.raises(VolumeReadOnly):
        vs.resize("s", SIZE * 2)
    vs.freeze_pending()
    assert c.read(0, 3 * BS) == data[: 2 * BS + 512] + bytes(BS - 512)
    assert vs.blocks.verify().ok


def test_diff_rollback_flatten_delete(vs: VolumeStore) -> None:
    vs.create("v", SIZE, block_size=BS)
    vol = vs.open("v")
    base = pattern(SIZE, 6)
    vol.write(0, base)
    vs.snapshot("v", "s1")
    vol.write(3 * BS + 1, b"abc")
    vol.write(7 * BS, bytes(BS))
    vs.snapshot("v", "s2")
    assert vs.diff("s1", "s2") == [(3 * BS, BS), (7 * BS, BS)]
    assert vs.diff("s2", "s2") == []
    vol.write(0, b"later")
    with pytest.raises(VolumeBusy):
        vs.rollback("v", "s1")
    vs.release(vol)
    vs.rollback("v", "s1")
    assert read_all(vs, "v") == base

    vs.clone("s2", "c")
    vs.flatten("c")
    info = vs.info("c")
    assert info.parent is None and info.blocks["frozen"] == 0 and info.holds == 1
    for name in ("s1", "s2", "v"):
        vs.delete(name)
    vs.freeze_pending()
    want = bytearray(base)
    want[3 * BS + 1 : 3 * BS + 4] = b"abc"
    want[7 * BS :] = bytes(BS)
    assert read_all(vs, "c") == want
    vs.delete("c")
    vs.freeze_pending()
    assert vs.backing.maps.keys() == [] and vs.disk_bytes() == 0
    assert vs.blocks.verify().ok
    assert vs.names() == []


def test_writable_volume_clone_freezes_its_source(vs: VolumeStore) -> None:
    vs.create("v", SIZE, block_size=BS)
    vol = vs.open("v")
    vol.write(0, b"one")
    vs.clone("v", "c")
    vol.write(0, b"two")
    assert vs.open("c").read(0, 3) == b"one" and vol.read(0, 3) == b"two"


def test_sha256_volume_hashes_as_pithos_does(vs: VolumeStore) -> None:
    vs.create("v", SIZE, block_size=BS, scheme="sha256")
    vol = vs.open("v")
    block = b"data" + bytes(BS - 4)
    vol.write(0, block)
    vs.snapshot("v", "s")
    scheme, size, bs, digests = vs.hash_list("s")
    assert (scheme, size, bs) == ("sha256", SIZE, BS)
    assert digests[:32] == hashlib.sha256(b"data").digest()  # trailing zeros stripped
    assert vs.open("s").read(0, BS) == block


ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, SIZE - 1), st.integers(1, 3 * BS), st.integers(0, 1 << 30)),
        st.tuples(st.just("zeros"), st.integers(0, SIZE - 1), st.integers(1, 3 * BS), st.just(0)),
        st.tuples(st.just("trim"), st.integers(0, SIZE - 1), st.integers(1, 3 * BS), st.just(0)),
        st.tuples(st.just("snap"), st.just(0), st.just(0), st.just(0)),
        st.tuples(st.just("freeze"), st.just(0), st.just(0), st.just(0)),
        st.tuples(st.just("flush"), st.just(0), st.just(0), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_random_operations_match_the_model(tmp_path_factory: pytest.TempPathFactory, seq: list[tuple]) -> None:
    root = tmp_path_factory.mktemp("vols")
    vs = VolumeStore(BlockStore.open(root / "blocks"), owns_blocks=True)
    try:
        vs.create("v", SIZE, block_size=BS)
        vol = vs.open("v")
        model = bytearray(SIZE)
        snaps: dict[str, bytes] = {}
        for op, off, n, seed in seq:
            n = min(n, SIZE - off)
            if op == "write":
                data = pattern(n, seed) if seed % 3 else bytes(n)
                vol.write(off, data)
                model[off : off + n] = data
            elif op in ("zeros", "trim"):
                vol.zero(off, n)
                model[off : off + n] = bytes(n)
            elif op == "snap":
                name = f"s{len(snaps)}"
                vs.snapshot("v", name)
                snaps[name] = bytes(model)
            elif op == "freeze":
                vs.freeze_pending()
            else:
                vol.flush()
        assert vol.read(0, SIZE) == model
        for name, want in snaps.items():
            assert vs.open(name).read(0, SIZE) == want
        vs.freeze_pending()
        assert vol.read(0, SIZE) == model
        assert vs.blocks.verify().ok
    finally:
        vs.close()


def test_a_pinned_extent_stays_readable_after_removal(tmp_path: Path) -> None:
    from storage_engine.volumes.extents import ExtentFiles

    files = ExtentFiles(tmp_path)
    files.create(7)
    files.write(7, 0, b"kept")
    files.pin(7)
    files.remove(7)  # a reader planned its read before the extent went away
    out = bytearray(4)
    files.read_into(7, 0, memoryview(out))
    assert out == b"kept" and not files.path(7).exists()
    files.unpin(7)
    files.create(7)  # the id's descriptor was closed: a new file of that id starts empty
    out = bytearray(4)
    files.read_into(7, 0, memoryview(out))
    assert out == bytes(4)
    files.close()


def test_shared_blocks_are_read_through_the_cache(vs: VolumeStore) -> None:
    data = pattern(BS, 8)
    digests = vs.blocks.put_many("blake3", [data])
    hmap = vs.backing.maps.get(vs.backing.maps.add("blake3", BS, BS, digests))
    vs.clone_map(hmap, "c")
    vol = vs.open("c")
    for off in range(0, BS, 4096):
        assert vol.read(off, 4096) == data[off : off + 4096]
    assert vs.cache.misses == 1 and vs.cache.hits == BS // 4096 - 1


def test_freezing_stops_at_shutdown_and_resumes(vs: VolumeStore) -> None:
    vs.create("v", SIZE, block_size=BS)
    vol = vs.open("v")
    data = pattern(SIZE, 12)
    vol.write(0, data)
    vs.snapshot("v", "s")
    vs.stop_freezing.set()
    assert vs.freeze_pending() == 0  # interrupted before anything changed
    assert vs.info("s").blocks["frozen"] == 8 and vs.open("s").read(0, SIZE) == data
    vs.stop_freezing.clear()
    assert vs.freeze_pending() == 1 and vs.info("s").blocks["shared"] == 8
    assert vs.open("s").read(0, SIZE) == data


def test_cached_reads_equal_reads_or_decline(vs: VolumeStore) -> None:
    data = pattern(BS, 21)
    digests = vs.blocks.put_many("blake3", [data])
    hmap = vs.backing.maps.get(vs.backing.maps.add("blake3", BS, BS, digests))
    vs.clone_map(hmap, "c", size=4 * BS)
    vol = vs.open("c")
    vol.write(2 * BS + 10, b"owned")
    assert vol.read_cached(0, 100) is None  # the shared block is not in the cache yet
    want = vol.read(0, 4 * BS)
    got = vol.read_cached(BS - 50, 2 * BS)  # shared tail, a zero block, the owned block's start
    assert got is None or got == want[BS - 50 : 3 * BS - 50]
    assert vol.read_cached(0, BS) == want[:BS]  # now cached
    with vol.lock:
        import threading

        other: list[object] = []
        t = threading.Thread(target=lambda: other.append(vol.read_cached(0, 10)))
        t.start()
        t.join()
    assert other == [None]  # a writer holds the lock: decline, never wait
    assert vol.read_cached(0, 2 << 20) is None  # too long for the event loop
