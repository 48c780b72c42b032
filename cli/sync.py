"""`nefeli sync DIR CONT[/PREFIX]`: push (or --pull) a directory tree by block hashes.

Push: a file moves when its local top hash differs from the listing's
x_object_hash (or the object is new); the final hashmap PUT carries If-Match with
the remote hash the decision was based on (If-None-Match: * for a new object), so
a concurrent change on the server is a conflict (412), reported and not overwritten.
Pull: the same in reverse; the local file's (mtime, size) snapshot taken when it was
hashed must still hold just before the rename.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config as cfgmod
from .client import Client, RemoteMap, split_target
from .errors import CliError, Conflict, HttpError, command
from .progress import human
from .transfer import LocalHashes, Stats, download_file, hash_local, snapshot, upload_file

DIRECTORY_TYPES = ("application/directory", "application/folder")
FILES_IN_FLIGHT = 4


@dataclass
class Report:
    uploaded: int = 0
    downloaded: int = 0
    deleted: int = 0
    unchanged: int = 0
    conflicts: int = 0
    errors: int = 0
    bytes_sent: int = 0
    bytes_fetched: int = 0

    def line(self) -> str:
        return (
            f"{self.uploaded} uploaded, {self.downloaded} downloaded, {self.deleted} deleted, {self.unchanged} unchanged, "
            f"{self.conflicts} conflicts, {self.errors} errors; sent {human(self.bytes_sent)}, "
            f"fetched {human(self.bytes_fetched)}"
        )


def local_files(root: Path) -> dict[str, Path]:
    """Relative POSIX names → paths of the regular files under root (symlinks not followed)."""
    out: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
        for name in filenames:
            p = Path(dirpath) / name
            if name.endswith(".nefeli-part") or not p.is_file() or p.is_symlink():
                continue
            out[p.relative_to(root).as_posix()] = p
    return out


def safe_relative(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and "\0" not in name and all(p not in ("", ".", "..") for p in parts)


def remote_hash(entry: dict[str, Any]) -> str | None:
    h = entry.get("x_object_hash") or entry.get("hash")
    return str(h).lower() if h else None


async def run_sync(
    client: Client,
    root: Path,
    container: str,
    prefix: str,
    *,
    pull: bool = False,
    delete: bool = False,
    dry_run: bool = False,
    progress: bool = False,
    out: Any = sys.stdout,
) -> Report:
    rep = Report()
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    info = await (client.head_container(container) if pull or dry_run else client.ensure_container(container))
    remote: dict[str, dict[str, Any]] = {}
    try:
        entries = await client.list_objects(container, prefix)
    except HttpError as exc:
        if exc.status != 404 or not dry_run:
            raise
        entries = []
    for e in entries:
        name = e.get("name")
        if not name or e.get("content_type", "").split(";")[0] in DIRECTORY_TYPES:
            continue
        remote[name[len(prefix) :]] = e
    if pull:
        root.mkdir(parents=True, exist_ok=True)
    elif not root.is_dir():
        raise CliError(f"{root}: not a directory")
    local = local_files(root)
    sem = asyncio.Semaphore(FILES_IN_FLIGHT)

    def say(msg: str) -> None:
        print(msg, file=out, flush=True)

    async def transfer(name: str, work: Awaitable[Stats]) -> Stats | None:
        """One file's upload or download; a conflict or an error is reported and counted (None)."""
        try:
            return await work
        except Conflict as exc:
            say(f"conflict {name}: {exc}")
            rep.conflicts += 1
        except (HttpError, CliError, OSError) as exc:
            say(f"error {name}: {exc}")
            rep.errors += 1
        return None

    async def push_one(rel: str, path: Path) -> None:
        async with sem:
            e = remote.get(rel)
            lh: LocalHashes = await asyncio.to_thread(hash_local, path, info.block_hash, info.block_size, False)
            rh = remote_hash(e) if e else None
            if e is not None and rh == lh.top.hex() and int(e.get("bytes", -1)) == lh.size:
                rep.unchanged += 1
                return
            name = prefix + rel
            if dry_run:
                say(f"upload {name}")
                rep.uploaded += 1
                return
            st = await transfer(
                name,
                upload_file(
                    client, path, container, name, local=lh, if_match=rh if e is not None else None,
                    if_none_match=e is None, progress=progress,
                ),
            )
            if st is None:
                return
            say(f"upload {name} ({st.blocks_sent} blocks sent)")
            rep.uploaded += 1
            rep.bytes_sent += st.bytes_sent

    async def pull_one(rel: str, e: dict[str, Any]) -> None:
        async with sem:
            name = prefix + rel
            if not safe_relative(rel):
                say(f"skip {name}: not a safe local path")
                rep.errors += 1
                return
            dest = root / rel
            snap = snapshot(dest)
            rh = remote_hash(e)
            lh: LocalHashes | None = None
            if snap is not None:
                if not dest.is_file():
                    say(f"conflict {name}: {dest} exists and is not a file")
                    rep.conflicts += 1
                    return
                lh = await asyncio.to_thread(hash_local, dest, info.block_hash, info.block_size, False)
                if rh == lh.top.hex() and int(e.get("bytes", -1)) == lh.size:
                    rep.unchanged += 1
                    return
                if snapshot(dest) != snap:
                    say(f"conflict {name}: {dest} changed while it was being hashed")
                    rep.conflicts += 1
                    return
            if dry_run:
                say(f"download {name}")
                rep.downloaded += 1
                return

            async def fetch() -> Stats:
                remote_map: RemoteMap = await client.get_hashmap(container, name)
                if rh and remote_map.top_hash and remote_map.top_hash != rh:
                    raise Conflict("changed on the server since it was listed")
                return await download_file(
                    client, container, name, dest, remote=remote_map, local=lh, expect=snap, progress=progress
                )

            st = await transfer(name, fetch())
            if st is None:
                return
            say(f"download {name} ({st.blocks_fetched} blocks fetched)")
            rep.downloaded += 1
            rep.bytes_fetched += st.bytes_fetched

    if pull:
        await asyncio.gather(*(pull_one(rel, e) for rel, e in sorted(remote.items())))
        if delete:
            for rel, path in sorted(local.items()):
                if rel not in remote:
                    say(f"delete {path}")
                    if not dry_run:
                        path.unlink(missing_ok=True)
                    rep.deleted += 1
    else:
        await asyncio.gather(*(push_one(rel, p) for rel, p in sorted(local.items())))
        if delete:
            for rel in sorted(remote):
                if rel not in local:
                    name = prefix + rel
                    say(f"delete {name}")
                    if not dry_run:
                        try:
                            await client.delete_object(container, name, ok=(200, 204, 404))
                        except HttpError as exc:
                            say(f"error {name}: {exc}")
                            rep.errors += 1
                            continue
                    rep.deleted += 1
    return rep


@command
async def _sync(args: argparse.Namespace) -> int:
    cfg = cfgmod.load(args)
    cont, prefix = split_target(args.target, need_object=False)
    async with Client(cfg) as c:
        rep = await run_sync(
            c, Path(args.dir), cont, prefix, pull=args.pull, delete=args.delete, dry_run=args.dry_run,
            progress=cfgmod.progress_enabled(args),
        )
    if not args.quiet:
        print(("dry run: " if args.dry_run else "") + rep.line(), file=sys.stderr)
    if rep.conflicts:
        print(f"nefeli: {rep.conflicts} conflict(s): changed on the other side, not overwritten", file=sys.stderr)
    return 1 if rep.conflicts or rep.errors else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sync", help="push a directory tree to CONT[/PREFIX] (or --pull it), by block hashes")
    p.add_argument("dir")
    p.add_argument("target", metavar="CONT[/PREFIX]")
    p.add_argument("--pull", action="store_true", help="download changed objects into DIR instead")
    p.add_argument("--delete", action="store_true", help="remove what the source side does not have")
    p.add_argument("-n", "--dry-run", action="store_true", help="print what would be done")
    cfgmod.add_options(p)
    p.set_defaults(func=_sync)
