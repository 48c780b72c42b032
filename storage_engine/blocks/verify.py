"""Verify: the index against the segment files and the maps (no re-hashing; scrub does that).

Checks, from one snapshot:
  * every live segment row has its file, at least as long as its committed end,
    with a valid header;
  * every block entry points inside its segment at a record whose header
    decodes and matches the entry, and the location table maps back to it;
  * the incremental counters and per-segment accounting equal a full recount;
  * every map decodes, and each block's refcount equals the references the
    maps hold (occurrences in each stored map, however many references the map
    has: a map counts its blocks once), quarantined blocks included.

repair=True rewrites counters, segment accounting and refcounts from what was
found (it never touches segment files).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .errors import BadMap, BadRecord, BadSegment
from .index import IndexWriter, SegState, location_key
from .map_format import MapKey, decode_map
from .records import HEADER_SIZE, decode_header
from .segments import decode_segment_header, segment_name
from .stats import recount

if TYPE_CHECKING:
    from .core import BlockCore

Progress = Callable[[int, int], None]


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    entries: int = 0
    segments: int = 0
    maps: int = 0
    refcount_drift: int = 0
    counters_drift: bool = False
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(store: BlockCore, *, repair: bool = False, progress: Progress | None = None) -> VerifyReport:
    store.check_open()
    if repair:
        store.check_writable()
    report = VerifyReport()
    p = report.problems
    if not store.readonly:
        store.flush()
    with store.index.read() as r:
        rows = r.segments()
        total = r.counters().blocks + r.counters().maps
        done = 0
        for seg_id, row in sorted(rows.items()):
            if row.state == SegState.DELETED:
                continue
            report.segments += 1
            path = store.seg_dir / segment_name(seg_id)
            try:
                size = os.stat(path).st_size
                with open(path, "rb") as f:
                    header = decode_segment_header(f.read(64))
                if header.segment_id != seg_id or header.store_uuid != store.uuid:
                    p.append(f"segment {seg_id}: header names segment {header.segment_id} / another store")
            except FileNotFoundError:
                p.append(f"segment {seg_id}: file missing")
                continue
            except BadSegment as exc:
                p.append(f"segment {seg_id}: {exc}")
                size = os.stat(path).st_size
            if size < row.end:
                p.append(f"segment {seg_id}: file is {size} bytes, committed end is {row.end}")

        expected: Counter[bytes] = Counter()
        for kb, _rc in r.iter_maps():
            report.maps += 1
            mkey = MapKey.unpack(kb)
            blob = r.map_blob(kb)
            if blob is None:
                p.append(f"map {mkey}: refcount without a map")
                continue
            try:
                hmap = decode_map(mkey, blob)
            except BadMap as exc:
                p.append(str(exc))
                continue
            sc = kb[0]
            for d, n in hmap.block_refs().items():
                expected[bytes((sc,)) + d] += n  # the first map ref counts its blocks once
            done += 1
            if progress is not None and done % 1024 == 0:
                progress(done, total)

        for key, e in r.iter_blocks():
            report.entries += 1
            done += 1
            if progress is not None and done % 1024 == 0:
                progress(done, total)
            name = f"{key[1:].hex()}"
            if e.is_zero:
                if e.stored_len or e.refcount:
                    p.append(f"block {name}: zero entry with a record or refs")
                continue
            want = expected.pop(key, 0)
            if e.refcount != want:
                report.refcount_drift += 1
                p.append(f"block {name}: refcount {e.refcount}, maps hold {want}")
            erow = rows.get(e.segment)
            if erow is None or erow.state == SegState.DELETED:
                p.append(f"block {name}: points at segment {e.segment}, which does not exist")
                continue
            if e.offset < 64 or e.offset + e.record_len > erow.end:
                p.append(f"block {name}: record {e.segment}:{e.offset}+{e.record_len} outside committed end {erow.end}")
                continue
            if r.txn.get(location_key(e.segment, e.offset), db=store.index.locations) != key:
                p.append(f"block {name}: location table does not point back")
            seg = store.segment(e.segment)
            if seg is None:
                p.append(f"block {name}: segment {e.segment} not open")
                continue
            try:
                h = decode_header(seg.read(e.offset, HEADER_SIZE))
                if h.key != key or h.stored_len != e.stored_len or h.raw_len != e.raw_len or h.codec != e.codec:
                    raise BadRecord("record header does not match the entry")
            except BadRecord as exc:
                p.append(f"block {name}: {exc}")
        for key, q in r.iter_quarantine():
            want = expected.pop(key, 0)
            if q.refcount != want:
                report.refcount_drift += 1
                p.append(f"quarantined block {key[1:].hex()}: refcount {q.refcount}, maps hold {want}")
        for key, n in expected.items():
            p.append(f"block {key[1:].hex()}: referenced {n} times by maps but not stored")
        n_loc = r.txn.stat(store.index.locations)["entries"]
        n_rec = sum(1 for _k, e in r.iter_blocks() if not e.is_zero)
        if n_loc != n_rec:
            p.append(f"location table has {n_loc} entries for {n_rec} records")
        stored = r.counters()

    fresh = recount(store)
    if fresh.counters != stored:
        report.counters_drift = True
        p.append(f"counters drifted: stored {stored}, recounted {fresh.counters}")
    for seg_id, row in fresh.rows.items():
        have = rows.get(seg_id)
        if have is None:
            p.append(f"segment {seg_id}: entries but no row")
            continue
        if (have.records, have.indexed_bytes, have.unref_bytes) != (row.records, row.indexed_bytes, row.unref_bytes):
            report.counters_drift = True
            p.append(
                f"segment {seg_id}: accounting says {have.records} records/{have.indexed_bytes} B/"
                f"{have.unref_bytes} B unreferenced, recount {row.records}/{row.indexed_bytes}/{row.unref_bytes}"
            )
    if progress is not None:
        progress(total, total)
    if repair and (report.counters_drift or report.refcount_drift):
        _repair(store)
        report.repaired = True
    return report


def _repair(store: BlockCore) -> None:
    """Refcounts from the maps, then counters and segment accounting from a recount."""

    def apply(w: IndexWriter) -> None:
        expected: Counter[bytes] = Counter()
        for kb, _rc in w.iter_maps():
            blob = w.map_blob(kb)
            if blob is None:
                continue
            hmap = decode_map(MapKey.unpack(kb), blob)
            for d, n in hmap.block_refs().items():
                expected[bytes((kb[0],)) + d] += n
        for key, e in list(w.iter_blocks()):
            want = expected.get(key, 0)
            if not e.is_zero and e.refcount != want:
                w.txn.put(key, replace(e, refcount=want, stamp=w.now).pack(), db=store.index.blocks)
        for key, q in list(w.iter_quarantine()):
            want = expected.get(key, 0)
            if q.refcount != want:
                w.set_quarantined_refcount(key, q, want)

        fresh = recount(store, w)
        w.set_counters(fresh.counters)
        for seg_id, row in w.segments().items():
            got = fresh.rows.get(seg_id)
            row.records = got.records if got else 0
            row.indexed_bytes = got.indexed_bytes if got else 0
            row.unref_bytes = got.unref_bytes if got else 0
            w.set_segment(seg_id, row)

    store.write_meta(apply)
