"""nefeli's C core, with a pure-Python fallback for every function.

``NEFELI_NATIVE=0`` (or a missing build) selects the fallback; both give
identical results.  Functions take any contiguous buffer (bytes, bytearray,
memoryview, mmap) without copying it; the C calls release the GIL.
"""

from __future__ import annotations

import os
from typing import Any

from . import fallback
from .schemes import (
    DIGEST_LEN,
    MERKLE_NODE_CONTEXT,
    OBJECT_ROOT_CONTEXT,
    SCHEME_BLAKE3,
    SCHEME_IDS,
    SCHEME_SHA256,
)

__all__ = [
    "DIGEST_LEN",
    "MERKLE_NODE_CONTEXT",
    "OBJECT_ROOT_CONTEXT",
    "NATIVE",
    "SCHEME_BLAKE3",
    "SCHEME_IDS",
    "SCHEME_SHA256",
    "blake3",
    "blake3_derive_key",
    "core_module",
    "block_digests",
    "is_zero",
    "merkle_blake3",
    "merkle_sha256",
    "rstrip_zeros_len",
    "sha256",
    "simd",
    "zero_block_flags",
]

def _load_core() -> Any:
    if os.environ.get("NEFELI_NATIVE", "1") == "0":
        return None
    try:
        import importlib

        return importlib.import_module("native._core")
    except ImportError:  # not built: the fallback serves
        return None


_core: Any = _load_core()

NATIVE: bool = _core is not None


def core_module() -> Any:
    """The compiled core (its ffi and lib), or None when the fallback serves (native/vmap.py uses it)."""
    return _core


def simd() -> str:
    """The BLAKE3 back end in use: portable, sse41, avx2, avx512 (or python)."""
    if _core is None:
        return "python"
    return _core.ffi.string(_core.lib.nf_blake3_simd_name(_core.lib.nf_blake3_simd_current())).decode()


if _core is not None:
    _ffi, _lib = _core.ffi, _core.lib
    _context_keys: dict[str, Any] = {}

    def _in(buf: Any) -> Any:
        return _ffi.from_buffer("uint8_t[]", buf)

    def sha256(data: Any) -> bytes:
        out = _ffi.new("uint8_t[32]")
        src = _in(data)
        _lib.nf_sha256(src, len(src), out)
        return bytes(out)

    def blake3(data: Any) -> bytes:
        out = _ffi.new("uint8_t[32]")
        src = _in(data)
        _lib.nf_blake3_hash(src, len(src), out)
        return bytes(out)

    def blake3_derive_key(context: str, material: Any, length: int = 32) -> bytes:
        key = _context_keys.get(context)
        if key is None:
            key = _ffi.new("uint8_t[32]")
            _lib.nf_blake3_context_key(context.encode(), key)
            _context_keys[context] = key
        src = _in(material)
        if length == 32:
            out = _ffi.new("uint8_t[32]")
            _lib.nf_blake3_derive_key_raw(key, src, len(src), out)
            return bytes(out)
        hasher = _ffi.new("nf_blake3_hasher *")
        _lib.nf_blake3_hasher_init_derive_key(hasher, context.encode())
        _lib.nf_blake3_hasher_update(hasher, src, len(src))
        out = _ffi.new("uint8_t[]", length)
        _lib.nf_blake3_hasher_finalize(hasher, out, length)
        return bytes(out)

    def rstrip_zeros_len(buf: Any) -> int:
        src = _in(buf)
        return int(_lib.nf_rstrip_zeros_len(src, len(src)))

    def is_zero(buf: Any) -> bool:
        src = _in(buf)
        return bool(_lib.nf_is_zero(src, len(src)))

    def zero_block_flags(buf: Any, block_size: int) -> bytes:
        if block_size <= 0:
            raise ValueError("block_size must be positive")
        src = _in(buf)
        count = -(-len(src) // block_size)
        flags = _ffi.new("uint8_t[]", max(count, 1))
        _lib.nf_zero_block_flags(src, len(src), block_size, flags)
        return bytes(_ffi.buffer(flags, count))

    def block_digests(buf: Any, scheme: int, block_size: int, threads: int = 1) -> bytes:
        """Packed digests (32 bytes each) of every block of buf."""
        if block_size <= 0 or scheme not in (SCHEME_SHA256, SCHEME_BLAKE3):
            raise ValueError("bad block size or scheme")
        src = _in(buf)
        count = -(-len(src) // block_size)
        out = bytearray(count * DIGEST_LEN)
        if count and _lib.nf_block_digests(scheme, src, len(src), block_size, threads, _ffi.from_buffer(out)) != 0:
            raise RuntimeError("native block hashing failed")
        return bytes(out)

    def merkle_sha256(digests: Any) -> bytes:
        src = _in(digests)
        if len(src) % DIGEST_LEN:
            raise ValueError("digest array length is not a multiple of 32")
        out = _ffi.new("uint8_t[32]")
        _lib.nf_merkle_sha256(src, len(src) // DIGEST_LEN, out)
        return bytes(out)

    def merkle_blake3(digests: Any, size: int) -> bytes:
        src = _in(digests)
        if len(src) % DIGEST_LEN:
            raise ValueError("digest array length is not a multiple of 32")
        out = _ffi.new("uint8_t[32]")
        _lib.nf_merkle_blake3(src, len(src) // DIGEST_LEN, size, out)
        return bytes(out)

else:
    sha256 = fallback.sha256
    blake3 = fallback.blake3
    blake3_derive_key = fallback.blake3_derive_key
    rstrip_zeros_len = fallback.rstrip_zeros_len
    is_zero = fallback.is_zero
    zero_block_flags = fallback.zero_block_flags
    block_digests = fallback.block_digests

    def merkle_sha256(digests: Any) -> bytes:
        if len(memoryview(digests).cast("B")) % DIGEST_LEN:
            raise ValueError("digest array length is not a multiple of 32")
        return fallback.merkle_sha256(digests)

    def merkle_blake3(digests: Any, size: int) -> bytes:
        if len(memoryview(digests).cast("B")) % DIGEST_LEN:
            raise ValueError("digest array length is not a multiple of 32")
        return fallback.merkle_blake3(digests, size)
