"""Helpers shared by the block-store tests (this module holds no tests)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from storage_engine.blocks.blockstore import BlockStore
from storage_engine.blocks.config import StoreConfig

KiB = 1 << 10
MiB = 1 << 20


def small_config(**overrides: Any) -> StoreConfig:
    """Small segments, a short commit window, no reserve, no GC grace: quick tests."""
    base: dict[str, Any] = dict(
        segment_size=256 * KiB,
        group_window_ms=0.5,
        reserve_bytes=0,
        gc_grace_seconds=0,
        threads=2,
    )
    base.update(overrides)
    return StoreConfig(**base)


@contextmanager
def opened(path: Path, **overrides: Any) -> Iterator[BlockStore]:
    store = BlockStore.open(path, small_config(**overrides))
    try:
        yield store
    finally:
        store.close()


def random_block(rnd: random.Random, size: int) -> bytes:
    return rnd.randbytes(size)


def compressible_block(rnd: random.Random, size: int) -> bytes:
    words = [rnd.randbytes(4).hex().encode() for _ in range(16)]
    out = bytearray()
    while len(out) < size:
        out += rnd.choice(words) + b" "
    return bytes(out[:size])


def segment_paths(store: BlockStore) -> list[Path]:
    return sorted(store.seg_dir.glob("*.seg"))


def apparent_size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def allocated_size(paths: list[Path]) -> int:
    return sum(p.stat().st_blocks * 512 for p in paths)


def flip_byte(path: Path, offset: int) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        b = os.pread(fd, 1, offset)
        os.pwrite(fd, bytes([b[0] ^ 0x40]), offset)
    finally:
        os.close(fd)


def open_deleted_fds(directory: Path) -> list[str]:
    """Descriptors (or mappings) this process still holds on deleted files under `directory`."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)) and target.endswith("(deleted)"):
            out.append(target)
    with open("/proc/self/maps") as f:
        for line in f:
            if str(directory) in line and "(deleted)" in line:
                out.append(line.strip())
    return out
