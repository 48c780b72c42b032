"""Block store: put/get/has/missing, dedup, zero blocks, both schemes, concurrency, locking."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from pathlib import Path

import pytest

from hashmaps import SHA256_EMPTY, block_digest, zero_block_digest
from storage_engine.blocks.blockstore import BlockStore
from storage_engine.blocks.errors import (
    BlockNotFound,
    CorruptBlock,
    DigestMismatch,
    FormatError,
    MissingBlocks,
    ReadOnlyStore,
    RefcountUnderflow,
    StoreClosed,
    StoreLocked,
)
from storage_engine.blocks.records import Codec
from store_support import KiB, compressible_block, opened, random_block


@pytest.mark.parametrize("scheme", ["blake3", "sha256"])
def test_put_get_round_trip(tmp_path: Path, scheme: str) -> None:
    rnd = random.Random(1)
    blocks = [random_block(rnd, rnd.randint(1, 100 * KiB)) for _ in range(40)]
    with opened(tmp_path / "s") as store:
        digests = store.put_many(scheme, blocks)
        assert digests == [block_digest(b, scheme) for b in blocks]
        for d, b in zip(digests, blocks):
            assert store.has(scheme, d)
            assert store.get(scheme, d, len(b)) == b
    with opened(tmp_path / "s") as store:  # and after reopening
        assert store.recovery is not None and store.recovery.clean
        for d, b in zip(digests, blocks):
            assert store.get(scheme, d, len(b)) == b


def test_put_returns_digest_and_accepts_prehashed(tmp_path: Path) -> None:
    data = os.urandom(5000)
    d = block_digest(data, "blake3")
    with opened(tmp_path / "s") as store:
        assert store.put("blake3", data) == d
        assert store.put("blake3", data, d) == d
        assert store.put_many("blake3", [(d, data), (None, data)]) == [d, d]
        assert store.stats().blocks == 1


def test_dedup_across_objects_and_schemes(tmp_path: Path) -> None:
    rnd = random.Random(2)
    shared = [random_block(rnd, 64 * KiB) for _ in range(5)]
    obj_a = shared + [random_block(rnd, 64 * KiB)]
    obj_b = [random_block(rnd, 64 * KiB)] + shared
    with opened(tmp_path / "s") as store:
        store.put_many("blake3", obj_a)
        before = store.stats()
        store.put_many("blake3", obj_b)
        after = store.stats()
        assert after.blocks == before.blocks + 1  # only the one new block
        assert after.payload_bytes == before.payload_bytes + 64 * KiB
        # the same bytes under the other scheme are a different key
        store.put_many("sha256", shared)
        assert store.stats().blocks == after.blocks + 5


def test_duplicates_within_one_call_are_stored_once(tmp_path: Path) -> None:
    data = os.urandom(10 * KiB)
    with opened(tmp_path / "s") as store:
        store.put_many("blake3", [data] * 10)
        st = store.stats()
        assert st.blocks == 1 and st.dead_bytes == 0


def test_zero_blocks_are_never_stored(tmp_path: Path) -> None:
    with opened(tmp_path / "s") as store:
        d3 = store.put("blake3", bytes(4096))
        assert d3 == zero_block_digest("blake3", 4096)
        d2 = store.put("sha256", bytes(4096))
        assert d2 == SHA256_EMPTY
        st = store.stats()
        assert st.blocks == 0 and st.segment_bytes == 0
        assert store.has("blake3", d3) and store.has("sha256", SHA256_EMPTY)
        assert store.get("blake3", d3) == bytes(4096)
        assert store.get("sha256", SHA256_EMPTY, 100) == bytes(100)
        info = store.info("blake3", d3)
        assert info is not None and info.zero and info.record_len == 0
        # zero blocks carry no refcount
        store.change_refcounts("blake3", {d3: 5})
        assert store.refcount("blake3", d3) == 0
        assert not list(store.seg_dir.glob("*.seg"))


def test_sha256_blocks_are_stored_without_trailing_zeros(tmp_path: Path) -> None:
    """sha256 names a block without its trailing zeros: one copy serves every length."""
    full = b"abc" + bytes(8 * KiB - 3)
    short = b"abc"
    with opened(tmp_path / "s") as store:
        d = store.put("sha256", full)
        assert store.put("sha256", short) == d
        info = store.info("sha256", d)
        assert info is not None and info.raw_len == 3
        assert store.get("sha256", d, len(full)) == full
        assert store.get("sha256", d, 3) == short
        with pytest.raises(ValueError):
            store.get("sha256", d, 2)


def test_compression_when_it_pays(tmp_path: Path) -> None:
    rnd = random.Random(3)
    text = compressible_block(rnd, 200 * KiB)
    noise = random_block(rnd, 200 * KiB)
    with opened(tmp_path / "s") as store:
        dt, dn = store.put_many("blake3", [text, noise])
        assert store.info("blake3", dt).codec == Codec.ZSTD  # type: ignore[union-attr]
        assert store.info("blake3", dn).codec == Codec.RAW  # type: ignore[union-attr]
        assert store.get("blake3", dt) == text
        st = store.stats()
        assert st.compression_ratio > 1.5
    with opened(tmp_path / "t", compression=False) as store:
        d = store.put("blake3", text)
        assert store.info("blake3", d).codec == Codec.RAW  # type: ignore[union-attr]


def test_get_buffer_is_zero_copy_for_sealed_segments(tmp_path: Path) -> None:
    rnd = random.Random(4)
    blocks = [random_block(rnd, 100 * KiB) for _ in range(8)]  # > one 256 KiB segment
    with opened(tmp_path / "s") as store:
        ds = store.put_many("blake3", blocks)
        buf = store.get_buffer("blake3", ds[0])
        assert isinstance(buf, memoryview) and buf.readonly
        assert buf.obj is not None and type(buf.obj).__name__ == "mmap"
        assert bytes(buf) == blocks[0]
        del buf


def test_verify_on_put_rejects_a_lying_digest(tmp_path: Path) -> None:
    data = os.urandom(999) + b"\x01"  # no trailing zero: sha256 would store it stripped
    wrong = hashlib.sha256(b"other").digest()
    with opened(tmp_path / "s") as store:
        with pytest.raises(DigestMismatch):
            store.put("sha256", data, wrong)
        with pytest.raises(DigestMismatch):
            store.put("blake3", data, wrong)
        with pytest.raises(DigestMismatch):
            store.put("blake3", bytes(100), wrong)  # a zero block under another name
        assert not store.has("sha256", wrong) and store.stats().blocks == 0
        # verify off trusts the caller (the ingest path that hashed already)
        store.put("sha256", data, block_digest(data, "sha256"), verify=False)
        assert store.get("sha256", block_digest(data, "sha256")) == data
        # a raw blake3 record takes the claimed digest as its checksum: a lie is
        # stored, but reads back as a corrupt block, never as data under a wrong name
        store.put("blake3", data, wrong, verify=False)
        with pytest.raises(CorruptBlock, match=wrong.hex()):
            store.get("blake3", wrong)
        assert [b.digest for b in store.scrub().bad] == [wrong]


def test_missing_and_has(tmp_path: Path) -> None:
    blocks = [os.urandom(100) for _ in range(5)]
    ds = [block_digest(b, "blake3") for b in blocks]
    with opened(tmp_path / "s") as store:
        store.put_many("blake3", blocks[:3])
        assert store.missing("blake3", ds + ds) == ds[3:]
        assert store.missing("sha256", [SHA256_EMPTY]) == []
        with pytest.raises(BlockNotFound) as exc:
            store.get("blake3", ds[4])
        assert ds[4].hex() in str(exc.value)
        assert store.info("blake3", ds[4]) is None


def test_refcount_batches(tmp_path: Path) -> None:
    blocks = [os.urandom(100) for _ in range(4)]
    with opened(tmp_path / "s") as store:
        ds = store.put_many("blake3", blocks)
        store.change_refcounts("blake3", {ds[0]: 2, ds[1]: 1})
        store.change_refcounts("blake3", [(ds[0], -1), (ds[2], 3), (ds[2], -1)])
        assert [store.refcount("blake3", d) for d in ds] == [1, 1, 2, 0]
        absent = block_digest(b"absent", "blake3")
        with pytest.raises(MissingBlocks) as exc:
            store.change_refcounts("blake3", {ds[3]: 1, absent: 1})
        assert exc.value.digests == [absent]
        assert store.refcount("blake3", ds[3]) == 0  # all or nothing
        with pytest.raises(RefcountUnderflow):
            store.change_refcounts("blake3", {ds[0]: -2})
        assert store.refcount("blake3", ds[0]) == 1
        st = store.stats()
        assert st.referenced_blocks == 3 and st.mapped_bytes == 400 and st.logical_bytes == 0  # refs from no map


@pytest.mark.parametrize("durability", ["group", "each"])
def test_many_threads_put_concurrently(tmp_path: Path, durability: str) -> None:
    """Group commit under concurrency: every put returns durable and readable."""
    results: dict[bytes, bytes] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    with opened(tmp_path / "s", durability=durability, segment_size=512 * KiB) as store:

        def worker(seed: int) -> None:
            rnd = random.Random(seed)
            try:
                for _ in range(30):
                    blocks = [random_block(rnd, rnd.randint(1, 20 * KiB)) for _ in range(rnd.randint(1, 4))]
                    if rnd.random() < 0.3:
                        blocks.append(b"shared block %d" % rnd.randint(0, 5))
                    for d, b in zip(store.put_many("blake3", blocks), blocks):
                        with lock:
                            results[d] = b
                        assert store.get("blake3", d) == b
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert store.stats().blocks == len(results)
        assert store.verify().ok
    with opened(tmp_path / "s") as store:
        assert store.recovery is not None and store.recovery.reindexed == 0
        for d, b in results.items():
            assert store.get("blake3", d) == b


def test_group_commit_shares_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commits = 0
    with opened(tmp_path / "s", group_window_ms=20) as store:
        original = store._commit_pending

        def counting() -> None:
            nonlocal commits
            commits += 1
            original()

        monkeypatch.setattr(store, "_commit_pending", counting)
        store._committer._commit = counting  # type: ignore[union-attr]
        threads = [threading.Thread(target=store.put, args=("blake3", os.urandom(1000))) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.stats().blocks == 16
    assert commits < 16


def test_one_writer_per_store(tmp_path: Path) -> None:
    with opened(tmp_path / "s") as store:
        with pytest.raises(StoreLocked):
            BlockStore.open(tmp_path / "s")
        d = store.put("blake3", b"x" * 100)
        # a reader may open beside the writer and sees committed blocks
        reader = BlockStore.open(tmp_path / "s", readonly=True)
        try:
            assert reader.get("blake3", d) == b"x" * 100
            with pytest.raises(ReadOnlyStore):
                reader.put("blake3", b"y")
            d2 = store.put("blake3", os.urandom(300 * KiB))  # a new segment the reader has not seen
            assert reader.has("blake3", d2) and len(reader.get("blake3", d2)) == 300 * KiB
        finally:
            reader.close()
    store2 = BlockStore.open(tmp_path / "s")  # the lock went with close()
    store2.close()
    with pytest.raises(StoreClosed):
        store2.get("blake3", d)


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(FormatError):
        BlockStore.open(tmp_path / "nothing", readonly=True)
    with pytest.raises(FormatError):
        BlockStore.open(tmp_path / "nothing", create=False)


def test_segments_rotate_at_their_size(tmp_path: Path) -> None:
    rnd = random.Random(5)
    with opened(tmp_path / "s", segment_size=64 * KiB) as store:
        store.put_many("blake3", [random_block(rnd, 20 * KiB) for _ in range(10)])
        big = random_block(rnd, 200 * KiB)  # larger than a segment: gets one of its own
        d = store.put("blake3", big)
        assert store.get("blake3", d) == big
        sizes = [p.stat().st_size for p in store.seg_dir.glob("*.seg")]
        assert max(sizes) > 64 * KiB and sorted(sizes)[-2] <= 64 * KiB
        assert store.verify().ok


def test_readers_do_not_wait_for_commits(tmp_path: Path) -> None:
    """A get of a committed block is served while a put sits in a slow commit."""
    with opened(tmp_path / "s", group_window_ms=300) as store:
        d = store.put("blake3", b"old" * 100)
        t = threading.Thread(target=store.put, args=("blake3", os.urandom(100)))
        t.start()
        time.sleep(0.02)
        t0 = time.perf_counter()
        assert store.get("blake3", d) == b"old" * 100
        assert time.perf_counter() - t0 < 0.1
        t.join()


def test_lock_holds_across_processes(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, sys.argv[2])\n"
        "from storage_engine.blocks.blockstore import BlockStore\n"
        "from storage_engine.blocks.errors import StoreLocked\n"
        "try:\n    BlockStore.open(sys.argv[1])\nexcept StoreLocked as e:\n    print('locked', e)\n"
        "else:\n    print('opened')\n"
    )
    repo = str(Path(__file__).resolve().parents[3])
    with opened(tmp_path / "s"):
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s"), repo], capture_output=True, text=True)
        assert out.stdout.startswith("locked") and f"pid {os.getpid()}" in out.stdout, out
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s"), repo], capture_output=True, text=True)
    assert out.stdout.strip() == "opened", out


class _CountingCompressor:
    """Wraps a zstd compressor, recording the length of every input it is given."""

    def __init__(self, inner: object, calls: list[int]) -> None:
        self._inner = inner
        self._calls = calls

    def compress(self, data: object) -> bytes:
        self._calls.append(len(memoryview(data).cast("B")))  # type: ignore[arg-type]
        return self._inner.compress(data)  # type: ignore[attr-defined]


def _count_compress_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from storage_engine.blocks import compression

    calls: list[int] = []
    real = compression._compressor
    monkeypatch.setattr(compression, "_compressor", lambda level: _CountingCompressor(real(level), calls))
    return calls


def test_incompressible_block_skips_full_zstd_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    from storage_engine.blocks import compression

    calls = _count_compress_calls(monkeypatch)
    noise = os.urandom(4 << 20)
    payload, codec = compression.maybe_compress(noise, 3, 1 / 8)
    assert codec == Codec.RAW and payload is noise  # the caller's buffer, no copy
    assert calls == [compression.SAMPLE_SIZE]  # only the sample was compressed


def test_compressible_block_passes_sample_and_is_compressed(monkeypatch: pytest.MonkeyPatch) -> None:
    from storage_engine.blocks import compression

    calls = _count_compress_calls(monkeypatch)
    text = compressible_block(random.Random(11), 4 << 20)
    payload, codec = compression.maybe_compress(text, 3, 1 / 8)
    assert codec == Codec.ZSTD and len(payload) < len(text) * 7 // 8
    assert calls == [compression.SAMPLE_SIZE, len(text)]
    assert compression.decompress(payload, len(text)) == text


def test_block_no_larger_than_sample_is_attempted_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    from storage_engine.blocks import compression

    calls = _count_compress_calls(monkeypatch)
    small_noise = os.urandom(compression.SAMPLE_SIZE)
    assert compression.maybe_compress(small_noise, 3, 1 / 8)[1] == Codec.RAW
    small_text = compressible_block(random.Random(12), 32 * KiB)
    assert compression.maybe_compress(small_text, 3, 1 / 8)[1] == Codec.ZSTD
    assert calls == [len(small_noise), len(small_text)]


def test_sample_passes_but_full_block_saves_too_little_stays_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    from storage_engine.blocks import compression

    # Compressible where the sample looks, noise elsewhere: the probe says try,
    # the full attempt saves < 1/8, so the block is stored raw.
    n = 4 << 20
    buf = bytearray(os.urandom(n))
    step = (n - compression.SAMPLE_CHUNK) // (compression.SAMPLE_CHUNKS - 1)
    for i in range(compression.SAMPLE_CHUNKS):
        buf[i * step : i * step + compression.SAMPLE_CHUNK] = bytes(compression.SAMPLE_CHUNK)
    calls = _count_compress_calls(monkeypatch)
    payload, codec = compression.maybe_compress(bytes(buf), 3, 1 / 8)
    assert codec == Codec.RAW
    assert calls == [compression.SAMPLE_SIZE, n]


def test_store_puts_incompressible_blocks_raw_without_full_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storage_engine.blocks import compression

    rnd = random.Random(13)
    noise = [random_block(rnd, 1 << 20) for _ in range(3)]
    text = compressible_block(rnd, 1 << 20)
    with opened(tmp_path / "s", threads=1) as store:
        calls = _count_compress_calls(monkeypatch)
        ds = store.put_many("blake3", noise + [text])
        assert [store.info("blake3", d).codec for d in ds] == [Codec.RAW] * 3 + [Codec.ZSTD]  # type: ignore[union-attr]
        assert sorted(calls) == [compression.SAMPLE_SIZE] * 4 + [len(text)]
        for d, b in zip(ds, noise + [text]):
            assert store.get("blake3", d) == b
