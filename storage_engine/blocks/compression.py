"""Per-block zstd: compress when it pays, decompress with the length checked.

zstd contexts are not thread-safe, so each thread keeps its own.
"""

from __future__ import annotations

import threading
from typing import Any

import zstandard

from .errors import BadRecord
from .records import Codec

_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    c = cache.get(level)
    if c is None:
        c = cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True, write_checksum=False)
    return c


def decompressor() -> zstandard.ZstdDecompressor:
    """This thread's zstd decompressor (they are not thread-safe; reused per thread)."""
    d = getattr(_local, "decompressor", None)
    if d is None:
        d = _local.decompressor = zstandard.ZstdDecompressor()
    return d


# The sample probe: SAMPLE_CHUNKS pieces of SAMPLE_CHUNK bytes spread over the
# block.  Compressing it costs ~1/60 of a full attempt on a 4 MiB block.
SAMPLE_CHUNK = 16 * 1024
SAMPLE_CHUNKS = 4
SAMPLE_SIZE = SAMPLE_CHUNK * SAMPLE_CHUNKS


def _sample(mv: memoryview) -> bytes:
    """SAMPLE_SIZE bytes taken from evenly spaced places of `mv` (len(mv) > SAMPLE_SIZE)."""
    n = len(mv)
    step = (n - SAMPLE_CHUNK) // (SAMPLE_CHUNKS - 1)
    return b"".join(mv[i * step : i * step + SAMPLE_CHUNK] for i in range(SAMPLE_CHUNKS))


def sample_saving(raw: Any, level: int) -> float:
    """The fraction of a sample of `raw` that zstd saves (negative if it grows)."""
    sample = _sample(memoryview(raw).cast("B"))
    return 1.0 - len(_compressor(level).compress(sample)) / len(sample)


def maybe_compress(raw: Any, level: int, min_saving: float = 1 / 8) -> tuple[Any, int]:
    """(stored bytes, codec): zstd when it saves at least `min_saving` of the block, else raw.

    Raw keeps the caller's buffer (no copy).  A block larger than the sample is
    probed first: when zstd saves less than half of `min_saving` on the sample,
    the block is stored raw without a full attempt (incompressible data then
    costs ~0.02 ms instead of ~1.6 ms per 4 MiB).  Blocks that pass the probe,
    and blocks no larger than the sample, get the full attempt and the rule above.
    """
    n = len(raw)
    if n < 64:
        return raw, Codec.RAW
    if n > SAMPLE_SIZE and sample_saving(raw, level) < min_saving / 2:
        return raw, Codec.RAW
    packed = _compressor(level).compress(raw)
    if len(packed) <= n - int(n * min_saving) and len(packed) < n:
        return packed, Codec.ZSTD
    return raw, Codec.RAW


def decompress(stored: Any, raw_len: int) -> bytes:
    """The block of `raw_len` bytes; BadRecord if the frame is bad or the wrong length."""
    try:
        declared = zstandard.frame_content_size(stored)
        if declared not in (-1, raw_len):  # -1: size not in the frame
            raise BadRecord(f"zstd frame declares {declared} bytes, expected {raw_len}")
        out = decompressor().decompress(stored, max_output_size=raw_len)
    except zstandard.ZstdError as exc:
        raise BadRecord(f"zstd: {exc}") from None
    if len(out) != raw_len:
        raise BadRecord(f"zstd frame decoded to {len(out)} bytes, expected {raw_len}")
    return out
