"""The on-disk format of volume maps (docs/volumes.md §3): header, entries, pages, holds.

Everything is little-endian except LMDB keys (big-endian, so they sort
numerically).  The entry struct is the one the C core works on (native/vmap.h).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from native.vmap import VMAP_ENTRY, VMAP_FROZEN, VMAP_OWNED, VMAP_SHARED, VMAP_ZERO

from .errors import VolumeError

FORMAT_VERSION = 1
HEADER_MAGIC = b"NFV1"
HEADER = struct.Struct("<4sBBHIIQQQQQ")
# magic, scheme, flags, reserved, block_size, extent, volume_id, size, epoch, created_ns, parent_id
ENTRY = struct.Struct("<BBHI32s")  # kind, flags, reserved, extent, ref
assert ENTRY.size == VMAP_ENTRY
PAGE_ENTRIES = 1024  # entries per LMDB value: a flush rewrites only the pages it changed
VOLUME_KEY = struct.Struct(">Q")
PAGE_KEY = struct.Struct(">QI")
EXTENT_KEY = struct.Struct(">I")
EXTENT_ROW = struct.Struct("<BxxxQ")  # state, owner volume id
HOLD_LEN = 41  # one map key: scheme(1) size(8, BE) top hash(32), as the map layer packs it

FLAG_SNAPSHOT = 1 << 0  # read-only: a snapshot
EXTENT_WRITABLE = 1
EXTENT_FROZEN = 2

SCHEMES = {"sha256": 1, "blake3": 2}
SCHEME_NAMES = {v: k for k, v in SCHEMES.items()}
KIND_NAMES = {VMAP_ZERO: "zero", VMAP_SHARED: "shared", VMAP_OWNED: "owned", VMAP_FROZEN: "frozen"}

MIN_BLOCK = 64 * 1024
MAX_BLOCK = 64 * 1024 * 1024
DEFAULT_BLOCK = 4 * 1024 * 1024
SECTOR = 512
MAX_SIZE = 1 << 50  # 1 PiB: far beyond any disk, below any overflow
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+@-]{0,199}\Z")


@dataclass(frozen=True)
class Header:
    scheme: str
    flags: int
    block_size: int
    extent: int  # the extent file owned blocks are written to (0 for a snapshot)
    volume_id: int
    size: int
    epoch: int  # bumped by every durable change of the map
    created_ns: int
    parent_id: int  # the volume a snapshot or clone came from (0: none)

    @property
    def snapshot(self) -> bool:
        return bool(self.flags & FLAG_SNAPSHOT)

    @property
    def count(self) -> int:
        return -(-self.size // self.block_size)

    def pack(self) -> bytes:
        return HEADER.pack(HEADER_MAGIC, SCHEMES[self.scheme], self.flags, 0, self.block_size, self.extent,
                           self.volume_id, self.size, self.epoch, self.created_ns, self.parent_id)

    @classmethod
    def unpack(cls, raw: bytes) -> Header:
        if len(raw) != HEADER.size:
            raise VolumeError(f"volume header of {len(raw)} bytes (want {HEADER.size})")
        magic, sc, flags, _r, bs, ext, vid, size, epoch, created, parent = HEADER.unpack(raw)
        if magic != HEADER_MAGIC or sc not in SCHEME_NAMES:
            raise VolumeError("not a volume header (bad magic or scheme)")
        return cls(SCHEME_NAMES[sc], flags, bs, ext, vid, size, epoch, created, parent)


@dataclass(frozen=True)
class VolumeInfo:
    """What `nefeli volume info` shows."""

    name: str
    size: int
    block_size: int
    scheme: str
    snapshot: bool
    epoch: int
    created_ns: int
    parent: str | None
    blocks: dict[str, int]  # entries by kind
    holds: int  # map-layer references the volume holds
    metadata: str = ""  # free text an orchestrator keeps with the volume (Ganeti's setinfo)

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name, "size": self.size, "block_size": self.block_size, "scheme": self.scheme,
            "snapshot": self.snapshot, "epoch": self.epoch, "created_ns": self.created_ns, "parent": self.parent,
            "blocks": self.blocks, "holds": self.holds, "metadata": self.metadata,
        }


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise VolumeError(f"bad volume name {name!r}: 1-200 of A-Z a-z 0-9 . _ : + @ -, not starting with a sign")
    return name


def check_size(size: int) -> int:
    if size <= 0 or size % SECTOR or size > MAX_SIZE:
        raise VolumeError(f"bad volume size {size}: a positive multiple of {SECTOR} up to {MAX_SIZE}")
    return size


def check_block_size(block_size: int) -> int:
    if block_size < MIN_BLOCK or block_size > MAX_BLOCK or block_size & (block_size - 1):
        raise VolumeError(f"bad block size {block_size}: a power of two from {MIN_BLOCK} to {MAX_BLOCK}")
    return block_size


def shared_entry(digest: bytes) -> bytes:
    return ENTRY.pack(VMAP_SHARED, 0, 0, 0, digest)


def entry_kind(entries: bytes | bytearray, i: int) -> int:
    return entries[i * VMAP_ENTRY]


def entry_extent(entries: bytes | bytearray, i: int) -> int:
    return int.from_bytes(entries[i * VMAP_ENTRY + 4 : i * VMAP_ENTRY + 8], "little")


def entry_ref(entries: bytes | bytearray, i: int) -> bytes:
    return bytes(entries[i * VMAP_ENTRY + 8 : (i + 1) * VMAP_ENTRY])
