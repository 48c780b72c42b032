"""Block-hash upload and download (docs/blockd.md): only the blocks the other side lacks move.

Upload: hash the file locally (native core), PUT ?hashmap, send the missing blocks
(several per ``POST ?update``, a few requests in flight, read with os.pread), PUT again.
Download: GET ?hashmap, hash the old local copy if any, fetch only the differing blocks
with Range GETs into a temp file beside the target, verify the top hash, rename.
"""

from __future__ import annotations

import argparse
import asyncio
import mmap
import os
import secrets
import stat
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

import hashmaps

from . import config as cfgmod
from .client import Client, RemoteMap, split_target
from .errors import CliError, Conflict, HttpError, command
from .file_attrs import MTIME_HEADER, format_mtime, guess_content_type
from .progress import Bar, human

MTIME_META = MTIME_HEADER[len("X-Object-Meta-") :]

HASH_THREADS = 2
HASH_CHUNK_BLOCKS = 16  # blocks hashed per native call (progress granularity)
PARALLEL = 4  # requests in flight
BLOCKS_PER_POST = 4
MAX_RUN_BLOCKS = 8  # blocks per Range GET
IO_CHUNK = 1 << 20
PUT_ATTEMPTS = 4


@dataclass
class LocalHashes:
    size: int
    digests: list[bytes]
    top: bytes
    scheme: str
    block_size: int

    @property
    def hexes(self) -> list[str]:
        return [d.hex() for d in self.digests]


@dataclass
class Stats:
    blocks_sent: int = 0
    bytes_sent: int = 0
    blocks_fetched: int = 0
    bytes_fetched: int = 0
    blocks_copied: int = 0
    status: str = ""
    etag: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


async def gather_or_cancel(coros: list[Coroutine[Any, Any, None]]) -> None:
    """Run the coroutines as concurrent tasks; if one fails (or this is cancelled),
    cancel the others and wait for them to finish before re-raising."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def nblocks(size: int, block_size: int) -> int:
    return -(-size // block_size)


def hash_local(path: str | os.PathLike[str], scheme: str, block_size: int, progress: bool = False) -> LocalHashes:
    """Hash a local file with the native core (2 threads), with a progress bar on stderr."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0 or not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            fh = hashmaps.hash_file(path, scheme, block_size, HASH_THREADS)
            return LocalHashes(fh.size, list(fh.digests), fh.top_hash, scheme, block_size)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm, Bar(f"hash {Path(path).name}", size, progress) as bar:
            view = memoryview(mm)
            try:
                parts: list[bytes] = []
                step = block_size * HASH_CHUNK_BLOCKS
                for off in range(0, len(mm), step):
                    chunk = view[off : off + step]
                    parts.append(hashmaps.block_digests_packed(chunk, scheme, block_size, HASH_THREADS))
                    bar.update(len(chunk))
                    del chunk
                packed = b"".join(parts)
                size = len(mm)
            finally:
                view.release()
    return LocalHashes(size, hashmaps.unpack(packed), hashmaps.top_hash(packed, size, scheme), scheme, block_size)


# -- upload --------------------------------------------------------------------


async def upload_file(
    client: Client,
    path: str | os.PathLike[str],
    container: str,
    obj: str,
    *,
    local: LocalHashes | None = None,
    if_match: str | None = None,
    if_none_match: bool = False,
    progress: bool = False,
    parallel: int = PARALLEL,
    blocks_per_post: int = BLOCKS_PER_POST,
    create_container: bool = True,
    content_type: str | None = None,
) -> Stats:
    """Upload `path` as CONT/OBJ sending only missing blocks.  Raises Conflict on 412.

    The object's Content-Type is ``content_type``, else guessed from OBJ's name; its
    X-Object-Meta-Mtime is the file's mtime (read before hashing: a later change
    makes the upload fail or shows as a changed mtime, never a stale one)."""
    mtime_ns = os.stat(path).st_mtime_ns
    ctype = content_type or guess_content_type(obj)
    if local is None:
        info = await (client.ensure_container(container) if create_container else client.head_container(container))
        local = await asyncio.to_thread(hash_local, path, info.block_hash, info.block_size, progress)
    stats = Stats()
    hexes = local.hexes
    with Bar(f"send {Path(path).name}", None, progress) as bar:
        for _attempt in range(PUT_ATTEMPTS):
            try:
                status, headers, missing = await client.put_hashmap(
                    container, obj, local.size, hexes, if_match=if_match, if_none_match=if_none_match,
                    content_type=ctype, meta={MTIME_META: format_mtime(mtime_ns)},
                )
            except HttpError as exc:
                if exc.status == 412:
                    raise Conflict(f"{container}/{obj} changed on the server (412 Precondition Failed); not overwritten") from None
                raise
            if status == 201:
                h = {k.lower(): v for k, v in headers.items()}
                stats.status = "created"
                stats.etag = h.get("etag")
                return stats
            await _send_missing(client, path, container, local, missing, bar, stats, parallel, blocks_per_post)
    raise CliError(f"{container}/{obj}: the server still lacks blocks after {PUT_ATTEMPTS} rounds")


