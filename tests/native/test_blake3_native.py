"""BLAKE3 in C (native/blake3/) against the `blake3` package, at every SIMD level this CPU has.

The extension is built by ``python -m native.build``.  Functions that native/build.py does not
declare to CFFI (keyed and raw derive-key hashers, derive_key_raw_64_many) are reached through an
ABI-mode handle on the same shared object, so they are tested whatever the CDEF holds.
"""

from __future__ import annotations

import importlib
import os
import platform
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

blake3 = pytest.importorskip("blake3")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

try:
    from native import _core

    if _core is None:  # native/__init__ binds _core to None when NEFELI_NATIVE=0 (or first): load it directly
        _core = importlib.import_module("native._core")
except ImportError as exc:  # pragma: no cover - depends on the build
    pytest.skip(f"native extension not built ({exc}); run `python -m native.build`", allow_module_level=True)

import cffi  # noqa: E402

ffi, lib = _core.ffi, _core.lib

# ABI-mode view of the same .so for the functions the CDEF may leave out.
_abi = cffi.FFI()
_abi.cdef(
    """
    void nf_blake3_hasher_init(void *self);
    void nf_blake3_hasher_init_keyed(void *self, const uint8_t *key);
    void nf_blake3_hasher_init_derive_key_raw(void *self, const uint8_t *context_key);
    void nf_blake3_hasher_update(void *self, const void *input, size_t input_len);
    void nf_blake3_hasher_finalize(const void *self, uint8_t *out, size_t out_len);
    void nf_blake3_derive_key_raw_64_many(const uint8_t *context_key, const uint8_t *inputs, size_t count,
                                          uint8_t *out);
    """
)
_abi_lib = _abi.dlopen(_core.__file__)
HASHER_SIZE = ffi.sizeof("nf_blake3_hasher")

DETECTED = lib.nf_blake3_simd_detected()
LEVELS = list(range(DETECTED + 1))
NAMES = ["portable", "sse41", "avx2", "avx512"]

# The official test vectors: input byte i is i % 251, at these lengths.
VECTOR_LENGTHS = [0, 1, 1023, 1024, 1025, 2048, 2049, 3072, 3073, 4096, 4097, 5120, 5121, 6144, 6145, 7168,
                  7169, 8192, 8193, 16384, 31744, 102400]
VECTOR_CONTEXT = "BLAKE3 2019-12-27 16:29:52 test vectors context"
VECTOR_KEY = b"whats the Elvish word for friend"
XOF_LEN = 131
MiB = 1 << 20


