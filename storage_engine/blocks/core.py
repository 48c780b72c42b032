"""The block store's core: content-addressed blocks in segments, an LMDB index, group commit.

Blocks are keyed by (scheme, digest) and stored once however many maps use
them.  This module holds the store's state and its put/get/refcount paths;
blockstore.py adds the maintenance passes (GC, scrub, verify, quarantine,
stats) that work on a BlockCore, so none of them imports the other way.  It is
safe to call from many threads at once.

Guarantees:
  * put/put_many return only when their records and index entries are durable;
  * a read verifies the record header and checksum and raises CorruptBlock
    (naming the digest) rather than return bad data;
  * reads never wait for writers, GC or scrub (LMDB snapshots + mappings that
    outlive compaction);
  * after kill -9 the next open cuts torn tails and re-indexes intact records
    past the last commit (recovery.py).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import logging
import os
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import blake3 as _blake3

import native
from hashmaps import SHA256_EMPTY, block_digest, zero_block_digest

from . import compression
from .commit import Batch, BatchOp, GroupCommitter, PendingRecord
from .config import StoreConfig
from .errors import (
    BadRecord,
    BlockNotFound,
    CorruptBlock,
    DigestMismatch,
    MissingBlocks,
    ReadOnlyStore,
    RefcountUnderflow,
    StoreClosed,
    FormatError,
)
from .index import FLAG_ZERO, BlockEntry, Index, IndexWriter, QuarantineEntry, SegState, block_key, pack_u64
from .lockfile import StoreLock
from .records import (
    CHECKSUM_SIZE,
    HEADER_SIZE,
    Codec,
    checksum,
    decode_header,
    encode_header,
    scheme_code,
    scheme_name,
)
from .recovery import RecoveryReport, recover
from .segments import SEGMENT_HEADER_SIZE, Segment, raise_io_error, fsync_dir


log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

SHA256 = scheme_code("sha256")
BLAKE3 = scheme_code("blake3")
INDEX_DIR = "index"
SEGMENTS_DIR = "segments"
QUARANTINE_DIR = "quarantine"
LOCK_FILE = "lock"
RESERVE_FILE = "reserve"
_READ_RETRIES = 8

BlockItem = Any  # a buffer, or a (digest | None, buffer) pair


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """What the index knows about one block."""

    scheme: str
    digest: bytes
    segment: int
    offset: int
    stored_len: int
    raw_len: int
    codec: int
    refcount: int
    stamp: int
    zero: bool

    @property
    def record_len(self) -> int:
        return 0 if self.zero else HEADER_SIZE + self.stored_len


@dataclass(slots=True)
class PendingPut:
    """A put whose records are written and whose commit may still be running
    (BlockStore.begin_put); ``finish_put`` (or an event loop, through
    ``last.add_done_callback``) waits for it."""

    digests: list[bytes]
    known: int  # items (non-zero blocks) already stored before this put: dedup hits
    batches: list[Batch]  # the batches holding its records, in order
    ops: list[BatchOp]
    last: Batch | None  # the last batch it joined (records or ops); None: nothing to wait for

    def outcome(self, rerun: Callable[[BatchOp], Any]) -> None:
        """Raise what the put met once ``last`` is done: a failed commit of its records,
        else an op's own error.  An op whose batch failed as a whole (not through
        its records) is run again on its own by ``rerun``."""
        for b in self.batches:
            if b.error is not None:
                raise b.error
        for op in self.ops:
            if not op.applied:
                op.value = rerun(op)
            elif op.error is not None:
                raise op.error


@dataclass(slots=True)
class _Encoded:
    key: bytes
    header: bytes
    payload: Any
    raw_len: int
    codec: int


@functools.lru_cache(maxsize=1024)
def zero_digest(scheme: str, length: int) -> bytes:
    return zero_block_digest(scheme, length)


def _is_all_zero(mv: memoryview) -> bool:
    n = len(mv)
    if n == 0:
        return True
    if mv[0] or mv[n - 1] or mv[n // 2]:
        return False
    return bool(native.is_zero(mv))


def _as_bytes_view(data: Any) -> memoryview:
    mv = memoryview(data)
    if mv.ndim != 1 or mv.itemsize != 1 or mv.format != "B":
        mv = mv.cast("B")
    return mv


class BlockCore:
    """One block store directory, opened by one writer process (or any number of readers).

    Use BlockStore (blockstore.py), which adds the maintenance passes."""

    def __init__(self, path: Path, config: StoreConfig, readonly: bool) -> None:
        """Use BlockStore.open()."""
        self.path = path
        self.config = config
        self.readonly = readonly
        self.seg_dir = path / SEGMENTS_DIR
        self.uuid = b""
        self.recovery: RecoveryReport | None = None
        self._index: Index = None  # type: ignore[assignment]
        self._lock: StoreLock | None = None
        self.segments: dict[int, Segment] = {}
        self._segments_lock = threading.Lock()
        self.active: Segment | None = None
        self._dirty: set[Segment] = set()
        self._new_segments: set[int] = set()
        self._sealed_pending: set[int] = set()
        self.next_segment = 1
        self._id_lock = threading.Lock()
        self._batch = Batch(1)
        self._append_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._committer: GroupCommitter | None = None
        self.touch_lock = threading.Lock()
        self.touched: dict[bytes, float] = {}
        self.gc_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    # ------------------------------------------------------------------ open/close

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        config: StoreConfig | None = None,
        *,
        readonly: bool = False,
        create: bool = True,
    ) -> Self:
        """Open (and, unless create=False, create) the store at `path`.

        A writer takes the store lock and runs recovery; a reader (readonly)
        takes no lock and may run beside a writer in another process.
        """
        store = cls(Path(path), config or StoreConfig(), readonly)
        try:
            store._open(create)
        except BaseException:
            store._teardown()
            raise
        return store

    def _open(self, create: bool) -> None:
        index_dir = self.path / INDEX_DIR
        if self.readonly or not create:
            if not (index_dir / "data.mdb").exists():
                raise FormatError(f"{self.path}: no block store here")
        if self.readonly:
            self._index = Index(index_dir, readonly=True, map_size=self.config.lmdb_map_size)
            self.uuid = self._index.check_format(lambda: b"")
            return
        self.path.mkdir(parents=True, exist_ok=True)
        self.seg_dir.mkdir(exist_ok=True)
        (self.path / QUARANTINE_DIR).mkdir(exist_ok=True)
        self._lock = StoreLock(self.path / LOCK_FILE)
        self._lock.acquire()
        self._index = Index(index_dir, map_size=self.config.lmdb_map_size)
        self.uuid = self._index.check_format(lambda: uuidlib.uuid4().bytes)
        recovered = recover(
            self.path, self.seg_dir, self._index, self.uuid,
            segment_size=self.config.segment_size, on_full=self.release_reserve,
        )
        self.recovery = recovered.report
        self.segments, self.active, self.next_segment = recovered.segments, recovered.active, recovered.next_segment
        self.ensure_reserve()
        self._pool = ThreadPoolExecutor(self.config.threads, thread_name_prefix="nefeli-store")
        if self.config.durability == "group":
            self._committer = GroupCommitter(self._commit_pending, self.config.group_window_ms / 1000.0)
            self._committer.start()

    def close(self) -> None:
        """Commit what is pending, stop the threads, release the lock.

        Call it once every other call on this store has returned.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self._committer is not None:
                self._committer.stop()
            if not self.readonly and self._index is not None:
                self._commit_pending()
        finally:
            self._teardown()

    def _teardown(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        with self._segments_lock:
            self.segments.clear()
        self.active = None
        self._dirty.clear()
        if self._index is not None:
            self._index.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_open(self) -> None:
        if self._closed:
            raise StoreClosed(f"store {self.path} is closed")

    def check_writable(self) -> None:
        self.check_open()
        if self.readonly:
            raise ReadOnlyStore(f"store {self.path} is open read-only")

    @property
    def index(self) -> Index:
        return self._index

    # ------------------------------------------------------------------ reserve

    def ensure_reserve(self) -> None:
        size = self.config.reserve_bytes
        path = self.path / RESERVE_FILE
        if size <= 0:
            path.unlink(missing_ok=True)
            return
        try:
            if path.exists() and path.stat().st_size >= size:
                return
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(fd, 0, size)
            finally:
                os.close(fd)
        except OSError:
            path.unlink(missing_ok=True)  # no room for a reserve now; GC makes another

    def release_reserve(self) -> bool:
        """Free the reserve so a metadata-only write can proceed on a full disk."""
        path = self.path / RESERVE_FILE
        if path.exists():
            path.unlink()
            return True
        return False

    def write_meta(self, fn: Callable[[IndexWriter], T]) -> T:
        """A metadata-only write (refcounts, maps, GC switch): may use the reserve."""
        return self._index.run_write(fn, on_full=self.release_reserve)

    def write_meta_grouped(self, fn: Callable[[IndexWriter], T], isolated: tuple[type[BaseException], ...]) -> T:
        """_write_meta sharing its transaction with concurrent ones (map adds and drops):
        `fn` raises `isolated` errors only before it changes anything."""
        return self._index.run_write_grouped(fn, isolated, on_full=self.release_reserve)

    # ------------------------------------------------------------------ segments

    def _allocate_segment_id(self) -> int:
        with self._id_lock:
            n = self.next_segment
            self.next_segment += 1
            return n

    def new_segment(self, flags: int = 0) -> Segment:
        seg = Segment.create(self.seg_dir, self._allocate_segment_id(), self.uuid, flags)
        with self._segments_lock:
            self.segments[seg.id] = seg
        return seg

    def segment(self, seg_id: int) -> Segment | None:
        seg = self.segments.get(seg_id)
        if seg is None and self.readonly:
            seg = self._open_segment_readonly(seg_id)
        return seg

    def _open_segment_readonly(self, seg_id: int) -> Segment | None:
        with self._index.read() as r:
            rows = r.segments()
        with self._segments_lock:
            for known in list(self.segments):  # forget segments compacted away
                row = rows.get(known)
                if row is None or row.state == SegState.DELETED:
                    del self.segments[known]
            row = rows.get(seg_id)
            if row is None or row.state == SegState.DELETED:
                return None
            try:
                seg = Segment.open(
                    self.seg_dir, seg_id, store_uuid=self.uuid, readonly=True, sealed=row.state == SegState.SEALED
                )
            except FileNotFoundError:
                return None
            self.segments[seg_id] = seg
            return seg

    def forget_segment(self, seg_id: int) -> None:
        """Drop our reference: the mapping and descriptor go when the last reader lets go."""
        with self._segments_lock:
            self.segments.pop(seg_id, None)

    def segment_ids(self) -> list[int]:
        return sorted(self.segments)

    # ------------------------------------------------------------------ put

    def put(self, scheme: str, data: Any, digest: bytes | None = None, *, verify: bool | None = None) -> bytes:
        """Store one block; returns its digest once it is durable."""
        return self.put_many(scheme, [(digest, data)], verify=verify)[0]

    def put_many(self, scheme: str, items: Iterable[BlockItem], *, verify: bool | None = None) -> list[bytes]:
        """Store blocks (buffers, or (digest, buffer) pairs the caller hashed already).

        Returns their digests in order once every new one is durable.  A
        duplicate costs one index lookup; new blocks are verified (if asked),
        compressed and checksummed on the store's threads, then appended.
        """
        pending = self.begin_put(scheme, items, verify=verify)
        self.finish_put(pending)
        return pending.digests

    def begin_put(
        self, scheme: str, items: Iterable[BlockItem], *, verify: bool | None = None, ops: Sequence[BatchOp] = ()
    ) -> PendingPut:
        """put_many up to the wait: the new records are written and their batches kicked.

        ``ops`` (e.g. the map reference of the object these blocks make) join the
        open batch, which commits after every batch holding these records (or with
        them, in the same transaction): they run after the records are indexed.
        ``finish_put`` waits and raises what the put met.
        """
        self.check_writable()
        sc = scheme_code(scheme)
        verify = self.config.verify_on_put if verify is None else verify
        digests: list[bytes | None] = []
        views: list[memoryview] = []
        for item in items:
            if isinstance(item, tuple):
                d, data = item
            else:
                d, data = None, item
            if d is not None:
                d = bytes(d)
                if len(d) != 32:
                    raise ValueError("a digest is 32 bytes")
            digests.append(d)
            views.append(_as_bytes_view(data))
        trusted = [i for i, d in enumerate(digests) if d is None]
        if trusted:
            for i, h in zip(trusted, self._map(lambda i: block_digest(views[i], scheme), trusted)):
                digests[i] = h
        trusted_set = set(trusted)
        ds: list[bytes] = digests  # type: ignore[assignment]

        zero_keys: dict[bytes, int] = {}
        candidates: dict[bytes, int] = {}
        item_keys: list[bytes | None] = [None] * len(views)
        for i, mv in enumerate(views):
            if _is_all_zero(mv):
                expected = SHA256_EMPTY if sc == SHA256 else zero_digest(scheme, len(mv))
                if ds[i] != expected:
                    raise DigestMismatch(scheme, ds[i], expected)
                if sc == BLAKE3:
                    zero_keys[block_key(sc, ds[i])] = len(mv)
                continue
            key = block_key(sc, ds[i])
            item_keys[i] = key
            candidates.setdefault(key, i)

        new: list[int] = []
        unreferenced: list[int] = []
        with self._index.read() as r:
            for key, i in candidates.items():
                e = r.block(key)
                if e is None:
                    new.append(i)
                elif e.refcount == 0:
                    unreferenced.append(i)
            zero_keys = {k: n for k, n in zero_keys.items() if r.block(k) is None}
        absent = {item_keys[i] for i in new}
        known = sum(1 for k in item_keys if k is not None and k not in absent)
        if unreferenced:
            new.extend(self._touch(sc, ds, unreferenced))

        batches: dict[int, Batch] = {}
        if new:
            new.sort()

            def encode(i: int) -> _Encoded:
                return self._encode(sc, ds[i], views[i], verify and i not in trusted_set)

            # With ops, the committer is kicked once they are in too: with no other put
            # racing, records and ops then share one batch (one sync, one transaction).
            for enc in self._map(encode, new):
                b = self._append(enc, kick=not ops)
                batches[b.seq] = b
        if zero_keys:
            with self._append_lock:
                b = self._batch
                b.zero.update(zero_keys)
            batches[b.seq] = b
            if not ops:
                self._kick(b)
        ordered = [batches[k] for k in sorted(batches)]
        last = ordered[-1] if ordered else None
        if ops:
            with self._append_lock:
                self.check_open()
                last = self._batch  # open now, so no earlier than any batch above
                last.ops.extend(ops)
            self._kick(last)  # an earlier batch of these records was taken by a commit already
        return PendingPut(ds, known, ordered, list(ops), last)

    def finish_put(self, pending: PendingPut) -> None:
        """Wait until a begin_put is durable; raise its error (or its ops' errors)."""
        if pending.last is not None:
            try:
                self._wait([pending.last])
            except Exception:  # noqa: BLE001 - outcome() tells whose failure it was
                pass
        pending.outcome(self.rerun_op)

    def rerun_op(self, op: BatchOp) -> Any:
        """Run an op its batch could not commit, in a transaction of its own (which
        may use the reserve, as metadata-only writes do)."""
        return self.write_meta_grouped(op.fn, op.isolated)

    def commit_ops(self, ops: Sequence[BatchOp], *, at_once: bool = True) -> Batch:
        """Add index operations to the open batch (group-committed with puts); the batch
        to wait on.  With durability "each", the caller commits: see finish_put.
        ``at_once`` False: commit within the group window rather than at once, so ops
        nobody is waiting for ride along with the next put's commit."""
        self.check_writable()
        with self._append_lock:
            self.check_open()
            b = self._batch
            b.ops.extend(ops)
        if at_once or self._committer is None:
            self._kick(b)
        else:
            self._committer.kick()
        return b

    def run_ops(self, ops: Sequence[BatchOp]) -> None:
        """commit_ops and wait: each op's outcome is in its ``value``/``error`` after."""
        batch = self.commit_ops(ops)
        try:
            self._wait([batch])
        except Exception:  # noqa: BLE001 - the ops run again below
            pass
        for op in ops:
            if not op.applied:
                try:
                    op.value = self.rerun_op(op)
                except Exception as exc:  # noqa: BLE001 - the op's outcome, for the caller
                    op.error = exc

    @property
    def group_commit(self) -> bool:
        """True when a committer thread commits batches (durability "group"): a waiter
        may then wait on a batch's callback instead of committing itself."""
        return self._committer is not None

    def _touch(self, sc: int, digests: list[bytes], indexes: list[int]) -> list[int]:
        """Mark unreferenced duplicates as just put (GC grace); returns those GC took meanwhile."""
        vanished: list[int] = []
        with self.touch_lock:
            # The time is read under the lock GC holds to start a scan and to switch, so a
            # touch is either visible to the scan or later than the scan's start.
            now = time.monotonic()
            with self._index.read() as r:
                for i in indexes:
                    key = block_key(sc, digests[i])
                    if r.block(key) is None:
                        vanished.append(i)
                    else:
                        self.touched[key] = now
            if len(self.touched) > 100_000:
                cutoff = now - self.config.gc_grace_seconds
                self.touched = {k: t for k, t in self.touched.items() if t >= cutoff}
        return vanished

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        """fn over items in order, on the store's threads when it pays."""
        if len(items) <= 1 or self.config.threads <= 1 or self._pool is None:
            return map(fn, items)
        return self._pool.map(fn, items)

    def _encode(self, sc: int, digest: bytes, view: memoryview, verify: bool) -> _Encoded:
        raw = view
        if sc == SHA256:
            raw = view[: native.rstrip_zeros_len(view)]  # sha256 names the block without trailing zeros
        if self.config.compression:
            payload, codec = compression.maybe_compress(raw, self.config.zstd_level, self.config.compress_min_saving)
        else:
            payload, codec = raw, Codec.RAW
        cks: bytes | None = None
        if sc == BLAKE3 and codec == Codec.RAW:
            if verify:
                full = _blake3.blake3(raw).digest()  # checksum and verification in one pass
                if full != digest:
                    raise DigestMismatch("blake3", digest, full)
            # Unverified, the caller vouches for the digest: it becomes the checksum,
            # so a wrong one reads back as a corrupt block, never as wrong data.
            cks = digest[:CHECKSUM_SIZE]
        elif verify:
            actual = _blake3.blake3(raw).digest() if sc == BLAKE3 else hashlib.sha256(raw).digest()
            if actual != digest:
                raise DigestMismatch(scheme_name(sc), digest, actual)
        if cks is None:
            cks = checksum(payload)
        header = encode_header(sc, codec, len(payload), len(raw), digest, cks)
        return _Encoded(block_key(sc, digest), header, payload, len(raw), codec)

    def _append(self, enc: _Encoded, kick: bool = True) -> Batch:
        """Reserve space for the record under the append lock, write it outside the lock.

        The record joins the batch that was open when its space was reserved; that
        batch's commit waits for the write, so a segment's committed end only ever
        moves over written records, however the writes of concurrent puts finish.
        """
        rec_len = HEADER_SIZE + len(enc.payload)
        with self._append_lock:
            self.check_open()
            seg = self.active
            if (
                seg is None
                or seg.bad_from is not None
                or (seg.write_end + rec_len > self.config.segment_size and seg.write_end > SEGMENT_HEADER_SIZE)
            ):
                seg = self._rotate_locked()
            off = seg.reserve(rec_len)
            self._dirty.add(seg)
            batch = self._batch
            batch.bytes += rec_len
            batch.begin_write()
        try:
            seg.write_at(off, (enc.header, enc.payload))
        except BaseException as exc:
            self._write_failed(seg, off, rec_len, batch)
            batch.end_write(None)
            if isinstance(exc, OSError):
                raise_io_error(exc, f"appending to segment {seg.id}")
            raise
        batch.end_write(PendingRecord(enc.key, seg.id, off, len(enc.payload), enc.raw_len, enc.codec))
        if kick:
            self._kick(batch)
        return batch

    def _write_failed(self, seg: Segment, off: int, rec_len: int, batch: Batch) -> None:
        """Leave no partial record for a commit to cover after a failed write at `off`."""
        with self._append_lock:
            if seg.write_end == off + rec_len and seg.bad_from is None and batch is self._batch:
                # The last reservation, and no commit has taken the segment's end since it
                # was made: cut the file back and give the space back.
                try:
                    os.ftruncate(seg.fd, off)
                except OSError:
                    pass
                seg.write_end = off
                return
            # Records were reserved after it: the segment takes no more appends, and
            # its committed end stops at the hole (recovery cuts whatever lies past it).
            seg.bad_from = off if seg.bad_from is None else min(seg.bad_from, off)

    def _rotate_locked(self) -> Segment:
        """Seal the active segment and start a new one (append lock held)."""
        new = self.new_segment()
        old = self.active
        if old is not None:
            old.seal()
            self._sealed_pending.add(old.id)
            self._dirty.add(old)
        self.active = new
        self._dirty.add(new)
        self._new_segments.add(new.id)
        return new

    def rotate(self) -> None:
        """Seal the active segment now (GC does this to compact it); durable at the next commit."""
        self.check_writable()
        with self._append_lock:
            if self.active is not None and self.active.write_end > SEGMENT_HEADER_SIZE:
                old = self.active
                old.seal()
                self._sealed_pending.add(old.id)
                self._dirty.add(old)
                self.active = None  # the next put creates a segment
        self._commit_pending()

    def _kick(self, batch: Batch) -> None:
        if self._committer is not None:
            # A batch of small records and index ops commits at once (waiting would only
            # add latency: the puts arriving meanwhile share the next commit); the
            # window is for large writes, which it lets share a sync.
            b = batch.bytes
            self._committer.kick(urgent=b >= self.config.group_max_bytes or b < self.config.group_at_once_bytes)

    def _wait(self, batches: list[Batch]) -> None:
        if not batches:
            return
        if self._committer is None:  # "each": this put commits (maybe others' records too)
            if any(not b.done for b in batches):
                self._commit_pending()
        for b in sorted(batches, key=lambda b: b.seq):
            b.wait()

    def flush(self) -> None:
        """Make everything appended so far durable."""
        if not self.readonly:
            self.check_open()
            self._commit_pending()

    def _commit_pending(self) -> None:
        """Fsync the segments written since the last commit and index their records (one txn)."""
        with self._commit_lock:
            with self._append_lock:
                batch = self._batch
                dirty = list(self._dirty)
                new_ids = self._new_segments
                sealed = self._sealed_pending
                if batch.empty and not dirty and not new_ids and not sealed:
                    return
                ends = {s.id: s.write_end for s in dirty}
                self._dirty = set()
                self._new_segments = set()
                self._sealed_pending = set()
                self._batch = Batch(batch.seq + 1)
            # Every record reserved up to the swap belongs to this batch or to an earlier,
            # committed one: once this batch's writes finish, everything below each
            # segment's end as of the swap is written (bar a failed write's hole, below).
            batch.wait_writes()
            with self._append_lock:
                for s in dirty:
                    if s.bad_from is not None and s.bad_from < ends[s.id]:
                        ends[s.id] = s.bad_from
            try:
                lost = [
                    r
                    for r in batch.records
                    if r.segment in ends and r.offset + HEADER_SIZE + r.stored_len > ends[r.segment]
                ]
                if lost:
                    raise OSError(
                        errno.EIO,
                        f"{len(lost)} record(s) written past a failed write in segment {lost[0].segment}; put again",
                    )
                for seg in dirty:
                    seg.sync()
                if new_ids:
                    fsync_dir(self.seg_dir)
                flags = {s.id: s.header.flags for s in dirty}
                ops_ran = True
                try:
                    with self._index.write() as w:
                        self._apply_batch(w, batch, ends, flags, new_ids, sealed, batch.ops)
                except Exception:
                    if not batch.ops:
                        raise
                    # Maybe an op's own failure: commit the records alone; each op
                    # is then run again on its own by its waiter (PendingPut.outcome).
                    for op in batch.ops:
                        op.value = op.error = None
                    ops_ran = False
                    with self._index.write() as w:
                        self._apply_batch(w, batch, ends, flags, new_ids, sealed, ())
                if ops_ran:
                    for op in batch.ops:
                        op.applied = True
            except BaseException as exc:
                with self._append_lock:  # the segment rows still have to be written
                    self._dirty |= set(dirty)
                    self._new_segments |= new_ids
                    self._sealed_pending |= sealed
                batch.finish(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                batch.finish()
                if self.config.drop_cache_after_sync:
                    for seg in dirty:
                        seg.drop_cache(ends[seg.id])

    def _apply_batch(
        self,
        w: IndexWriter,
        batch: Batch,
        ends: dict[int, int],
        flags: dict[int, int],
        new_ids: set[int],
        sealed: set[int],
        ops: Sequence[BatchOp],
    ) -> None:
        from .index import SegmentRow

        top = 0
        for seg_id in sorted(set(ends) | new_ids | sealed):
            row = w.segment(seg_id)
            if row is None:
                row = SegmentRow(SegState.OPEN, flags=flags.get(seg_id, 0))
                w.set_segment(seg_id, row)
            if seg_id in ends:
                row.end = max(row.end, ends[seg_id])
            if seg_id in sealed:
                row.state = SegState.SEALED
            top = max(top, seg_id)
        if new_ids:
            self._note_next_segment(w, top + 1)
        for rec in batch.records:
            if w.block(rec.key) is not None:
                continue  # a racing put of the same block won; this copy is dead bytes
            q = w.take_quarantined(rec.key)
            w.insert_block(
                rec.key,
                BlockEntry(
                    rec.segment, rec.offset, rec.stored_len, rec.raw_len, rec.codec, 0, q.refcount if q else 0, w.now
                ),
            )
        for key, raw_len in batch.zero.items():
            if w.block(key) is None:
                w.insert_block(key, BlockEntry(0, 0, 0, raw_len, Codec.RAW, FLAG_ZERO, 0, w.now))
        for op in ops:
            try:
                op.value = op.fn(w)
            except op.isolated as exc:  # raised before it changed anything
                op.error = exc

    @staticmethod
    def _note_next_segment(w: IndexWriter, candidate: int) -> None:
        from .index import unpack_u64

        raw = w.meta(b"next_segment")
        current = unpack_u64(raw) if raw is not None else 1
        if candidate > current:
            w.set_meta(b"next_segment", pack_u64(candidate))

    # ------------------------------------------------------------------ get

    def get(self, scheme: str, digest: bytes, length: int | None = None) -> bytes:
        """The block's bytes (a copy).  See get_buffer."""
        buf = self.get_buffer(scheme, digest, length)
        return buf if isinstance(buf, bytes) else bytes(buf)

    def get_buffer(self, scheme: str, digest: bytes, length: int | None = None) -> memoryview | bytes:
        """The block's bytes, zero-copy (a view of the segment mapping) when it can be.

        `length` is the length the caller expects: sha256 blocks are stored
        without trailing zeros (the digest does not cover them), so they are
        padded back to it.  BlockNotFound if absent, CorruptBlock if it fails
        verification.  A view keeps its segment mapped until it is released.
        """
        self.check_open()
        sc = scheme_code(scheme)
        digest = bytes(digest)
        key = block_key(sc, digest)
        where: tuple[int, int] | None = None
        for _attempt in range(_READ_RETRIES):
            with self._index.read() as r:
                entry = r.block(key)
            if entry is None:
                if sc == SHA256 and digest == SHA256_EMPTY:
                    return bytes(length or 0)
                raise BlockNotFound(scheme, digest)
            if entry.is_zero:
                return bytes(entry.raw_len if length is None else length)
            seg = self.segment(entry.segment)
            if seg is None:
                where = (entry.segment, entry.offset)
                continue  # compacted away after our lookup: look again
            data = self._read_record(scheme, key, entry, seg)
            return self._fit(scheme, digest, data, entry.raw_len, length)
        assert where is not None
        raise CorruptBlock(scheme, digest, "its segment is missing", *where)

    @staticmethod
    def _fit(scheme: str, digest: bytes, data: Any, raw_len: int, length: int | None) -> Any:
        if length is None or length == raw_len:
            return data
        if length > raw_len and scheme == "sha256":
            return bytes(data) + bytes(length - raw_len)
        raise ValueError(f"block {scheme}:{digest.hex()} is {raw_len} bytes, not {length}")

    def _read_record(self, scheme: str, key: bytes, entry: BlockEntry, seg: Segment) -> memoryview | bytes:
        """Decode and verify the record an index entry points at."""
        digest = key[1:]
        view = seg.read(entry.offset, HEADER_SIZE + entry.stored_len)
        try:
            if len(view) < HEADER_SIZE + entry.stored_len:
                raise BadRecord("record runs past the end of its segment")
            header = decode_header(view[:HEADER_SIZE])
            if header.key != key or header.stored_len != entry.stored_len or header.raw_len != entry.raw_len:
                raise BadRecord("record header does not match the index entry")
            payload = view[HEADER_SIZE:]
            if checksum(payload) != header.checksum:
                raise BadRecord("checksum mismatch")
            if header.codec == Codec.ZSTD:
                return compression.decompress(payload, header.raw_len)
            return payload
        except BadRecord as exc:
            raise CorruptBlock(scheme, digest, str(exc), entry.segment, entry.offset) from None

    # ------------------------------------------------------------------ queries

    def has(self, scheme: str, digest: bytes) -> bool:
        """True if get() would find the block (zero blocks included)."""
        self.check_open()
        sc = scheme_code(scheme)
        if sc == SHA256 and digest == SHA256_EMPTY:
            return True
        with self._index.read() as r:
            return r.block(block_key(sc, bytes(digest))) is not None

    def missing(self, scheme: str, digests: Iterable[bytes]) -> list[bytes]:
        """The digests (each once, in order) the store lacks: the 409 answer."""
        self.check_open()
        sc = scheme_code(scheme)
        out: list[bytes] = []
        seen: set[bytes] = set()
        with self._index.read() as r:
            for d in digests:
                d = bytes(d)
                if d in seen:
                    continue
                seen.add(d)
                if sc == SHA256 and d == SHA256_EMPTY:
                    continue
                if r.block(block_key(sc, d)) is None:
                    out.append(d)
        return out

    def info(self, scheme: str, digest: bytes) -> BlockInfo | None:
        self.check_open()
        sc = scheme_code(scheme)
        with self._index.read() as r:
            e = r.block(block_key(sc, bytes(digest)))
        return None if e is None else self._info(sc, bytes(digest), e)

    @staticmethod
    def _info(sc: int, digest: bytes, e: BlockEntry) -> BlockInfo:
        return BlockInfo(
            scheme_name(sc),
            digest,
            e.segment,
            e.offset,
            e.stored_len,
            e.raw_len,
            e.codec,
            e.refcount,
            e.stamp,
            e.is_zero,
        )

    def refcount(self, scheme: str, digest: bytes) -> int:
        """References from maps (0 for absent or zero blocks)."""
        info = self.info(scheme, digest)
        return 0 if info is None else info.refcount

    def iter_blocks(self) -> Iterator[BlockInfo]:
        """Every index entry, from one snapshot."""
        self.check_open()
        with self._index.read() as r:
            for key, e in r.iter_blocks():
                yield self._info(key[0], key[1:], e)

    def quarantined(self) -> list[tuple[str, bytes, int]]:
        """(scheme, digest, refcount) of blocks taken out of service by scrub or recovery."""
        self.check_open()
        with self._index.read() as r:
            return [(scheme_name(k[0]), k[1:], q.refcount) for k, q in r.iter_quarantine()]

    # ------------------------------------------------------------------ refcounts

    def change_refcounts(self, scheme: str, deltas: Mapping[bytes, int] | Iterable[tuple[bytes, int]]) -> None:
        """Apply refcount changes in one transaction (all or nothing).

        Increments need the block present (MissingBlocks lists the absent
        ones); a decrement below zero raises RefcountUnderflow.  Zero blocks
        carry no refcount and are skipped.
        """
        self.check_writable()
        sc = scheme_code(scheme)
        agg: dict[bytes, int] = {}
        for d, delta in deltas.items() if isinstance(deltas, Mapping) else deltas:
            key = block_key(sc, bytes(d))
            agg[key] = agg.get(key, 0) + int(delta)
        self.write_meta(lambda w: self.apply_refcounts(w, sc, agg))

    def apply_refcounts(self, w: IndexWriter, sc: int, agg: Mapping[bytes, int]) -> None:
        """change_refcounts inside a caller's transaction (the map store's).

        Checks everything before changing anything: MissingBlocks and
        RefcountUnderflow leave the transaction as it was, so grouped map
        writes can share a transaction with a write that fails.
        """
        missing: list[bytes] = []
        changes: list[tuple[bytes, BlockEntry | None, QuarantineEntry | None, int]] = []
        for key, delta in agg.items():
            if delta == 0 or (sc == SHA256 and key[1:] == SHA256_EMPTY):
                continue
            e = w.block(key)
            if e is None:
                q = w.quarantined(key)
                if q is not None and delta < 0:
                    if q.refcount + delta < 0:
                        raise RefcountUnderflow(f"refcount of {scheme_name(sc)}:{key[1:].hex()} would go below 0")
                    changes.append((key, None, q, delta))
                    continue
                if delta < 0:  # nothing left to unreference; never block a map's removal on it
                    log.warning("dropping refs of absent block %s:%s", scheme_name(sc), key[1:].hex())
                    continue
                missing.append(key[1:])
                continue
            if e.is_zero:
                continue
            if e.refcount + delta < 0:
                raise RefcountUnderflow(f"refcount of {scheme_name(sc)}:{key[1:].hex()} would go below 0")
            changes.append((key, e, None, delta))
        if missing:
            raise MissingBlocks(scheme_name(sc), missing)
        for key, e, q, delta in changes:
            if e is not None:
                w.add_refs(key, e, delta)
            else:
                assert q is not None
                w.set_quarantined_refcount(key, q, q.refcount + delta)


__all__ = ["BlockCore", "BlockInfo", "BlockItem", "zero_digest"]
