"""Map store: the hash lists of objects, content-addressed by (scheme, size, top hash).

A map is stored once, compressed, with a refcount (the object versions that
use it).  Its first reference increments the refcount of each block it names
(once per entry) in the same transaction that stores it; dropping its last
reference decrements them and deletes it.  Entries that are the zero block of
their length are flagged and carry no block reference: zero blocks are never
stored.  The stored value is storage_engine.blocks.map_format (the block
index's maps table); who adds and drops references, and when, is
storage_engine.maps.references.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hashmaps import SHA256_EMPTY, top_hash

from storage_engine.blocks.commit import BatchOp
from storage_engine.blocks.core import BlockCore, zero_digest
from storage_engine.blocks.errors import BadMap, MapNotFound, MissingBlocks, RefcountUnderflow
from storage_engine.blocks.index import IndexWriter, block_key
from storage_engine.blocks.map_format import HashMap, MapKey, decode_map, encode_map
from storage_engine.blocks.records import scheme_code

__all__ = ["HashMap", "MapKey", "MapStore", "ReconcileReport", "normalize_hashes"]


@dataclass
class ReconcileReport:
    changed: int = 0  # maps whose refcount was not the truth
    dropped: int = 0  # of those, maps nothing references any more (removed)
    missing: list[MapKey] = field(default_factory=list)  # referenced by the truth, absent here


def _zero_flags(scheme: str, size: int, block_size: int, hashes: Sequence[bytes]) -> list[bool]:
    if scheme == "sha256":
        return [h == SHA256_EMPTY for h in hashes]
    flags = []
    for i, h in enumerate(hashes):
        length = 0 if size == 0 else min(block_size, size - i * block_size)
        flags.append(h == zero_digest(scheme, length))
    return flags


def normalize_hashes(scheme: str, size: int, block_size: int, hashes: Sequence[bytes] | bytes) -> list[bytes]:
    """The canonical hash list for an object, or BadMap (docs/blockd.md rules)."""
    scheme_code(scheme)
    if block_size <= 0 or size < 0:
        raise BadMap("block size must be positive and size not negative")
    if isinstance(hashes, (bytes, bytearray, memoryview)):
        raw = bytes(hashes)
        if len(raw) % 32:
            raise BadMap("packed hash list is not a multiple of 32 bytes")
        out = [raw[i : i + 32] for i in range(0, len(raw), 32)]
    else:
        out = [bytes(h) for h in hashes]
        if any(len(h) != 32 for h in out):
            raise BadMap("every hash is 32 bytes")
    if size == 0:
        empty = SHA256_EMPTY if scheme == "sha256" else zero_digest(scheme, 0)
        if out not in ([], [empty]):
            raise BadMap("a 0-byte object has no blocks (or just the empty block)")
        return [SHA256_EMPTY] if scheme == "sha256" else []
    expected = -(-size // block_size)
    if len(out) != expected:
        raise BadMap(f"{len(out)} hashes for {size} bytes in {block_size}-byte blocks (expected {expected})")
    return out


# What add and drop raise before changing anything, so concurrent adds and drops
# can share one index transaction (one sync) and still fail one by one.
_CHECKED_FIRST: tuple[type[BaseException], ...] = (MapNotFound, MissingBlocks, RefcountUnderflow)


class MapStore:
    """Refcounted hash lists living in the block store's index."""

    def __init__(self, store: BlockCore) -> None:
        self.store = store

    def add(
        self,
        scheme: str,
        size: int,
        block_size: int,
        hashes: Sequence[bytes] | bytes,
        top: bytes | None = None,
    ) -> MapKey:
        """Add a reference to the map of an object (storing it on the first one).

        BadMap if the list does not fit the size or the top hash; MissingBlocks
        (nothing changed) if a non-zero block it names is not stored.
        """
        key, op = self.prepare_add(scheme, size, block_size, hashes, top)
        self.store.write_meta_grouped(op.fn, op.isolated)
        return key

    def prepare_add(
        self,
        scheme: str,
        size: int,
        block_size: int,
        hashes: Sequence[bytes] | bytes,
        top: bytes | None = None,
    ) -> tuple[MapKey, BatchOp]:
        """``add`` as an index operation not yet run: to commit in the same transaction
        as the blocks it names (BlockStore.begin_put's ``ops``).  BadMap at once; the
        op fails with MissingBlocks, changing nothing, if a block is absent then."""
        self.store.check_writable()
        hashes = normalize_hashes(scheme, size, block_size, hashes)
        computed = top_hash(hashes, size, scheme)
        if top is not None and bytes(top) != computed:
            raise BadMap(f"top hash {bytes(top).hex()} does not match the hash list ({computed.hex()})")
        key = MapKey(scheme, size, computed)
        kb = key.pack()
        sc = scheme_code(scheme)

        def apply(w: IndexWriter) -> None:
            rc = w.map_refcount(kb)
            if rc > 0:  # most adds: a map stored already (a copy, a re-upload)
                w.set_map_refcount(kb, rc + 1)
                return
            # the first reference: encoded here, in the transaction, only when stored
            zero = _zero_flags(scheme, size, block_size, hashes)
            refs = HashMap(key, block_size, hashes, zero).block_refs()
            self.store.apply_refcounts(w, sc, {block_key(sc, d): n for d, n in refs.items()})
            w.put_map(kb, encode_map(block_size, hashes, zero), 1)

        return key, BatchOp(apply, _CHECKED_FIRST)

    def drop(self, key: MapKey) -> int:
        """Drop one reference; the last one unreferences the blocks. Returns the references left."""
        op = self.prepare_drop(key)
        result: int = self.store.write_meta_grouped(op.fn, op.isolated)
        return result

    def prepare_drop(self, key: MapKey) -> BatchOp:
        """``drop`` as an index operation not yet run (its value: the references left)."""
        self.store.check_writable()
        kb = key.pack()
        sc = scheme_code(key.scheme)

        def apply(w: IndexWriter) -> int:
            rc = w.map_refcount(kb)
            if rc == 0:
                raise MapNotFound(f"map {key} not found")
            if rc > 1:
                w.set_map_refcount(kb, rc - 1)
                return rc - 1
            blob = w.map_blob(kb)
            assert blob is not None
            hmap = decode_map(key, blob)
            self.store.apply_refcounts(w, sc, {block_key(sc, d): -n for d, n in hmap.block_refs().items()})
            w.delete_map(kb)
            return 0

        return BatchOp(apply, _CHECKED_FIRST)

    def get(self, key: MapKey) -> HashMap:
        self.store.check_open()
        with self.store.index.read() as r:
            blob = r.map_blob(key.pack())
        if blob is None:
            raise MapNotFound(f"map {key} not found")
        return decode_map(key, blob)

    def refcount(self, key: MapKey) -> int:
        with self.store.index.read() as r:
            return r.map_refcount(key.pack())

    def has(self, key: MapKey) -> bool:
        return self.refcount(key) > 0

    def missing(self, scheme: str, size: int, block_size: int, hashes: Sequence[bytes] | bytes) -> list[bytes]:
        """Non-zero blocks of this hash list that the store lacks (each once): the 409 list."""
        hashes = normalize_hashes(scheme, size, block_size, hashes)
        zero = _zero_flags(scheme, size, block_size, hashes)
        return self.store.missing(scheme, (h for h, z in zip(hashes, zero) if not z))

    def keys(self) -> list[tuple[MapKey, int]]:
        """Every map with its refcount."""
        with self.store.index.read() as r:
            return [(MapKey.unpack(k), rc) for k, rc in r.iter_maps()]

    def reconcile(self, truth: Mapping[MapKey, int]) -> ReconcileReport:
        """Set every map's refcount to what the metadata says (the truth), in one transaction.

        Fixes references leaked by a crash between a map add and the metadata
        commit (or a drop that never ran): a map the truth does not name is
        dropped with its block references.  Maps the truth names but the store
        lacks are reported, not invented.
        """
        self.store.check_writable()
        report = ReconcileReport()
        want = {k.pack(): n for k, n in truth.items() if n > 0}

        def apply(w: IndexWriter) -> None:
            report.changed = report.dropped = 0
            for kb, rc in list(w.iter_maps()):
                n = want.get(kb, 0)
                if n == rc:
                    continue
                report.changed += 1
                if n > 0:
                    w.set_map_refcount(kb, n)
                    continue
                key = MapKey.unpack(kb)
                blob = w.map_blob(kb)
                if blob is not None:
                    hmap = decode_map(key, blob)
                    sc = kb[0]
                    self.store.apply_refcounts(w, sc, {block_key(sc, d): -c for d, c in hmap.block_refs().items()})
                w.delete_map(kb)
                report.dropped += 1
            report.missing = [MapKey.unpack(kb) for kb in want if w.map_refcount(kb) == 0]

        self.store.write_meta(apply)
        return report

    def iter_data(self, hmap: HashMap) -> Iterator[Any]:
        """The object's bytes, block by block (zero blocks synthesized)."""
        for i, (h, z) in enumerate(zip(hmap.hashes, hmap.zero)):
            length = hmap.block_length(i)
            if z:
                yield bytes(length)
            else:
                yield self.store.get_buffer(hmap.scheme, h, length)
