"""The two hash schemes of docs/hash-schemes.md and their defaults."""

from __future__ import annotations

from typing import Literal

import native

Scheme = Literal["sha256", "blake3"]
SCHEMES: tuple[Scheme, ...] = ("sha256", "blake3")
DEFAULT_SCHEME: Scheme = "blake3"
DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024
DIGEST_LEN = native.DIGEST_LEN
# SHA-256 of the empty string: the digest of an all-zero sha256 block, and a 0-byte object's top hash.
SHA256_EMPTY = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def scheme_id(scheme: str) -> int:
    """The C core's number for a scheme name; ValueError for an unknown one."""
    try:
        return native.SCHEME_IDS[scheme]
    except KeyError:
        raise ValueError(f"unknown hash scheme {scheme!r} (expected one of {', '.join(SCHEMES)})") from None


def zero_block_digest(scheme: str, length: int) -> bytes:
    """Digest of an all-zero block of `length` bytes: lets the engine skip storing it."""
    if scheme_id(scheme) == native.SCHEME_SHA256:
        return SHA256_EMPTY
    return native.blake3(bytes(length))
