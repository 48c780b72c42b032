"""The C core against its pure-Python twin: identical results for every function."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import native
from native import fallback
from peers import IN_CI

if not native.NATIVE:
    if IN_CI or os.environ.get("NEFELI_NATIVE", "1") != "0":
        pytest.fail("the native core is not built (run `make native`)", pytrace=False)
    pytest.skip("NEFELI_NATIVE=0: the native core is not in use", allow_module_level=True)

SCHEMES = [native.SCHEME_SHA256, native.SCHEME_BLAKE3]
buffers = st.binary(max_size=5000) | st.builds(
    lambda a, z, b: a + bytes(z) + b, st.binary(max_size=300), st.integers(0, 3000), st.binary(max_size=40)
)


@given(data=buffers)
def test_sha256(data: bytes) -> None:
    assert native.sha256(data) == fallback.sha256(data)


@given(data=buffers)
def test_blake3_and_derive_key(data: bytes) -> None:
    assert native.blake3(data) == fallback.blake3(data)
    assert native.blake3_derive_key("nefeli test ctx", data) == fallback.blake3_derive_key("nefeli test ctx", data)
    assert native.blake3_derive_key("ctx", data, 77) == fallback.blake3_derive_key("ctx", data, 77)


@given(data=buffers, offset=st.integers(0, 15))
def test_zero_detection(data: bytes, offset: int) -> None:
    # an unaligned view exercises the byte-wise head of the word loops
    view = memoryview(bytes(offset) + data)[offset:]
    assert native.is_zero(view) == fallback.is_zero(view)
    assert native.rstrip_zeros_len(view) == fallback.rstrip_zeros_len(view)
    for bs in (1, 13, 64, 1000):
        assert native.zero_block_flags(view, bs) == fallback.zero_block_flags(view, bs)


def test_zero_detection_every_position() -> None:
    for n in (1, 7, 8, 63, 64, 65, 200):
        assert native.is_zero(bytes(n))
        assert native.rstrip_zeros_len(bytes(n)) == 0
        for pos in range(n):
            buf = bytearray(n)
            buf[pos] = 1
            assert not native.is_zero(buf)
            assert native.rstrip_zeros_len(buf) == pos + 1


@given(data=buffers, bs=st.sampled_from([1, 3, 64, 1000, 4096]), scheme=st.sampled_from(SCHEMES),
       threads=st.integers(1, 4))
def test_block_digests(data: bytes, bs: int, scheme: int, threads: int) -> None:
    assert native.block_digests(data, scheme, bs, threads) == fallback.block_digests(data, scheme, bs)


def test_block_digests_large_threaded() -> None:
    data = os.urandom(3 << 20) + bytes(1 << 20) + os.urandom(12345)
    for scheme in SCHEMES:
        one = native.block_digests(data, scheme, 1 << 20, 1)
        assert native.block_digests(data, scheme, 1 << 20, 2) == one
        assert one == fallback.block_digests(data, scheme, 1 << 20)


@given(n=st.integers(0, 300), size=st.integers(0, 2**64 - 1))
def test_merkle(n: int, size: int) -> None:
    digests = b"".join(fallback.sha256(i.to_bytes(4, "little")) for i in range(n))
    assert native.merkle_sha256(digests) == fallback.merkle_sha256(digests)
    assert native.merkle_blake3(digests, size) == fallback.merkle_blake3(digests, size)


def test_merkle_big_power_of_two_edges() -> None:
    # 32771 digests: the first levels are big enough to be split over threads
    for n in (1023, 1024, 1025, 4097, 32771):
        digests = os.urandom(32 * n)
        assert native.merkle_sha256(digests) == fallback.merkle_sha256(digests)
        assert native.merkle_blake3(digests, n) == fallback.merkle_blake3(digests, n)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        native.block_digests(b"x", 99, 10)
    with pytest.raises(ValueError):
        native.merkle_sha256(b"x" * 31)


def test_native_zero_selects_fallback() -> None:
    """NEFELI_NATIVE=0 switches every function to Python, with the same answers."""
    code = (
        "import json, native, hashmaps;"
        "print(json.dumps([native.NATIVE, native.simd(),"
        " hashmaps.top_hash(hashmaps.block_digests(b'abc'*5000, 'blake3', 4096), 15000, 'blake3').hex()]))"
    )
    env = dict(os.environ, NEFELI_NATIVE="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    is_native, simd, top = json.loads(out.stdout)
    assert (is_native, simd) == (False, "python")
    import hashmaps

    assert top == hashmaps.top_hash(hashmaps.block_digests(b"abc" * 5000, "blake3", 4096), 15000, "blake3").hex()


def test_simd_back_end_is_reported() -> None:
    assert native.simd() in ("portable", "sse41", "avx2", "avx512")


def test_gil_released_during_batch_hashing() -> None:
    """Python code runs in another thread while one thread is inside a native hash call.

    The main thread stamps the clock in a loop while a worker hashes 256 MiB in
    one call. With the GIL held, no stamp could fall in the middle 80 % of the
    call (a thread switch before entering C lasts at most the 5 ms switch
    interval); with it released, thousands do.
    """
    import threading
    import time

    data = os.urandom(256 << 20)
    span: list[float] = []

    def worker() -> None:
        span.append(time.perf_counter())
        native.block_digests(data, native.SCHEME_BLAKE3, len(data), 1)
        span.append(time.perf_counter())

    stamps: list[float] = []
    t = threading.Thread(target=worker)
    t.start()
    while t.is_alive():
        stamps.append(time.perf_counter())
    t.join()
    start, end = span
    margin = (end - start) * 0.1
    inside = [s for s in stamps if start + margin < s < end - margin]
    assert len(inside) > 100, f"only {len(inside)} stamps during a {end - start:.3f}s call: the GIL was held"
