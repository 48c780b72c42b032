"""Volume-map operations of the C core (vmap.h), with their pure-Python twins.

``NEFELI_NATIVE=0`` (or a missing build) selects the twins in fallback.py;
both give identical results, and the tests hold them to it.  Entry arrays are
bytearrays of 40-byte entries (docs/volumes.md §3).
"""

from __future__ import annotations

from typing import Any

from . import core_module, fallback
from .fallback import (
    COW_COPY,
    COW_IN_PLACE,
    COW_TAKE,
    COW_ZERO_FILL,
    VMAP_ENTRY,
    VMAP_FROZEN,
    VMAP_OWNED,
    VMAP_SHARED,
    VMAP_ZERO,
)

__all__ = [
    "COW_COPY", "COW_IN_PLACE", "COW_TAKE", "COW_ZERO_FILL", "VMAP_ENTRY", "VMAP_FROZEN", "VMAP_OWNED",
    "VMAP_SHARED", "VMAP_ZERO", "cow_plan", "diff", "fill", "freeze", "ref_digests", "resolve", "runs",
    "status_runs",
]


def _count(entries: Any) -> int:
    return len(memoryview(entries).cast("B")) // VMAP_ENTRY


_core = core_module()

if _core is not None:
    _ffi, _lib = _core.ffi, _core.lib

    def _in(buf: Any) -> Any:
        return _ffi.from_buffer("uint8_t[]", buf)

    def _wout(buf: bytearray) -> Any:
        return _ffi.from_buffer("uint8_t[]", buf, require_writable=True)

    def runs(offset: int, length: int, block_size: int, size: int) -> list[tuple[int, int, int]]:
        if min(offset, length, block_size, size) < 0:
            raise ValueError("negative range")
        n_max = length // block_size + 2 if block_size > 0 else 0
        out = _ffi.new("uint64_t[]", 3 * max(n_max, 1))
        n = _lib.nf_vmap_runs(offset, length, block_size, size, out)
        if n < 0:
            raise ValueError(f"range {offset}+{length} outside a volume of {size} bytes")
        return [(out[3 * k], out[3 * k + 1], out[3 * k + 2]) for k in range(n)]

    def cow_plan(entries: Any, offset: int, length: int, block_size: int, size: int) -> bytes:
        if min(offset, length, block_size, size) < 0:
            raise ValueError("negative range")
        n_max = length // block_size + 2 if block_size > 0 else 0
        actions = _ffi.new("uint8_t[]", max(n_max, 1))
        src = _in(entries)
        changes = _lib.nf_vmap_cow_plan(src, _count(entries), offset, length, block_size, size, actions)
        if changes < 0:
            raise ValueError(f"range {offset}+{length} outside a volume of {size} bytes")
        touched = len(runs(offset, length, block_size, size))
        return bytes(_ffi.buffer(actions, touched)) if touched else b""

    def fill(entries: bytearray, first: int, n: int, kind: int) -> None:
        if first < 0 or n < 0 or first + n > _count(entries):
            raise ValueError("entries out of range")
        if n:
            _lib.nf_vmap_fill(_wout(entries), first, n, kind)

    def freeze(src: bytearray, extent: int) -> tuple[bytearray, int]:
        dst = bytearray(len(src))
        if not src:
            return dst, 0
        frozen = _lib.nf_vmap_freeze(_wout(src), _wout(dst), _count(src), extent)
        return dst, int(frozen)

    def resolve(entries: bytearray, extent: int, digests: Any) -> int:
        if len(memoryview(digests).cast("B")) < 32 * _count(entries):
            raise ValueError("one digest per entry is needed")
        if not entries:
            return 0
        return int(_lib.nf_vmap_resolve(_wout(entries), _count(entries), extent, _in(digests)))

    def diff(a: Any, b: Any) -> list[tuple[int, int]]:
        na, nb = _count(a), _count(b)
        out = _ffi.new("uint64_t[]", 2 * (max(na, nb) // 2 + 1))
        pa = _in(a) if na else _ffi.NULL
        pb = _in(b) if nb else _ffi.NULL
        pairs = _lib.nf_vmap_diff(pa, na, pb, nb, out)
        return [(out[2 * k], out[2 * k + 1]) for k in range(pairs)]

    def status_runs(entries: Any, first: int, n: int) -> list[tuple[int, int, bool]]:
        if first < 0 or n < 0 or first + n > _count(entries):
            raise ValueError("entries out of range")
        if n == 0:
            return []
        out = _ffi.new("uint64_t[]", 3 * n)
        k = _lib.nf_vmap_status_runs(_in(entries), first, n, out)
        return [(out[3 * i], out[3 * i + 1], bool(out[3 * i + 2])) for i in range(k)]

    def ref_digests(entries: Any, zero_full: bytes, zero_last: bytes) -> bytes:
        count = _count(entries)
        if not count:
            return b""
        out = bytearray(32 * count)
        _lib.nf_vmap_ref_digests(_in(entries), count, zero_full, zero_last, _wout(out))
        return bytes(out)

else:
    runs = fallback.vmap_runs
    cow_plan = fallback.vmap_cow_plan

    def fill(entries: bytearray, first: int, n: int, kind: int) -> None:
        if first < 0 or n < 0 or first + n > _count(entries):
            raise ValueError("entries out of range")
        fallback.vmap_fill(entries, first, n, kind)

    freeze = fallback.vmap_freeze

    def resolve(entries: bytearray, extent: int, digests: Any) -> int:
        if len(memoryview(digests).cast("B")) < 32 * _count(entries):
            raise ValueError("one digest per entry is needed")
        return fallback.vmap_resolve(entries, extent, digests)

    diff = fallback.vmap_diff

    def status_runs(entries: Any, first: int, n: int) -> list[tuple[int, int, bool]]:
        if first < 0 or n < 0 or first + n > _count(entries):
            raise ValueError("entries out of range")
        return fallback.vmap_status_runs(entries, first, n)

    ref_digests = fallback.vmap_ref_digests
