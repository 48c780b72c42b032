"""The C core against its pure-Python twin: identical results for every function.

Under NEFELI_NATIVE=0 (or without a build) native/ *is* the twin, so the same
tests hold it to a plain reference instead (tests/native_reference.py), and
every run checks the known answers of tests/fixtures/native_vectors.json, in
this process and in one with NEFELI_NATIVE=0.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

import native
import native_reference
from native import fallback

if not native.NATIVE and os.environ.get("NEFELI_NATIVE", "1") != "0":
    pytest.fail("the native core is not built (run `make native`)", pytrace=False)

#: what native/ is compared with: the Python twin, or (when native/ is the twin) the reference
OTHER = fallback if native.NATIVE else native_reference
needs_c = pytest.mark.skipif(not native.NATIVE, reason="NEFELI_NATIVE=0: the C core is not in use")
VECTORS = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "native_vectors.json").read_text())

SCHEMES = [native.SCHEME_SHA256, native.SCHEME_BLAKE3]
buffers = st.binary(max_size=5000) | st.builds(
    lambda a, z, b: a + bytes(z) + b, st.binary(max_size=300), st.integers(0, 3000), st.binary(max_size=40)
)


@given(data=buffers)
def test_sha256(data: bytes) -> None:
    assert native.sha256(data) == OTHER.sha256(data)


@given(data=buffers)
def test_blake3_and_derive_key(data: bytes) -> None:
    assert native.blake3(data) == OTHER.blake3(data)
    assert native.blake3_derive_key("nefeli test ctx", data) == OTHER.blake3_derive_key("nefeli test ctx", data)
    assert native.blake3_derive_key("ctx", data, 77) == OTHER.blake3_derive_key("ctx", data, 77)


@given(data=buffers, offset=st.integers(0, 15))
def test_zero_detection(data: bytes, offset: int) -> None:
    # an unaligned view exercises the byte-wise head of the word loops
    view = memoryview(bytes(offset) + data)[offset:]
    assert native.is_zero(view) == OTHER.is_zero(view)
    assert native.rstrip_zeros_len(view) == OTHER.rstrip_zeros_len(view)
    for bs in (1, 13, 64, 1000):
        assert native.zero_block_flags(view, bs) == OTHER.zero_block_flags(view, bs)


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
    assert native.block_digests(data, scheme, bs, threads) == OTHER.block_digests(data, scheme, bs)


def test_block_digests_large_threaded() -> None:
    data = os.urandom(3 << 20) + bytes(1 << 20) + os.urandom(12345)
    for scheme in SCHEMES:
        one = native.block_digests(data, scheme, 1 << 20, 1)
        assert native.block_digests(data, scheme, 1 << 20, 2) == one
        assert one == OTHER.block_digests(data, scheme, 1 << 20)


@given(n=st.integers(0, 300), size=st.integers(0, 2**64 - 1))
def test_merkle(n: int, size: int) -> None:
    digests = b"".join(fallback.sha256(i.to_bytes(4, "little")) for i in range(n))
    assert native.merkle_sha256(digests) == OTHER.merkle_sha256(digests)
    assert native.merkle_blake3(digests, size) == OTHER.merkle_blake3(digests, size)


def test_merkle_big_power_of_two_edges() -> None:
    # 32771 digests: the first levels are big enough to be split over threads
    for n in (1023, 1024, 1025, 4097, 32771):
        digests = os.urandom(32 * n)
        assert native.merkle_sha256(digests) == OTHER.merkle_sha256(digests)
        assert native.merkle_blake3(digests, n) == OTHER.merkle_blake3(digests, n)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        native.block_digests(b"x", 99, 10)
    with pytest.raises(ValueError):
        native.merkle_sha256(b"x" * 31)


@needs_c
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


@needs_c
def test_simd_back_end_is_reported() -> None:
    assert native.simd() in ("portable", "sse41", "avx2", "avx512")


@needs_c
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


def _vector_input(n: int, zero_ranges: list[list[int]] = []) -> bytes:  # noqa: B006 - never mutated
    data = bytearray(i % 251 for i in range(n))
    for lo, hi in zero_ranges:
        data[lo:hi] = bytes(hi - lo)
    return bytes(data)


@pytest.mark.parametrize("impl", [native, fallback, native_reference], ids=["active", "fallback", "reference"])
def test_known_answers(impl: ModuleType) -> None:
    """Answers recorded from the C core (and equal to hashlib's and the blake3
    package's): BLAKE3 of b"" and of one zero byte are those of the BLAKE3 spec."""
    f = vars(impl)
    assert VECTORS["hash"][0]["blake3"] == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    assert VECTORS["hash"][1]["blake3"] == "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"
    for v in VECTORS["hash"]:
        data = _vector_input(v["len"])
        assert f["sha256"](data).hex() == v["sha256"], v["len"]
        assert f["blake3"](data).hex() == v["blake3"], v["len"]
        assert f["blake3_derive_key"]("nefeli test vectors", data).hex() == v["derive_key"], v["len"]
        assert f["blake3_derive_key"]("nefeli test vectors", data, 77).hex() == v["derive_key_77"], v["len"]
    for v in VECTORS["blocks"]:
        data = _vector_input(v["len"], v["zero_ranges"])
        assert f["block_digests"](data, native.SCHEME_SHA256, v["block_size"]).hex() == v["sha256"]
        assert f["block_digests"](data, native.SCHEME_BLAKE3, v["block_size"]).hex() == v["blake3"]
        assert f["zero_block_flags"](data, v["block_size"]).hex() == v["zero_flags"]
    for v in VECTORS["merkle"]:
        digests = b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest() for i in range(v["count"]))
        assert f["merkle_sha256"](digests).hex() == v["sha256"], v["count"]
        assert f["merkle_blake3"](digests, v["size"]).hex() == v["blake3"], v["count"]


def test_a_fallback_only_process_gives_the_known_answers() -> None:
    """The known answers in a process started with NEFELI_NATIVE=0, as a machine
    without the C core runs: so every run, CI's included, checks the fallback."""
    tests = Path(__file__).resolve().parents[1]
    code = (
        "import native, test_native as t;"
        "assert not native.NATIVE and native.simd() == 'python', native.simd();"
        "t.test_known_answers(native); print('ok')"
    )
    env = dict(os.environ, NEFELI_NATIVE="0", CI="", PYTHONPATH=os.pathsep.join([str(tests.parent), str(tests), str(tests / "native")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]