def pattern(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


PATTERN = pattern(max(VECTOR_LENGTHS))


@pytest.fixture(params=LEVELS, ids=[NAMES[lv] for lv in LEVELS])
def level(request: pytest.FixtureRequest) -> Any:
    assert lib.nf_blake3_simd_force(request.param) == request.param
    yield request.param
    lib.nf_blake3_simd_force(DETECTED)


# ---- helpers over the C API ----------------------------------------------------------------


def c_hasher(mode: str = "hash", key: bytes = b"", context: str = "") -> Any:
    if mode == "hash":
        h = ffi.new("nf_blake3_hasher *")
        lib.nf_blake3_hasher_init(h)
    elif mode == "derive":
        h = ffi.new("nf_blake3_hasher *")
        lib.nf_blake3_hasher_init_derive_key(h, context.encode())
    else:  # keyed, via the ABI handle on raw storage (8-byte aligned)
        h = _abi.new("uint64_t[]", (HASHER_SIZE + 7) // 8)
        _abi_lib.nf_blake3_hasher_init_keyed(h, key)
        return ("abi", h)
    return ("api", h)


def c_update(h: Any, data: Any) -> None:
    kind, ptr = h
    if kind == "api":
        src = ffi.from_buffer(data)
        lib.nf_blake3_hasher_update(ptr, src, len(src))
    else:
        src = _abi.from_buffer(data)
        _abi_lib.nf_blake3_hasher_update(ptr, src, len(src))


def c_finalize(h: Any, n: int = 32) -> bytes:
    kind, ptr = h
    if kind == "api":
        out = ffi.new("uint8_t[]", max(n, 1))
        lib.nf_blake3_hasher_finalize(ptr, out, n)
        return bytes(ffi.buffer(out, n))
    out = _abi.new("uint8_t[]", max(n, 1))
    _abi_lib.nf_blake3_hasher_finalize(ptr, out, n)
    return bytes(_abi.buffer(out, n))


def c_hash(data: Any) -> bytes:
    out = ffi.new("uint8_t[32]")
    src = ffi.from_buffer(data)
    lib.nf_blake3_hash(src, len(src), out)
    return bytes(out)


def context_key(context: str) -> bytes:
    out = ffi.new("uint8_t[32]")
    lib.nf_blake3_context_key(context.encode(), out)
    return bytes(out)


def c_derive_key_raw(ckey: bytes, material: Any) -> bytes:
    out = ffi.new("uint8_t[32]")
    src = ffi.from_buffer(material)
    lib.nf_blake3_derive_key_raw(ckey, src, len(src), out)
    return bytes(out)


def c_derive_64_many(ckey: bytes, inputs: bytes) -> bytes:
    assert len(inputs) % 64 == 0
    count = len(inputs) // 64
    out = _abi.new("uint8_t[]", max(count * 32, 1))
    _abi_lib.nf_blake3_derive_key_raw_64_many(ckey, _abi.from_buffer(inputs), count, out)
    return bytes(_abi.buffer(out, count * 32))


def ref(data: Any, mode: str = "hash", n: int = 32) -> bytes:
    if mode == "hash":
        return blake3.blake3(data).digest(n)
    if mode == "derive":
        return blake3.blake3(data, derive_key_context=VECTOR_CONTEXT).digest(n)
    return blake3.blake3(data, key=VECTOR_KEY).digest(n)


def c_full(data: Any, mode: str, n: int) -> bytes:
    h = c_hasher(mode, key=VECTOR_KEY, context=VECTOR_CONTEXT)
    c_update(h, data)
    return c_finalize(h, n)


# ---- dispatch --------------------------------------------------------------------------------


def test_simd_dispatch_api() -> None:
    assert 0 <= DETECTED <= 3
    assert [ffi.string(lib.nf_blake3_simd_name(i)).decode() for i in range(4)] == NAMES
    try:
        for req in range(-2, 6):
            got = lib.nf_blake3_simd_force(req)
            assert got == max(0, min(req, DETECTED))
            assert lib.nf_blake3_simd_current() == got
    finally:
        lib.nf_blake3_simd_force(DETECTED)
    assert lib.nf_blake3_simd_current() == DETECTED


def test_detected_level_matches_cpu_flags() -> None:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags")
    if "avx512f" in flags and "avx512vl" in flags:
        expected = 3
    elif "avx2" in flags:
        expected = 2
    elif "sse4_1" in flags:
        expected = 1
    else:
        expected = 0
    # the kernel may hide a feature from /proc/cpuinfo, never add one: detection may be lower only
    # when the OS does not enable the register state, which /proc/cpuinfo reflects too.
    assert DETECTED == expected


# ---- official test-vector inputs, every level ------------------------------------------------


@pytest.mark.parametrize("mode", ["hash", "derive", "keyed"])
def test_vector_lengths(level: int, mode: str) -> None:
    for n in VECTOR_LENGTHS:
        data = PATTERN[:n]
        want = ref(data, mode, XOF_LEN)
        assert c_full(data, mode, XOF_LEN) == want, (NAMES[level], mode, n)
        assert c_full(data, mode, 32) == want[:32], (NAMES[level], mode, n)
        if mode == "hash":
            assert c_hash(data) == want[:32], (NAMES[level], n)


def test_vector_lengths_derive_key_raw(level: int) -> None:
    ckey = context_key(VECTOR_CONTEXT)
    for n in VECTOR_LENGTHS:
        data = PATTERN[:n]
        assert c_derive_key_raw(ckey, data) == ref(data, "derive"), (NAMES[level], n)


def test_xof_lengths(level: int) -> None:
    data = PATTERN[:5121]
    want = ref(data, "hash", 1000)
    for n in [0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1000]:
        assert c_full(data, "hash", n) == want[:n], (NAMES[level], n)


def test_finalize_is_idempotent_and_update_continues(level: int) -> None:
    h = c_hasher("hash")
    c_update(h, PATTERN[:3000])
    first = c_finalize(h, 64)
    assert c_finalize(h, 64) == first == ref(PATTERN[:3000], "hash", 64)
    c_update(h, PATTERN[3000:9000])
    assert c_finalize(h) == ref(PATTERN[:9000])


# ---- random inputs and chunkings -------------------------------------------------------------


@given(data=st.binary(max_size=9000), cuts=st.lists(st.integers(min_value=0, max_value=9000), max_size=8))
def test_random_inputs_and_splits(data: bytes, cuts: list[int]) -> None:
    try:
        for lv in LEVELS:
            lib.nf_blake3_simd_force(lv)
            want = ref(data)
            assert c_hash(data) == want
            h = c_hasher("hash")
            prev = 0
            for c in sorted(min(c, len(data)) for c in cuts) + [len(data)]:
                c_update(h, data[prev:c])
                prev = c
            assert c_finalize(h) == want, (NAMES[lv], len(data), cuts)
    finally:
        lib.nf_blake3_simd_force(DETECTED)


@given(
    n=st.one_of(st.integers(min_value=0, max_value=5000), st.integers(min_value=5000, max_value=300_000)),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    mode=st.sampled_from(["hash", "derive", "keyed"]),
)
def test_random_lengths_random_pieces(n: int, seed: int, mode: str) -> None:
    """Lengths across many chunks, fed in random pieces (some of whole chunks, some tiny)."""
    rng = random.Random(seed)
    data = rng.randbytes(n)
    want = ref(data, mode, 48)
    try:
        for lv in LEVELS:
            lib.nf_blake3_simd_force(lv)
            h = c_hasher(mode, key=VECTOR_KEY, context=VECTOR_CONTEXT)
            pos = 0
            while pos < n:
                step = rng.choice([1, 63, 64, 65, 1023, 1024, 1025, 4096, 8192 + 7, rng.randrange(1, 20_000)])
                c_update(h, data[pos : pos + step])
                pos += step
            assert c_finalize(h, 48) == want, (NAMES[lv], mode, n, seed)
    finally:
        lib.nf_blake3_simd_force(DETECTED)


def test_unaligned_buffers(level: int) -> None:
    base = bytearray(os.urandom(40_000 + 64))
    mv = memoryview(base)
    for off in (1, 3, 7, 13, 31, 33, 63):
        for n in (64, 1024, 8193, 40_000):
            piece = mv[off : off + n]
            assert c_hash(piece) == ref(bytes(piece)), (NAMES[level], off, n)


# ---- derive-key helpers ----------------------------------------------------------------------


@given(context=st.text(max_size=80).filter(lambda s: "\0" not in s), material=st.binary(max_size=5000))
def test_derive_key_raw_matches_package(context: str, material: bytes) -> None:
    ckey = context_key(context)
    want = blake3.blake3(material, derive_key_context=context).digest()
    try:
        for lv in LEVELS:
            lib.nf_blake3_simd_force(lv)
            assert context_key(context) == ckey
            assert c_derive_key_raw(ckey, material) == want, NAMES[lv]
    finally:
        lib.nf_blake3_simd_force(DETECTED)


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 255, 256, 257, 1000])
def test_derive_key_raw_64_many(level: int, count: int) -> None:
    ctx = "nefeli 2026 merkle node"
    ckey = context_key(ctx)
    rng = random.Random(count)
    inputs = rng.randbytes(64 * count)
    got = c_derive_64_many(ckey, inputs)
    want = b"".join(
        blake3.blake3(inputs[64 * i : 64 * i + 64], derive_key_context=ctx).digest() for i in range(count)
    )
    assert got == want
    # and each one equals the single-input helper
    for i in range(min(count, 20)):
        assert got[32 * i : 32 * i + 32] == c_derive_key_raw(ckey, inputs[64 * i : 64 * i + 64])


