"""Appends write outside the append lock: concurrency, out-of-order completion, failures, crashes."""

from __future__ import annotations

import errno
import random
import shutil
import threading
from pathlib import Path

import pytest

from hashmaps import block_digest
from storage_engine.blocks.blockstore import BlockStore
from storage_engine.blocks.errors import StoreFull
from storage_engine.blocks.records import HEADER_SIZE
from storage_engine.blocks.segments import Segment
from store_support import KiB, opened, small_config


@pytest.mark.parametrize("durability", ["group", "each"])
def test_concurrent_puts_from_many_threads(tmp_path: Path, durability: str) -> None:
    n_threads, per_thread = 16, 24
    blocks = {t: [random.Random(t).randbytes(random.Random(t).randint(1, 40) * KiB) for _ in range(per_thread)]
              for t in range(n_threads)}
    for t in blocks:  # distinct content per thread and block
        blocks[t] = [bytes([t, i]) + b[2:] for i, b in enumerate(blocks[t])]
    got: dict[int, list[bytes]] = {}
    errors: list[BaseException] = []
    with opened(tmp_path / "s", durability=durability, compression=False) as store:
        def run(t: int) -> None:
            try:
                out: list[bytes] = []
                for i in range(0, per_thread, 3):
                    out += store.put_many("blake3", blocks[t][i : i + 3])
                got[t] = out
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(t,)) for t in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors
        for t in range(n_threads):
            for d, b in zip(got[t], blocks[t]):
                assert d == block_digest(b, "blake3")
                assert store.get("blake3", d) == b
        assert store.stats().blocks == n_threads * per_thread
        assert store.verify().ok
    with opened(tmp_path / "s") as store:
        assert store.recovery is not None and store.recovery.clean
        for t in range(n_threads):
            for d, b in zip(got[t], blocks[t]):
                assert store.get("blake3", d) == b
        assert store.verify().ok and store.scrub().ok


class _GatedWrites:
    """Segment.write_at that blocks the write of one payload until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, gated: bytes, fail: OSError | None = None) -> None:
        self.real = Segment.write_at
        self.gated = gated
        self.fail = fail
        self.entered = threading.Event()
        self.release = threading.Event()
        self.others: list[int] = []
        outer = self

        def write_at(seg: Segment, pos: int, bufs):  # type: ignore[no-untyped-def]
            if bytes(bufs[1]) == outer.gated:
                outer.entered.set()
                assert outer.release.wait(10)
                if outer.fail is not None:
                    raise outer.fail
            else:
                outer.others.append(pos)
            return outer.real(seg, pos, bufs)

        monkeypatch.setattr(Segment, "write_at", write_at)


def _put_in_thread(store: BlockStore, data: bytes) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []

    def run() -> None:
        try:
            result.append(store.put("blake3", data))
        except BaseException as exc:
            result.append(exc)

    th = threading.Thread(target=run)
    th.start()
    return th, result


def _a_stuck_and_b_written(
    store: BlockStore, gate: _GatedWrites, a: bytes, b: bytes
) -> tuple[threading.Thread, list[object], threading.Thread, list[object]]:
    """Put `a` (its write held by `gate`), then `b`; return once b's record is written
    after a's reserved, still unwritten, space.  (thread, result) of each."""
    ta, ra = _put_in_thread(store, a)
    assert gate.entered.wait(10)  # a's space is reserved, its write is stuck
    tb, rb = _put_in_thread(store, b)
    for _ in range(200):  # b reserves after a and writes while a's write is in flight
        if gate.others:
            break
        threading.Event().wait(0.01)
    assert gate.others, "the second put's write waited for the first"
    return ta, ra, tb, rb


def test_slow_write_does_not_hold_the_lock_nor_let_the_commit_pass_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rnd = random.Random(7)
    a, b, c = (rnd.randbytes(20 * KiB) for _ in range(3))
    with opened(tmp_path / "s", compression=False, segment_size=1 << 20) as store:
        store.put("blake3", c)  # something committed below
        gate = _GatedWrites(monkeypatch, a)
        ta, ra, tb, rb = _a_stuck_and_b_written(store, gate, a, b)
        tb.join(0.3)
        assert tb.is_alive() and not ra and not rb  # b's commit waits for a's write
        with store.index.read() as r:  # nothing past the hole got committed
            a_off = gate.others[0] - HEADER_SIZE - len(a)
            assert max(row.end for row in r.segments().values()) <= a_off
        gate.release.set()
        ta.join(10)
        tb.join(10)
        assert ra == [block_digest(a, "blake3")] and rb == [block_digest(b, "blake3")]
        assert store.get("blake3", ra[0]) == a and store.get("blake3", rb[0]) == b  # type: ignore[arg-type]
    with opened(tmp_path / "s") as store:
        assert store.recovery is not None and store.recovery.clean
        assert store.verify().ok and store.scrub().ok


def test_crash_with_a_write_in_flight_below_a_finished_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(8)
    a, b, c = (rnd.randbytes(20 * KiB) for _ in range(3))
    store = BlockStore.open(tmp_path / "s", small_config(compression=False, segment_size=1 << 20))
    try:
        dc = store.put("blake3", c)
        gate = _GatedWrites(monkeypatch, a)
        ta, _, tb, _ = _a_stuck_and_b_written(store, gate, a, b)
        tb.join(0.3)
        # "kill -9" now: b's record is on disk after a hole of zeros where a's goes
        shutil.copytree(tmp_path / "s", tmp_path / "crashed", ignore=shutil.ignore_patterns("lock"))
        gate.release.set()
        ta.join(10)
        tb.join(10)
    finally:
        store.close()
    monkeypatch.undo()
    with opened(tmp_path / "crashed") as crashed:
        rep = crashed.recovery
        assert rep is not None and rep.tails_cut  # the hole and what follows it are cut
        assert crashed.get("blake3", dc) == c
        assert not crashed.has("blake3", block_digest(a, "blake3"))
        assert not crashed.has("blake3", block_digest(b, "blake3"))  # never acknowledged
        assert crashed.verify().ok and crashed.scrub().ok
        d = crashed.put("blake3", a)
        assert crashed.get("blake3", d) == a
    with opened(tmp_path / "crashed") as again:
        assert again.recovery is not None and again.recovery.clean
        assert again.verify().ok


def test_failed_write_below_a_finished_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(9)
    a, b, c, e = (rnd.randbytes(20 * KiB) for _ in range(4))
    with opened(tmp_path / "s", compression=False, segment_size=1 << 20) as store:
        dc = store.put("blake3", c)
        gate = _GatedWrites(monkeypatch, a, fail=OSError(errno.ENOSPC, "full"))
        ta, ra, tb, rb = _a_stuck_and_b_written(store, gate, a, b)
        gate.release.set()
        ta.join(10)
        tb.join(10)
        assert isinstance(ra[0], StoreFull)
        # b landed past a's hole: it must not be committed (its put fails, or it was
        # committed on its own before the hole appeared, which the gate rules out)
        assert isinstance(rb[0], OSError)
        assert not store.has("blake3", block_digest(a, "blake3"))
        assert not store.has("blake3", block_digest(b, "blake3"))
        monkeypatch.undo()
        de, db = store.put("blake3", e), store.put("blake3", b)  # a fresh segment takes them
        assert store.get("blake3", de) == e and store.get("blake3", db) == b
        assert store.get("blake3", dc) == c
        assert store.verify().ok
    with opened(tmp_path / "s") as store:
        assert store.get("blake3", dc) == c and store.get("blake3", db) == b
        assert store.verify().ok and store.scrub().ok
