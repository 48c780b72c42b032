"""Segment files: append-only sequences of records, read through mmap once sealed.

Space in a segment is reserved by one appender at a time (the store's append
lock) and the records are then written outside the lock, possibly completing
out of order; a segment is never rewritten in place; compaction writes new segments instead.  Readers of a
sealed segment slice its mapping without copying; readers of the open segment
use pread.  A Segment object owns its descriptor and mapping until the last
reference to it (or to a view of its mapping) is gone, so a reader racing with
GC keeps reading valid bytes of a file that is already unlinked.

Segment header (64 bytes, little-endian):

    off len field
      0   8 magic "NFSEG\\0\\0\\1"
      8   4 format version (1)
     12   4 flags        bit 0: compaction output
     16   8 segment id   (also the file name, 16 hex digits + ".seg")
     24   8 created      (unix nanoseconds)
     32  16 store uuid   (a segment from another store is refused)
     48  12 reserved     (zero)
     60   4 header_crc   CRC-32 of bytes 0..59
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BadRecord, BadSegment, StoreFull
from .records import HEADER_SIZE, RecordHeader, decode_header, verify_payload

SEGMENT_MAGIC = b"NFSEG\x00\x00\x01"
SEGMENT_VERSION = 1
SEGMENT_HEADER_SIZE = 64
FLAG_COMPACTION = 1
SUFFIX = ".seg"

_SEG_BODY = struct.Struct("<8sIIQQ16s12s")
_CRC = struct.Struct("<I")
assert _SEG_BODY.size + _CRC.size == SEGMENT_HEADER_SIZE

NOSPACE = (errno.ENOSPC, errno.EDQUOT)
PAGE_SIZE = mmap.PAGESIZE
# Synced bytes gathered before the page cache is told to drop them (one syscall per this much).
DROP_CACHE_MIN = 1 << 20
# Reads from a mapping at least this long first ask the kernel to read the range ahead.
READAHEAD_MIN = 256 << 10


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    segment_id: int
    flags: int
    created_ns: int
    store_uuid: bytes
    version: int = SEGMENT_VERSION

    def pack(self) -> bytes:
        body = _SEG_BODY.pack(
            SEGMENT_MAGIC, self.version, self.flags, self.segment_id, self.created_ns, self.store_uuid, bytes(12)
        )
        return body + _CRC.pack(zlib.crc32(body))


def decode_segment_header(buf: Any) -> SegmentHeader:
    """Parse a segment header; BadSegment unless it is whole and valid."""
    mv = memoryview(buf)
    if len(mv) < SEGMENT_HEADER_SIZE:
        raise BadSegment("short segment header")
    magic, version, flags, seg_id, created, uuid, _reserved = _SEG_BODY.unpack_from(mv, 0)
    if magic != SEGMENT_MAGIC:
        raise BadSegment("bad segment magic")
    (crc,) = _CRC.unpack_from(mv, _SEG_BODY.size)
    if zlib.crc32(mv[: _SEG_BODY.size]) != crc:
        raise BadSegment("segment header checksum mismatch")
    if version != SEGMENT_VERSION:
        raise BadSegment(f"segment format version {version} (this code reads {SEGMENT_VERSION})")
    return SegmentHeader(seg_id, flags, created, uuid, version)


def segment_name(seg_id: int) -> str:
    return f"{seg_id:016x}{SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The id in a segment file name, None for any other file."""
    if len(name) != 16 + len(SUFFIX) or not name.endswith(SUFFIX):
        return None
    try:
        return int(name[:16], 16)
    except ValueError:
        return None


