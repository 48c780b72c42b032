"""BLAKE3 in C (native/blake3/) against the `blake3` package, one thread, large buffers.

Run with ``pytest benchmarks/bench_blake3_native.py --benchmark-enable``.  Each size is a
benchmark group: the package with max_threads=1, and the native hasher at every SIMD level
this CPU has (the detected level is what nefeli uses).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import pytest

blake3 = pytest.importorskip("blake3")

try:
    from native import _core

    if _core is None:
        _core = importlib.import_module("native._core")
except ImportError as exc:  # pragma: no cover - depends on the build
    pytest.skip(f"native extension not built ({exc}); run `python -m native.build`", allow_module_level=True)

ffi, lib = _core.ffi, _core.lib
MiB = 1 << 20
SIZES = {"4MiB": 4 * MiB, "64MiB": 64 * MiB}
DETECTED = lib.nf_blake3_simd_detected()
LEVELS = {ffi.string(lib.nf_blake3_simd_name(lv)).decode(): lv for lv in range(DETECTED + 1)}


@pytest.fixture(scope="module", params=list(SIZES), ids=list(SIZES))
def buf(request: pytest.FixtureRequest) -> Any:
    return request.param, os.urandom(SIZES[request.param])


def test_package_one_thread(benchmark: Any, buf: Any) -> None:
    name, data = buf
    benchmark.group = f"blake3 {name}"
    benchmark.extra_info["bytes"] = len(data)
    digest = benchmark(lambda: blake3.blake3(data, max_threads=1).digest())
    assert len(digest) == 32


@pytest.mark.parametrize("simd", list(LEVELS))
def test_native(benchmark: Any, buf: Any, simd: str) -> None:
    name, data = buf
    benchmark.group = f"blake3 {name}"
    benchmark.extra_info["bytes"] = len(data)
    src = ffi.from_buffer(data)
    out = ffi.new("uint8_t[32]")
    lib.nf_blake3_simd_force(LEVELS[simd])
    try:
        benchmark(lib.nf_blake3_hash, src, len(src), out)
    finally:
        lib.nf_blake3_simd_force(DETECTED)
    assert bytes(out) == blake3.blake3(data).digest()
