"""Block digests: cut a buffer at block-size boundaries and hash each block."""

from __future__ import annotations

from typing import Any

import native

from .schemes import SHA256_EMPTY, scheme_id


def pack(digests: list[bytes]) -> bytes:
    return b"".join(digests)


def unpack(packed: bytes) -> list[bytes]:
    if len(packed) % native.DIGEST_LEN:
        raise ValueError("packed digest array length is not a multiple of 32")
    return [packed[i : i + native.DIGEST_LEN] for i in range(0, len(packed), native.DIGEST_LEN)]


def block_digest(block: Any, scheme: str) -> bytes:
    """Digest of one block under `scheme` (sha256 strips trailing zeros first)."""
    sid = scheme_id(scheme)
    if sid == native.SCHEME_SHA256:
        mv = memoryview(block).cast("B")
        return native.sha256(mv[: native.rstrip_zeros_len(mv)])
    return native.blake3(block)


def block_digests_packed(data: Any, scheme: str, block_size: int, threads: int = 1) -> bytes:
    """Like block_digests, as one packed bytes object (32 bytes a digest)."""
    if block_size <= 0:
        raise ValueError("block_size must be positive")
    sid = scheme_id(scheme)
    if len(memoryview(data).cast("B")) == 0:
        return SHA256_EMPTY if sid == native.SCHEME_SHA256 else b""
    return native.block_digests(data, sid, block_size, threads)


def block_digests(data: Any, scheme: str, block_size: int, threads: int = 1) -> list[bytes]:
    """Digests of the blocks of `data` (any contiguous buffer).

    A 0-byte sha256 object has the hash list [H("")] (Pithos); a 0-byte blake3
    object has none, its top hash binds size 0 to a zero root instead.
    """
    return unpack(block_digests_packed(data, scheme, block_size, threads))
