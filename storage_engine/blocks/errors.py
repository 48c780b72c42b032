"""Exceptions of the block store and map store.

Every error a caller can act on has its own class.  For a client of a service
above (objects, volumes) a block-layer error is the engine failing, except a
full store (storage_engine.errors.StorageFull); the services turn the ones a
caller caused (a map naming missing blocks, a bad hash list) into their own.
"""

from __future__ import annotations

from storage_engine.errors import EngineError, StorageFull


def _short(digest: bytes) -> str:
    return digest.hex()


class StoreError(EngineError):
    """Base class of everything the block and map stores raise on purpose."""


class BadRecord(StoreError):
    """Bytes that do not decode as a valid record (torn, corrupt or garbage)."""


class BadSegment(StoreError):
    """A segment file whose header is missing, torn or from another store."""


class CorruptBlock(StoreError):
    """A stored block failed verification: the store returns an error, never the data."""

    def __init__(
        self,
        scheme: str,
        digest: bytes,
        reason: str,
        segment: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.scheme = scheme
        self.digest = digest
        self.reason = reason
        self.segment = segment
        self.offset = offset
        where = f" (segment {segment} offset {offset})" if segment is not None else ""
        super().__init__(f"corrupt block {scheme}:{_short(digest)}: {reason}{where}")


class BlockNotFound(StoreError, KeyError):
    """No block with this (scheme, digest) is stored (or it was quarantined)."""

    def __init__(self, scheme: str, digest: bytes) -> None:
        self.scheme = scheme
        self.digest = digest
        super().__init__(f"block {scheme}:{_short(digest)} not found")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class MissingBlocks(StoreError):
    """A map (or a refcount increment) names blocks the store lacks: the 409 case."""

    def __init__(self, scheme: str, digests: list[bytes]) -> None:
        self.scheme = scheme
        self.digests = digests
        shown = ", ".join(_short(d) for d in digests[:3])
        more = f" and {len(digests) - 3} more" if len(digests) > 3 else ""
        super().__init__(f"{len(digests)} {scheme} block(s) missing: {shown}{more}")


class DigestMismatch(StoreError, ValueError):
    """verify-on-put: the data does not hash to the digest the caller gave."""

    def __init__(self, scheme: str, claimed: bytes, actual: bytes) -> None:
        self.scheme = scheme
        self.claimed = claimed
        self.actual = actual
        super().__init__(f"{scheme} block claimed {_short(claimed)} but hashes to {_short(actual)}")


class RefcountUnderflow(StoreError, ValueError):
    """A decrement would take a refcount below zero: a caller's bookkeeping bug."""


class MapNotFound(StoreError, KeyError):
    """No map with this (scheme, size, top hash)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "map not found"


class BadMap(StoreError, ValueError):
    """A hash list that cannot be a map (wrong count, wrong top hash, bad digest)."""


class StoreFull(StoreError, StorageFull, OSError):
    """ENOSPC (or the LMDB map is full): the operation did nothing, the store stays usable."""


class StoreLocked(StoreError):
    """Another process (or another handle) has the store open for writing."""


class StoreClosed(StoreError):
    """The store was closed."""


class ReadOnlyStore(StoreError):
    """A write on a store opened read-only."""


class FormatError(StoreError):
    """The directory holds a store of an unknown format version (or no store)."""
