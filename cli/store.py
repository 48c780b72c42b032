"""`nefeli store stats|gc|scrub|verify --data DIR`: inspect and maintain the block store.

stats, verify and scrub (without --quarantine) open the store read-only when a
daemon holds it; gc, scrub --quarantine and verify --repair need the store's
writer lock (stop the daemon, or ask it to do the work).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .progress import human

DEFAULT_DATA = os.environ.get("NEFELI_DATA", "var/nefeli")


def _human(n: float) -> str:
    return human(n, decimals=2)  # store figures: two decimals, where ratios are read off them


@contextmanager
def _open(args: argparse.Namespace, write: bool) -> Iterator[Any]:
    from storage_engine.blocks.blockstore import BlockStore
    from storage_engine.blocks.errors import StoreLocked
    from storage_engine.blocks.layout import store_dir

    path = store_dir(args.data)
    if not (path / "index").is_dir():
        raise SystemExit(f"nefeli store: no block store at {path}")
    try:
        store = BlockStore.open(path, create=False)
    except StoreLocked as exc:
        if write:
            raise SystemExit(f"nefeli store: {exc}; stop the daemon first") from None
        store = BlockStore.open(path, readonly=True)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _progress(args: argparse.Namespace, desc: str) -> Iterator[Callable[[int, int], None]]:
    from tqdm import tqdm

    bar = tqdm(
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=args.no_progress or not sys.stderr.isatty(),
        file=sys.stderr,
        leave=False,
    )

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()


def _emit(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print("\n".join(lines))


def cmd_stats(args: argparse.Namespace) -> int:
    with _open(args, write=False) as store:
        st = store.stats()
    d = st.as_dict()
    lines = [
        f"store {store.path}",
        f"  blocks            {st.blocks} ({st.referenced_blocks} referenced, {st.unreferenced_blocks} not)",
        f"  maps              {st.maps}",
        f"  logical bytes     {_human(st.logical_bytes)} (every object version)",
        f"  mapped bytes      {_human(st.mapped_bytes)} (non-zero blocks of the stored maps)",
        f"  unique raw bytes  {_human(st.raw_bytes)}",
        f"  stored bytes      {_human(st.stored_bytes)}",
        f"  dedup ratio       {st.dedup_ratio:.2f}",
        f"  compression ratio {st.compression_ratio:.2f}",
        f"  garbage bytes     {_human(st.garbage_bytes)} ({_human(st.dead_bytes)} dead, "
        f"{_human(st.unreferenced_bytes)} unreferenced)",
        f"  segments          {st.segments}, {_human(st.segment_bytes)} ({_human(st.disk_bytes)} on disk)",
        f"  quarantined       {st.quarantined}",
    ]
    _emit(args, d, lines)
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    with _open(args, write=True) as store, _progress(args, "gc") as progress:
        report = store.gc(grace_seconds=args.grace, min_garbage_ratio=args.min_garbage, progress=progress)
    d = dict(vars(report), mb_per_s=round(report.mb_per_s, 1))
    _emit(
        args,
        d,
        [
            f"gc: {report.segments_compacted} segment(s) compacted, {report.blocks_removed} block(s) removed, "
            f"{report.blocks_moved} moved",
            f"    {_human(report.bytes_reclaimed)} reclaimed, {_human(report.bytes_copied)} copied "
            f"in {report.seconds:.2f} s ({report.mb_per_s:.0f} MB/s)",
            *(
                [f"    {report.conflicts} segment(s) skipped: blocks re-referenced meanwhile"]
                if report.conflicts
                else []
            ),
            *([f"    {report.quarantined} corrupt block(s) quarantined"] if report.quarantined else []),
        ],
    )
    return 0


def cmd_scrub(args: argparse.Namespace) -> int:
    with _open(args, write=args.quarantine) as store, _progress(args, "scrub") as progress:
        report = store.scrub(quarantine=args.quarantine, threads=args.threads, progress=progress)
    d = {
        "checked": report.checked,
        "bytes": report.bytes,
        "seconds": report.seconds,
        "quarantined": report.quarantined,
        "bad": [
            {"scheme": b.scheme, "digest": b.digest.hex(), "reason": b.reason, "segment": b.segment, "offset": b.offset}
            for b in report.bad
        ],
    }
    lines = [
        f"scrub: {report.checked} block(s), {_human(report.bytes)} in {report.seconds:.2f} s: "
        + ("all good" if report.ok else f"{len(report.bad)} bad")
    ]
    lines += [f"  BAD {b}" for b in report.bad]
    if report.quarantined:
        lines.append(f"  {report.quarantined} quarantined (re-upload them to restore)")
    _emit(args, d, lines)
    return 0 if report.ok else 1


def _objects_using(args: argparse.Namespace, maps: list[Any]) -> dict[Any, list[str]]:
    """Object versions (acct/cont/name@serial) per map, from the metadata database
    beside the store, when there is one (the store alone knows no names)."""
    from storage_engine.objects.metadata import MapRef, SyncMetadataStore

    from .tokens import META_DB

    path = Path(args.data) / META_DB
    if not maps or not path.is_file():
        return {}
    out: dict[Any, list[str]] = {}
    with SyncMetadataStore(path) as md:
        for key in maps:
            rows = md.maintenance.versions_using(MapRef(key.scheme, key.size, key.top))
            out[key] = [f"{a}/{c}/{n}@{serial}" + ("" if state == "normal" else f" ({state})") for a, c, n, serial, state in rows]
    return out


def cmd_quarantine(args: argparse.Namespace) -> int:
    from storage_engine.blocks.quarantine import maps_needing

    with _open(args, write=args.forget) as store:
        forgotten = store.forget_quarantined() if args.forget else 0
        blocks = store.quarantined_blocks()
        needing = maps_needing(store, blocks)
    all_maps = sorted({k for ks in needing.values() for k in ks}, key=str)
    objects = _objects_using(args, all_maps)
    d: dict[str, Any] = {"forgotten": forgotten, "blocks": []}
    lines = [f"quarantine: {len(blocks)} block(s)" + (f", {forgotten} unreferenced forgotten" if args.forget else "")]
    for b in blocks:
        maps = needing.get((b.scheme, b.digest), [])
        entry = b.as_dict()
        entry["maps"] = [{"map": str(k), "objects": objects.get(k, [])} for k in maps]
        d["blocks"].append(entry)
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(b.since))
        lines.append(f"  {b.scheme}:{b.digest.hex()}  {b.reason}, since {when} UTC, {b.refcount} reference(s)")
        for k in maps:
            names = objects.get(k) or ["(no object names: no metadata database beside the store)"]
            lines.append(f"    map {k}: " + ", ".join(names))
    if any(b.refcount for b in blocks):
        lines.append("  upload the damaged objects again (any copy of the same content heals the block)")
    elif blocks and not args.forget:
        lines.append("  no map needs these any more: `nefeli store quarantine --forget` clears them")
    _emit(args, d, lines)
    return 1 if any(b.refcount for b in blocks) else 0


def cmd_verify(args: argparse.Namespace) -> int:
    with _open(args, write=args.repair) as store, _progress(args, "verify") as progress:
        report = store.verify(repair=args.repair, progress=progress)
    d = {k: v for k, v in vars(report).items()}
    lines = [
        f"verify: {report.entries} entries, {report.segments} segments, {report.maps} maps: "
        + ("consistent" if report.ok else f"{len(report.problems)} problem(s)")
    ]
    lines += [f"  {p}" for p in report.problems[:100]]
    if len(report.problems) > 100:
        lines.append(f"  ... and {len(report.problems) - 100} more")
    if report.repaired:
        lines.append("  counters and refcounts repaired")
    _emit(args, d, lines)
    return 0 if report.ok or report.repaired else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("store", help="inspect and maintain the block store (stats, gc, scrub, verify)")
    actions = p.add_subparsers(dest="store_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", default=DEFAULT_DATA, metavar="DIR", help=f"data directory (default {DEFAULT_DATA})")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--no-progress", action="store_true", help="no progress bar")

    a = actions.add_parser("stats", parents=[common], help="blocks, bytes, dedup and compression ratios, garbage")
    a.set_defaults(func=cmd_stats)

    a = actions.add_parser("gc", parents=[common], help="reclaim unreferenced blocks by compacting segments")
    a.add_argument(
        "--grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="keep unreferenced blocks younger than this (default: the store's, 3600)",
    )
    a.add_argument(
        "--min-garbage",
        type=float,
        default=0.0,
        metavar="RATIO",
        help="compact only segments with at least this share of garbage (default 0: all)",
    )
    a.set_defaults(func=cmd_gc)

    a = actions.add_parser("scrub", parents=[common], help="re-read and re-hash every block")
    a.add_argument("--quarantine", action="store_true", help="take bad blocks out of service")
    a.add_argument("--threads", type=int, default=None, help="hashing threads (default: CPUs)")
    a.set_defaults(func=cmd_scrub)

    a = actions.add_parser(
        "quarantine", parents=[common], help="blocks taken out of service and the objects they damage"
    )
    a.add_argument("--forget", action="store_true", help="clear the entries no map needs any more")
    a.set_defaults(func=cmd_quarantine)

    a = actions.add_parser("verify", parents=[common], help="check the index against segments and maps")
    a.add_argument("--repair", action="store_true", help="rewrite counters and refcounts from a recount")
    a.set_defaults(func=cmd_verify)
