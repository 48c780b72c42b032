"""Store statistics from the counters the index keeps (O(segments)), and a full recount.

Definitions (docs/storage-format.md):
  logical bytes      Σ object size × map refcount: every object version as clients see it
                     (copies and versions sharing a map each count, zero blocks included)
  mapped bytes       Σ raw length × block refcount: the stored maps' non-zero blocks
  dedup ratio        logical bytes / raw bytes of the referenced blocks
  compression ratio  raw bytes / stored payload bytes, over stored blocks
  garbage bytes      reclaimable by GC: records no entry points at (dead) plus
                     records of unreferenced blocks (some may still be in their grace period)
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .index import BlockEntry, Counters, IndexReader, SegmentRow, SegState, map_key_size

if TYPE_CHECKING:
    from .core import BlockCore


@dataclass(frozen=True)
class StoreStats:
    blocks: int
    referenced_blocks: int
    unreferenced_blocks: int
    raw_bytes: int
    referenced_raw_bytes: int
    logical_bytes: int
    mapped_bytes: int
    payload_bytes: int
    stored_bytes: int  # record bytes (header + payload) of indexed blocks
    garbage_bytes: int
    dead_bytes: int
    unreferenced_bytes: int
    segment_bytes: int  # Σ committed segment lengths
    disk_bytes: int  # space the segment files take (st_blocks)
    segments: int
    maps: int
    map_bytes: int
    quarantined: int

    @property
    def dedup_ratio(self) -> float:
        return self.logical_bytes / self.referenced_raw_bytes if self.referenced_raw_bytes else 1.0

    @property
    def compression_ratio(self) -> float:
        return self.raw_bytes / self.payload_bytes if self.payload_bytes else 1.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dedup_ratio"] = round(self.dedup_ratio, 4)
        d["compression_ratio"] = round(self.compression_ratio, 4)
        return d


def compute_stats(store: BlockCore) -> StoreStats:
    with store.index.read() as r:
        c = r.counters()
        rows = {k: v for k, v in r.segments().items() if v.state != SegState.DELETED}
    dead = sum(row.dead_bytes for row in rows.values())
    unref = sum(row.unref_bytes for row in rows.values())
    indexed = sum(row.indexed_bytes for row in rows.values())
    disk = 0
    for seg_id in rows:
        try:
            disk += os.stat(store.seg_dir / f"{seg_id:016x}.seg").st_blocks * 512
        except FileNotFoundError:
            pass
    return StoreStats(
        blocks=c.blocks,
        referenced_blocks=c.referenced_blocks,
        unreferenced_blocks=c.blocks - c.referenced_blocks,
        raw_bytes=c.raw_bytes,
        referenced_raw_bytes=c.referenced_raw_bytes,
        logical_bytes=c.logical_bytes,
        mapped_bytes=c.mapped_bytes,
        payload_bytes=c.payload_bytes,
        stored_bytes=indexed,
        garbage_bytes=dead + unref,
        dead_bytes=dead,
        unreferenced_bytes=unref,
        segment_bytes=sum(row.end for row in rows.values()),
        disk_bytes=disk,
        segments=len(rows),
        maps=c.maps,
        map_bytes=c.map_bytes,
        quarantined=c.quarantined,
    )


@dataclass
class Recount:
    """Counters and per-segment accounting rebuilt from the entries themselves."""

    counters: Counters
    rows: dict[int, SegmentRow] = field(default_factory=dict)


def recount(store: BlockCore, reader: IndexReader | None = None) -> Recount:
    """Walk every entry and map; what the incremental counters should say."""
    if reader is None:
        with store.index.read() as r:
            return recount(store, r)
    r = reader
    out = Recount(Counters())
    c = out.counters
    for seg_id, row in r.segments().items():
        out.rows[seg_id] = SegmentRow(row.state, row.flags, end=row.end)
    for _key, e in r.iter_blocks():
        _add(c, out.rows, e)
    for key, rc in r.iter_maps():
        c.maps += 1
        c.map_bytes += len(r.map_blob(key) or b"")
        c.logical_bytes += map_key_size(key) * rc
    c.quarantined = sum(1 for _ in r.iter_quarantine())
    return out


def _add(c: Counters, rows: dict[int, SegmentRow], e: BlockEntry) -> None:
    if e.is_zero:
        return
    c.blocks += 1
    c.raw_bytes += e.raw_len
    c.payload_bytes += e.stored_len
    c.mapped_bytes += e.raw_len * e.refcount
    row = rows.setdefault(e.segment, SegmentRow(SegState.SEALED))
    row.records += 1
    row.indexed_bytes += e.record_len
    if e.refcount > 0:
        c.referenced_blocks += 1
        c.referenced_raw_bytes += e.raw_len
    else:
        row.unref_bytes += e.record_len