async def _send_missing(
    client: Client,
    path: str | os.PathLike[str],
    container: str,
    local: LocalHashes,
    missing: list[str],
    bar: Bar,
    stats: Stats,
    parallel: int,
    blocks_per_post: int,
) -> None:
    index: dict[str, int] = {}
    for i, d in enumerate(local.digests):
        index.setdefault(d.hex(), i)
    unknown = [m for m in missing if m not in index]
    if unknown:
        raise CliError(f"server asked for blocks that are not in the file: {unknown[0]}...")
    todo = sorted({index[m] for m in missing})
    bs, size = local.block_size, local.size

    def length(i: int) -> int:
        return min(bs, size - i * bs)

    bar.set_total(sum(length(i) for i in todo))
    batches = [todo[k : k + blocks_per_post] for k in range(0, len(todo), blocks_per_post)]
    sem = asyncio.Semaphore(parallel)
    fd = os.open(path, os.O_RDONLY)
    mm: mmap.mmap | None = None
    view: memoryview | None = None
    try:
        try:
            # Blocks go to the socket straight from the page cache (no read copy).
            # A file cut short meanwhile makes the send fail (EFAULT), never the client.
            mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            view = memoryview(mm)
        except (OSError, ValueError):
            mm = view = None

        async def body(batch: list[int]) -> AsyncIterator[Any]:
            for i in batch:
                off, ln = i * bs, length(i)
                if view is not None:
                    if off + ln > len(view):
                        raise CliError(f"{path}: file shrank while uploading")
                    bar.update(ln)
                    yield view[off : off + ln]
                    continue
                pos = 0
                while pos < ln:
                    buf = os.pread(fd, min(IO_CHUNK, ln - pos), off + pos)
                    if not buf:
                        raise CliError(f"{path}: file shrank while uploading")
                    pos += len(buf)
                    bar.update(len(buf))
                    yield buf

        async def send(batch: list[int]) -> None:
            total = sum(length(i) for i in batch)
            async with sem:
                for attempt in range(3):
                    before = bar.n
                    try:
                        got = await client.post_blocks(container, body(batch), total)
                        break
                    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
                        bar.update(before - bar.n)
                        if attempt == 2:
                            raise
            want = [local.digests[i].hex() for i in batch]
            if got != want:
                raise CliError(
                    f"{path}: the server stored different blocks than hashed (file changed while uploading?); "
                    f"expected {want[0][:16]}..., got {got[0][:16] if got else 'nothing'}..."
                )
            stats.blocks_sent += len(batch)
            stats.bytes_sent += total

        await gather_or_cancel([send(b) for b in batches])
    finally:
        try:
            if view is not None:
                view.release()
            if mm is not None:
                mm.close()
        except BufferError:  # a slice still held by a finished transport: the GC closes it
            pass
        os.close(fd)


# -- download ------------------------------------------------------------------


def _zero_digest(scheme: str, length: int, cache: dict[int, str]) -> str:
    if length not in cache:
        cache[length] = hashmaps.zero_block_digest(scheme, length).hex()
    return cache[length]


def remote_top(remote: RemoteMap) -> bytes:
    n = nblocks(remote.size, remote.block_size)
    hashes = remote.hashes[:n] if n else remote.hashes[: (1 if remote.block_hash == "sha256" else 0)]
    return hashmaps.top_hash([bytes.fromhex(h) for h in hashes], remote.size, remote.block_hash)


