"""Prints nefeli's native hashing beside its reference peers, as ratios against the goals.

Run: .venv/bin/python benchmarks/hashing_compare.py   (part of `make bench`)
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import blake3  # noqa: E402

import native  # noqa: E402
from native import fallback  # noqa: E402

MiB = 1 << 20
BLOCK = 4 * MiB


def best(fn: Callable[[], object], rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def row(name: str, ours: float, theirs: float, goal: float, higher_is_ours_faster: bool = True) -> None:
    ratio = theirs / ours if higher_is_ours_faster else ours / theirs
    verdict = "ok" if ratio >= goal else "BELOW GOAL"
    print(f"{name:<58} {ratio:7.2f}x  (goal >= {goal}x)  {verdict}")


def main() -> None:
    if not native.NATIVE:
        sys.exit("native core not built: run `make native`")
    print(f"BLAKE3 back end: {native.simd()}, cores: {os.cpu_count()}")
    block = os.urandom(BLOCK)
    big = os.urandom(64 * MiB)
    buf = os.urandom(256 * MiB)
    digests = os.urandom(32 * 262144)

    for name, data in (("4 MiB", block), ("64 MiB", big)):
        n = best(lambda: native.blake3(data), 20 if data is block else 5)
        p = best(lambda: blake3.blake3(data, max_threads=1).digest(), 20 if data is block else 5)
        print(f"  blake3 {name}: native {len(data) / n / 1e9:.2f} GB/s, package {len(data) / p / 1e9:.2f} GB/s")
        row(f"native BLAKE3 vs package, 1 thread, {name}", n, p, 0.9)

    one = best(lambda: native.block_digests(buf, native.SCHEME_BLAKE3, BLOCK, 1), 3)
    two = best(lambda: native.block_digests(buf, native.SCHEME_BLAKE3, BLOCK, 2), 3)
    auto = best(lambda: blake3.blake3(buf, max_threads=blake3.blake3.AUTO).digest(), 3)
    print(f"  batch 256 MiB: 1 thread {len(buf) / one / 1e9:.2f} GB/s, 2 threads {len(buf) / two / 1e9:.2f} GB/s,"
          f" package AUTO {len(buf) / auto / 1e9:.2f} GB/s")
    row("batch hashing scaling, 2 threads vs 1", two, one, 1.8)
    row("batch hashing 2 threads vs package max_threads=AUTO", two, auto, 0.9)

    mv = memoryview(buf)
    s_native = best(lambda: native.block_digests(buf, native.SCHEME_SHA256, BLOCK, 1), 3)
    s_loop = best(lambda: [hashlib.sha256(bytes(mv[o : o + BLOCK]).rstrip(b"\0")).digest()
                           for o in range(0, len(mv), BLOCK)], 3)
    row("sha256 scheme batch vs Python hashlib loop with rstrip", s_native, s_loop, 1.0)

    for scheme in ("sha256", "blake3"):
        if scheme == "sha256":
            n = best(lambda: native.merkle_sha256(digests), 5)
            p = best(lambda: fallback.merkle_sha256(digests), 2)
        else:
            n = best(lambda: native.merkle_blake3(digests, 1 << 40), 5)
            p = best(lambda: fallback.merkle_blake3(digests, 1 << 40), 2)
        print(f"  merkle {scheme} 262144 digests: native {n * 1e3:.1f} ms, python {p * 1e3:.1f} ms")
        row(f"Merkle top hash {scheme}, 262144 digests, native vs Python", n, p, 20)


if __name__ == "__main__":
    main()
