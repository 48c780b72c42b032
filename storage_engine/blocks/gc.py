"""Garbage collection: compact segments online, reclaiming unreferenced blocks and dead records.

For each segment worth it: copy the records of live blocks (verbatim, each
verified on the way) into compaction segments, fdatasync them, then in one
index transaction switch the live entries to their new places, delete the
garbage entries and mark the old segment deleted; only then unlink the old
file.  Readers never wait: their LMDB snapshot and our Segment objects keep
old locations readable (an unlinked file stays mapped until its last reader
lets go), and a reader whose segment vanished looks its block up again.

A block is garbage when its refcount is 0, it was not put (or unreferenced)
within the grace period, and nothing re-referenced or re-put it before the
switch — checked again inside the switching transaction, so GC racing with
map adds and puts never drops a block that became live.  A segment where that
check fails is left for the next run (its copies become dead bytes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import BadRecord, StoreError, StoreFull
from .index import BlockEntry, IndexWriter, QuarantineReason, SegmentRow, SegState, pack_u64, unpack_u64
from .records import decode_record
from .segments import FLAG_COMPACTION, SEGMENT_HEADER_SIZE, Segment, fsync_dir

if TYPE_CHECKING:
    from .core import BlockCore

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class _Conflict(StoreError):
    """A block judged garbage became live before the switch."""


@dataclass
class GcReport:
    segments_compacted: int = 0
    blocks_removed: int = 0
    blocks_moved: int = 0
    bytes_copied: int = 0
    bytes_reclaimed: int = 0  # file bytes removed minus bytes copied
    conflicts: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # why the run ended early (disk full)

    @property
    def mb_per_s(self) -> float:
        return self.bytes_reclaimed / 1e6 / self.seconds if self.seconds else 0.0


class _Outputs:
    """The compaction segments of one GC run: appended in turn, rotated at segment size."""

    def __init__(self, store: BlockCore) -> None:
        self.store = store
        self.current: Segment | None = None
        self.all: list[Segment] = []
        self.committed: dict[int, int] = {}  # segment id -> committed end
        self.touched: set[Segment] = set()
        self.created = False

    def append(self, view: memoryview) -> tuple[int, int]:
        size = self.store.config.segment_size
        seg = self.current
        if seg is None or (seg.write_end + len(view) > size and seg.write_end > SEGMENT_HEADER_SIZE):
            seg = self.current = self.store.new_segment(FLAG_COMPACTION)
            self.all.append(seg)
            self.created = True
        try:
            off = seg.append([view])
        except StoreFull:
            # a full disk: the reserve exists so that compaction can still make room
            if not self.store.release_reserve():
                raise
            off = seg.append([view])
        self.touched.add(seg)
        return seg.id, off

    def sync(self) -> None:
        for seg in self.touched:
            seg.sync()
            if self.store.config.drop_cache_after_sync:
                seg.drop_cache(seg.write_end)
        if self.created:
            fsync_dir(self.store.seg_dir)
            self.created = False

    def record_rows(self, w: IndexWriter) -> None:
        top = 0
        for seg in self.touched:
            row = w.segment(seg.id)
            if row is None:
                row = SegmentRow(SegState.SEALED, flags=FLAG_COMPACTION)
                w.set_segment(seg.id, row)
            row.end = seg.write_end
            top = max(top, seg.id)
        raw = w.meta(b"next_segment")
        if raw is None or unpack_u64(raw) <= top:
            w.set_meta(b"next_segment", pack_u64(top + 1))

    def committed_ok(self) -> None:
        for seg in self.touched:
            self.committed[seg.id] = seg.write_end
        self.touched = set()

    def finish(self) -> None:
        """Seal what was committed (reads go zero-copy); drop outputs no commit used."""
        for seg in self.all:
            if seg.id in self.committed:
                if seg.write_end > self.committed[seg.id]:  # copies of a skipped segment
                    seg.truncate(self.committed[seg.id])
                seg.seal()
            else:
                self.store.forget_segment(seg.id)
                seg.path.unlink(missing_ok=True)


def collect_garbage(
    store: BlockCore,
    *,
    grace_seconds: float | None = None,
    min_garbage_ratio: float = 0.0,
    max_segments: int | None = None,
    progress: Progress | None = None,
) -> GcReport:
    """Compact every sealed segment whose garbage share is at least `min_garbage_ratio`."""
    store.check_writable()
    grace = store.config.gc_grace_seconds if grace_seconds is None else grace_seconds
    report = GcReport()
    t0 = time.perf_counter()
    with store.gc_lock:
        # The open segment is compacted too: seal it first if it holds garbage.
        with store.index.read() as r:
            rows = r.segments()
        active = store.active
        if active is not None and active.id in rows and rows[active.id].garbage_bytes > 0:
            store.rotate()
        else:
            store.flush()
        with store.index.read() as r:
            rows = r.segments()
        active_id = store.active.id if store.active is not None else None
        candidates: list[tuple[int, SegmentRow]] = []
        for seg_id, row in rows.items():
            if row.state != SegState.SEALED or seg_id == active_id or seg_id not in store.segments:
                continue
            data = row.data_bytes
            if row.records == 0 or (row.garbage_bytes > 0 and row.garbage_bytes >= min_garbage_ratio * data):
                candidates.append((seg_id, row))
        candidates.sort(key=lambda item: item[1].garbage_bytes / max(1, item[1].data_bytes), reverse=True)
        if max_segments is not None:
            candidates = candidates[:max_segments]
        total = sum(row.end for _, row in candidates)
        done = 0
        outputs = _Outputs(store)
        removed: list[int] = []
        try:
            for seg_id, row in candidates:
                try:
                    freed = _compact_one(store, seg_id, row, grace, outputs, report)
                except StoreFull as exc:
                    log.warning("gc stopped: %s", exc)
                    report.stopped = str(exc)
                    break
                if freed is not None:
                    removed.append(seg_id)
                done += row.end
                if progress is not None:
                    progress(done, total)
        finally:
            outputs.finish()
            report.bytes_reclaimed -= SEGMENT_HEADER_SIZE * len(outputs.committed)
            if removed:
                fsync_dir(store.seg_dir)

                def drop_rows(w: IndexWriter) -> None:
                    for seg_id in removed:
                        w.drop_segment(seg_id)

                try:
                    store.write_meta(drop_rows)
                except StoreError:  # the rows say DELETED: the next open drops them
                    log.warning("could not drop compacted segment rows", exc_info=True)
            store.ensure_reserve()
    report.seconds = time.perf_counter() - t0
    return report


def _is_young(store: BlockCore, key: bytes, e: BlockEntry, wall: float, mono: float, grace: float) -> bool:
    if e.stamp > wall - grace:
        return True
    touched = store.touched.get(key)
    return touched is not None and touched > mono - grace


def _compact_one(
    store: BlockCore, seg_id: int, row: SegmentRow, grace: float, outputs: _Outputs, report: GcReport
) -> int | None:
    """Compact one segment; returns the bytes its file held, or None if left alone."""
    seg = store.segments.get(seg_id)
    if seg is None:
        return None
    with store.touch_lock:  # every touch before this is visible to the scan, every later one is newer
        wall, mono = time.time(), time.monotonic()
    live: list[tuple[int, bytes, BlockEntry]] = []
    garbage: list[tuple[bytes, BlockEntry]] = []
    with store.index.read() as r:
        for off, key in r.locations(seg_id):
            e = r.block(key)
            if e is None or e.segment != seg_id or e.offset != off:
                continue
            if e.refcount > 0 or _is_young(store, key, e, wall, mono, grace):
                live.append((off, key, e))
            else:
                garbage.append((key, e))
    if not garbage and row.dead_bytes == 0 and live:
        return None  # nothing to reclaim (young unreferenced blocks only)

    moved: list[tuple[bytes, BlockEntry, int, int]] = []
    bad: list[tuple[bytes, BlockEntry, int]] = []
    copied = 0
    for off, key, e in live:
        view = seg.read(off, e.record_len)
        try:
            header, _payload = decode_record(view)
            if header.key != key or header.stored_len != e.stored_len:
                raise BadRecord("record header does not match the index entry")
        except BadRecord as exc:
            reason = QuarantineReason.CHECKSUM if "checksum" in str(exc) else QuarantineReason.HEADER
            log.error(
                "gc: block %s in segment %d offset %d is corrupt (%s): quarantined", key[1:].hex(), seg_id, off, exc
            )
            bad.append((key, e, reason))
            continue
        new_seg, new_off = outputs.append(view[: e.record_len])
        moved.append((key, e, new_seg, new_off))
        copied += e.record_len
    outputs.sync()

    def apply(w: IndexWriter) -> None:
        for key, e in garbage:
            cur = w.block(key)
            if cur is None or (cur.segment, cur.offset) != (seg_id, e.offset):
                continue
            if cur.refcount > 0 or cur.stamp != e.stamp:
                raise _Conflict(key.hex())  # re-referenced (or dropped again) since the scan
            touched = store.touched.get(key)
            if touched is not None and touched >= mono:
                raise _Conflict(key.hex())  # put again since the scan
        outputs.record_rows(w)
        for key, e, new_seg, new_off in moved:
            cur = w.block(key)
            if cur is None or (cur.segment, cur.offset) != (seg_id, e.offset):
                continue  # quarantined meanwhile: the copy is dead bytes
            w.replace_block(key, cur, replace(cur, segment=new_seg, offset=new_off))
        for key, e, reason in bad:
            cur = w.block(key)
            if cur is not None and (cur.segment, cur.offset) == (seg_id, e.offset):
                w.quarantine_block(key, cur, reason)
        for key, e in garbage:
            cur = w.block(key)
            if cur is not None and (cur.segment, cur.offset) == (seg_id, e.offset):
                w.delete_block(key, cur)
        old = w.segment(seg_id)
        if old is not None:
            old.state = SegState.DELETED

    try:
        with store.touch_lock:
            store.write_meta(apply)
    except _Conflict as exc:
        log.info("gc: segment %d skipped, block %s became live", seg_id, exc)
        report.conflicts += 1
        return None
    outputs.committed_ok()
    size = seg.file_size()
    store.forget_segment(seg_id)
    seg.path.unlink(missing_ok=True)
    del seg  # the descriptor and mapping go with the last reference
    report.segments_compacted += 1
    report.blocks_moved += len(moved)
    report.blocks_removed += len(garbage)
    report.quarantined += len(bad)
    report.bytes_copied += copied
    report.bytes_reclaimed += size - copied
    return size
