"""`nefeli sync DIR CONT[/PREFIX]`: push (or --pull) a directory tree by block hashes.

Push: a file moves when its local top hash differs from the listing's
x_object_hash (or the object is new); the final hashmap PUT carries If-Match with
the remote hash the decision was based on (If-None-Match: * for a new object), so
a concurrent change on the server is a conflict (412), reported and not overwritten.
Pull: the same in reverse; the local file's (mtime, size) snapshot taken when it was
hashed must still hold just before the rename.

Directories travel as Pithos clients keep them: a directory marker, a 0-byte object of
type application/directory named after the directory's path under PREFIX (DIR itself
is the marker PREFIX when there is one). Push creates missing markers with
If-None-Match: *; pull turns markers into local directories, never into files. A name
that is a file on one side and a directory on the other is a conflict: reported, and
neither side is overwritten or deleted. With --delete, markers and empty local
directories go the way of files.

Symbolic links are neither followed nor replaced: push skips them (and what is under a
linked directory), pull reports a conflict where an object would land on or under one.
A name from the server that would leave DIR (absolute, a '..' segment, not under PREFIX)
is refused, so nothing outside DIR is ever written.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import stat
import sys
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import config as cfgmod
from .client import CONTAINER_BLOCK_SIZE, CONTAINER_HASH, Client, ContainerInfo, RemoteMap, split_target
from .errors import CliError, Conflict, HttpError, command
from .progress import human
from .transfer import LocalHashes, Stats, download_file, hash_local, snapshot, upload_file

DIRECTORY_TYPES = ("application/directory", "application/folder")
FILES_IN_FLIGHT = 4
PART_SUFFIX = ".nefeli-part"

T = TypeVar("T")


@dataclass
class Report:
    uploaded: int = 0
    downloaded: int = 0
    deleted: int = 0
    unchanged: int = 0
    dirs_created: int = 0
    dirs_removed: int = 0
    conflicts: int = 0
    errors: int = 0
    bytes_sent: int = 0
    bytes_fetched: int = 0

    def line(self) -> str:
        return (
            f"{self.uploaded} uploaded, {self.downloaded} downloaded, {self.deleted} deleted, {self.unchanged} unchanged, "
            f"{self.dirs_created} directories created, {self.dirs_removed} removed, "
            f"{self.conflicts} conflicts, {self.errors} errors; sent {human(self.bytes_sent)}, "
            f"fetched {human(self.bytes_fetched)}"
        )


# -- the local side ------------------------------------------------------------


@dataclass
class LocalTree:
    """What sync manages under DIR, by relative POSIX name: regular files and real
    directories (not DIR itself).  Symlinks, special files and partial downloads are
    left out; names that are not UTF-8 cannot be object names and are listed apart."""

    files: dict[str, Path] = field(default_factory=dict)
    dirs: dict[str, Path] = field(default_factory=dict)
    undecodable: list[str] = field(default_factory=list)


def _is_utf8(name: str) -> bool:
    """os.walk hands undecodable bytes back as surrogates, which no object name can hold."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def local_tree(root: Path) -> LocalTree:
    tree = LocalTree()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        keep: list[str] = []
        for d in sorted(dirnames):
            p = here / d
            if p.is_symlink():
                continue
            rel = p.relative_to(root).as_posix()
            if not _is_utf8(d):
                tree.undecodable.append(rel)
                continue
            tree.dirs[rel] = p
            keep.append(d)
        dirnames[:] = keep  # not into linked or undecodable directories
        for name in filenames:
            p = here / name
            if name.endswith(PART_SUFFIX) or p.is_symlink() or not p.is_file():
                continue
            rel = p.relative_to(root).as_posix()
            if not _is_utf8(name):
                tree.undecodable.append(rel)
                continue
            tree.files[rel] = p
    return tree


def local_files(root: Path) -> dict[str, Path]:
    """Relative POSIX names → paths of the regular files under root (symlinks not followed)."""
    return local_tree(root).files


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a file"
    return "a special file"