def test_derive_key_raw_64_many_merkle_level() -> None:
    """A Merkle level of 8192 nodes (the batch path over several internal batches), every level."""
    ctx = "nefeli 2026 merkle node"
    ckey = context_key(ctx)
    inputs = os.urandom(64 * 8192)
    want = b"".join(
        blake3.blake3(inputs[64 * i : 64 * i + 64], derive_key_context=ctx).digest() for i in range(8192)
    )
    try:
        for lv in LEVELS:
            lib.nf_blake3_simd_force(lv)
            assert c_derive_64_many(ckey, inputs) == want, NAMES[lv]
    finally:
        lib.nf_blake3_simd_force(DETECTED)


# ---- large inputs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big() -> bytes:
    return os.urandom(5 * MiB + 4096)


@pytest.mark.parametrize(
    "n", [4 * MiB - 1, 4 * MiB, 4 * MiB + 1, 4 * MiB + 1023, 4 * MiB + 1025, 5 * MiB + 4096 - 12345]
)
def test_large_inputs(level: int, big: bytes, n: int) -> None:
    data = memoryview(big)[:n]
    want = blake3.blake3(data).digest(40)
    assert c_hash(data) == want[:32]
    assert c_full(data, "derive", 40) == blake3.blake3(data, derive_key_context=VECTOR_CONTEXT).digest(40)
    # incremental, in pieces that straddle chunk and subtree boundaries
    h = c_hasher("hash")
    pos = 0
    for step in [1, 1023, 3 * 1024 + 5, 64 * 1024, 999_999, 2 * MiB + 17]:
        c_update(h, data[pos : pos + step])
        pos += step
    c_update(h, data[pos:])
    assert c_finalize(h, 40) == want


def test_large_input_every_level_agrees(big: bytes) -> None:
    """The full buffer (many subtrees of 16 chunks or more) hashed by every level gives one digest."""
    want = blake3.blake3(big).digest()
    try:
        for lv in LEVELS:
            lib.nf_blake3_simd_force(lv)
            assert c_hash(big) == want, NAMES[lv]
    finally:
        lib.nf_blake3_simd_force(DETECTED)


# ---- the AVX-512 back end where the CPU has none ---------------------------------------------


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64") or not shutil.which("gcc") or not shutil.which("objdump"),
    reason="needs x86-64 with gcc and objdump",
)
def test_avx512_back_end_under_emulation(tmp_path: Path) -> None:
    """blake3_avx512.c compiled against plain-C stand-ins for its intrinsics, checked against portable.

    On a CPU with AVX-512 the tests above run the real thing; this keeps its logic covered elsewhere.
    """
    script = Path(__file__).resolve().parents[2] / "native" / "blake3" / "avx512_emu" / "check.sh"
    r = subprocess.run(["bash", str(script), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all AVX-512 (emulated) checks passed" in r.stdout
