"""One open volume: reads and writes through its map (copy-on-write per block).

Owned blocks are written in place in the volume's extent file.  The first
write to a shared, frozen or zero block makes the block owned: a write that
covers the whole block just takes it, a partial one copies only that block
(or, for a zero block, writes only its bytes into a hole).  Whole zero
blocks, TRIM and WRITE_ZEROES store nothing.

Durability (docs/volumes.md §4): `flush()` makes every write before it
durable: fdatasync of the extent file, then one catalog transaction with the
map pages that changed.  Until then a crash brings back the last flushed map:
a block whose ownership changed since reads as it was, and an owned block
written in place may hold old or new bytes; no write touches another block's
bytes, so no other block can tear.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any, Protocol

import native
from native import vmap
from native.vmap import VMAP_ENTRY, VMAP_FROZEN, VMAP_OWNED, VMAP_SHARED, VMAP_ZERO

from .backing import block_length
from .catalog import PAGE_BYTES, Catalog
from .errors import VolumeReadOnly
from .extents import ExtentFiles
from .format import Header, entry_extent, entry_kind, entry_ref



CACHED_READ_MAX = 1 << 20  # longer reads always go to a thread


class VolumeHost(Protocol):
    """What a volume needs of the store that opened it (VolumeStore)."""

    extents: ExtentFiles
    catalog: Catalog

    def shared_block(self, scheme: str, digest: bytes) -> memoryview: ...

    def cached_shared_block(self, scheme: str, digest: bytes) -> memoryview | None: ...


class Volume:
    """A volume's map in memory, shared by every connection that has it open."""

    def __init__(self, owner: VolumeHost, name: str, header: Header, entries: bytearray) -> None:
        self.owner = owner
        self.name = name
        self.header = header
        self.entries = entries
        self.lock = threading.RLock()
        self.dirty_pages: set[int] = set()
        self.opens = 0

    # ------------------------------------------------------------------ geometry

    @property
    def size(self) -> int:
        return self.header.size

    @property
    def block_size(self) -> int:
        return self.header.block_size

    @property
    def readonly(self) -> bool:
        return self.header.snapshot

    def _block_len(self, i: int) -> int:
        return block_length(self.header.size, self.header.block_size, i)

    def _mark(self, first: int, n: int = 1) -> None:
        per = PAGE_BYTES // VMAP_ENTRY
        self.dirty_pages.update(range(first // per, (first + n - 1) // per + 1))

    # ------------------------------------------------------------------ reads

    def read(self, offset: int, length: int) -> bytearray:
        """The bytes at [offset, offset+length).

        Only the plan is made under the volume's lock (which entry each run reads,
        with the extents pinned); the copying runs without it, so reads of one
        volume proceed in parallel with each other and with writes elsewhere.
        """
        out = bytearray(length)
        view = memoryview(out)
        plan: list[tuple[int, int, int, int, bytes, int]] = []
        pinned: list[int] = []
        with self.lock:
            pos = 0
            for block, inner, take in vmap.runs(offset, length, self.block_size, self.size):
                kind = entry_kind(self.entries, block)
                extent = self.header.extent if kind == VMAP_OWNED else entry_extent(self.entries, block)
                ref = entry_ref(self.entries, block) if kind == VMAP_SHARED else b""
                if kind in (VMAP_OWNED, VMAP_FROZEN):
                    self.owner.extents.pin(extent)
                    pinned.append(extent)
                plan.append((pos, block, inner, take, ref, extent if kind in (VMAP_OWNED, VMAP_FROZEN) else -1))
                pos += take
        try:
            for pos, block, inner, take, ref, extent in plan:
                part = view[pos : pos + take]
                if extent >= 0:
                    self.owner.extents.read_into(extent, block * self.block_size + inner, part)
                elif ref:
                    self._read_shared(ref, inner, part)
                # else: a zero block, already zeros
        finally:
            for extent in pinned:
                self.owner.extents.unpin(extent)
        return out

    def read_cached(self, offset: int, length: int) -> bytearray | None:
        """read(), if it can be done without waiting: the volume's lock free, every byte in the
        page cache or the shared-block cache.  None otherwise (then call read() on a thread).
        What lets the NBD server answer cached reads on its event loop, without a thread hop."""
        if length > CACHED_READ_MAX or not self.lock.acquire(blocking=False):
            return None
        try:
            runs = [(block, inner, take, entry_kind(self.entries, block), entry_extent(self.entries, block),
                     entry_ref(self.entries, block)) for block, inner, take in
                    vmap.runs(offset, length, self.block_size, self.size)]
            extent_now = self.header.extent
            out = bytearray(length)
            view = memoryview(out)
            pos = 0
            for block, inner, take, kind, extent, ref in runs:
                part = view[pos : pos + take]
                pos += take
                if kind == VMAP_ZERO:
                    continue
                if kind == VMAP_SHARED:
                    data = self.owner.cached_shared_block(self.header.scheme, ref)
                    if data is None:
                        return None
                    got = data[inner : inner + take]
                    part[: len(got)] = got
                    continue
                ext = extent_now if kind == VMAP_OWNED else extent
                if not self.owner.extents.read_cached(ext, block * self.block_size + inner, part):
                    return None
            return out
        finally:
            self.lock.release()

    def _read_shared(self, digest: bytes, inner: int, out: memoryview) -> None:
        data = self.owner.shared_block(self.header.scheme, digest)
        part = data[inner : inner + len(out)]
        out[: len(part)] = part
        if len(part) < len(out):  # sha256 blocks are stored without trailing zeros
            out[len(part) :] = bytes(len(out) - len(part))

    def _read_block_part(self, i: int, inner: int, out: memoryview) -> None:
        """Read part of block i (the caller holds the lock)."""
        kind = entry_kind(self.entries, i)
        if kind == VMAP_ZERO:
            out[:] = bytes(len(out))
        elif kind == VMAP_OWNED:
            self.owner.extents.read_into(self.header.extent, i * self.block_size + inner, out)
        elif kind == VMAP_FROZEN:
            self.owner.extents.read_into(entry_extent(self.entries, i), i * self.block_size + inner, out)
        else:
            self._read_shared(entry_ref(self.entries, i), inner, out)

    def _whole_block(self, i: int) -> bytearray:
        buf = bytearray(self._block_len(i))
        self._read_block_part(i, 0, memoryview(buf))
        return buf

    def allocation(self, offset: int, length: int) -> list[tuple[int, int, bool]]:
        """(offset, length, zero) runs over [offset, offset+length): zero = reads as zeros, stores nothing."""
        with self.lock:
            bs = self.block_size
            runs = vmap.runs(offset, length, bs, self.size)
            if not runs:
                return []
            first, last = runs[0][0], runs[-1][0]
            out = []
            for start, count, zero in vmap.status_runs(self.entries, first, last - first + 1):
                lo = max(offset, start * bs)
                hi = min(offset + length, (start + count) * bs, self.size)
                out.append((lo, hi - lo, zero))
            return out

    # ------------------------------------------------------------------ writes

    def _check_writable(self) -> None:
        if self.readonly:
            raise VolumeReadOnly(f"volume {self.name} is a snapshot (read-only)")

    def write(self, offset: int, data: Any, fua: bool = False) -> None:
        self._check_writable()
        view = memoryview(data).cast("B")
        with self.lock:
            runs = vmap.runs(offset, len(view), self.block_size, self.size)
            plan = vmap.cow_plan(self.entries, offset, len(view), self.block_size, self.size)
            ext = self.owner.extents
            pos = 0
            for (block, inner, take), action in zip(runs, plan):
                piece = view[pos : pos + take]
                pos += take
                base = block * self.block_size
                if native.is_zero(piece):  # zeros store nothing where they can
                    if take == self._block_len(block):
                        self._zero_block(block)
                        continue
                    if entry_kind(self.entries, block) == VMAP_ZERO:
                        continue
                if action == vmap.COW_IN_PLACE:
                    ext.write(self.header.extent, base + inner, piece)
                    continue
                if action == vmap.COW_TAKE:
                    ext.write(self.header.extent, base, piece)
                elif action == vmap.COW_ZERO_FILL:
                    ext.punch(self.header.extent, base, self.block_size)  # a slot may hold unflushed leftovers
                    ext.write(self.header.extent, base + inner, piece)
                else:  # COW_COPY: only this block is copied
                    whole = self._whole_block(block)
                    whole[inner : inner + take] = piece
                    ext.write(self.header.extent, base, whole)
                vmap.fill(self.entries, block, 1, VMAP_OWNED)
                self._mark(block)
            if fua:
                self.flush()

    def _zero_block(self, i: int) -> None:
        kind = entry_kind(self.entries, i)
        if kind == VMAP_ZERO:
            return
        if kind == VMAP_OWNED:
            self.owner.extents.punch(self.header.extent, i * self.block_size, self.block_size)
        vmap.fill(self.entries, i, 1, VMAP_ZERO)
        self._mark(i)

    def zero(self, offset: int, length: int, *, no_hole: bool = False, fua: bool = False) -> None:
        """WRITE_ZEROES and TRIM: whole blocks go back to zero entries, parts get zeros written.

        no_hole (NBD_CMD_FLAG_NO_HOLE): the client wants the space allocated, so zeros are written.
        """
        self._check_writable()
        with self.lock:
            if no_hole:
                self._write_zeros_allocated(offset, length)
            else:
                for block, inner, take in vmap.runs(offset, length, self.block_size, self.size):
                    if take == self._block_len(block):
                        self._zero_block(block)
                    elif entry_kind(self.entries, block) != VMAP_ZERO:
                        self.write(block * self.block_size + inner, bytes(take))
            if fua:
                self.flush()

    def _write_zeros_allocated(self, offset: int, length: int) -> None:
        for block, inner, take in vmap.runs(offset, length, self.block_size, self.size):
            if entry_kind(self.entries, block) != VMAP_OWNED:
                whole = self._whole_block(block)
                vmap.fill(self.entries, block, 1, VMAP_OWNED)
                self._mark(block)
            else:
                whole = None
            base = block * self.block_size
            if whole is not None:
                whole[inner : inner + take] = bytes(take)
                self.owner.extents.write(self.header.extent, base, whole)
            else:
                self.owner.extents.write(self.header.extent, base + inner, bytes(take))

    def cut_block_at(self, valid: int) -> None:
        """Make the block holding byte `valid` read zeros from there to its end (resize, and
        the short last block of an image): owned, so its bytes and its length are the volume's."""
        with self.lock:
            bs = self.block_size
            i = valid // bs
            if valid % bs == 0 or i >= self.header.count:
                return
            inner = valid - i * bs
            kind = entry_kind(self.entries, i)
            if kind == VMAP_ZERO:
                return
            if kind == VMAP_OWNED:
                self.owner.extents.punch(self.header.extent, i * bs + inner, bs - inner)
                return
            buf = bytearray(bs)
            self._read_block_part(i, 0, memoryview(buf)[: min(self._block_len(i), inner)])
            self.owner.extents.write(self.header.extent, i * bs, buf)
            vmap.fill(self.entries, i, 1, VMAP_OWNED)
            self._mark(i)

    # ------------------------------------------------------------------ durability

    def flush(self) -> None:
        """Make every write before this call durable (see the module docstring)."""
        with self.lock:
            if self.header.extent:
                self.owner.extents.sync(self.header.extent)
            if self.dirty_pages:
                pages, self.dirty_pages = self.dirty_pages, set()
                try:
                    self.header = replace(self.header, epoch=self.header.epoch + 1)
                    with self.owner.catalog.write() as w:
                        w.put_header(self.name, self.header)
                        w.put_pages(self.header.volume_id, self.entries, pages)
                except BaseException:
                    self.dirty_pages |= pages
                    raise

    def counts(self) -> dict[str, int]:
        with self.lock:
            raw = bytes(self.entries[0::VMAP_ENTRY])
        return {name: raw.count(kind) for kind, name in
                ((VMAP_ZERO, "zero"), (VMAP_SHARED, "shared"), (VMAP_OWNED, "owned"), (VMAP_FROZEN, "frozen"))}
