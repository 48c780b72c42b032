"""Recovery on open: bring segments and index back in step after a crash.

The index records, per segment, a committed end: every byte before it was
fdatasynced before the transaction that recorded it.  So after kill -9 (or
power loss) the only uncertain bytes are past those ends, plus segment files
the index never heard of.  Recovery

  * removes files of segments compaction had already replaced, and
    uncommitted compaction output;
  * scans past each committed end, re-indexes every intact record whose block
    the index lacks (refcount 0, or the refcount a quarantined copy kept), and
    cuts the file at the first torn or invalid record;
  * scans unknown segment files the same way (a segment created just before
    the crash) and drops ones whose header never became durable;
  * takes out of service (quarantine) blocks whose segment is missing or
    shorter than their record, so the store never claims a block it cannot
    return.

It runs before the store serves anything, in one index transaction.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from collections.abc import Callable
from pathlib import Path

from .errors import BadSegment
from .index import BlockEntry, Index, IndexWriter, QuarantineReason, SegmentRow, SegState, pack_u64, unpack_u64
from .records import RecordHeader
from .segments import SEGMENT_HEADER_SIZE, Segment, fsync_dir, list_segment_files

log = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    segments: int = 0
    tails_cut: list[tuple[int, int, str]] = field(default_factory=list)  # (segment, bytes cut, why)
    reindexed: int = 0  # intact records past the last commit, now indexed
    dead: int = 0  # intact records of blocks indexed elsewhere
    removed_files: list[str] = field(default_factory=list)
    foreign_files: list[str] = field(default_factory=list)
    lost_blocks: int = 0  # quarantined: segment missing or short
    damaged_headers: list[int] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.tails_cut or self.reindexed or self.removed_files or self.lost_blocks or self.foreign_files)


@dataclass
class Recovered:
    """What the store runs with after recovery: its open segments, the one it
    appends to, the next segment id, and what recovery did."""

    report: RecoveryReport
    segments: dict[int, Segment]
    active: Segment | None
    next_segment: int


def recover(
    path: Path, seg_dir: Path, index: Index, uuid: bytes, *, segment_size: int, on_full: Callable[[], bool]
) -> Recovered:
    """Recover the store at ``path`` (segments in ``seg_dir``); ``on_full`` frees the
    reserve when the index transaction finds the disk full."""
    report = RecoveryReport()
    files = list_segment_files(seg_dir)
    with index.read() as r:
        rows = r.segments()
        raw_next = r.meta(b"next_segment")
    highest = max([0, *rows, *files])
    next_id = max(highest + 1, unpack_u64(raw_next) if raw_next else 1)

    opened: dict[int, Segment] = {}
    new_rows: dict[int, SegmentRow] = {}
    found: list[tuple[Segment, list[tuple[int, RecordHeader]]]] = []
    dropped: set[int] = set()
    lost: list[int] = []
    short: dict[int, int] = {}  # segment -> file size shorter than its committed end
    dir_changed = False

    for seg_id, row in sorted(rows.items()):
        path = files.pop(seg_id, None)
        if row.state == SegState.DELETED:
            if path is not None:
                path.unlink()
                report.removed_files.append(path.name)
                dir_changed = True
            dropped.add(seg_id)
            continue
        if path is None:
            log.error("segment %d is missing: its blocks are quarantined", seg_id)
            lost.append(seg_id)
            continue
        try:
            seg = Segment.open(seg_dir, seg_id, store_uuid=uuid)
        except BadSegment:
            report.damaged_headers.append(seg_id)
            seg = Segment.open(seg_dir, seg_id, trust_header=True)
        size = seg.file_size()
        row = SegmentRow(row.state, row.flags, row.records, row.end, row.indexed_bytes, row.unref_bytes)
        if size < row.end:
            short[seg_id] = size
        elif size > row.end:
            if row.flags & 1 or row.state == SegState.SEALED:
                # uncommitted compaction output (or bytes no commit covered): nothing to keep
                report.tails_cut.append((seg_id, size - row.end, "past the committed end of a sealed segment"))
                seg.truncate(row.end)
            else:
                res = seg.scan(row.end)
                found.append((seg, res.records))
                if res.torn:
                    report.tails_cut.append((seg_id, res.size - res.end, res.reason or "torn"))
                    seg.truncate(res.end)
                row.end = res.end
        seg.write_end = row.end if seg_id not in short else size
        new_rows[seg_id] = row
        opened[seg_id] = seg

    for seg_id, path in sorted(files.items()):  # segment files the index never recorded
        try:
            seg = Segment.open(seg_dir, seg_id, store_uuid=uuid)
        except BadSegment as exc:
            if "another store" in str(exc):
                target = path.with_name(path.name + ".foreign")
                os.rename(path, target)
                report.foreign_files.append(target.name)
            else:  # its header never became durable: it holds nothing committed
                path.unlink()
                report.removed_files.append(path.name)
            dir_changed = True
            continue
        if seg.is_compaction:
            path.unlink()
            report.removed_files.append(path.name)
            dir_changed = True
            continue
        res = seg.scan()
        if res.torn:
            report.tails_cut.append((seg_id, res.size - res.end, res.reason or "torn"))
            seg.truncate(res.end)
        found.append((seg, res.records))
        new_rows[seg_id] = SegmentRow(SegState.OPEN, seg.header.flags, end=res.end)
        seg.write_end = res.end
        opened[seg_id] = seg

    # Records about to be indexed came from the page cache: make them durable first.
    for seg, records in found:
        if records:
            seg.sync()
    if dir_changed:
        fsync_dir(seg_dir)

    # The segment that keeps taking appends: the newest open one with room left.
    candidates = [
        seg_id
        for seg_id, row in new_rows.items()
        if row.state == SegState.OPEN and not row.flags & 1 and seg_id not in short
    ]
    active_id = max(candidates) if candidates else None
    if active_id is not None and new_rows[active_id].end >= segment_size:
        active_id = None

    for seg_id, row in new_rows.items():
        if seg_id != active_id and row.state == SegState.OPEN:
            row.state = SegState.SEALED
    changed = (
        dropped
        or lost
        or short
        or any(records for _seg, records in found)
        or any(rows.get(seg_id) != row for seg_id, row in new_rows.items())
        or raw_next is None
        or unpack_u64(raw_next) != next_id
    )

    def apply(w: IndexWriter) -> None:
        report.reindexed = report.dead = report.lost_blocks = 0
        for seg_id in dropped:
            w.drop_segment(seg_id)
        for seg_id, row in new_rows.items():
            w.set_segment(seg_id, row)
        for seg_id in lost:
            report.lost_blocks += _quarantine_where(w, seg_id, 0, QuarantineReason.SEGMENT_MISSING)
            w.drop_segment(seg_id)
        for seg_id, size in short.items():
            report.lost_blocks += _quarantine_where(w, seg_id, size, QuarantineReason.TRUNCATED)
            short_row = w.segment(seg_id)
            assert short_row is not None
            short_row.end = size
        for seg, records in found:
            for off, header in records:
                key = header.key
                if w.block(key) is not None:
                    report.dead += 1
                    continue
                q = w.take_quarantined(key)
                entry = BlockEntry(
                    seg.id, off, header.stored_len, header.raw_len, header.codec, 0, q.refcount if q else 0, w.now
                )
                w.insert_block(key, entry)
                report.reindexed += 1
        w.set_meta(b"next_segment", pack_u64(next_id))

    if changed:  # a clean open writes nothing (and so works on a full disk)
        index.run_write(apply, on_full=on_full)

    for seg_id, seg in opened.items():
        if seg_id == active_id:
            seg.sealed = False
        else:
            seg.seal()
    report.segments = len(opened)
    if not report.clean:
        log.warning("store %s recovered: %s", path, report)
    return Recovered(report, opened, opened.get(active_id) if active_id is not None else None, next_id)


def _quarantine_where(w: IndexWriter, seg_id: int, size: int, reason: int) -> int:
    """Quarantine the blocks of a segment whose records do not fit in `size` bytes."""
    victims: list[tuple[bytes, BlockEntry]] = []
    for _off, key in list(w.locations(seg_id)):
        e = w.block(key)
        if e is not None and e.segment == seg_id and e.offset + e.record_len > size:
            victims.append((key, e))
    if victims and w.segment(seg_id) is None:
        w.set_segment(seg_id, SegmentRow(SegState.SEALED))
    for key, e in victims:
        w.quarantine_block(key, e, reason)
    return len(victims)


__all__ = ["RecoveryReport", "recover", "SEGMENT_HEADER_SIZE"]
