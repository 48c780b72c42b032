"""The block store: BlockCore (the put/get/refcount paths) with its maintenance passes.

This is the synchronous API (the CLI, tests, and the thread pool behind aio.py
use it); it is safe to call from many threads at once.

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

from typing import Any

from .core import BlockCore, BlockInfo, BlockItem, zero_digest
from .gc import GcReport, collect_garbage
from .quarantine import QuarantinedBlock, forget_unreferenced, list_quarantined
from .scrub import ScrubReport, scrub
from .stats import StoreStats, compute_stats
from .verify import VerifyReport, verify


class BlockStore(BlockCore):
    """One block store directory, opened by one writer process (or any number of readers)."""

    def stats(self) -> StoreStats:
        self.check_open()
        return compute_stats(self)

    def gc(self, **kwargs: Any) -> GcReport:
        """Compact segments with garbage; see gc.collect_garbage."""
        return collect_garbage(self, **kwargs)

    def scrub(self, **kwargs: Any) -> ScrubReport:
        """Re-read and re-hash every block; see scrub.scrub."""
        return scrub(self, **kwargs)

    def quarantined_blocks(self) -> list[QuarantinedBlock]:
        """quarantined() in full (reason, time, saved copies); see quarantine.list_quarantined."""
        return list_quarantined(self)

    def forget_quarantined(self) -> int:
        """Drop quarantine entries no map needs any more; see quarantine.forget_unreferenced."""
        return forget_unreferenced(self)

    def verify(self, **kwargs: Any) -> VerifyReport:
        """Check the index against the segments and the maps; see verify.verify."""
        return verify(self, **kwargs)


__all__ = ["BlockInfo", "BlockItem", "BlockStore", "zero_digest"]