def list_segment_files(directory: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    for entry in os.scandir(directory):
        seg_id = parse_segment_name(entry.name)
        if seg_id is not None and entry.is_file(follow_symlinks=False):
            out[seg_id] = Path(entry.path)
    return out


def fsync_dir(directory: Path) -> None:
    """Make file creations and removals in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def raise_io_error(exc: OSError, what: str) -> None:
    if exc.errno in NOSPACE:
        raise StoreFull(exc.errno, f"{what}: {os.strerror(exc.errno)}") from exc
    raise exc


@dataclass
class ScanResult:
    """Valid records found from a start offset, and where the valid part ends."""

    records: list[tuple[int, RecordHeader]] = field(default_factory=list)
    end: int = 0  # offset just past the last valid record
    size: int = 0  # file size seen by the scan
    reason: str | None = None  # why the scan stopped before `size`

    @property
    def torn(self) -> bool:
        return self.end < self.size


class Segment:
    """One segment file: an append position, a descriptor and a lazy read-only mapping."""

    def __init__(self, directory: Path, header: SegmentHeader, fd: int, write_end: int, *, sealed: bool) -> None:
        self.directory = directory
        self.id = header.segment_id
        self.header = header
        self.fd = fd
        self.write_end = write_end
        self.sealed = sealed
        # Offset of the lowest reserved record whose write failed and could not be cut
        # off (others were reserved after it): nothing at or past it may be committed.
        self.bad_from: int | None = None
        # Below this offset the kernel has been told to forget the cached pages.
        self._cache_dropped_to = 0
        self._map: memoryview | None = None
        self._map_lock = threading.Lock()

    # --- life cycle -------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.directory / segment_name(self.id)

    @property
    def is_compaction(self) -> bool:
        return bool(self.header.flags & FLAG_COMPACTION)

    @classmethod
    def create(cls, directory: Path, seg_id: int, store_uuid: bytes, flags: int = 0) -> Segment:
        """A new, empty segment (header only, not yet fsynced)."""
        header = SegmentHeader(seg_id, flags, time.time_ns(), store_uuid)
        path = directory / segment_name(seg_id)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            if os.pwrite(fd, header.pack(), 0) != SEGMENT_HEADER_SIZE:
                raise OSError(errno.ENOSPC, "short write of segment header")
        except OSError as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise_io_error(exc, f"creating segment {path.name}")
        return cls(directory, header, fd, SEGMENT_HEADER_SIZE, sealed=False)

    @classmethod
    def open(
        cls,
        directory: Path,
        seg_id: int,
        *,
        store_uuid: bytes | None = None,
        readonly: bool = False,
        sealed: bool = True,
        trust_header: bool = False,
    ) -> Segment:
        """Open an existing segment; BadSegment if its header is bad or belongs elsewhere.

        trust_header=True opens a segment the index vouches for even if its
        header is damaged (its records carry their own checksums).
        """
        path = directory / segment_name(seg_id)
        fd = os.open(path, (os.O_RDONLY if readonly else os.O_RDWR) | os.O_CLOEXEC)
        try:
            try:
                header = decode_segment_header(os.pread(fd, SEGMENT_HEADER_SIZE, 0))
            except BadSegment:
                if not trust_header:
                    raise
                header = SegmentHeader(seg_id, 0, 0, store_uuid or bytes(16))
            if header.segment_id != seg_id:
                raise BadSegment(f"{path.name} says it is segment {header.segment_id}")
            if store_uuid is not None and header.store_uuid != store_uuid:
                raise BadSegment(f"{path.name} belongs to another store")
            size = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            raise
        return cls(directory, header, fd, size, sealed=sealed)

    def __del__(self) -> None:
        fd = getattr(self, "fd", -1)
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
            self.fd = -1

    def file_size(self) -> int:
        return os.fstat(self.fd).st_size

    # --- writing ----------------------------------------------------------

    def append(self, bufs: Sequence[Any]) -> int:
        """Write `bufs` back to back at the end; returns their offset.

        On failure the file is cut back to where it was, so a failed append
        leaves no partial record for later appends to follow.  (The block
        store's puts use reserve + write_at instead, to write outside its lock.)
        """
        start = self.write_end
        try:
            pos = self.write_at(start, bufs)
        except OSError as exc:
            try:
                os.ftruncate(self.fd, start)
            except OSError:
                pass
            raise_io_error(exc, f"appending to segment {self.id}")
        self.write_end = pos
        return start

    def reserve(self, length: int) -> int:
        """Claim `length` bytes at the end for a later write_at (caller serialises reservations)."""
        start = self.write_end
        self.write_end = start + length
        return start

    def write_at(self, pos: int, bufs: Sequence[Any]) -> int:
        """pwritev `bufs` back to back at `pos` (retrying short writes); returns the end.

        Raises OSError as is; the caller decides what a failure leaves behind.
        """
        pending = [memoryview(b).cast("B") if not isinstance(b, bytes) else memoryview(b) for b in bufs]
        while pending:
            n = os.pwritev(self.fd, pending, pos)
            if n <= 0:
                raise OSError(errno.EIO, "pwritev wrote nothing")
            pos += n
            while pending and n >= len(pending[0]):
                n -= len(pending[0])
                pending.pop(0)
            if pending and n:
                pending[0] = pending[0][n:]
        return pos

    def sync(self) -> None:
        try:
            os.fdatasync(self.fd)
        except OSError as exc:
            raise_io_error(exc, f"fsync of segment {self.id}")

    def drop_cache(self, end: int) -> None:
        """Let the page cache forget what was written below `end` (already fdatasynced).

        Freshly written blocks are rarely read again soon, and keeping them would evict
        data that is (the Swift object server drops its writes the same way).  Pages
        still dirty or mapped are left alone by the kernel, so this never costs data.
        """
        start = self._cache_dropped_to
        if end - start < DROP_CACHE_MIN:
            return
        try:
            os.posix_fadvise(self.fd, start, end - start, os.POSIX_FADV_DONTNEED)
        except OSError:  # only advice
            return
        # the kernel keeps the partly covered last page: start the next range on it
        self._cache_dropped_to = end - end % PAGE_SIZE

    def truncate(self, end: int) -> None:
        """Cut the file at `end` (a torn tail) and make the cut durable."""
        os.ftruncate(self.fd, end)
        os.fsync(self.fd)
        self.write_end = end

    def seal(self) -> None:
        """No more appends: reads switch to the mapping."""
        self.sealed = True

    # --- reading ----------------------------------------------------------

    def _mapping(self) -> memoryview:
        m = self._map
        if m is None:
            with self._map_lock:
                m = self._map
                if m is None:
                    # a record may still be in flight at the end of a just-sealed segment
                    length = min(self.write_end, self.file_size())
                    mm = mmap.mmap(self.fd, length, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
                    m = self._map = memoryview(mm)
        return m

    def read(self, offset: int, length: int) -> memoryview:
        """`length` bytes at `offset`: a view of the mapping when sealed, a copy otherwise.

        Returns fewer bytes when the file is shorter (the caller's checks fail).
        """
        if self.sealed:
            m = self._mapping()
            if offset + length <= len(m):
                if length >= READAHEAD_MIN:
                    # one readahead for the whole record instead of a page fault (and a
                    # small read) per few pages when it is not cached
                    start = offset - offset % PAGE_SIZE
                    m.obj.madvise(mmap.MADV_WILLNEED, start, offset + length - start)  # type: ignore[union-attr]
                return m[offset : offset + length]
        return memoryview(os.pread(self.fd, length, offset))

    def scan(self, start: int = SEGMENT_HEADER_SIZE) -> ScanResult:
        """Walk records from `start`, verifying each, until the first invalid one."""
        size = self.file_size()
        result = ScanResult(end=start, size=size)
        off = start
        while off < size:
            if size - off < HEADER_SIZE:
                result.reason = "short record header"
                break
            try:
                header = decode_header(os.pread(self.fd, HEADER_SIZE, off))
                if off + header.record_len > size:
                    raise BadRecord("record runs past the end of the file")
                verify_payload(header, os.pread(self.fd, header.stored_len, off + HEADER_SIZE))
            except BadRecord as exc:
                result.reason = str(exc)
                break
            result.records.append((off, header))
            off += header.record_len
        result.end = off
        return result

    def iter_headers(self, start: int = SEGMENT_HEADER_SIZE, end: int | None = None) -> list[tuple[int, RecordHeader]]:
        """Record headers from `start` to `end` without reading payloads (stops at a bad header)."""
        stop = self.write_end if end is None else end
        out: list[tuple[int, RecordHeader]] = []
        off = start
        while off + HEADER_SIZE <= stop:
            try:
                header = decode_header(self.read(off, HEADER_SIZE))
            except BadRecord:
                break
            out.append((off, header))
            off += header.record_len
        return out