Snapshot = tuple[int, int] | None  # (mtime_ns, size) of a local file, None = absent


def snapshot(path: str | os.PathLike[str]) -> Snapshot:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)


async def download_file(
    client: Client,
    container: str,
    obj: str,
    dest: str | os.PathLike[str],
    *,
    remote: RemoteMap | None = None,
    local: LocalHashes | None = None,
    expect: Snapshot | bool = False,
    progress: bool = False,
    parallel: int = PARALLEL,
    make_parents: bool = True,
) -> Stats:
    """Fetch CONT/OBJ into `dest`, reusing the blocks an old `dest` already has.

    `expect`: a snapshot of `dest` taken when the caller decided to download; if
    `dest` differs from it at the end, raise Conflict and leave `dest` alone.
    The file gets the object's X-Object-Meta-Mtime (else its Last-Modified) as
    its mtime.  ``make_parents`` False: a missing parent directory is an error."""
    dest = Path(dest)
    if remote is None:
        remote = await client.get_hashmap(container, obj)
    bs, size, scheme = remote.block_size, remote.size, remote.block_hash
    want_top = remote_top(remote)
    n = nblocks(size, bs)
    if len(remote.hashes) < n:
        raise CliError(f"{container}/{obj}: the server's hashmap has {len(remote.hashes)} hashes for {n} blocks")
    old_fd: int | None = None
    if local is None and dest.is_file() and size > 0:
        local = await asyncio.to_thread(hash_local, dest, scheme, bs, progress)
    if local is not None and (local.scheme != scheme or local.block_size != bs):
        local = None
    have: dict[str, int] = {}
    if local is not None:
        for i, d in enumerate(local.digests[: nblocks(local.size, bs)]):
            have.setdefault(d.hex(), i)
    zeros: dict[int, str] = {}
    copy: list[tuple[int, int]] = []  # (remote index, local index)
    fetch: list[int] = []
    for i in range(n):
        ln = min(bs, size - i * bs)
        h = remote.hashes[i]
        if h == _zero_digest(scheme, ln, zeros):
            continue  # a hole: the temp file reads as zeros
        j = have.get(h)
        if j is not None and (j == i or scheme == "sha256" or min(bs, local.size - j * bs) == ln):  # type: ignore[union-attr]
            copy.append((i, j))
        else:
            fetch.append(i)
    stats = Stats()
    if make_parents:
        dest.parent.mkdir(parents=True, exist_ok=True)
    elif not dest.parent.is_dir():
        raise CliError(f"{dest.parent}: no such directory")
    tmp = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.nefeli-part"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        if copy:
            old_fd = os.open(dest, os.O_RDONLY)
            await asyncio.to_thread(_copy_blocks, old_fd, fd, copy, bs, size, local.size)  # type: ignore[union-attr]
            stats.blocks_copied = len(copy)
        runs = _runs(fetch, MAX_RUN_BLOCKS)
        total = sum(min(bs, size - i * bs) for i in fetch)
        writer = _BlockWriter(fd, scheme)
        with Bar(f"get {Path(obj).name}", total, progress) as bar:
            sem = asyncio.Semaphore(parallel)
            free: list[bytearray] = []  # block buffers to reuse (fresh memory costs page faults)

            def buffer(n: int) -> bytearray:
                return free.pop() if n == bs and free else bytearray(n)

            async def put_block(blk: bytearray, offset: int, want_hex: str) -> None:
                await asyncio.to_thread(writer.write, blk, offset, want_hex)
                if len(blk) == bs and len(free) < 4 * parallel:
                    free.append(blk)  # only after a successful write

            async def get(run: tuple[int, int]) -> None:
                a = run[0] * bs
                b = min(size, run[1] * bs) - 1
                url = client.url(container, obj)
                async with sem:
                    async with client.session.get(url, headers={"Range": f"bytes={a}-{b}"}) as resp:
                        if resp.status not in (200, 206) or (resp.status == 200 and (a != 0 or b != size - 1)):
                            body = await resp.read()
                            from .client import body_text

                            raise HttpError("GET", str(url), resp.status, resp.reason or "", body_text(body))
                        # Each block is assembled in its own buffer, then checked against
                        # the hashmap and written (one pwrite) on a thread while the next
                        # one arrives.
                        i = run[0]
                        blk = buffer(min(bs, size - i * bs))
                        fill = 0
                        pending: deque[asyncio.Future[None]] = deque()
                        try:
                            while True:
                                chunk, end_of_http_chunk = await resp.content.readchunk()
                                if not chunk:
                                    if end_of_http_chunk:
                                        continue
                                    break
                                mv = memoryview(chunk)
                                off = 0
                                while off < len(mv):
                                    if i >= run[1]:
                                        raise CliError(f"{container}/{obj}: the server sent more than the range asked for")
                                    take = min(len(blk) - fill, len(mv) - off)
                                    blk[fill : fill + take] = mv[off : off + take]
                                    fill += take
                                    off += take
                                    if fill == len(blk):
                                        pending.append(
                                            asyncio.ensure_future(put_block(blk, i * bs, remote.hashes[i]))
                                        )
                                        bar.update(len(blk))
                                        i += 1
                                        fill = 0
                                        if i < run[1]:
                                            blk = buffer(min(bs, size - i * bs))
                                        while len(pending) > 2:
                                            await pending.popleft()
                            if i != run[1] or fill:
                                got = sum(min(bs, size - k * bs) for k in range(run[0], i)) + fill
                                raise CliError(f"{container}/{obj}: short read ({got} of {b + 1 - a} bytes)")
                            while pending:
                                await pending.popleft()
                        finally:
                            if pending:
                                await asyncio.gather(*pending, return_exceptions=True)
                stats.blocks_fetched += run[1] - run[0]
                stats.bytes_fetched += b + 1 - a

            await gather_or_cancel([get(r) for r in runs])
        os.ftruncate(fd, size)
        await asyncio.to_thread(os.fsync, fd)
        if copy:
            # Blocks copied from the old local file were hashed before the copy; check
            # the whole result.  (Fetched blocks were each checked against the hashmap.)
            got = await asyncio.to_thread(hash_local, tmp, scheme, bs, False)
            if got.top != want_top:
                raise CliError(
                    f"{container}/{obj}: downloaded data does not match the server's hash "
                    f"({got.top.hex()[:16]}... != {want_top.hex()[:16]}...); the object may have changed meanwhile, retry"
                )
        if remote.top_hash and len(remote.top_hash) == 64 and remote.top_hash != want_top.hex():
            stats.extra["warning"] = f"X-Object-Hash {remote.top_hash} differs from the hashmap's top hash"
        if old_fd is not None:
            try:
                os.fchmod(fd, stat.S_IMODE(os.fstat(old_fd).st_mode))
            except OSError:
                pass
        if remote.mtime_ns is not None:
            try:
                os.utime(fd, ns=(time.time_ns(), remote.mtime_ns))
            except (OSError, OverflowError, ValueError):
                stats.extra["warning"] = f"cannot set the mtime of {dest} to {remote.mtime_ns / 1e9:.9f}"
        if expect is not False and snapshot(dest) != expect:
            raise Conflict(f"{dest}: changed locally while downloading; not overwritten")
        os.replace(tmp, dest)
        stats.status = "downloaded"
        return stats
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    finally:
        os.close(fd)
        if old_fd is not None:
            os.close(old_fd)


