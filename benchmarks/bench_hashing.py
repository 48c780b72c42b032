"""Batch block hashing, the sha256 scheme, and Merkle top hashes (issue: foundation)."""

from __future__ import annotations

import hashlib
import os

import blake3
import pytest

import native
from native import fallback

MiB = 1 << 20
BLOCK = 4 * MiB


@pytest.fixture(scope="module")
def buf256() -> bytes:
    return os.urandom(256 * MiB)


@pytest.mark.parametrize("threads", [1, 2])
def test_batch_blake3_native(benchmark, buf256: bytes, threads: int) -> None:
    benchmark.extra_info["bytes"] = len(buf256)
    benchmark(native.block_digests, buf256, native.SCHEME_BLAKE3, BLOCK, threads)


def test_blake3_package_auto_threads(benchmark, buf256: bytes) -> None:
    benchmark.extra_info["bytes"] = len(buf256)
    benchmark(lambda: blake3.blake3(buf256, max_threads=blake3.blake3.AUTO).digest())


def test_batch_sha256_native(benchmark, buf256: bytes) -> None:
    benchmark(native.block_digests, buf256, native.SCHEME_SHA256, BLOCK, 1)


def test_batch_sha256_python_loop(benchmark, buf256: bytes) -> None:
    mv = memoryview(buf256)

    def loop() -> list[bytes]:
        return [hashlib.sha256(bytes(mv[o : o + BLOCK]).rstrip(b"\0")).digest() for o in range(0, len(mv), BLOCK)]

    benchmark(loop)


@pytest.fixture(scope="module")
def digests_1tib() -> bytes:
    return os.urandom(32 * 262144)  # a 1 TiB object in 4 MiB blocks


@pytest.mark.parametrize("scheme", ["sha256", "blake3"])
def test_merkle_native(benchmark, digests_1tib: bytes, scheme: str) -> None:
    fn = native.merkle_sha256 if scheme == "sha256" else (lambda d: native.merkle_blake3(d, 1 << 40))
    benchmark(fn, digests_1tib)


@pytest.mark.parametrize("scheme", ["sha256", "blake3"])
def test_merkle_python(benchmark, digests_1tib: bytes, scheme: str) -> None:
    fn = fallback.merkle_sha256 if scheme == "sha256" else (lambda d: fallback.merkle_blake3(d, 1 << 40))
    benchmark.pedantic(fn, args=(digests_1tib,), rounds=3)
