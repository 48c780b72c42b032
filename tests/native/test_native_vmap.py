"""native/vmap: the C volume-map operations equal their Python twins (and mean what they say)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import native
from native import fallback, vmap

pytestmark = pytest.mark.skipif(not native.NATIVE, reason="C core not built")

ENTRY = struct.Struct("<BBHI32s")


def entry(kind: int, extent: int = 0, ref: bytes = bytes(32)) -> bytes:
    return ENTRY.pack(kind, 0, 0, extent, ref)


entries_st = st.lists(
    st.tuples(st.sampled_from([0, 1, 2, 3]), st.integers(0, 3), st.sampled_from([bytes(32), b"\1" * 32, b"\2" * 32])),
    max_size=40,
).map(lambda es: b"".join(entry(k, x if k == 3 else 0, r if k == 1 else bytes(32)) for k, x, r in es))


def test_entry_struct_is_40_bytes() -> None:
    assert ENTRY.size == vmap.VMAP_ENTRY == 40


def test_runs_split_at_block_boundaries() -> None:
    assert vmap.runs(4090, 10, 4096, 1 << 20) == [(0, 4090, 6), (1, 0, 4)]
    assert vmap.runs(0, 0, 4096, 100) == []
    with pytest.raises(ValueError):
        vmap.runs(90, 20, 4096, 100)


def test_cow_plan_actions() -> None:
    e = entry(2) + entry(1, ref=b"\1" * 32) + entry(0) + entry(3, 1)
    # bytes 10..12297: owned block in place, two whole blocks taken, the frozen one copied
    plan = vmap.cow_plan(e, 10, 3 * 4096, 4096, 4 * 4096)
    assert plan == bytes([vmap.COW_IN_PLACE, vmap.COW_TAKE, vmap.COW_TAKE, vmap.COW_COPY])
    assert vmap.cow_plan(e, 0, 4096, 4096, 4 * 4096) == bytes([vmap.COW_IN_PLACE])
    assert vmap.cow_plan(e, 4096, 10, 4096, 4 * 4096) == bytes([vmap.COW_COPY])
    assert vmap.cow_plan(e, 8192, 10, 4096, 4 * 4096) == bytes([vmap.COW_ZERO_FILL])
    assert vmap.cow_plan(e, 12288, 4096, 4096, 4 * 4096) == bytes([vmap.COW_TAKE])
    # the short last block is taken whole by a write to its end
    assert vmap.cow_plan(entry(1) + entry(1), 4096, 100, 4096, 4196) == bytes([vmap.COW_TAKE])


def test_freeze_turns_owned_into_frozen_in_both() -> None:
    src = bytearray(entry(2) + entry(1, ref=b"\1" * 32) + entry(0))
    dst, n = vmap.freeze(src, 7)
    assert n == 1 and dst == src and src[:40] == entry(3, 7)


def test_resolve_and_ref_digests() -> None:
    e = bytearray(entry(3, 7) + entry(3, 8) + entry(0))
    digests = b"a" * 32 + b"b" * 32 + b"c" * 32
    assert vmap.resolve(e, 7, digests) == 1
    assert bytes(e[:40]) == entry(1, ref=b"a" * 32)
    assert vmap.ref_digests(e, b"z" * 32, b"l" * 32) == b"a" * 32 + b"z" * 32 + b"l" * 32


def test_diff_and_status_runs() -> None:
    a = entry(1, ref=b"\1" * 32) + entry(0) + entry(2) + entry(0)
    b = entry(1, ref=b"\1" * 32) + entry(0) + entry(2)
    assert vmap.diff(a, b) == [(2, 3)]  # owned blocks always count as changed
    assert vmap.diff(b, b + entry(1)) == [(2, 4)]
    assert vmap.status_runs(a, 0, 4) == [(0, 1, False), (1, 1, True), (2, 1, False), (3, 1, True)]


@settings(max_examples=300, deadline=None)
@given(entries_st, st.integers(0, 200_000), st.integers(0, 200_000), st.sampled_from([512, 4096, 65536]))
def test_runs_and_cow_plan_match_the_twin(e: bytes, offset: int, length: int, bs: int) -> None:
    size = len(e) // 40 * bs
    try:
        want = fallback.vmap_runs(offset, length, bs, size)
    except ValueError:
        with pytest.raises(ValueError):
            vmap.runs(offset, length, bs, size)
        return
    assert vmap.runs(offset, length, bs, size) == want
    assert vmap.cow_plan(e, offset, length, bs, size) == fallback.vmap_cow_plan(e, offset, length, bs, size)


@settings(max_examples=300, deadline=None)
@given(entries_st, entries_st, st.integers(0, 9))
def test_map_operations_match_the_twin(a: bytes, b: bytes, extent: int) -> None:
    assert vmap.diff(a, b) == fallback.vmap_diff(a, b)
    n = len(a) // 40
    assert vmap.status_runs(a, 0, n) == fallback.vmap_status_runs(a, 0, n)
    s1, s2 = bytearray(a), bytearray(a)
    assert vmap.freeze(s1, extent) == fallback.vmap_freeze(s2, extent) and s1 == s2
    digests = bytes(range(32)) * n
    r1, r2 = bytearray(a), bytearray(a)
    assert vmap.resolve(r1, extent, digests) == fallback.vmap_resolve(r2, extent, digests) and r1 == r2
    assert vmap.ref_digests(a, b"z" * 32, b"l" * 32) == fallback.vmap_ref_digests(a, b"z" * 32, b"l" * 32)
    f1, f2 = bytearray(a), bytearray(a)
    if n:
        vmap.fill(f1, n // 2, n - n // 2, 0)
        fallback.vmap_fill(f2, n // 2, n - n // 2, 0)
        assert f1 == f2
