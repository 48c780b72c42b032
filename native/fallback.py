"""Pure-Python twins of every function of the C core (``NEFELI_NATIVE=0``).

Slow but obviously right: the tests hold the C core to these results, and a
machine without a compiler still runs nefeli.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import blake3 as _blake3

from .schemes import MERKLE_NODE_CONTEXT, OBJECT_ROOT_CONTEXT, SCHEME_BLAKE3, SCHEME_SHA256

Buffer = bytes | bytearray | memoryview


def sha256(data: Buffer) -> bytes:
    return hashlib.sha256(data).digest()


def blake3(data: Buffer) -> bytes:
    return _blake3.blake3(data).digest()


def blake3_derive_key(context: str, material: Buffer, length: int = 32) -> bytes:
    return _blake3.blake3(material, derive_key_context=context).digest(length)


def rstrip_zeros_len(buf: Buffer) -> int:
    return len(bytes(buf).rstrip(b"\0"))


def is_zero(buf: Buffer) -> bool:
    mv = memoryview(buf).cast("B")
    return mv.tobytes().count(0) == len(mv)


def zero_block_flags(buf: Buffer, block_size: int) -> bytes:
    mv = memoryview(buf).cast("B")
    return bytes(is_zero(mv[o : o + block_size]) for o in range(0, len(mv), block_size))


def _hash_block(scheme: int, block: memoryview) -> bytes:
    if scheme == SCHEME_SHA256:
        return hashlib.sha256(bytes(block).rstrip(b"\0")).digest()
    return _blake3.blake3(block).digest()


def block_digests(buf: Buffer, scheme: int, block_size: int, threads: int = 1) -> bytes:
    if block_size <= 0 or scheme not in (SCHEME_SHA256, SCHEME_BLAKE3):
        raise ValueError("bad block size or scheme")
    mv = memoryview(buf).cast("B")
    blocks = [mv[o : o + block_size] for o in range(0, len(mv), block_size)]
    if threads > 1 and len(blocks) > 1:
        with ThreadPoolExecutor(threads) as pool:
            return b"".join(pool.map(lambda b: _hash_block(scheme, b), blocks))
    return b"".join(_hash_block(scheme, b) for b in blocks)


def merkle_sha256(digests: Buffer) -> bytes:
    raw = bytes(digests)
    level = [raw[i : i + 32] for i in range(0, len(raw), 32)]
    if not level:
        return hashlib.sha256(b"").digest()
    if len(level) == 1:
        return level[0]
    width = 1
    while width < len(level):
        width *= 2
    level += [bytes(32)] * (width - len(level))
    while len(level) > 1:
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


def merkle_blake3(digests: Buffer, size: int) -> bytes:
    raw = bytes(digests)
    level = [raw[i : i + 32] for i in range(0, len(raw), 32)]
    while len(level) > 1:
        nxt = [
            _blake3.blake3(level[i] + level[i + 1], derive_key_context=MERKLE_NODE_CONTEXT).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    root = level[0] if level else bytes(32)
    material = size.to_bytes(8, "little") + root
    return _blake3.blake3(material, derive_key_context=OBJECT_ROOT_CONTEXT).digest()
