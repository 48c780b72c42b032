"""A plain reference for every function of native/ (tests only), written from
docs/architecture.md's hash schemes and nothing else: what a run with
NEFELI_NATIVE=0, where native/ *is* the fallback, is compared against, together
with the known answers recorded in tests/fixtures/native_vectors.json."""

from __future__ import annotations

import hashlib

import blake3 as _blake3

SCHEME_SHA256, SCHEME_BLAKE3 = 1, 2
NODE = "nefeli 2026 merkle node"
ROOT = "nefeli 2026 object root"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(bytes(data)).digest()


def blake3(data: bytes) -> bytes:
    return _blake3.blake3(bytes(data)).digest()


def blake3_derive_key(context: str, material: bytes, length: int = 32) -> bytes:
    return _blake3.blake3(bytes(material), derive_key_context=context).digest(length=length)


def is_zero(buf: bytes) -> bool:
    return not any(bytes(buf))


def rstrip_zeros_len(buf: bytes) -> int:
    data = bytes(buf)
    n = len(data)
    while n and data[n - 1] == 0:
        n -= 1
    return n


def zero_block_flags(buf: bytes, block_size: int) -> bytes:
    data = bytes(buf)
    return bytes(int(is_zero(data[i : i + block_size])) for i in range(0, len(data), block_size))


def block_digests(buf: bytes, scheme: int, block_size: int, threads: int = 1) -> bytes:
    data = bytes(buf)
    out = b""
    for i in range(0, len(data), block_size):
        block = data[i : i + block_size]
        out += sha256(block[: rstrip_zeros_len(block)]) if scheme == SCHEME_SHA256 else blake3(block)
    return out


def merkle_sha256(digests: bytes) -> bytes:
    level = [bytes(digests[i : i + 32]) for i in range(0, len(digests), 32)]
    if not level:
        return sha256(b"")
    while len(level) & (len(level) - 1):
        level.append(bytes(32))  # the leaves padded with zero digests to a power of two
    while len(level) > 1:
        level = [sha256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def merkle_blake3(digests: bytes, size: int) -> bytes:
    level = [bytes(digests[i : i + 32]) for i in range(0, len(digests), 32)]
    while len(level) > 1:
        carried = [level[-1]] if len(level) % 2 else []
        level = [blake3_derive_key(NODE, level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)] + carried
    root = level[0] if level else bytes(32)
    return blake3_derive_key(ROOT, size.to_bytes(8, "little") + root)