def _lstat_mode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return None


def blocked_parent(root: Path, rel: str) -> tuple[str, str] | None:
    """The first parent of root/rel (below root) that is not a real directory, as
    (relative name, what it is); None when every existing parent is a directory.
    A link there would lead a write outside DIR, a file there is a name collision."""
    parts = rel.split("/")[:-1]
    for i in range(len(parts)):
        sub = "/".join(parts[: i + 1])
        mode = _lstat_mode(root / sub)
        if mode is None:
            return None
        if not stat.S_ISDIR(mode):
            return sub, _kind(mode)
    return None


# -- the remote side -----------------------------------------------------------


def unsafe_reason(rel: str) -> str | None:
    """Why a relative name from the server must not become a local path, or None."""
    if not rel:
        return "empty name"
    if "\0" in rel:
        return "NUL byte"
    if rel.startswith("/"):
        return "absolute path"
    parts = rel.split("/")
    if ".." in parts:
        return "'..' segment"
    if any(p in ("", ".") for p in parts):
        return "empty or '.' segment"
    return None


def safe_relative(name: str) -> bool:
    return unsafe_reason(name) is None


def remote_hash(entry: dict[str, Any]) -> str | None:
    h = entry.get("x_object_hash") or entry.get("hash")
    return str(h).lower() if h else None


def is_directory(entry: dict[str, Any]) -> bool:
    return str(entry.get("content_type") or "").split(";", 1)[0].strip().lower() in DIRECTORY_TYPES


@dataclass
class RemoteTree:
    """The listing under PREFIX by relative name: objects, and directory markers (a
    trailing '/' some clients put on markers is dropped).  Names that cannot be local
    paths are kept apart with the reason."""

    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    dirs: dict[str, dict[str, Any]] = field(default_factory=dict)
    unsafe: list[tuple[str, str]] = field(default_factory=list)

    def implied_dirs(self) -> set[str]:
        """Every directory some object or marker lies under."""
        out: set[str] = set()
        for rel in [*self.files, *self.dirs]:
            parts = rel.split("/")[:-1]
            out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        return out


def remote_tree(entries: list[dict[str, Any]], prefix: str) -> RemoteTree:
    tree = RemoteTree()
    for e in entries:
        name = e.get("name")
        if not isinstance(name, str) or not name:
            continue
        if not name.startswith(prefix):
            tree.unsafe.append((name, f"not under the prefix {prefix!r}"))
            continue
        rel = name[len(prefix) :]
        directory = is_directory(e)
        if directory:
            if rel in ("", "/"):
                continue  # the marker of PREFIX itself: DIR
            if rel.endswith("/"):
                rel = rel[:-1]
        why = unsafe_reason(rel)
        if why is not None:
            tree.unsafe.append((name, why))
        elif directory:
            tree.dirs[rel] = e
        else:
            tree.files[rel] = e
    return tree


def _deepest_first(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: (-n.count("/"), n))


