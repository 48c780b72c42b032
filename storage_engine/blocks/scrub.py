"""Scrub: re-read every stored block, check its record and re-hash it.

Walks segments in file order (sequential reads), checks each record's header,
checksum, decompression and finally its digest under its scheme, on a thread
pool (hashing releases the GIL).  Bad blocks are reported; with quarantine=True
they are also taken out of service: the entry moves to the quarantine table
(keeping its refcount, restored when a good copy is put again) and the bad
record's bytes are copied to quarantine/ for inspection.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hashmaps import block_digest

from . import compression
from .errors import BadRecord
from .index import BlockEntry, IndexWriter, QuarantineReason
from .quarantine import copy_path
from .records import Codec, decode_record, scheme_name

if TYPE_CHECKING:
    from .core import BlockCore

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BadBlock:
    scheme: str
    digest: bytes
    reason: str
    code: int
    segment: int
    offset: int

    def __str__(self) -> str:
        return f"{self.scheme}:{self.digest.hex()} segment {self.segment} offset {self.offset}: {self.reason}"


@dataclass
class ScrubReport:
    checked: int = 0
    bytes: int = 0
    bad: list[BadBlock] = field(default_factory=list)
    quarantined: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.bad


def check_block(store: BlockCore, key: bytes, e: BlockEntry) -> tuple[str, int] | None:
    """Why the block at this entry is bad (reason, quarantine code), or None if it is good."""
    seg = store.segment(e.segment)
    if seg is None:
        return "segment missing", QuarantineReason.SEGMENT_MISSING
    view = seg.read(e.offset, e.record_len)
    if len(view) < e.record_len:
        return "record runs past the end of its segment", QuarantineReason.TRUNCATED
    try:
        header, payload = decode_record(view)
    except BadRecord as exc:
        code = (
            QuarantineReason.CHECKSUM
            if "checksum mismatch" in str(exc) and "header" not in str(exc)
            else QuarantineReason.HEADER
        )
        return str(exc), code
    if header.key != key or header.stored_len != e.stored_len or header.raw_len != e.raw_len:
        return "record header does not match the index entry", QuarantineReason.HEADER
    try:
        data = compression.decompress(payload, header.raw_len) if header.codec == Codec.ZSTD else payload
    except BadRecord as exc:
        return str(exc), QuarantineReason.CHECKSUM
    scheme = scheme_name(key[0])
    if block_digest(data, scheme) != key[1:]:
        return "data does not hash to its digest", QuarantineReason.DIGEST
    return None


def _walk(store: BlockCore) -> Iterator[tuple[bytes, BlockEntry]]:
    """Entries segment by segment, in file order (one snapshot per segment)."""
    with store.index.read() as r:
        seg_ids = sorted(r.segments())
    for seg_id in seg_ids:
        with store.index.read() as r:
            for off, key in r.locations(seg_id):
                e = r.block(key)
                if e is not None and e.segment == seg_id and e.offset == off:
                    yield key, e


def scrub(
    store: BlockCore,
    *,
    quarantine: bool = False,
    threads: int | None = None,
    progress: Progress | None = None,
) -> ScrubReport:
    store.check_open()
    if quarantine:
        store.check_writable()
    report = ScrubReport()
    t0 = time.perf_counter()
    with store.index.read() as r:
        total = sum(row.indexed_bytes for row in r.segments().values())
    nthreads = threads or store.config.threads
    found: list[tuple[bytes, BlockEntry, str, int]] = []

    def check(item: tuple[bytes, BlockEntry]) -> tuple[bytes, BlockEntry, tuple[str, int] | None]:
        key, e = item
        result = check_block(store, key, e)
        if result is not None and store.segment(e.segment) is None:
            # compacted away during the scrub: check where it lives now
            with store.index.read() as r:
                cur = r.block(key)
            if cur is None:
                return key, e, None
            if (cur.segment, cur.offset) != (e.segment, e.offset):
                return key, cur, check_block(store, key, cur)
        return key, e, result

    with ThreadPoolExecutor(nthreads, thread_name_prefix="nefeli-scrub") as pool:
        window: list = []
        it = _walk(store)

        def drain(n: int) -> None:
            while len(window) > n:
                key, e, result = window.pop(0).result()
                report.checked += 1
                report.bytes += e.record_len
                if result is not None:
                    found.append((key, e, *result))
                if progress is not None:
                    progress(report.bytes, total)

        for item in it:
            window.append(pool.submit(check, item))
            drain(4 * nthreads)
        drain(0)

    for key, e, reason, code in found:
        bad = BadBlock(scheme_name(key[0]), key[1:], reason, code, e.segment, e.offset)
        report.bad.append(bad)
        log.error("scrub: %s", bad)
    if quarantine and found:
        report.quarantined = quarantine_blocks(store, [(key, e, code) for key, e, _r, code in found])
    report.seconds = time.perf_counter() - t0
    return report


def quarantine_blocks(store: BlockCore, victims: list[tuple[bytes, BlockEntry, int]]) -> int:
    """Take blocks out of service (if they are still where they were checked)."""
    for key, e, _code in victims:  # keep the bad bytes for a post-mortem (best effort)
        seg = store.segment(e.segment)
        if seg is None:
            continue
        try:
            with open(copy_path(store, scheme_name(key[0]), key[1:], e.segment, e.offset), "wb") as f:
                f.write(seg.read(e.offset, e.record_len))
                os.fsync(f.fileno())
        except OSError:
            log.warning("could not keep a copy of quarantined block %s", key[1:].hex(), exc_info=True)

    def apply(w: IndexWriter) -> int:
        n = 0
        for key, e, code in victims:
            cur = w.block(key)
            if cur is not None and (cur.segment, cur.offset) == (e.segment, e.offset):
                w.quarantine_block(key, cur, code)
                n += 1
        return n

    with store.gc_lock:
        return store.write_meta(apply)
