"""Extent files: where a volume's owned and frozen blocks live.

Block i of a volume sits at offset i × block size of its extent file, a
sparse file; blocks the volume does not own are holes.  A volume writes to
one extent; a snapshot freezes it (it becomes read-only, named by the FROZEN
entries of the maps that share it) and the volume gets a fresh one.  Frozen
extents are hashed into the block store in the background and then deleted.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import threading
from pathlib import Path

EXTENTS_DIR = "extents"
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def extent_name(extent: int) -> str:
    return f"{extent:08x}.ext"


def punch(fd: int, offset: int, length: int) -> None:
    """Make [offset, offset+length) a hole (reads as zeros, frees the space)."""
    if _libc.fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
        return
    err = ctypes.get_errno()
    if err not in (errno.EOPNOTSUPP, errno.ENOSYS):
        raise OSError(err, os.strerror(err))
    zeros = bytes(min(length, 1 << 20))  # a file system without holes: write the zeros
    done = 0
    while done < length:
        n = os.pwrite(fd, zeros[: min(len(zeros), length - done)], offset + done)
        done += n


class ExtentFiles:
    """Open extent files by id, shared by every volume that reads them."""

    def __init__(self, root: Path) -> None:
        self.dir = root / EXTENTS_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self._fds: dict[int, int] = {}
        self._pins: dict[int, int] = {}  # readers working on an extent without the volume's lock
        self._doomed: set[int] = set()  # removed while pinned: closed by the last unpin
        self._lock = threading.Lock()

    def path(self, extent: int) -> Path:
        return self.dir / extent_name(extent)

    def create(self, extent: int) -> int:
        """A new, empty extent file, durable in its directory."""
        fd = os.open(self.path(extent), os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with self._lock:
            self._fds[extent] = fd
        self.sync_dir()
        return fd

    def fd(self, extent: int) -> int:
        with self._lock:
            fd = self._fds.get(extent)
            if fd is None:
                fd = os.open(self.path(extent), os.O_RDWR | os.O_CLOEXEC)
                self._fds[extent] = fd
            return fd

    def pin(self, extent: int) -> None:
        """Keep the extent's descriptor open until unpin(), even if it is removed meanwhile."""
        with self._lock:
            self._pins[extent] = self._pins.get(extent, 0) + 1

    def unpin(self, extent: int) -> None:
        with self._lock:
            n = self._pins[extent] - 1
            if n:
                self._pins[extent] = n
                return
            del self._pins[extent]
            fd = self._fds.pop(extent, None) if extent in self._doomed else None
            self._doomed.discard(extent)
        if fd is not None:
            os.close(fd)

    def read_into(self, extent: int, offset: int, out: memoryview) -> None:
        """Fill `out` from the extent at `offset`; past the end of the file reads zeros."""
        fd = self.fd(extent)
        done = 0
        while done < len(out):
            n = os.preadv(fd, [out[done:]], offset + done)
            if n == 0:
                out[done:] = bytes(len(out) - done)
                return
            done += n

    def read_cached(self, extent: int, offset: int, out: memoryview) -> bool:
        """Fill `out` only from the page cache (preadv2 RWF_NOWAIT): False when that would wait
        for the disk, so the caller can do the read on a thread instead of the event loop."""
        flags = getattr(os, "RWF_NOWAIT", 0)
        if not flags:
            return False
        fd = self.fd(extent)
        done = 0
        while done < len(out):
            try:
                n = os.preadv(fd, [out[done:]], offset + done, flags)
            except (BlockingIOError, OSError):
                return False
            if n == 0:  # past the end of the file: a hole
                out[done:] = bytes(len(out) - done)
                return True
            done += n
        return True

    def write(self, extent: int, offset: int, data: memoryview | bytes) -> None:
        fd = self.fd(extent)
        view = memoryview(data)
        done = 0
        while done < len(view):
            done += os.pwrite(fd, view[done:], offset + done)

    def punch(self, extent: int, offset: int, length: int) -> None:
        punch(self.fd(extent), offset, length)

    def sync(self, extent: int) -> None:
        os.fdatasync(self.fd(extent))

    def sync_dir(self) -> None:
        dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def allocated(self, extent: int) -> int:
        """Bytes of disk the extent uses (holes free)."""
        try:
            return os.stat(self.path(extent)).st_blocks * 512
        except FileNotFoundError:
            return 0

    def remove(self, extent: int) -> None:
        """Unlink the file; its descriptor closes now, or when the last pinned reader is done."""
        with self._lock:
            if extent in self._pins:
                self._doomed.add(extent)
                fd = None
            else:
                fd = self._fds.pop(extent, None)
        if fd is not None:
            os.close(fd)
        self.path(extent).unlink(missing_ok=True)

    def on_disk(self) -> set[int]:
        out = set()
        for p in self.dir.glob("*.ext"):
            try:
                out.add(int(p.stem, 16))
            except ValueError:
                continue
        return out

    def close(self) -> None:
        with self._lock:
            fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)
