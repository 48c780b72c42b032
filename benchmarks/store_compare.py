"""Prints the block store's figures against the goals of the block-store issue.

Run: .venv/bin/python benchmarks/store_compare.py [--rounds N] [--quick]
Scratch data (about 5 GiB) goes to $NEFELI_BENCH_DIR (default /var/tmp), which
should be the disk under test.  Disk and page-cache speed on a VM drift from
run to run, so the ingest figure interleaves store and baseline runs and
reports the median of the per-round ratios (and the best of each).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_store_workloads import (  # noqa: E402
    GiB,
    MiB,
    half_garbage,
    ingest,
    open_store,
    plain_write,
    random_reads,
    scratch_dir,
    timed,
    unique_blocks,
)


def verdict(value: float, goal: float) -> str:
    return "ok" if value >= goal else "BELOW GOAL"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="1 GiB read store instead of 4 GiB")
    args = ap.parse_args()

    print("generating 1 GiB of unique data ...", file=sys.stderr)
    blocks = unique_blocks(GiB, seed=1)
    size = GiB

    # 1. ingest vs plain buffered writes + fsync, interleaved
    plain: list[float] = []
    ours: dict[str, list[float]] = {"verify": [], "trusted": []}
    ratios: dict[str, list[float]] = {"verify": [], "trusted": []}
    with scratch_dir() as d:
        for r in range(args.rounds):
            order = ["plain", "verify", "trusted"] if r % 2 == 0 else ["trusted", "verify", "plain"]
            got: dict[str, float] = {}
            for what in order:
                os.sync()
                if what == "plain":
                    dt, _ = timed(plain_write, d / f"plain{r}", blocks)
                else:
                    store = open_store(d / f"{what}{r}")
                    dt, _ = timed(store.put_many, "blake3", blocks, verify=(what == "verify"))
                    store.close()
                got[what] = size / dt / 1e6
            plain.append(got["plain"])
            for k in ours:
                ours[k].append(got[k])
                ratios[k].append(got[k] / got["plain"])
            print(
                f"  round {r}: plain {got['plain']:.0f} MB/s, ingest {got['verify']:.0f} (verify) "
                f"{got['trusted']:.0f} (trusted) MB/s",
                file=sys.stderr,
            )

        # 2. re-ingest: all duplicates of referenced blocks
        store = open_store(d / "reingest")
        ingest(store, blocks)
        store.change_refcounts("blake3", {dg: 1 for dg, _ in blocks})
        times = [timed(store.put_many, "blake3", blocks)[0] for _ in range(20)]
        reingest = size / min(times) / 1e9
        reingest_med = size / statistics.median(times) / 1e9
        raw = [v for _, v in blocks]  # the same, but the store hashes (no digests given)
        hashed = size / min(timed(store.put_many, "blake3", raw)[0] for _ in range(5)) / 1e9
        store.close()
    del blocks

    # 3. random reads from a 4 GiB store, warm; 4. GC with 50 % garbage
    read_gib = 1 if args.quick else 4
    with scratch_dir() as d:
        store = open_store(d / "reads")
        digests: list[bytes] = []
        for part in range(read_gib):
            part_blocks = unique_blocks(GiB, seed=100 + part)
            store.put_many("blake3", part_blocks, verify=False)
            digests += [dg for dg, _ in part_blocks]
            del part_blocks
        store.rotate()
        random_reads(store, digests, 2 * len(digests))  # warm the cache and mappings
        read_rates = []
        for seed in range(3):
            dt, n = timed(random_reads, store, digests, 512, seed)
            read_rates.append(n / dt / 1e9)
        with ThreadPoolExecutor(2) as pool:
            t0 = time.perf_counter()
            n = sum(pool.map(lambda s: random_reads(store, digests, 512, s), [11, 12]))
            read2 = n / (time.perf_counter() - t0) / 1e9
        garbage = half_garbage(store, [(dg, None) for dg in digests])  # type: ignore[misc]
        os.sync()
        dt, report = timed(store.gc)
        gc_rate = report.bytes_reclaimed / dt / 1e6  # type: ignore[attr-defined]
        store.close()

    med = {k: statistics.median(v) for k, v in ratios.items()}
    print()
    print("nefeli block store vs goals (this machine:", os.cpu_count(), "CPUs)")
    print("  ingest 1 GiB unique, 4 MiB blake3 blocks, compression off, durable at return")
    print(
        f"    plain buffered write + fsync   median {statistics.median(plain):6.0f} MB/s   best {max(plain):6.0f} MB/s"
    )
    for k, label in (("verify", "store, verify on "), ("trusted", "store, pre-hashed")):
        print(
            f"    {label}              median {statistics.median(ours[k]):6.0f} MB/s   best {max(ours[k]):6.0f} MB/s"
            f"   ratio median {med[k]:.2f}x best/best {max(ours[k]) / max(plain):.2f}x"
            f"   (goal >= 0.6x) {verdict(med[k], 0.6)}"
        )
    print(
        f"  re-ingest the same 1 GiB (all duplicates)   best {reingest:8.1f} GB/s  median {reingest_med:8.1f} GB/s"
        f"   (goal >= 3 GB/s) {verdict(reingest, 3)}"
    )
    print(f"    (the same when the store has to hash the blocks itself: {hashed:.1f} GB/s)")
    print(
        f"  random 4 MiB reads, {read_gib} GiB store, warm cache   1 thread {statistics.median(read_rates):.2f} GB/s"
        f"   2 threads {read2:.2f} GB/s   (goal >= 1 GB/s) {verdict(statistics.median(read_rates), 1)}"
    )
    print(
        f"  GC, {read_gib} GiB store with 50 % garbage   {gc_rate:.0f} MB/s reclaimed "
        f"({garbage / MiB:.0f} MiB in {dt:.2f} s, live half copied and verified)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
