"""LMDB index: where every block lives, its refcount, the maps, segments and counters.

All writes go through IndexWriter, which keeps the derived numbers (global
counters, per-segment live/unreferenced bytes, the location table) in step
with the block entries inside the same transaction.  Keeping this bookkeeping
in one place is what makes stats O(segments) and GC candidate selection cheap.

Tables (one LMDB environment, sub-databases):

    blocks      scheme(1) digest(32)            -> BlockEntry (36 bytes)
    locations   segment(4, BE) offset(8, BE)    -> scheme(1) digest(32)
    segments    segment(4, BE)                  -> SegmentRow (32 bytes)
    maps        scheme(1) size(8, BE) top(32)   -> map blob (mapstore.py)
    maprefs     same key                        -> refcount (8)
    quarantine  scheme(1) digest(32)            -> QuarantineEntry (40 bytes)
    meta        name                            -> value (format, uuid, counters)
"""

from __future__ import annotations

import errno
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from enum import IntEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

import lmdb

from .errors import FormatError, StoreFull
from .records import HEADER_SIZE
from .segments import SEGMENT_HEADER_SIZE

FORMAT_VERSION = 1
T = TypeVar("T")

_ENTRY = struct.Struct("<IQIIBBHQI")
_ROW = struct.Struct("<BBHIQQQ")
_QUAR = struct.Struct("<QQIIIBxxxQ")
_LOC = struct.Struct(">IQ")
_SEGKEY = struct.Struct(">I")
_U64 = struct.Struct("<Q")

FLAG_ZERO = 1  # entry of an all-zero block: no record, no refcount


@dataclass(slots=True)
class BlockEntry:
    """Where a block's record is and how many map entries reference it."""

    segment: int
    offset: int
    stored_len: int
    raw_len: int
    codec: int
    flags: int = 0
    refcount: int = 0
    stamp: int = 0  # unix seconds of the last put or of dropping to refcount 0 (GC grace)

    @property
    def is_zero(self) -> bool:
        return bool(self.flags & FLAG_ZERO)

    @property
    def record_len(self) -> int:
        return 0 if self.is_zero else HEADER_SIZE + self.stored_len

    def pack(self) -> bytes:
        return _ENTRY.pack(
            self.segment,
            self.offset,
            self.stored_len,
            self.raw_len,
            self.codec,
            self.flags,
            0,
            self.refcount,
            self.stamp,
        )

    @classmethod
    def unpack(cls, raw: bytes) -> BlockEntry:
        seg, off, stored, rawlen, codec, flags, _r, refs, stamp = _ENTRY.unpack(raw)
        return cls(seg, off, stored, rawlen, codec, flags, refs, stamp)


class SegState(IntEnum):
    OPEN = 1  # may still receive appends
    SEALED = 2  # immutable
    DELETED = 3  # compacted away; the file is removed at the next chance


@dataclass(slots=True)
class SegmentRow:
    """A segment's committed length and how much of it is live."""

    state: int
    flags: int = 0
    records: int = 0  # indexed records in this segment
    end: int = SEGMENT_HEADER_SIZE  # committed length: everything before it is durable
    indexed_bytes: int = 0  # record bytes of indexed records
    unref_bytes: int = 0  # record bytes of indexed records with refcount 0

    @property
    def dead_bytes(self) -> int:
        """Record bytes no index entry points at (duplicates, failed batches, quarantined)."""
        return max(0, self.end - SEGMENT_HEADER_SIZE - self.indexed_bytes)

    @property
    def garbage_bytes(self) -> int:
        return self.dead_bytes + self.unref_bytes

    @property
    def data_bytes(self) -> int:
        return max(0, self.end - SEGMENT_HEADER_SIZE)

    def pack(self) -> bytes:
        return _ROW.pack(self.state, self.flags, 0, self.records, self.end, self.indexed_bytes, self.unref_bytes)

    @classmethod
    def unpack(cls, raw: bytes) -> SegmentRow:
        state, flags, _r, records, end, indexed, unref = _ROW.unpack(raw)
        return cls(state, flags, records, end, indexed, unref)


class QuarantineReason(IntEnum):
    CHECKSUM = 1  # stored bytes fail their checksum
    HEADER = 2  # record header torn, corrupt or not matching the index
    DIGEST = 3  # decodes, but does not hash to its digest
    SEGMENT_MISSING = 4  # the segment file is gone
    TRUNCATED = 5  # the segment file is shorter than the record


