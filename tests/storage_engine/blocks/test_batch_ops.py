"""Index operations committed with a batch of puts (BatchOp): a small object's blocks and
its map reference in one transaction, map drops grouped with puts, and one op's
failure never becoming another put's."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path

import pytest

from hashmaps import block_digest, top_hash
from storage_engine.blocks.aio import AsyncBlockStore
from storage_engine.blocks.commit import BatchOp
from storage_engine.blocks.errors import MapNotFound, MissingBlocks
from storage_engine.maps.mapstore import MapKey, MapStore
from store_support import KiB, opened

BS = 16 * KiB


def test_blocks_and_their_map_reference_share_one_commit(tmp_path: Path) -> None:
    with opened(tmp_path / "s", group_window_ms=0) as store:
        maps = MapStore(store)
        data = random.Random(1).randbytes(BS)
        d = block_digest(data, "blake3")
        key, op = maps.prepare_add("blake3", len(data), BS, [d])
        pending = store.begin_put("blake3", [(d, data)], verify=False, ops=[op])
        # the op joined the very batch holding the record: one sync, one transaction
        assert pending.batches == [pending.last]
        assert not op.applied and maps.refcount(key) == 0  # nothing visible before the commit
        store.finish_put(pending)
        assert op.applied and op.error is None
        assert maps.refcount(key) == 1 and store.refcount("blake3", d) == 1
        assert pending.known == 0
        # the same block again: found by the put's own lookup (dedup), no new record
        key2, op2 = maps.prepare_add("blake3", len(data), BS, [d])
        again = store.begin_put("blake3", [(d, data)], verify=False, ops=[op2])
        assert again.batches == [] and again.known == 1
        store.finish_put(again)
        assert maps.refcount(key) == 2 and store.refcount("blake3", d) == 1


def test_an_op_that_fails_alone_leaves_the_batch_committed(tmp_path: Path) -> None:
    with opened(tmp_path / "s", group_window_ms=200, group_at_once_bytes=0) as store:
        maps = MapStore(store)
        rnd = random.Random(2)
        good, other = rnd.randbytes(BS), rnd.randbytes(BS)
        dg, do = block_digest(good, "blake3"), block_digest(other, "blake3")
        absent = block_digest(b"never stored", "blake3")
        # a map naming a block nobody stores: MissingBlocks, raised before it changes anything
        _key, bad = maps.prepare_add("blake3", 2 * BS, BS, [do, absent])
        first = store.begin_put("blake3", [(dg, good)], verify=False)
        second = store.begin_put("blake3", [(do, other)], verify=False, ops=[bad])
        assert first.last is second.last  # both in one batch (the window is long)
        store.finish_put(first)
        with pytest.raises(MissingBlocks) as err:
            store.finish_put(second)
        assert err.value.digests == [absent]
        assert store.get("blake3", dg) == good and store.get("blake3", do) == other
        assert store.refcount("blake3", do) == 0  # the failed op changed nothing


def test_an_op_that_breaks_the_transaction_cannot_fail_the_puts(tmp_path: Path) -> None:
    with opened(tmp_path / "s", group_window_ms=200, group_at_once_bytes=0) as store:
        calls: list[str] = []

        def broken(w: object) -> None:
            calls.append("run")
            raise RuntimeError("a bug in an op")

        data = random.Random(3).randbytes(BS)
        d = block_digest(data, "blake3")
        op = BatchOp(broken)
        pending = store.begin_put("blake3", [(d, data)], verify=False, ops=[op])
        other = store.begin_put("blake3", [random.Random(4).randbytes(BS)], verify=False)
        store.finish_put(other)  # its records committed without the op
        with pytest.raises(RuntimeError, match="a bug in an op"):
            store.finish_put(pending)  # the op ran again alone, and failed alone
        assert calls == ["run", "run"]
        assert not op.applied
        assert store.get("blake3", d) == data and store.get("blake3", other.digests[0])


def test_grouped_drops_report_each_outcome(tmp_path: Path) -> None:
    with opened(tmp_path / "s") as store:
        maps = MapStore(store)
        data = random.Random(5).randbytes(BS)
        d = block_digest(data, "blake3")
        store.put("blake3", data)
        key = maps.add("blake3", BS, BS, [d])
        maps.add("blake3", BS, BS, [d])
        gone = MapKey("blake3", 1, top_hash([block_digest(b"x", "blake3")], 1, "blake3"))
        ops = [maps.prepare_drop(key), maps.prepare_drop(gone), maps.prepare_drop(key)]
        store.run_ops(ops)
        assert [op.value for op in ops] == [1, None, 0]
        assert ops[0].error is None and isinstance(ops[1].error, MapNotFound) and ops[2].error is None
        assert maps.refcount(key) == 0 and store.refcount("blake3", d) == 0


def test_an_async_put_waits_on_the_loop_not_on_a_thread(tmp_path: Path) -> None:
    async def main() -> None:
        from store_support import small_config

        async with await AsyncBlockStore.open(tmp_path / "s", small_config(group_window_ms=5)) as store:
            maps = MapStore(store.store)
            rnd = random.Random(6)
            blocks = [rnd.randbytes(BS) for _ in range(20)]
            before = threading.active_count()
            pendings = []
            for b in blocks:
                d = block_digest(b, "blake3")
                key, op = maps.prepare_add("blake3", BS, BS, [d])
                pendings.append((key, store.store.begin_put("blake3", [(d, b)], verify=False, ops=[op])))
            await asyncio.gather(*(store.wait_durable(p) for _k, p in pendings))
            assert threading.active_count() == before  # no executor thread was started to wait
            for (key, _p), b in zip(pendings, blocks):
                assert maps.refcount(key) == 1
            ops = [maps.prepare_drop(key) for key, _p in pendings]
            await store.commit_ops(ops)
            assert all(op.value == 0 and op.error is None for op in ops)
            assert maps.keys() == []

    asyncio.run(main())
