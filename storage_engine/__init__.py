"""nefeli's storage engine: block store, map store, GC, scrub, recovery (and metadata).

The block-store names are re-exported here lazily so that importing one part
of the engine (e.g. the metadata module) does not pull in LMDB and zstd.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "BlockStore": ".blockstore",
    "BlockInfo": ".blockstore",
    "StoreConfig": ".config",
    "MapStore": ".mapstore",
    "MapKey": ".mapstore",
    "HashMap": ".mapstore",
    "AsyncBlockStore": ".aio",
    "AsyncMapStore": ".aio",
    "StoreStats": ".stats",
    "GcReport": ".gc",
    "ScrubReport": ".scrub",
    "VerifyReport": ".verify",
    "store_dir": ".layout",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'storage_engine' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)


__all__ = sorted(_EXPORTS)