@dataclass(slots=True)
class QuarantineEntry:
    """A block taken out of service; its refcount waits for a good copy to be put again."""

    refcount: int
    time: int
    segment: int
    stored_len: int
    raw_len: int
    reason: int
    offset: int

    def pack(self) -> bytes:
        return _QUAR.pack(
            self.refcount, self.time, self.segment, self.stored_len, self.raw_len, self.reason, self.offset
        )

    @classmethod
    def unpack(cls, raw: bytes) -> QuarantineEntry:
        return cls(*_QUAR.unpack(raw))


@dataclass(slots=True)
class Counters:
    """Store-wide totals, updated in every write transaction."""

    blocks: int = 0  # stored (non-zero) blocks
    raw_bytes: int = 0  # Σ raw_len over stored blocks
    payload_bytes: int = 0  # Σ stored_len over stored blocks
    referenced_blocks: int = 0  # stored blocks with refcount > 0
    referenced_raw_bytes: int = 0  # Σ raw_len over those
    mapped_bytes: int = 0  # Σ raw_len × refcount (each stored map counts its blocks once)
    maps: int = 0
    map_bytes: int = 0  # Σ map blob sizes
    quarantined: int = 0
    logical_bytes: int = 0  # Σ object size × map refcount: every object version, zero blocks included

    _STRUCT = struct.Struct("<10Q")

    def pack(self) -> bytes:
        return self._STRUCT.pack(*(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def unpack(cls, raw: bytes | None) -> Counters:
        if raw is None:
            return cls()
        raw = bytes(raw).ljust(cls._STRUCT.size, b"\0")  # an older, shorter record: verify --repair fills it
        return cls(*cls._STRUCT.unpack(raw[: cls._STRUCT.size]))


def block_key(scheme_code: int, digest: bytes) -> bytes:
    if len(digest) != 32:
        raise ValueError("a digest is 32 bytes")
    return bytes((scheme_code,)) + digest


def map_key_size(key: bytes) -> int:
    """The object size in a maps-table key (scheme(1) size(8, BE) top(32))."""
    return int.from_bytes(key[1:9], "big")


def location_key(segment: int, offset: int) -> bytes:
    return _LOC.pack(segment, offset)


def segment_key(segment: int) -> bytes:
    return _SEGKEY.pack(segment)


class IndexReader:
    """Read access within one LMDB snapshot."""

    def __init__(self, index: Index, txn: lmdb.Transaction) -> None:
        self._ix = index
        self.txn = txn

    def block(self, key: bytes) -> BlockEntry | None:
        raw = self.txn.get(key, db=self._ix.blocks)
        return None if raw is None else BlockEntry.unpack(raw)

    def quarantined(self, key: bytes) -> QuarantineEntry | None:
        raw = self.txn.get(key, db=self._ix.quarantine)
        return None if raw is None else QuarantineEntry.unpack(raw)

    def counters(self) -> Counters:
        return Counters.unpack(self.txn.get(b"counters", db=self._ix.meta))

    def segment(self, seg_id: int) -> SegmentRow | None:
        raw = self.txn.get(segment_key(seg_id), db=self._ix.segments)
        return None if raw is None else SegmentRow.unpack(raw)

    def segments(self) -> dict[int, SegmentRow]:
        out: dict[int, SegmentRow] = {}
        for k, v in self.txn.cursor(db=self._ix.segments):
            out[_SEGKEY.unpack(k)[0]] = SegmentRow.unpack(v)
        return out

    def locations(self, seg_id: int) -> Iterator[tuple[int, bytes]]:
        """(offset, key) of every indexed record in a segment, in file order."""
        prefix = segment_key(seg_id)
        cur = self.txn.cursor(db=self._ix.locations)
        if not cur.set_range(prefix):
            return
        for k, v in cur:
            if k[:4] != prefix:
                break
            yield _LOC.unpack(k)[1], bytes(v)

    def iter_blocks(self) -> Iterator[tuple[bytes, BlockEntry]]:
        for k, v in self.txn.cursor(db=self._ix.blocks):
            yield bytes(k), BlockEntry.unpack(v)

    def iter_quarantine(self) -> Iterator[tuple[bytes, QuarantineEntry]]:
        for k, v in self.txn.cursor(db=self._ix.quarantine):
            yield bytes(k), QuarantineEntry.unpack(v)

    def map_blob(self, key: bytes) -> bytes | None:
        return self.txn.get(key, db=self._ix.maps)

    def map_refcount(self, key: bytes) -> int:
        raw = self.txn.get(key, db=self._ix.maprefs)
        return 0 if raw is None else _U64.unpack(raw)[0]

    def iter_maps(self) -> Iterator[tuple[bytes, int]]:
        for k, v in self.txn.cursor(db=self._ix.maprefs):
            yield bytes(k), _U64.unpack(v)[0]

    def meta(self, name: bytes) -> bytes | None:
        return self.txn.get(name, db=self._ix.meta)


class IndexWriter(IndexReader):
    """A write transaction that keeps counters and segment rows consistent with entries."""

    def __init__(self, index: Index, txn: lmdb.Transaction) -> None:
        super().__init__(index, txn)
        self.c = super().counters()
        self._rows: dict[int, SegmentRow] = {}
        self._dropped_rows: set[int] = set()
        self.now = int(time.time())

    # segment rows are cached for the transaction and written at the end
    def segment(self, seg_id: int) -> SegmentRow | None:
        if seg_id in self._dropped_rows:
            return None
        row = self._rows.get(seg_id)
        if row is None:
            row = super().segment(seg_id)
            if row is not None:
                self._rows[seg_id] = row
        return row

    def segments(self) -> dict[int, SegmentRow]:
        out = super().segments()
        for seg_id in self._dropped_rows:
            out.pop(seg_id, None)
        out.update(self._rows)
        return out

    def counters(self) -> Counters:
        return self.c

    def _row(self, seg_id: int) -> SegmentRow:
        row = self.segment(seg_id)
        if row is None:
            raise KeyError(f"no segment row {seg_id}")
        return row

    def set_segment(self, seg_id: int, row: SegmentRow) -> None:
        self._dropped_rows.discard(seg_id)
        self._rows[seg_id] = row

    def drop_segment(self, seg_id: int) -> None:
        self._rows.pop(seg_id, None)
        self._dropped_rows.add(seg_id)

    # --- blocks -----------------------------------------------------------

    def _count(self, entry: BlockEntry, sign: int) -> None:
        """Add (sign=+1) or remove (-1) an entry's share of every total."""
        if entry.is_zero:
            return
        c = self.c
        c.blocks += sign
        c.raw_bytes += sign * entry.raw_len
        c.payload_bytes += sign * entry.stored_len
        c.mapped_bytes += sign * entry.raw_len * entry.refcount
        row = self._row(entry.segment)
        row.records += sign
        row.indexed_bytes += sign * entry.record_len
        if entry.refcount > 0:
            c.referenced_blocks += sign
            c.referenced_raw_bytes += sign * entry.raw_len
        else:
            row.unref_bytes += sign * entry.record_len

    def insert_block(self, key: bytes, entry: BlockEntry) -> None:
        self.txn.put(key, entry.pack(), db=self._ix.blocks)
        if not entry.is_zero:
            self.txn.put(location_key(entry.segment, entry.offset), key, db=self._ix.locations)
        self._count(entry, +1)

    def delete_block(self, key: bytes, entry: BlockEntry) -> None:
        self.txn.delete(key, db=self._ix.blocks)
        if not entry.is_zero:
            self.txn.delete(location_key(entry.segment, entry.offset), db=self._ix.locations)
        self._count(entry, -1)

    def replace_block(self, key: bytes, old: BlockEntry, new: BlockEntry) -> None:
        """Any change of an entry (location, refcount) with the totals following."""
        self._count(old, -1)
        if not old.is_zero and (old.segment, old.offset) != (new.segment, new.offset):
            self.txn.delete(location_key(old.segment, old.offset), db=self._ix.locations)
            self.txn.put(location_key(new.segment, new.offset), key, db=self._ix.locations)
        self.txn.put(key, new.pack(), db=self._ix.blocks)
        self._count(new, +1)

    def add_refs(self, key: bytes, entry: BlockEntry, delta: int) -> BlockEntry:
        new = replace(entry, refcount=entry.refcount + delta)
        if new.refcount < 0:
            raise ValueError("refcount below zero")
        if new.refcount == 0 and entry.refcount > 0:
            new.stamp = self.now  # grace period for GC starts now
        self.replace_block(key, entry, new)
        return new

    # --- quarantine -------------------------------------------------------

    def quarantine_block(self, key: bytes, entry: BlockEntry, reason: int) -> None:
        self.delete_block(key, entry)
        q = QuarantineEntry(
            entry.refcount, self.now, entry.segment, entry.stored_len, entry.raw_len, reason, entry.offset
        )
        old = self.quarantined(key)
        if old is not None:
            q.refcount += old.refcount
        else:
            self.c.quarantined += 1
        self.txn.put(key, q.pack(), db=self._ix.quarantine)

    def take_quarantined(self, key: bytes) -> QuarantineEntry | None:
        q = self.quarantined(key)
        if q is not None:
            self.txn.delete(key, db=self._ix.quarantine)
            self.c.quarantined -= 1
        return q

    def set_quarantined_refcount(self, key: bytes, q: QuarantineEntry, refcount: int) -> None:
        q.refcount = refcount
        self.txn.put(key, q.pack(), db=self._ix.quarantine)

    # --- maps -------------------------------------------------------------

    def put_map(self, key: bytes, blob: bytes, refcount: int) -> None:
        self.txn.put(key, blob, db=self._ix.maps)
        self.txn.put(key, _U64.pack(refcount), db=self._ix.maprefs)
        self.c.maps += 1
        self.c.map_bytes += len(blob)
        self.c.logical_bytes += map_key_size(key) * refcount

    def set_map_refcount(self, key: bytes, refcount: int) -> None:
        self.c.logical_bytes += map_key_size(key) * (refcount - self.map_refcount(key))
        self.txn.put(key, _U64.pack(refcount), db=self._ix.maprefs)

    def delete_map(self, key: bytes) -> None:
        blob = self.txn.get(key, db=self._ix.maps)
        self.c.logical_bytes -= map_key_size(key) * self.map_refcount(key)
        self.txn.delete(key, db=self._ix.maps)
        self.txn.delete(key, db=self._ix.maprefs)
        self.c.maps -= 1
        self.c.map_bytes -= len(blob or b"")

    def set_meta(self, name: bytes, value: bytes) -> None:
        self.txn.put(name, value, db=self._ix.meta)

    def set_counters(self, counters: Counters) -> None:
        self.c = counters

    # --- end of transaction -------------------------------------------------

    def flush(self) -> None:
        for seg_id, row in self._rows.items():
            self.txn.put(segment_key(seg_id), row.pack(), db=self._ix.segments)
        for seg_id in self._dropped_rows:
            self.txn.delete(segment_key(seg_id), db=self._ix.segments)
        self.txn.put(b"counters", self.c.pack(), db=self._ix.meta)


def _raise_lmdb(exc: lmdb.Error) -> None:
    """LMDB's out-of-space errors as StoreFull, anything else unchanged."""
    text = str(exc).lower()
    if isinstance(exc, lmdb.MapFullError) or "space" in text or "quota" in text:
        raise StoreFull(errno.ENOSPC, f"index: {exc}") from exc
    raise exc


class Index:
    """The LMDB environment of a store: opened once per process."""

    def __init__(self, path: Path, *, readonly: bool = False, map_size: int = 1 << 40, sync: bool = True) -> None:
        self.path = path
        self.readonly = readonly
        if not readonly:
            path.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(
            str(path),
            map_size=map_size,
            subdir=True,
            readonly=readonly,
            max_dbs=8,
            sync=sync,
            metasync=sync,
            readahead=False,
            max_readers=1024,
            create=not readonly,
            lock=True,
        )
        try:
            create = not readonly
            self.blocks = self.env.open_db(b"blocks", create=create)
            self.locations = self.env.open_db(b"locations", create=create)
            self.segments = self.env.open_db(b"segments", create=create)
            self.maps = self.env.open_db(b"maps", create=create)
            self.maprefs = self.env.open_db(b"maprefs", create=create)
            self.quarantine = self.env.open_db(b"quarantine", create=create)
            self.meta = self.env.open_db(b"meta", create=create)
        except lmdb.Error as exc:
            self.env.close()
            raise FormatError(f"{path}: not a nefeli index ({exc})") from None
        if not readonly:
            self.env.reader_check()  # free reader slots of processes that died (kill -9)
        self._write_lock = threading.Lock()
        # Grouped writes waiting for a transaction (see run_write_grouped).
        self._queued: list[_GroupedWrite[Any]] = []
        self._queued_lock = threading.Lock()

    def close(self) -> None:
        self.env.close()

    @contextmanager
    def read(self) -> Iterator[IndexReader]:
        with self.env.begin(buffers=False) as txn:
            yield IndexReader(self, txn)

    @contextmanager
    def write(self) -> Iterator[IndexWriter]:
        """One write transaction: commits on success, aborts on any exception.

        LMDB disk errors (ENOSPC, map full) become StoreFull; nothing is applied.
        """
        with self._write_lock, self._transaction() as w:
            yield w

    @contextmanager
    def _transaction(self) -> Iterator[IndexWriter]:
        """The body of write(), for callers that already hold the write lock."""
        txn = self.env.begin(write=True)
        try:
            w = IndexWriter(self, txn)
            yield w
            w.flush()
        except lmdb.Error as exc:
            txn.abort()
            _raise_lmdb(exc)
        except BaseException:
            txn.abort()
            raise
        try:
            txn.commit()
        except lmdb.Error as exc:
            _raise_lmdb(exc)

    def run_write(self, fn: Callable[[IndexWriter], T], on_full: Callable[[], bool] | None = None) -> T:
        """fn inside a write transaction; if the commit finds the disk full and
        on_full() frees space (the store's reserve file), run it once more."""
        with self._write_lock:
            return self._run_retrying(fn, on_full)

    def _run_retrying(self, fn: Callable[[IndexWriter], T], on_full: Callable[[], bool] | None) -> T:
        """run_write's body, for callers that already hold the write lock."""
        try:
            with self._transaction() as w:
                return fn(w)
        except StoreFull:
            if on_full is None or not on_full():
                raise
        with self._transaction() as w:
            return fn(w)

    def run_write_grouped(
        self,
        fn: Callable[[IndexWriter], T],
        isolated: tuple[type[BaseException], ...],
        on_full: Callable[[], bool] | None = None,
    ) -> T:
        """run_write, sharing one transaction (one commit, one sync) with the grouped
        writes other threads queue meanwhile.

        Whoever takes the write lock runs everything queued so far, in order.  `fn`
        must raise the `isolated` errors only before it changes anything: such an
        error goes to its caller alone and the others commit.  Any other failure
        aborts the transaction and every queued write is run again on its own, so
        one write's failure never becomes another's.
        """
        item: _GroupedWrite[T] = _GroupedWrite(fn)
        with self._queued_lock:
            self._queued.append(item)
        with self._write_lock:
            if not item.done:
                with self._queued_lock:
                    group, self._queued = self._queued, []
                self._run_group(group, isolated, on_full)
        return item.outcome()

    def _run_group(
        self, group: list[_GroupedWrite[Any]], isolated: tuple[type[BaseException], ...], on_full: Callable[[], bool] | None
    ) -> None:
        """Run a group in one transaction (write lock held); each item ends done."""
        if len(group) > 1:
            try:
                with self._transaction() as w:
                    for it in group:
                        try:
                            it.value = it.fn(w)
                        except isolated as exc:
                            it.error = exc
                for it in group:
                    it.done = True
                return
            except BaseException:
                for it in group:
                    it.value, it.error = None, None
        for it in group:  # one at a time: alone, or after the group's transaction failed
            try:
                it.value = self._run_retrying(it.fn, on_full)
            except BaseException as exc:
                it.error = exc
            it.done = True

    def check_format(self, store_uuid_factory: Callable[[], bytes]) -> bytes:
        """Create the meta table on a new store, check the version on an old one; returns the uuid."""
        with self.read() as r:
            fmt = r.meta(b"format")
            uuid = r.meta(b"uuid")
        if fmt is None:
            if self.readonly:
                raise FormatError(f"{self.path}: empty index")
            uuid = store_uuid_factory()
            with self.write() as w:
                w.set_meta(b"format", _U64.pack(FORMAT_VERSION))
                w.set_meta(b"uuid", uuid)
                w.set_meta(b"created", _U64.pack(int(time.time())))
            return uuid
        version = _U64.unpack(fmt)[0]
        if version != FORMAT_VERSION:
            raise FormatError(f"{self.path}: store format {version}, this code knows {FORMAT_VERSION}")
        assert uuid is not None
        return bytes(uuid)


class _GroupedWrite(Generic[T]):
    """One caller's function waiting in (or run by) a grouped write transaction."""

    __slots__ = ("fn", "value", "error", "done")

    def __init__(self, fn: Callable[[IndexWriter], T]) -> None:
        self.fn = fn
        self.value: T | None = None
        self.error: BaseException | None = None
        self.done = False

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def pack_u64(n: int) -> bytes:
    return _U64.pack(n)


def unpack_u64(raw: Any) -> int:
    return _U64.unpack(raw)[0]
