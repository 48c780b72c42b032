"""Tunables of a block store; none of them is part of the on-disk format."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

MiB = 1 << 20

Durability = Literal["each", "group"]


@dataclass(frozen=True)
class StoreConfig:
    # Segments are rotated when the next record would pass this size (a record
    # larger than a whole segment gets a segment of its own).
    segment_size: int = 256 * MiB
    # "each": every put call fsyncs and commits before returning (puts racing
    # each other may still share a commit).  "group": a committer thread
    # collects puts for up to group_window_ms (or group_max_bytes) and makes
    # them durable with one fdatasync and one LMDB transaction.  The window
    # applies to batches of large records only: one of less than 1 MiB (small
    # blocks, map operations) commits at once, and the puts arriving while it
    # syncs share the next commit (a 2 ms wait made a lone 4 KiB PUT 3× slower).
    durability: Durability = "group"
    group_window_ms: float = 2.0
    group_at_once_bytes: int = 1 * MiB  # a smaller batch skips the window (0: none does)
    group_max_bytes: int = 64 * MiB
    # zstd per block, kept only when it saves at least compress_min_saving.
    compression: bool = True
    zstd_level: int = 3
    compress_min_saving: float = 1 / 8
    # Hash new blocks on put and refuse ones that do not match their digest.
    # Duplicates are never re-hashed: the stored copy is the one that counts.
    verify_on_put: bool = True
    # Unreferenced blocks younger than this are not collected, so a client has
    # time to PUT the hashmap that references blocks it just uploaded.
    gc_grace_seconds: float = 3600.0
    # Threads that hash/compress a batch of puts, and scrub's readers.
    threads: int = max(1, os.cpu_count() or 1)
    # A preallocated file, given up when a metadata-only write (dropping refs,
    # the GC switch) or GC's copying finds the disk full, so a full store can
    # still be cleaned up.  GC on a full disk can compact a segment whose live
    # bytes fit in it; it is re-created after GC.
    reserve_bytes: int = 64 * MiB
    # Drop written records from the page cache once they are on disk, so a large
    # upload does not evict the data readers use.
    drop_cache_after_sync: bool = True
    lmdb_map_size: int = 1 << 40

    def __post_init__(self) -> None:
        if self.segment_size < 4096:
            raise ValueError("segment_size must be at least 4 KiB")
        if self.durability not in ("each", "group"):
            raise ValueError("durability must be 'each' or 'group'")
        if self.group_window_ms < 0 or self.group_max_bytes <= 0 or self.group_at_once_bytes < 0:
            raise ValueError("bad group commit window")
        if not 0 <= self.compress_min_saving < 1:
            raise ValueError("compress_min_saving must be in [0, 1)")
        if self.threads < 1:
            raise ValueError("threads must be >= 1")
