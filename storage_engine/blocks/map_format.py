"""The stored form of a map in the block index's maps table (one value per map).

The block layer owns this format because its own checks walk the maps: a
block's refcount is the number of map entries naming it (verify, quarantine,
stats).  The map store (storage_engine.maps) adds and drops references.

Stored value (maps table; the refcount lives in maprefs):

    off len field
      0   4 magic "NFM1"
      4   1 codec       1 = zstd (with zstd's content checksum)
      5   1 flags       0
      6   2 reserved    0
      8   4 block size
     12   8 entry count N
     20   .. zstd( zero bitmap, ceil(N/8) bytes, LSB first || N × 32-byte digests )
"""

from __future__ import annotations

import struct
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import zstandard

from .compression import decompressor
from .errors import BadMap
from .records import scheme_code, scheme_name

MAP_MAGIC = b"NFM1"
MAP_HEADER = struct.Struct("<4sBBHIQ")
MAP_KEY = struct.Struct(">BQ32s")
CODEC_ZSTD = 1

_local = threading.local()


def _zc() -> zstandard.ZstdCompressor:
    c = getattr(_local, "c", None)
    if c is None:
        c = _local.c = zstandard.ZstdCompressor(level=3, write_checksum=True, write_content_size=True)
    return c


@dataclass(frozen=True, slots=True)
class MapKey:
    """The name of a map: what an object version points at."""

    scheme: str
    size: int
    top: bytes

    def pack(self) -> bytes:
        return MAP_KEY.pack(scheme_code(self.scheme), self.size, self.top)

    @classmethod
    def unpack(cls, raw: bytes) -> MapKey:
        sc, size, top = MAP_KEY.unpack(raw)
        return cls(scheme_name(sc), size, top)

    def __str__(self) -> str:
        return f"{self.scheme}:{self.size}:{self.top.hex()}"


@dataclass(frozen=True)
class HashMap:
    """An object's block list, with the entries that are zero blocks flagged."""

    key: MapKey
    block_size: int
    hashes: list[bytes]
    zero: list[bool]

    @property
    def scheme(self) -> str:
        return self.key.scheme

    @property
    def size(self) -> int:
        return self.key.size

    def block_length(self, i: int) -> int:
        """Length of entry i (the last one may be short)."""
        if self.size == 0:
            return 0
        return min(self.block_size, self.size - i * self.block_size)

    def block_refs(self) -> Counter[bytes]:
        """Digest -> number of (non-zero) entries naming it."""
        return Counter(h for h, z in zip(self.hashes, self.zero) if not z)


def encode_map(block_size: int, hashes: Sequence[bytes], zero: Sequence[bool]) -> bytes:
    bitmap = bytearray((len(hashes) + 7) // 8)
    for i, z in enumerate(zero):
        if z:
            bitmap[i >> 3] |= 1 << (i & 7)
    body = _zc().compress(bytes(bitmap) + b"".join(hashes))
    return MAP_HEADER.pack(MAP_MAGIC, CODEC_ZSTD, 0, 0, block_size, len(hashes)) + body


def decode_map(key: MapKey, blob: bytes) -> HashMap:
    if len(blob) < MAP_HEADER.size:
        raise BadMap(f"map {key}: short value")
    magic, codec, flags, _r, block_size, count = MAP_HEADER.unpack_from(blob, 0)
    if magic != MAP_MAGIC or codec != CODEC_ZSTD or flags != 0:
        raise BadMap(f"map {key}: unknown map encoding")
    nbits = (count + 7) // 8
    try:
        # Streaming: memory follows what the frame really holds, never the count the
        # header claims (a corrupt count must give BadMap, not a huge allocation).
        frame = decompressor().decompressobj()
        body = frame.decompress(blob[MAP_HEADER.size :])
    except zstandard.ZstdError as exc:
        raise BadMap(f"map {key}: {exc}") from None
    # A frame cut short decodes as far as it goes without a word: only its end
    # checks the content checksum, so a map must hold exactly one whole frame.
    if not frame.eof:
        raise BadMap(f"map {key}: the compressed entries are cut short")
    if frame.unused_data:
        raise BadMap(f"map {key}: bytes after the compressed entries")
    if len(body) != nbits + 32 * count:
        raise BadMap(f"map {key}: wrong length")
    hashes = [body[nbits + 32 * i : nbits + 32 * (i + 1)] for i in range(count)]
    zero = [bool(body[i >> 3] >> (i & 7) & 1) for i in range(count)]
    return HashMap(key, block_size, hashes, zero)
