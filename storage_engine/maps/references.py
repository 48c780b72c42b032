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

A crash between 1 and 2, or between 2 and 3, therefore leaves at most a leaked
reference (a refcount one too high: the map and its blocks are kept a little
longer than needed), never a version whose map or blocks are gone.  GC and
``verify`` reconcile the map store from the service's metadata
(``MapStore.reconcile``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

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

    async def drop(self, names: Iterable[MapName]) -> None:
        """Drop one reference on each (step 3). Never raises: the commit it follows is
        done, and a reference left behind is only a leak that GC reconciles."""
        for name in names:
            key = MapKey(*name)
            try:
                await self.maps.drop(key)
                self.counters.dropped += 1
            except MapNotFound:
                # Already gone: a previous crash lost the add, or verify repaired it.
                log.warning("map %s was not referenced in the map store", key)
            except Exception:  # noqa: BLE001 - never fail a committed request over bookkeeping
                log.exception("could not drop a reference on map %s (GC will reconcile)", key)

    async def guarded(self, name: MapName, commit: Awaitable[C]) -> C:
        """Run the metadata commit (step 2) that consumes the reference on ``name``
        added just before: dropped again if the commit fails, and the maps the
        commit released dropped after it."""
        try:
            result = await commit
        except BaseException:
            await self.drop([name])
            raise
        await self.drop(result.dropped_maps)
        return result