# -- sync ----------------------------------------------------------------------


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
    def say(msg: str) -> None:
        print(msg, file=out, flush=True)

    entries: list[dict[str, Any]] = []
    if pull or dry_run:
        try:
            info = await client.head_container(container)
        except HttpError as exc:
            if exc.status != 404 or pull:
                raise
            # a dry run to a container that is not there yet: what a real run would create
            info = ContainerInfo(container, CONTAINER_BLOCK_SIZE, CONTAINER_HASH, {})
            say(f"create container {container}")
        else:
            entries = await client.list_objects(container, prefix)
    else:
        info = await client.ensure_container(container)
        entries = await client.list_objects(container, prefix)
    remote = remote_tree(entries, prefix)
    remote_parents = remote.implied_dirs()
    if pull:
        root.mkdir(parents=True, exist_ok=True)
    elif not root.is_dir():
        raise CliError(f"{root}: not a directory")
    local = local_tree(root)
    sem = asyncio.Semaphore(FILES_IN_FLIGHT)
    #: relative names in a file/directory collision: nothing at or under them is changed
    collided: set[str] = set()

    def left_alone(rel: str) -> bool:
        """At or under a name in collision: neither side is changed there."""
        parts = rel.split("/")
        return any("/".join(parts[: i + 1]) in collided for i in range(len(parts)))

    def error(name: object, why: object) -> None:
        say(f"error {name}: {why}")
        rep.errors += 1

    def conflict(name: str, why: str, rel: str | None = None) -> None:
        say(f"conflict {name}: {why}; not overwritten")
        rep.conflicts += 1
        if rel is not None:
            collided.add(rel)

    async def transfer(name: str, work: Awaitable[T]) -> T | None:
        """One remote step (an upload, a download, a HEAD); a conflict or an error is reported and counted (None)."""
        try:
            return await work
        except Conflict as exc:
            say(f"conflict {name}: {exc}")
            rep.conflicts += 1
        except (HttpError, CliError, OSError) as exc:
            error(name, exc)
        return None

    # -- push ------------------------------------------------------------------

    async def make_marker(name: str) -> None:
        """Create one directory marker; one made meanwhile by someone else is as good."""
        if dry_run:
            say(f"mkdir {name}")
            rep.dirs_created += 1
            return
        async with sem:
            try:
                await client.put_directory(container, name)
            except Conflict:
                h = await transfer(name, client.head_object(container, name))
                if h is not None and not is_directory({"content_type": h.get("content-type")}):
                    conflict(name, "a directory here, created on the server meanwhile as a file")
                return
            except (HttpError, CliError) as exc:
                error(name, exc)
                return
        say(f"mkdir {name}")
        rep.dirs_created += 1

    async def root_marker() -> None:
        """DIR itself is the marker PREFIX (without its '/'), as a Pithos client uploading
        a directory to CONT/PREFIX would leave it; it is not in the PREFIX/ listing."""
        name = prefix[:-1]
        try:
            h = await client.head_object(container, name)
        except HttpError as exc:
            if exc.status != 404:
                error(name, exc)
                return
            await make_marker(name)
            return
        if not is_directory({"content_type": h.get("content-type")}):
            conflict(name, f"{root} is a directory here, a file on the server")

    async def push_one(rel: str, path: Path) -> None:
        async with sem:
            e = remote.files.get(rel)
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

    async def delete_remote(name: str, verb: str) -> bool:
        say(f"{verb} {name}")
        if not dry_run:
            try:
                await client.delete_object(container, name, ok=(200, 204, 404))
            except HttpError as exc:
                error(name, exc)
                return False
        return True

    async def push_tree() -> None:
        for rel in local.undecodable:
            error(os.fsencode(rel).decode("utf-8", "backslashreplace"), "not valid UTF-8, cannot be an object name")
        for rel in sorted(local.files):
            if rel in remote.dirs or rel in remote_parents:
                conflict(prefix + rel, "a file here, a directory on the server", rel)
        for rel in sorted(local.dirs):
            if rel in remote.files:
                conflict(prefix + rel, "a directory here, a file on the server (nothing under it is pushed)", rel)
        if prefix:
            await root_marker()
        # markers before files, as a Pithos client makes a directory before filling it
        await asyncio.gather(
            *(make_marker(prefix + rel) for rel in sorted(local.dirs) if rel not in remote.dirs and not left_alone(rel))
        )
        await asyncio.gather(*(push_one(rel, p) for rel, p in sorted(local.files.items()) if not left_alone(rel)))
        if delete:
            for rel in sorted(remote.files):
                if rel not in local.files and not left_alone(rel) and await delete_remote(remote.files[rel]["name"], "delete"):
                    rep.deleted += 1
            for rel in _deepest_first(list(remote.dirs)):
                if rel not in local.dirs and not left_alone(rel) and await delete_remote(remote.dirs[rel]["name"], "rmdir"):
                    rep.dirs_removed += 1
            # no local file can have such a name ('a//b'), so it is not on the source side
            for name, _ in remote.unsafe:
                if name.startswith(prefix) and await delete_remote(name, "delete"):
                    rep.deleted += 1

    # -- pull ------------------------------------------------------------------

    def blocked(name: str, rel: str) -> bool:
        """A conflict when a parent of rel is a local file or link (nothing is written through a link)."""
        hit = blocked_parent(root, rel)
        if hit is None:
            return False
        sub, kind = hit
        if kind == "a symlink":
            kind += " (sync never follows one)"
        conflict(name, f"{root / sub} is {kind} here, a directory on the server", sub)
        return True

    def pull_dir(rel: str) -> None:
        name = prefix + rel
        if blocked(name, rel):
            return
        dest = root / rel
        mode = _lstat_mode(dest)
        if mode is not None:
            if not stat.S_ISDIR(mode):
                conflict(name, f"a directory on the server, {dest} is {_kind(mode)} here", rel)
            return
        if not dry_run:
            try:
                dest.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                error(name, exc)
                return
        say(f"mkdir {dest}")
        rep.dirs_created += 1

    async def pull_one(rel: str, e: dict[str, Any]) -> None:
        async with sem:
            name = prefix + rel
            if rel in remote.dirs or rel in remote_parents:
                conflict(name, "both a file and a directory on the server", rel)
                return
            if blocked(name, rel):
                return
            dest = root / rel
            mode = _lstat_mode(dest)
            if mode is not None and not stat.S_ISREG(mode):
                conflict(name, f"a file on the server, {dest} is {_kind(mode)} here", rel)
                return
            snap = snapshot(dest)
            rh = remote_hash(e)
            lh: LocalHashes | None = None
            if snap is not None:
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

    def remove_local_dir(rel: str) -> None:
        """rmdir only: a directory still holding what sync leaves alone (links, special
        files, undecodable names) stays."""
        path = root / rel
        if not dry_run:
            try:
                path.rmdir()
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    say(f"keep {path}: holds entries sync does not manage")
                else:
                    error(path, exc.strerror or exc)
                return
        say(f"rmdir {path}")
        rep.dirs_removed += 1

    async def pull_tree() -> None:
        for name, why in remote.unsafe:
            error(name, f"unsafe name from the server ({why}), refused: nothing is written outside {root}")
        for rel in sorted(remote.dirs):  # parents before children
            pull_dir(rel)
        await asyncio.gather(*(pull_one(rel, e) for rel, e in sorted(remote.files.items())))
        if delete:
            for rel, path in sorted(local.files.items()):
                if rel not in remote.files and not left_alone(rel):
                    say(f"delete {path}")
                    if not dry_run:
                        path.unlink(missing_ok=True)
                    rep.deleted += 1
            for rel in _deepest_first(list(local.dirs)):
                if rel not in remote.dirs and rel not in remote_parents and not left_alone(rel):
                    remove_local_dir(rel)

    await (pull_tree() if pull else push_tree())
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
        print(f"nefeli: {rep.conflicts} conflict(s): the two sides disagree, nothing overwritten", file=sys.stderr)
    return 1 if rep.conflicts or rep.errors else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sync",
        help="push a directory tree to CONT[/PREFIX] (or --pull it), by block hashes",
        description="Directories, empty ones too, travel as Pithos directory markers (application/directory "
        "objects). Symbolic links are skipped, never followed. A name that is a file on one side and a "
        "directory on the other is a conflict: reported, not overwritten.",
    )
    p.add_argument("dir")
    p.add_argument("target", metavar="CONT[/PREFIX]")
    p.add_argument("--pull", action="store_true", help="download changed objects into DIR instead")
    p.add_argument(
        "--delete", action="store_true",
        help="remove what the source side does not have (files, directory markers, empty directories)",
    )
    p.add_argument("-n", "--dry-run", action="store_true", help="print what would be done")
    cfgmod.add_options(p)
    p.set_defaults(func=_sync)
