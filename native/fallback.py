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


# ---------------------------------------------------------------- volume maps (vmap.h)

VMAP_ENTRY = 40
VMAP_ZERO, VMAP_SHARED, VMAP_OWNED, VMAP_FROZEN = 0, 1, 2, 3
COW_IN_PLACE, COW_TAKE, COW_COPY, COW_ZERO_FILL = 0, 1, 2, 3


def _check_range(offset: int, length: int, block_size: int, size: int) -> None:
    if block_size <= 0 or offset < 0 or length < 0 or offset > size or length > size - offset:
        raise ValueError(f"range {offset}+{length} outside a volume of {size} bytes")


def vmap_runs(offset: int, length: int, block_size: int, size: int) -> list[tuple[int, int, int]]:
    _check_range(offset, length, block_size, size)
    runs = []
    pos, end = offset, offset + length
    while pos < end:
        block, inner = divmod(pos, block_size)
        take = min(block_size - inner, end - pos)
        runs.append((block, inner, take))
        pos += take
    return runs


def vmap_cow_plan(entries: Buffer, offset: int, length: int, block_size: int, size: int) -> bytes:
    _check_range(offset, length, block_size, size)
    mv = memoryview(entries).cast("B")
    count = len(mv) // VMAP_ENTRY
    out = bytearray()
    pos, end = offset, offset + length
    while pos < end:
        block, inner = divmod(pos, block_size)
        blen = min(block_size, size - block * block_size)
        take = min(blen - inner, end - pos)
        if block >= count:
            raise ValueError("range past the map")
        kind = mv[block * VMAP_ENTRY]
        if kind == VMAP_OWNED:
            out.append(COW_IN_PLACE)
        elif inner == 0 and take == blen:
            out.append(COW_TAKE)
        elif kind == VMAP_ZERO:
            out.append(COW_ZERO_FILL)
        else:
            out.append(COW_COPY)
        pos += take
    return bytes(out)


def vmap_fill(entries: bytearray, first: int, n: int, kind: int) -> None:
    entries[first * VMAP_ENTRY : (first + n) * VMAP_ENTRY] = (bytes([kind]) + bytes(VMAP_ENTRY - 1)) * n


def vmap_freeze(src: bytearray, extent: int) -> tuple[bytearray, int]:
    frozen_entry = bytes([VMAP_FROZEN, 0, 0, 0]) + extent.to_bytes(4, "little") + bytes(32)
    frozen = 0
    for off in range(0, len(src), VMAP_ENTRY):
        if src[off] == VMAP_OWNED:
            src[off : off + VMAP_ENTRY] = frozen_entry
            frozen += 1
    return bytearray(src), frozen


def vmap_resolve(entries: bytearray, extent: int, digests: Buffer) -> int:
    d = bytes(digests)
    done = 0
    for i in range(len(entries) // VMAP_ENTRY):
        off = i * VMAP_ENTRY
        if entries[off] == VMAP_FROZEN and int.from_bytes(entries[off + 4 : off + 8], "little") == extent:
            entries[off : off + VMAP_ENTRY] = bytes([VMAP_SHARED]) + bytes(7) + d[32 * i : 32 * i + 32]
            done += 1
    return done


def vmap_diff(a: Buffer, b: Buffer) -> list[tuple[int, int]]:
    ra, rb = bytes(a), bytes(b)
    na, nb = len(ra) // VMAP_ENTRY, len(rb) // VMAP_ENTRY
    ranges: list[tuple[int, int]] = []
    start = None
    for i in range(max(na, nb)):
        ea = ra[i * VMAP_ENTRY : (i + 1) * VMAP_ENTRY]
        eb = rb[i * VMAP_ENTRY : (i + 1) * VMAP_ENTRY]
        if i < na and i < nb:
            differ = ea[0] == VMAP_OWNED or eb[0] == VMAP_OWNED or ea != eb
        else:
            differ = (ea or eb)[0] != VMAP_ZERO
        if differ and start is None:
            start = i
        elif not differ and start is not None:
            ranges.append((start, i))
            start = None
    if start is not None:
        ranges.append((start, max(na, nb)))
    return ranges


def vmap_status_runs(entries: Buffer, first: int, n: int) -> list[tuple[int, int, bool]]:
    raw = bytes(entries)
    runs: list[tuple[int, int, bool]] = []
    for i in range(first, first + n):
        zero = raw[i * VMAP_ENTRY] == VMAP_ZERO
        if runs and runs[-1][2] == zero:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1, zero)
        else:
            runs.append((i, 1, zero))
    return runs


def vmap_ref_digests(entries: Buffer, zero_full: bytes, zero_last: bytes) -> bytes:
    raw = bytes(entries)
    count = len(raw) // VMAP_ENTRY
    out = []
    for i in range(count):
        e = raw[i * VMAP_ENTRY : (i + 1) * VMAP_ENTRY]
        out.append(e[8:40] if e[0] == VMAP_SHARED else (zero_last if i + 1 == count else zero_full))
    return b"".join(out)
