"""nefeli's storage engine, in layers (dependencies point down only):

    objects/   the object service: metadata (accounts, containers, versions,
               sharing, public URLs, tokens), the object store, MD5 backfill
    maps/      refcounted hash lists and the map-reference rule (objects, volumes)
    blocks/    segments, index, records, block store, GC, scrub, verify, recovery


The block-store names are re-exported here lazily so that importing one part
of the engine (e.g. the metadata module) does not pull in LMDB and zstd.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "BlockStore": ".blocks.blockstore",
    "BlockInfo": ".blocks.blockstore",
    "StoreConfig": ".blocks.config",
    "MapStore": ".maps.mapstore",
    "MapKey": ".blocks.map_format",
    "HashMap": ".blocks.map_format",
    "AsyncBlockStore": ".blocks.aio",
    "AsyncMapStore": ".maps.aio",
    "StoreStats": ".blocks.stats",
    "GcReport": ".blocks.gc",
    "ScrubReport": ".blocks.scrub",
    "VerifyReport": ".blocks.verify",
    "store_dir": ".blocks.layout",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'storage_engine' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)


__all__ = sorted(_EXPORTS)
