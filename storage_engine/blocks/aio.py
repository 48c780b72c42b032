"""The async API for the daemons: every disk or hashing call runs on a thread pool.

The event loop never blocks on the store's disk writes or commits: each method
hands the synchronous call to a dedicated executor (not the loop's default one,
so store work cannot starve other blocking helpers, and not the store's own
hashing pool, so nested fan-out cannot deadlock).  Waiting for a group commit
happens on a pool thread too, so many coroutines putting at once share commits
— except ``wait_durable``, which waits for a put begun on the loop (a small
block: BlockStore.begin_put) through the batch's completion callback, so a
small put takes no thread at all besides the committer's.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .blockstore import BlockInfo, BlockItem, BlockStore
from .commit import Batch, BatchOp
from .core import PendingPut
from .config import StoreConfig
from .gc import GcReport
from .scrub import ScrubReport
from .stats import StoreStats
from .verify import VerifyReport

T = TypeVar("T")


class AsyncBlockStore:
    """Async façade over a BlockStore (the map store has its own: storage_engine.maps.aio)."""

    def __init__(self, store: BlockStore, executor: ThreadPoolExecutor | None = None, threads: int = 16) -> None:
        self.store = store
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(threads, thread_name_prefix="nefeli-aio")

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        config: StoreConfig | None = None,
        *,
        readonly: bool = False,
        executor: ThreadPoolExecutor | None = None,
        threads: int = 16,
    ) -> AsyncBlockStore:
        """Open (recovery included) off the loop."""
        loop = asyncio.get_running_loop()
        store = await loop.run_in_executor(None, functools.partial(BlockStore.open, path, config, readonly=readonly))
        return cls(store, executor, threads)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run several store calls as one job on the store's threads: one thread hop
        instead of one per call (what a small GET's map and block lookups cost)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def wait_durable(self, pending: PendingPut) -> None:
        """Wait until a begin_put is durable and raise what it met (BlockStore.finish_put)."""
        last = pending.last
        if last is not None and not last.done:
            if not self.store.group_commit:  # durability "each": a thread commits it
                await self.call(self.store.finish_put, pending)
                return
            await _batch_done(last)
        if all(op.applied for op in pending.ops):
            pending.outcome(self.store.rerun_op)  # raises at once, runs nothing
        else:  # an op its batch could not commit runs again in a transaction of its own
            await self.call(pending.outcome, self.store.rerun_op)

    async def commit_ops(self, ops: list[BatchOp]) -> list[BatchOp]:
        """Index operations group-committed with the puts of the moment; each op's
        outcome is in its ``value``/``error`` once this returns."""
        return await self.finish_ops(ops, self.begin_ops(ops))

    def begin_ops(self, ops: list[BatchOp], *, at_once: bool = True) -> Batch | None:
        """commit_ops up to the wait: the ops are in the open batch when this returns
        (so every commit from now on includes them), or, with durability "each"
        (None), left for finish_ops to commit.  ``at_once`` as for BlockStore.commit_ops."""
        return self.store.commit_ops(ops, at_once=at_once) if self.store.group_commit else None

    async def finish_ops(self, ops: list[BatchOp], batch: Batch | None) -> list[BatchOp]:
        """Until the ops of ``begin_ops`` are committed; their outcomes as in commit_ops."""
        if batch is None:  # durability "each": a thread commits them
            await self.call(self.store.run_ops, ops)
            return ops
        await _batch_done(batch)
        for op in ops:
            if not op.applied:
                try:
                    op.value = await self.call(self.store.rerun_op, op)
                except Exception as exc:  # noqa: BLE001 - the op's outcome, for the caller
                    op.error = exc
        return ops

    async def put(self, scheme: str, data: Any, digest: bytes | None = None, *, verify: bool | None = None) -> bytes:
        return await self.call(self.store.put, scheme, data, digest, verify=verify)

    async def put_many(self, scheme: str, items: Iterable[BlockItem], *, verify: bool | None = None) -> list[bytes]:
        return await self.call(self.store.put_many, scheme, list(items), verify=verify)

    async def get(self, scheme: str, digest: bytes, length: int | None = None) -> bytes:
        return await self.call(self.store.get, scheme, digest, length)

    async def get_buffer(self, scheme: str, digest: bytes, length: int | None = None) -> memoryview | bytes:
        return await self.call(self.store.get_buffer, scheme, digest, length)

    async def has(self, scheme: str, digest: bytes) -> bool:
        return await self.call(self.store.has, scheme, digest)

    async def missing(self, scheme: str, digests: Iterable[bytes]) -> list[bytes]:
        return await self.call(self.store.missing, scheme, list(digests))

    async def info(self, scheme: str, digest: bytes) -> BlockInfo | None:
        return await self.call(self.store.info, scheme, digest)

    async def refcount(self, scheme: str, digest: bytes) -> int:
        return await self.call(self.store.refcount, scheme, digest)

    async def change_refcounts(self, scheme: str, deltas: Mapping[bytes, int] | Iterable[tuple[bytes, int]]) -> None:
        items = dict(deltas) if isinstance(deltas, Mapping) else list(deltas)
        await self.call(self.store.change_refcounts, scheme, items)

    async def stats(self) -> StoreStats:
        return await self.call(self.store.stats)

    async def gc(self, **kwargs: Any) -> GcReport:
        return await self.call(self.store.gc, **kwargs)

    async def scrub(self, **kwargs: Any) -> ScrubReport:
        return await self.call(self.store.scrub, **kwargs)

    async def verify(self, **kwargs: Any) -> VerifyReport:
        return await self.call(self.store.verify, **kwargs)

    async def flush(self) -> None:
        await self.call(self.store.flush)

    async def close(self) -> None:
        """Close the store once in-flight calls are done, then the executor."""
        loop = asyncio.get_running_loop()
        if self._own_executor:
            await loop.run_in_executor(None, functools.partial(self._executor.shutdown, wait=True))
            await loop.run_in_executor(None, self.store.close)
        else:
            await self.call(self.store.close)

    async def __aenter__(self) -> AsyncBlockStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _batch_done(batch: Batch) -> None:
    """Until the batch is done, waiting on the loop (woken by its completion callback)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    batch.add_done_callback(functools.partial(loop.call_soon_threadsafe, _resolve, fut))
    await fut


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():  # its waiter may have been cancelled
        fut.set_result(None)
