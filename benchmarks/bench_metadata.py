"""Metadata benchmarks: listing 100 000 objects page by page, and write/read latency.

    .venv/bin/python benchmarks/bench_metadata.py            # prints a report
    .venv/bin/python benchmarks/bench_metadata.py --objects 1000000 --json
    .venv/bin/python -m pytest benchmarks/bench_metadata.py --benchmark-enable

Listings are served from the (container_id, name) index of current versions, so a
page of 10 000 costs the same wherever it starts; the report shows the time of each
page, which must stay flat from the first page to the last.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from storage_engine.objects.metadata import MapRef, MetadataStore, PutItem, SyncMetadataStore  # noqa: E402
from storage_engine.objects.metadata.listing import OBJECT_QUERIES  # noqa: E402

ACCOUNT, CONTAINER = "bench", "objects"
PAGE = 10_000


def _ref(i: int) -> MapRef:
    return MapRef("blake3", 1000 + i % 4096, hashlib.sha256(i.to_bytes(8, "little")).digest())


def _name(i: int) -> str:
    return f"dir{i % 100:02d}/sub{i % 7}/object-{i:07d}.dat"


def populate(path: Path, n: int) -> float:
    """``n`` objects in one container, in bulk transactions; returns seconds."""
    t = time.perf_counter()
    with SyncMetadataStore(path, synchronous="NORMAL") as s:
        s.accounts.ensure(ACCOUNT)
        s.containers.create(ACCOUNT, CONTAINER)
        for start in range(0, n, PAGE):
            items = [PutItem(_name(i), _ref(i), "application/octet-stream") for i in range(start, min(n, start + PAGE))]
            s.objects.put_many(ACCOUNT, CONTAINER, items, modified_by=ACCOUNT)
    return time.perf_counter() - t


async def list_all(md: MetadataStore, page: int = PAGE) -> tuple[int, list[float]]:
    """List the whole container in pages (marker = last name); returns (count, seconds per page)."""
    count, marker, times = 0, None, []
    while True:
        t = time.perf_counter()
        entries = await md.listing.objects(ACCOUNT, CONTAINER, marker=marker, limit=page)
        times.append(time.perf_counter() - t)
        count += len(entries)
        if len(entries) < page:
            return count, times
        marker = entries[-1].name


def list_all_sync(s: SyncMetadataStore, page: int = PAGE) -> tuple[int, list[float]]:
    count, marker, times = 0, None, []
    while True:
        t = time.perf_counter()
        entries = s.listing.objects(ACCOUNT, CONTAINER, marker=marker, limit=page)
        times.append(time.perf_counter() - t)
        count += len(entries)
        if len(entries) < page:
            return count, times
        marker = entries[-1].name


async def _latencies(md: MetadataStore, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    await md.containers.create(ACCOUNT, "writes")
    t = time.perf_counter()
    for i in range(n):
        await md.objects.put(ACCOUNT, "writes", f"o{i % 50}", map=_ref(i), modified_by=ACCOUNT)
    out["put_sequential_ms"] = (time.perf_counter() - t) / n * 1e3
    t = time.perf_counter()
    await asyncio.gather(*(md.objects.put(ACCOUNT, "writes", f"c{i}", map=_ref(i), modified_by=ACCOUNT)
                           for i in range(n)))
    out["put_concurrent_per_op_ms"] = (time.perf_counter() - t) / n * 1e3
    t = time.perf_counter()
    for i in range(n):
        await md.objects.get(ACCOUNT, CONTAINER, _name(i * 97 % 1000))
    out["get_sequential_ms"] = (time.perf_counter() - t) / n * 1e3
    t = time.perf_counter()
    await asyncio.gather(*(md.objects.get(ACCOUNT, CONTAINER, _name(i)) for i in range(n)))
    out["get_concurrent_per_op_ms"] = (time.perf_counter() - t) / n * 1e3
    return out


async def run(n: int, directory: Path) -> dict[str, Any]:
    path = directory / "bench-meta.db"
    report: dict[str, Any] = {"objects": n, "page": PAGE, "populate_s": populate(path, n)}
    with SyncMetadataStore(path) as s:
        plan = s.connection.execute("EXPLAIN QUERY PLAN " + OBJECT_QUERIES[(False, False)], [1, "", PAGE]).fetchall()
        report["query_plan"] = [row[3] for row in plan]
        count, times = list_all_sync(s)
        assert count == n, count
        report["sync_list_all_s"] = sum(times)
    async with await MetadataStore.open(path) as md:
        count, times = await list_all(md)
        assert count == n, count
        report["async_list_all_s"] = sum(times)
        report["async_page_ms"] = [round(x * 1e3, 1) for x in times]
        t = time.perf_counter()
        top = await md.listing.objects(ACCOUNT, CONTAINER, delimiter="/")
        report["delimiter_top_level_ms"] = (time.perf_counter() - t) * 1e3
        report["delimiter_top_level_entries"] = len(top)
        t = time.perf_counter()
        deep = await md.listing.objects(ACCOUNT, CONTAINER, prefix="dir42/", delimiter="/")
        report["delimiter_one_dir_ms"] = (time.perf_counter() - t) * 1e3
        report["delimiter_one_dir_entries"] = len(deep)
        report.update(await _latencies(md, 500))
    return report


def _print(report: dict[str, Any]) -> None:
    pages = report["async_page_ms"]
    print(f"metadata benchmark: {report['objects']} objects in one container, pages of {report['page']}")
    print(f"  populate (put_many, one txn per {PAGE}):  {report['populate_s']:.2f} s")
    print(f"  query plan:                               {' | '.join(report['query_plan'])}")
    print(f"  list all, async (aiosqlite):              {report['async_list_all_s']:.3f} s "
          f"({report['objects'] / report['async_list_all_s']:,.0f} objects/s)")
    print(f"  list all, sync:                           {report['sync_list_all_s']:.3f} s")
    print(f"  page times (ms), first..last:             {pages}")
    print(f"    median {statistics.median(pages):.1f} ms, first {pages[0]:.1f}, last full {pages[-2] if len(pages) > 1 else pages[0]:.1f}")
    print(f"  delimiter '/' at top level:               {report['delimiter_top_level_ms']:.1f} ms "
          f"({report['delimiter_top_level_entries']} subdirs)")
    print(f"  prefix=dir42/ delimiter '/':              {report['delimiter_one_dir_ms']:.1f} ms "
          f"({report['delimiter_one_dir_entries']} subdirs)")
    print(f"  put (FULL sync), sequential:              {report['put_sequential_ms']:.2f} ms/op")
    print(f"  put, 500 concurrent:                      {report['put_concurrent_per_op_ms']:.2f} ms/op")
    print(f"  get, sequential:                          {report['get_sequential_ms']:.3f} ms/op")
    print(f"  get, 500 concurrent (4 readers):          {report['get_concurrent_per_op_ms']:.3f} ms/op")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objects", type=int, default=100_000)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--dir", type=Path, help="where to put the database (default: a temporary directory)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        try:
            import uvloop

            report = uvloop.run(run(args.objects, Path(d)))
        except ImportError:  # pragma: no cover
            report = asyncio.run(run(args.objects, Path(d)))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


# -- pytest-benchmark ---------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="module")
    def populated(tmp_path_factory: pytest.TempPathFactory) -> Path:
        path = tmp_path_factory.mktemp("meta") / "bench.db"
        populate(path, 100_000)
        return path

    @pytest.fixture
    def runner() -> Iterator[asyncio.Runner]:
        with asyncio.Runner() as r:
            yield r

    def test_list_100k_in_pages_async(benchmark: Any, populated: Path, runner: asyncio.Runner) -> None:
        md = runner.run(MetadataStore.open(populated))
        try:
            count, _ = benchmark(lambda: runner.run(list_all(md)))
            assert count == 100_000
        finally:
            runner.run(md.close())

    def test_list_100k_in_pages_sync(benchmark: Any, populated: Path) -> None:
        with SyncMetadataStore(populated) as s:
            count, _ = benchmark(list_all_sync, s)
            assert count == 100_000

    def test_delimiter_listing(benchmark: Any, populated: Path) -> None:
        with SyncMetadataStore(populated) as s:
            page = benchmark(lambda: s.listing.objects(ACCOUNT, CONTAINER, delimiter="/"))
            assert len(page) == 100


if __name__ == "__main__":
    sys.exit(main())
