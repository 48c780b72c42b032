"""The map-reference rule: the one place that adds and drops map references.

Every stored version (an object version, a volume snapshot ...) holds one
reference on its map in the map store, and the map holds one reference on each
(non-zero) block it names.  A service keeps the map store in step with its own
metadata (the truth) always in this order:

1. ``add`` (the new version's map reference) **before** the metadata commit;
   if the commit then fails, the reference is dropped again at once
   (``guarded`` does both);
2. the metadata commit (one transaction of the service's own store);
3. ``drop`` for every map the commit released (removed versions) **after** it.

A version made of blocks just put (a small object's one block) takes step 1
inside the blocks' own commit (``begin_add_with_blocks``): the blocks and the
reference become durable in one LMDB transaction after one data sync.  Drops
(step 3) are group-committed with the puts of the moment; a PUT answers without
waiting for its drops to land (``drop_soon``: they are in the open block-store
batch by then, so every later commit includes them).

A crash between 1 and 2, or between 2 and 3, therefore leaves at most a leaked
reference (a refcount one too high: the map and its blocks are kept a little
longer than needed), never a version whose map or blocks are gone.  GC and
``verify`` reconcile the map store from the service's metadata
(``MapStore.reconcile``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from storage_engine.blocks.commit import Batch, BatchOp
from storage_engine.blocks.core import PendingPut
from storage_engine.blocks.errors import MapNotFound

from .aio import AsyncMapStore
from .mapstore import MapKey

log = logging.getLogger(__name__)

#: a map's name as services store it: (scheme, size, top hash), MapKey or any 3-tuple
MapName = tuple[str, int, bytes]


class Committed(Protocol):
    """What a metadata commit answers: the maps its removed versions released."""

    @property
    def dropped_maps(self) -> Sequence[MapName]: ...


C = TypeVar("C", bound=Committed)


@dataclass(slots=True)
class ReferenceCounters:
    """For /metrics (monotonic)."""

    added: int = 0
    dropped: int = 0


class MapReferences:
    """Adds and drops map references around a service's metadata commits."""

    def __init__(self, maps: AsyncMapStore) -> None:
        self.maps = maps
        self.counters = ReferenceCounters()
        self._tasks: set[asyncio.Future[None]] = set()  # drops of references a cancelled add left

    async def add(self, scheme: str, size: int, block_size: int, digests: Sequence[bytes]) -> MapKey:
        """A new reference on the map of this hash list (step 1). MissingBlocks or
        BadMap (storage_engine.blocks.errors) when it cannot be one; nothing changed then."""
        key = await self.maps.add(scheme, size, block_size, list(digests))
        self.counters.added += 1
        return key

    async def add_existing(self, name: MapName) -> None:
        """One more reference on a map that is stored (a copy, a move, a metadata update)."""
        key = MapKey(*name)
        hmap = await self.maps.get(key)
        await self.maps.add(key.scheme, key.size, hmap.block_size, hmap.hashes, key.top)
        self.counters.added += 1

    def begin_add_with_blocks(
        self, scheme: str, size: int, block_size: int, hashes: Sequence[bytes], items: Sequence[tuple[bytes, Any]]
    ) -> tuple[MapKey, PendingPut]:
        """Step 1 in the commit of the blocks the map names: store ``items`` ((digest,
        buffer) pairs, hashed by the caller) and add the reference in the same
        block-store commit.  Not a coroutine (cheap for a small block: call it on the
        loop; on a thread for a large one); ``finish_add_with_blocks`` waits for it.
        BadMap at once when the list does not fit the size."""
        key, op = self.maps.sync.prepare_add(scheme, size, block_size, hashes)
        # verify=False: the caller hashed these very buffers
        return key, self.maps.blocks.store.begin_put(scheme, items, verify=False, ops=[op])

    async def finish_add_with_blocks(self, key: MapKey, pending: PendingPut) -> None:
        """Until the blocks and the reference of ``begin_add_with_blocks`` are durable.
        MissingBlocks if a block went (GC) before the commit; nothing changed then."""
        try:
            await self.maps.blocks.wait_durable(pending)
        except asyncio.CancelledError:
            # the reference may still land: give it back once it has
            task = asyncio.ensure_future(self._drop_when_durable(key, pending))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            raise
        self.counters.added += 1

    async def _drop_when_durable(self, key: MapKey, pending: PendingPut) -> None:
        try:
            await self.maps.blocks.wait_durable(pending)
        except Exception:  # noqa: BLE001 - the reference never landed
            return
        self.counters.added += 1
        await self.drop([key])

    async def drop(self, names: Iterable[MapName]) -> None:
        """Drop one reference on each (step 3), all in one block-store commit shared
        with the puts of the moment. Never raises: the commit it follows is done, and
        a reference left behind is only a leak that GC reconciles."""
        begun = self._begin_drop(names)
        if begun is not None:
            await self._finish_drop(*begun)

    def drop_soon(self, names: Iterable[MapName]) -> None:
        """drop() without waiting for its commit: the drops are in the block store's
        open batch when this returns, so every later block-store commit (the next
        put's, a flush, GC's) includes them, and one is made within the group
        window if no put comes; their outcome is counted and logged when it lands.

        For the drops after a PUT's metadata commit, which its answer does not
        wait for: a crash before they land leaves at most a leaked reference, as a
        crash between the commit and drop() always could (docs/architecture.md)."""
        begun = self._begin_drop(names, at_once=False)  # rides along with the next put's commit
        if begun is not None:
            task = asyncio.ensure_future(self._finish_drop(*begun))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Until every drop_soon (and every drop a cancelled add left) has landed."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _begin_drop(
        self, names: Iterable[MapName], *, at_once: bool = True
    ) -> tuple[list[MapKey], list[BatchOp], Batch | None] | None:
        keys = [MapKey(*name) for name in names]
        if not keys:
            return None
        try:
            ops = [self.maps.sync.prepare_drop(key) for key in keys]
            return keys, ops, self.maps.blocks.begin_ops(ops, at_once=at_once)
        except Exception:  # noqa: BLE001 - never fail a committed request over bookkeeping
            log.exception("could not drop %d map reference(s) (GC will reconcile)", len(keys))
            return None

    async def _finish_drop(self, keys: list[MapKey], ops: list[BatchOp], batch: Batch | None) -> None:
        try:
            await self.maps.blocks.finish_ops(ops, batch)
        except Exception:  # noqa: BLE001 - never fail a committed request over bookkeeping
            log.exception("could not drop %d map reference(s) (GC will reconcile)", len(keys))
            return
        for key, op in zip(keys, ops):
            if op.error is None:
                self.counters.dropped += 1
            elif isinstance(op.error, MapNotFound):
                # Already gone: a previous crash lost the add, or verify repaired it.
                log.warning("map %s was not referenced in the map store", key)
            else:
                log.error("could not drop a reference on map %s (GC will reconcile): %s", key, op.error)

    async def guarded(self, name: MapName, commit: Awaitable[C], *, wait_drops: bool = True) -> C:
        """Run the metadata commit (step 2) that consumes the reference on ``name``
        added just before: dropped again if the commit fails, and the maps the
        commit released dropped after it (``wait_drops`` False: drop_soon, for a
        write whose answer need not wait for them)."""
        try:
            result = await commit
        except BaseException:
            await self.drop([name])
            raise
        if wait_drops:
            await self.drop(result.dropped_maps)
        else:
            self.drop_soon(result.dropped_maps)
        return result