class _BlockWriter:
    """Writes fetched blocks into the temp file (from threads), each checked first
    against its digest in the hashmap; starts the disk writing early so the final
    fsync has little left to wait for."""

    FLUSH_EVERY = 16 << 20

    def __init__(self, fd: int, scheme: str) -> None:
        self.fd = fd
        self.scheme = scheme
        self._lock = threading.Lock()
        self._unflushed = 0

    def write(self, block: bytearray, offset: int, want_hex: str) -> None:
        got = hashmaps.block_digest(block, self.scheme)
        if got.hex() != want_hex:
            raise CliError(
                f"a block at offset {offset} does not match the server's hashmap "
                f"({got.hex()[:16]}... != {want_hex[:16]}...); the object may have changed meanwhile, retry"
            )
        mv = memoryview(block)
        done = 0
        while done < len(mv):
            n = os.pwrite(self.fd, mv[done:], offset + done)
            if n <= 0:
                raise CliError("short write to the download's temp file")
            done += n
        with self._lock:
            self._unflushed += len(mv)
            kick = self._unflushed >= self.FLUSH_EVERY
            if kick:
                self._unflushed = 0
        if kick and hasattr(os, "posix_fadvise"):
            # Start writing back what is dirty (does not wait); the fsync at the end
            # then only waits for the rest.
            try:
                os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
            except OSError:
                pass


