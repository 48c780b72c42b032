"""The async map store for the daemons: each call runs on the block store's aio threads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from storage_engine.blocks.aio import AsyncBlockStore

from .mapstore import HashMap, MapKey, MapStore, ReconcileReport


class AsyncMapStore:
    """Async façade over the MapStore of an AsyncBlockStore, on the same threads."""

    def __init__(self, parent: AsyncBlockStore) -> None:
        self._parent = parent
        #: the synchronous map store, for jobs that do several lookups in one thread hop
        self.sync = MapStore(parent.store)

    @property
    def blocks(self) -> AsyncBlockStore:
        """The async block store the maps live in (whose commits map operations join)."""
        return self._parent

    async def add(
        self, scheme: str, size: int, block_size: int, hashes: Sequence[bytes] | bytes, top: bytes | None = None
    ) -> MapKey:
        return await self._parent.call(self.sync.add, scheme, size, block_size, hashes, top)

    async def drop(self, key: MapKey) -> int:
        return await self._parent.call(self.sync.drop, key)

    async def get(self, key: MapKey) -> HashMap:
        return await self._parent.call(self.sync.get, key)

    async def refcount(self, key: MapKey) -> int:
        return await self._parent.call(self.sync.refcount, key)

    async def has(self, key: MapKey) -> bool:
        return await self._parent.call(self.sync.has, key)

    async def missing(self, scheme: str, size: int, block_size: int, hashes: Sequence[bytes] | bytes) -> list[bytes]:
        return await self._parent.call(self.sync.missing, scheme, size, block_size, hashes)

    async def keys(self) -> list[tuple[MapKey, int]]:
        return await self._parent.call(self.sync.keys)

    async def reconcile(self, truth: Mapping[MapKey, int]) -> ReconcileReport:
        return await self._parent.call(self.sync.reconcile, dict(truth))
