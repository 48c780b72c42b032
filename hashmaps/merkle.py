"""Top hashes over block-digest lists, for both schemes of docs/hash-schemes.md."""

from __future__ import annotations

from typing import Any

import native

from .schemes import scheme_id


def top_hash(digests: list[bytes] | bytes | Any, size: int, scheme: str) -> bytes:
    """Top hash of an object of `size` bytes with these block digests.

    `digests` is a list of 32-byte digests or a packed buffer of them.
    sha256 ignores `size` (the Pithos tree does not bind it); blake3 binds it.
    """
    if size < 0:
        raise ValueError("size must not be negative")
    if isinstance(digests, list):
        if any(len(d) != native.DIGEST_LEN for d in digests):
            raise ValueError("every digest must be 32 bytes")
        packed: Any = b"".join(digests)
    else:
        packed = digests
    if scheme_id(scheme) == native.SCHEME_SHA256:
        return native.merkle_sha256(packed)
    return native.merkle_blake3(packed, size)