def _copy_blocks(src: int, dst: int, pairs: list[tuple[int, int]], bs: int, size: int, src_size: int) -> None:
    for i, j in pairs:
        ln = min(bs, size - i * bs, max(0, src_size - j * bs))  # sha256: a shorter old block is zero-padded
        off_in, off_out, left = j * bs, i * bs, ln
        while left > 0:
            try:
                done = os.copy_file_range(src, dst, left, off_in, off_out)
            except OSError:
                done = 0
            if done <= 0:
                buf = os.pread(src, min(left, IO_CHUNK), off_in)
                if not buf:
                    break
                done = os.pwrite(dst, buf, off_out)
            off_in += done
            off_out += done
            left -= done


def _runs(indices: list[int], max_len: int) -> list[tuple[int, int]]:
    """Sorted block indices → half-open runs [start, end) of at most max_len blocks."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i and i - runs[-1][0] < max_len:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


# -- commands ------------------------------------------------------------------


@command
async def _upload(args: argparse.Namespace) -> int:
    cfg = cfgmod.load(args)
    if "/" not in args.target.lstrip("/"):
        raise CliError(f"bad target {args.target!r}: expected CONTAINER/OBJECT, or CONTAINER/ to use the file's name")
    cont, obj = split_target(args.target, need_object=False)
    if not obj or obj.endswith("/"):  # CONT/ or CONT/DIR/: named after the file
        obj += Path(args.file).name
    if not os.path.isfile(args.file):
        raise CliError(f"{args.file}: not a regular file")
    async with Client(cfg) as c:
        st = await upload_file(
            c, args.file, cont, obj, progress=cfgmod.progress_enabled(args), parallel=args.parallel,
            content_type=args.content_type,
        )
    if not args.quiet:
        print(f"{cont}/{obj}: uploaded, sent {st.blocks_sent} blocks ({human(st.bytes_sent)})", file=sys.stderr)
    return 0


@command
async def _download(args: argparse.Namespace) -> int:
    cfg = cfgmod.load(args)
    cont, obj = split_target(args.target)
    dest = Path(args.file)
    if dest.is_dir():
        dest = dest / Path(obj).name
    if not dest.parent.is_dir():  # checked before any request, so nothing is fetched in vain
        raise CliError(f"{dest.parent}: no such directory")
    async with Client(cfg) as c:
        st = await download_file(
            c, cont, obj, dest, progress=cfgmod.progress_enabled(args), parallel=args.parallel, make_parents=False
        )
    if not args.quiet:
        print(
            f"{dest}: fetched {st.blocks_fetched} blocks ({human(st.bytes_fetched)}), reused {st.blocks_copied}",
            file=sys.stderr,
        )
        if "warning" in st.extra:
            print(f"nefeli: warning: {st.extra['warning']}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upload", help="upload a file, sending only the blocks the server lacks",
        description="CONT/ or CONT/DIR/ names the object after the file. The object's Content-Type is guessed "
        "from its name (--content-type overrides); the file's mtime is kept in X-Object-Meta-Mtime.",
    )
    p.add_argument("file")
    p.add_argument("target", metavar="CONT/OBJ")
    p.add_argument("--content-type", metavar="TYPE", help="the object's Content-Type (default: guessed from its name)")
    p.add_argument("--parallel", type=int, default=PARALLEL, help="requests in flight (default %(default)s)")
    cfgmod.add_options(p)
    p.set_defaults(func=_upload)

    p = sub.add_parser(
        "download", help="download an object, fetching only the blocks that differ locally",
        description="FILE may be an existing directory; a missing directory is an error. The file gets the "
        "object's X-Object-Meta-Mtime (else its Last-Modified) as its mtime.",
    )
    p.add_argument("target", metavar="CONT/OBJ")
    p.add_argument("file")
    p.add_argument("--parallel", type=int, default=PARALLEL, help="requests in flight (default %(default)s)")
    cfgmod.add_options(p)
    p.set_defaults(func=_download)
