"""The object server's sans-I/O hot paths: splitting POST ?update bodies into blocks,
parsing and formatting the hashmap of a 1 TiB object, and resolving range sets."""

from __future__ import annotations

import json
import os

import pytest

from net.http_range import MultipartByteranges, select_ranges
from net.pithos_hashmap import BlockSplitter, format_hashmap_json, parse_hashmap

MiB = 1 << 20
BLOCK = 4 * MiB
HASHES_1TIB = [os.urandom(32).hex() for _ in range(262144)]  # 1 TiB in 4 MiB blocks


@pytest.fixture(scope="module")
def body64() -> bytes:
    return os.urandom(64 * MiB)


@pytest.mark.parametrize("chunk", [64 * 1024, 1 * MiB])
def test_block_splitter(benchmark, body64: bytes, chunk: int) -> None:
    chunks = [body64[i : i + chunk] for i in range(0, len(body64), chunk)]
    benchmark.extra_info["bytes"] = len(body64)

    def run() -> int:
        s = BlockSplitter(BLOCK)
        n = 0
        for c in chunks:
            n += len(s.feed(c))
        return n + len(s.finish())

    assert benchmark(run) == 16


def test_parse_hashmap_1tib(benchmark) -> None:
    body = json.dumps({"bytes": 1 << 40, "hashes": HASHES_1TIB}).encode()
    benchmark.extra_info["bytes"] = len(body)
    hm = benchmark(parse_hashmap, body, block_size=BLOCK)
    assert len(hm.hashes) == 262144


def test_format_hashmap_1tib(benchmark) -> None:
    out = benchmark(format_hashmap_json, 1 << 40, HASHES_1TIB, block_size=BLOCK, block_hash="sha256")
    assert out.startswith(b'{"block_size":4194304')


def test_select_100_ranges_and_frame(benchmark) -> None:
    header = "bytes=" + ",".join(f"{i * 1000}-{i * 1000 + 99}" for i in range(100))

    def run() -> int:
        spans = select_ranges(header, 1 << 30)
        assert spans is not None
        return MultipartByteranges(spans, 1 << 30, boundary="b").content_length

    assert benchmark(run) > 10000
