"""The volumes of one block store: create, snapshot, clone, delete, resize, rollback, flatten, diff.

Snapshot and clone cost metadata only: the new map copies the entries (the
source's owned blocks become frozen in its old extent file, and the source
writes to a fresh one) and shares the source's map-layer holds.  Frozen
extents are hashed into the block store later (`freeze_pending`, run by the
background Freezer), which turns frozen entries into shared ones and moves
each volume's hold to the exact hash list it uses.

Every operation that changes the catalog orders its steps so that a crash
leaves at worst an extra map-layer reference or an orphan extent file (blocks
kept a little longer, never lost); orphan extent files are removed at open.
Thread-safe: one lock for the catalog's structure, one per volume for I/O.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import native
from native import vmap
from native.vmap import VMAP_ENTRY, VMAP_FROZEN, VMAP_OWNED, VMAP_SHARED, VMAP_ZERO

from . import backing
from .backing import Backing, BlockStore, HashMap, block_length
from .catalog import PAGE_BYTES, Catalog, Record
from .errors import VolumeBusy, VolumeError, VolumeExists, VolumeNotFound, VolumeReadOnly
from .extents import ExtentFiles
from .format import (
    DEFAULT_BLOCK,
    EXTENT_FROZEN,
    EXTENT_WRITABLE,
    FLAG_SNAPSHOT,
    SCHEMES,
    SECTOR,
    Header,
    VolumeInfo,
    check_block_size,
    check_name,
    check_size,
    entry_extent,
    entry_kind,
    shared_entry,
)
from .volume import Volume
from .block_cache import SharedBlockCache

log = logging.getLogger(__name__)
VOLUMES_DIR = "volumes"
_NEXT_VOLUME = b"next_volume"
_NEXT_EXTENT = b"next_extent"
_HASH_BATCH = 8  # blocks hashed and put per store call while freezing


class FreezeInterrupted(Exception):
    pass


class VolumeStore:
    """Volumes living beside (and on) one open, writable block store."""

    def __init__(self, blocks: BlockStore, *, owns_blocks: bool = False) -> None:
        if blocks.readonly:
            raise VolumeError("volumes need the block store open for writing")
        self.blocks = blocks
        self.backing = Backing(blocks)
        self.root = Path(blocks.path) / VOLUMES_DIR
        self.root.mkdir(exist_ok=True)
        self.catalog = Catalog(self.root)
        self.extents = ExtentFiles(self.root)
        self._owns_blocks = owns_blocks
        self._lock = threading.RLock()
        self._loaded: dict[str, Volume] = {}
        self._freeze_lock = threading.Lock()
        self.cache = SharedBlockCache()
        self.changed = threading.Event()  # set when there may be frozen extents to hash
        self.stop_freezing = threading.Event()  # set at shutdown: an extent being hashed is left for later
        self._remove_orphans()
        self.changed.set()

    def close(self) -> None:
        with self._lock:
            for vol in list(self._loaded.values()):
                if not vol.readonly:
                    try:
                        vol.flush()
                    except OSError:
                        log.exception("volume %s: flush at close failed", vol.name)
            self._loaded.clear()
            self.extents.close()
            self.catalog.close()
        if self._owns_blocks:
            self.blocks.close()

    def _remove_orphans(self) -> None:
        """Extent files no extent row names (a crash between creating one and its commit)."""
        with self.catalog.read() as r:
            known = set(r.extents())
        for extent in self.extents.on_disk() - known:
            log.info("removing orphan extent file %s", self.extents.path(extent))
            self.extents.remove(extent)

    # ------------------------------------------------------------------ lookup

    def names(self) -> list[str]:
        with self.catalog.read() as r:
            return r.names()

    def _record(self, name: str) -> Record:
        with self.catalog.read() as r:
            rec = r.record(name)
        if rec is None:
            raise VolumeNotFound(f"no volume {name!r}")
        return rec

    def _load(self, name: str) -> Volume:
        with self._lock:
            vol = self._loaded.get(name)
            if vol is None:
                with self.catalog.read() as r:
                    rec = r.record(name)
                    if rec is None:
                        raise VolumeNotFound(f"no volume {name!r}")
                    entries = r.load_entries(rec.header)
                vol = Volume(self, name, rec.header, entries)
                self._loaded[name] = vol
            return vol

    def exists(self, name: str) -> bool:
        with self.catalog.read() as r:
            return r.record(name) is not None

    def open(self, name: str) -> Volume:
        """A volume for I/O (an NBD export); pair with release()."""
        with self._lock:
            vol = self._load(name)
            vol.opens += 1
            return vol

    def release(self, vol: Volume) -> None:
        with self._lock:
            vol.opens = max(0, vol.opens - 1)

    def info(self, name: str) -> VolumeInfo:
        with self._lock:
            vol = self._load(name)
            rec = self._record(name)
            with self.catalog.read() as r:
                parent = r.name_of(vol.header.parent_id) if vol.header.parent_id else None
                metadata = r.metadata(name)
            h = vol.header
            return VolumeInfo(name, h.size, h.block_size, h.scheme, h.snapshot, h.epoch, h.created_ns, parent,
                              vol.counts(), len(rec.holds), metadata)

    def set_metadata(self, name: str, text: str) -> None:
        if len(text.encode()) > 4096:
            raise VolumeError("volume metadata is at most 4096 bytes")
        with self._lock:
            self._record(name)
            with self.catalog.write() as w:
                w.put_metadata(name, text)

    def shared_block(self, scheme: str, digest: bytes) -> memoryview:
        """A shared block's bytes (as stored: sha256 ones without trailing zeros), through a cache:
        the block store verifies a whole block on every read, a 4 KiB read should not pay that."""
        return self.cache.get(scheme, digest, lambda: self.backing.read_block(scheme, digest))

    def cached_shared_block(self, scheme: str, digest: bytes) -> memoryview | None:
        return self.cache.peek(scheme, digest)

    def frozen_extents(self) -> int:
        with self.catalog.read() as r:
            return sum(1 for state, _owner in r.extents().values() if state == EXTENT_FROZEN)

    def disk_bytes(self) -> int:
        """Disk the extent files use (owned and not yet hashed frozen blocks)."""
        return sum(self.extents.allocated(e) for e in self.extents.on_disk())

    # ------------------------------------------------------------------ create and fork

    def _new_extent(self, w: Any, owner: int) -> int:
        extent = w.next_id(_NEXT_EXTENT)
        self.extents.create(extent)
        w.put_extent(extent, EXTENT_WRITABLE, owner)
        return extent

    def create(self, name: str, size: int, *, block_size: int = DEFAULT_BLOCK, scheme: str = "blake3") -> VolumeInfo:
        check_name(name)
        check_size(size)
        check_block_size(block_size)
        if scheme not in SCHEMES:
            raise VolumeError(f"unknown hash scheme {scheme!r} (sha256 or blake3)")
        with self._lock:
            with self.catalog.write() as w:
                if w.record(name) is not None:
                    raise VolumeExists(f"volume {name!r} exists")
                vid = w.next_id(_NEXT_VOLUME)
                extent = self._new_extent(w, vid)
                header = Header(scheme, 0, block_size, extent, vid, size, 1, time.time_ns(), 0)
                w.put_header(name, header)
        return self.info(name)

    def _add_holds(self, holds: tuple[bytes, ...]) -> None:
        done: list[bytes] = []
        try:
            for h in holds:
                self.backing.add_ref(h)
                done.append(h)
        except BaseException:
            self._drop_holds(tuple(done))
            raise

    def _drop_holds(self, holds: tuple[bytes, ...]) -> None:
        for h in holds:
            try:
                self.backing.drop_ref(h)
            except Exception:  # an extra reference keeps blocks, it never loses them
                log.exception("could not drop a map reference held by a volume")

    def _fork(self, source: str, name: str, *, snapshot: bool) -> VolumeInfo:
        """A new map sharing every block of `source` (a snapshot if `snapshot`)."""
        check_name(name)
        with self._lock:
            if self.exists(name):
                raise VolumeExists(f"volume {name!r} exists")
            src = self._load(source)
            rec = self._record(source)
            with src.lock:
                if src.readonly and snapshot:
                    raise VolumeReadOnly(f"{source} is a snapshot; clone it instead")
                if not src.readonly:
                    src.flush()  # what the fork shares is durable first
                self._add_holds(rec.holds)
                try:
                    src_entries = bytearray(src.entries)
                    if src.readonly:
                        dst_entries, frozen = bytearray(src_entries), 0
                    else:
                        dst_entries, frozen = vmap.freeze(src_entries, src.header.extent)
                    with self.catalog.write() as w:
                        vid = w.next_id(_NEXT_VOLUME)
                        new_src = src.header
                        if frozen:
                            w.put_extent(src.header.extent, EXTENT_FROZEN, src.header.volume_id)
                            new_src = replace(src.header, extent=self._new_extent(w, src.header.volume_id),
                                              epoch=src.header.epoch + 1)
                            w.put_header(source, new_src)
                            w.put_pages(src.header.volume_id, src_entries)
                        extent = 0 if snapshot else self._new_extent(w, vid)
                        flags = FLAG_SNAPSHOT if snapshot else 0
                        h = src.header
                        header = Header(h.scheme, flags, h.block_size, extent, vid, h.size, 1, time.time_ns(),
                                        h.volume_id)
                        w.put_header(name, header)
                        w.put_pages(vid, dst_entries)
                        w.put_holds(vid, rec.holds)
                except BaseException:
                    self._drop_holds(rec.holds)
                    raise
                src.header, src.entries = new_src, src_entries
        self.changed.set()
        return self.info(name)

    def snapshot(self, source: str, name: str) -> VolumeInfo:
        """A read-only map with the same entries; the source's next write to each owned block copies it."""
        return self._fork(source, name, snapshot=True)

    def clone(self, source: str, name: str) -> VolumeInfo:
        """A writable volume sharing every block of a snapshot (or of a volume, frozen for it)."""
        return self._fork(source, name, snapshot=False)

    def clone_map(self, hmap: HashMap, name: str, *, size: int | None = None) -> VolumeInfo:
        """A writable volume sharing every block of an object's map (an image): no data moves."""
        check_name(name)
        check_block_size(hmap.block_size)
        size = size if size is not None else -(-hmap.size // SECTOR) * SECTOR
        check_size(size)
        if size < hmap.size:
            raise VolumeError(f"size {size} is smaller than the object ({hmap.size})")
        bs = hmap.block_size
        count = -(-size // bs)
        entries = bytearray(count * VMAP_ENTRY)
        for i, (digest, zero) in enumerate(zip(hmap.hashes, hmap.zero)):
            if not zero:
                entries[i * VMAP_ENTRY : (i + 1) * VMAP_ENTRY] = shared_entry(bytes(digest))
        hold = hmap.key.pack()
        with self._lock:
            if self.exists(name):
                raise VolumeExists(f"volume {name!r} exists")
            self._add_holds((hold,))
            try:
                with self.catalog.write() as w:
                    vid = w.next_id(_NEXT_VOLUME)
                    extent = self._new_extent(w, vid)
                    header = Header(hmap.scheme, 0, bs, extent, vid, size, 1, time.time_ns(), 0)
                    w.put_header(name, header)
                    w.put_pages(vid, entries)
                    w.put_holds(vid, (hold,))
            except BaseException:
                self._drop_holds((hold,))
                raise
            vol = self._load(name)
        if hmap.size % bs and size > hmap.size:
            vol.cut_block_at(hmap.size)  # the object's short last block, padded
            vol.flush()
        return self.info(name)

    # ------------------------------------------------------------------ delete, resize, rollback

    def delete(self, name: str) -> None:
        """Remove a volume; what only it referenced is freed (now, or by the block store's GC)."""
        with self._lock:
            vol = self._load(name)
            if vol.opens:
                raise VolumeBusy(f"volume {name!r} is in use ({vol.opens} open)")
            rec = self._record(name)
            with vol.lock:
                with self.catalog.write() as w:
                    w.delete_volume(name, rec.header)
                    if rec.header.extent:
                        w.drop_extent(rec.header.extent)
                del self._loaded[name]
                if rec.header.extent:
                    self.extents.remove(rec.header.extent)
        self._drop_holds(rec.holds)
        self.changed.set()  # frozen extents it alone referenced can go

    def resize(self, name: str, size: int) -> VolumeInfo:
        """Grow (new blocks read as zeros) or shrink (bytes past the end are gone)."""
        check_size(size)
        with self._lock:
            vol = self._load(name)
            if vol.readonly:
                raise VolumeReadOnly(f"volume {name!r} is a snapshot")
            with vol.lock:
                bs = vol.block_size
                old = vol.header
                # the block that becomes (or stops being) the short last one keeps only its valid bytes
                vol.cut_block_at(min(size, old.size))
                vol.flush()
                count = -(-size // bs)
                entries = bytearray(vol.entries[: count * VMAP_ENTRY])
                entries += bytes(count * VMAP_ENTRY - len(entries))
                for i in range(count, old.count):
                    if entry_kind(vol.entries, i) == VMAP_OWNED:
                        self.extents.punch(old.extent, i * bs, bs)
                header = replace(old, size=size, epoch=old.epoch + 1)
                with self.catalog.write() as w:
                    w.put_header(name, header)
                    w.put_pages(old.volume_id, entries)
                    w.drop_pages_from(old.volume_id, -(-len(entries) // PAGE_BYTES))
                vol.header, vol.entries = header, entries
                vol.dirty_pages.clear()
        self.changed.set()
        return self.info(name)

    def rollback(self, name: str, snap: str) -> VolumeInfo:
        """Make the volume read what the snapshot reads (its writes since are dropped)."""
        with self._lock:
            vol = self._load(name)
            snapshot = self._load(snap)
            if vol.readonly:
                raise VolumeReadOnly(f"volume {name!r} is a snapshot")
            if not snapshot.readonly:
                raise VolumeError(f"{snap!r} is not a snapshot")
            if vol.opens:
                raise VolumeBusy(f"volume {name!r} is in use ({vol.opens} open)")
            if (snapshot.header.block_size, snapshot.header.scheme) != (vol.header.block_size, vol.header.scheme):
                raise VolumeError(f"{snap!r} has another block size or hash scheme")
            rec, srec = self._record(name), self._record(snap)
            self._add_holds(srec.holds)
            try:
                with vol.lock, snapshot.lock:
                    entries = bytearray(snapshot.entries)
                    old = vol.header
                    with self.catalog.write() as w:
                        w.drop_extent(old.extent)
                        extent = self._new_extent(w, old.volume_id)
                        header = replace(old, size=snapshot.size, extent=extent, epoch=old.epoch + 1)
                        w.put_header(name, header)
                        w.put_pages(old.volume_id, entries)
                        w.drop_pages_from(old.volume_id, -(-len(entries) // PAGE_BYTES))
                        w.put_holds(old.volume_id, srec.holds)
                    vol.header, vol.entries = header, entries
                    vol.dirty_pages.clear()
            except BaseException:
                self._drop_holds(srec.holds)
                raise
            self.extents.remove(old.extent)
        self._drop_holds(rec.holds)
        self.changed.set()
        return self.info(name)

    def flatten(self, name: str) -> VolumeInfo:
        """Make the volume stand alone: its frozen blocks hashed, one hold on exactly the blocks it
        shares, no parent.  Its parent snapshot can then go without keeping anything for it."""
        self.freeze_pending()
        with self._lock:
            vol = self._load(name)
            with vol.lock:
                if not vol.readonly:
                    vol.flush()
                self._rebase(vol)
                header = replace(vol.header, parent_id=0, epoch=vol.header.epoch + 1)
                with self.catalog.write() as w:
                    w.put_header(name, header)
                vol.header = header
        return self.info(name)

    # ------------------------------------------------------------------ diff

    def diff(self, a: str, b: str) -> list[tuple[int, int]]:
        """Byte ranges (offset, length) where a and b may differ (blocks either owns count as changed)."""
        with self._lock:
            va, vb = self._load(a), self._load(b)
            if va.block_size != vb.block_size:
                raise VolumeError(f"{a!r} and {b!r} have different block sizes")
            with va.lock, vb.lock:
                ea, eb = bytes(va.entries), bytes(vb.entries)
                end = max(va.size, vb.size)
        bs = va.block_size
        return [(s * bs, min(e * bs, end) - s * bs) for s, e in vmap.diff(ea, eb)]

    # ------------------------------------------------------------------ freezing

    def _rebase(self, vol: Volume) -> None:
        """Move the volume's holds onto one map of exactly the shared blocks it names (caller locks)."""
        h = vol.header
        zero_full = backing.zero_digest(h.scheme, h.block_size)
        zero_last = backing.zero_digest(h.scheme, block_length(h.size, h.block_size, h.count - 1))
        rec = self._record(vol.name)
        if not any(entry_kind(vol.entries, i) == VMAP_SHARED for i in range(h.count)):
            new: tuple[bytes, ...] = ()
        else:
            digests = vmap.ref_digests(vol.entries, zero_full, zero_last)
            new = (self.backing.add_map(h.scheme, h.size, h.block_size, digests),)
        if new == rec.holds:
            self._drop_holds(new)
            return
        try:
            with self.catalog.write() as w:
                w.put_holds(h.volume_id, new)
        except BaseException:
            self._drop_holds(new)
            raise
        self._drop_holds(rec.holds)

    def _frozen_refs(self, extent: int) -> dict[str, list[int]]:
        """Volume -> indices of its FROZEN(extent) entries (caller holds the store lock)."""
        refs: dict[str, list[int]] = {}
        for name in self.names():
            vol = self._load(name)
            with vol.lock:
                idx = [i for i in range(vol.header.count)
                       if entry_kind(vol.entries, i) == VMAP_FROZEN and entry_extent(vol.entries, i) == extent]
            if idx:
                refs[name] = idx
        return refs

    def _hash_slots(self, scheme: str, extent: int, wanted: set[tuple[int, int, int]],
                    digests: dict[tuple[int, int], bytes]) -> None:
        """Hash (and store) the blocks (index, length) of a frozen extent that `digests` lacks."""
        todo = sorted((i, n, bs) for i, n, bs in wanted if (i, n) not in digests)
        for k in range(0, len(todo), _HASH_BATCH):
            if self.stop_freezing.is_set():
                raise FreezeInterrupted(f"extent {extent}: hashing stopped at shutdown (resumed at the next start)")
            batch = todo[k : k + _HASH_BATCH]
            bufs = []
            for i, n, bs in batch:
                buf = bytearray(n)
                self.extents.read_into(extent, i * bs, memoryview(buf))
                bufs.append(buf)
            data = [(i, n, b) for (i, n, _bs), b in zip(batch, bufs) if not native.is_zero(b)]
            for i, n, _ in ((i, n, b) for (i, n, _bs), b in zip(batch, bufs) if native.is_zero(b)):
                digests[(i, n)] = b""  # a zero block: the entry becomes ZERO
            if data:
                stored = self.backing.put_blocks(scheme, [b for _, _, b in data])
                for (i, n, _), d in zip(data, stored):
                    digests[(i, n)] = d

    def _wanted(self, refs: dict[str, list[int]]) -> set[tuple[int, int, int]]:
        out = set()
        for name, idx in refs.items():
            h = self._loaded[name].header
            out.update((i, block_length(h.size, h.block_size, i), h.block_size) for i in idx)
        return out

    def freeze_extent(self, extent: int) -> None:
        """Hash one frozen extent into the block store and point every map sharing it there."""
        with self._lock:
            refs = self._frozen_refs(extent)
            scheme = next((self._loaded[n].header.scheme for n in refs), "blake3")
            wanted = self._wanted(refs)
        digests: dict[tuple[int, int], bytes] = {}
        self._hash_slots(scheme, extent, wanted, digests)  # the slow part, without locks
        with self._lock:
            refs = self._frozen_refs(extent)  # forks made meanwhile share it too
            self._hash_slots(scheme, extent, self._wanted(refs), digests)
            for name, idx in refs.items():
                vol = self._loaded[name]
                with vol.lock:
                    if not vol.readonly:
                        vol.flush()  # data before maps: no unflushed ownership gets committed
                    h = vol.header
                    entries = bytearray(vol.entries)
                    per_entry = bytearray(32 * h.count)
                    zeros = []
                    for i in idx:
                        d = digests[(i, block_length(h.size, h.block_size, i))]
                        if d:
                            per_entry[32 * i : 32 * i + 32] = d
                        else:
                            zeros.append(i)
                    vmap.resolve(entries, extent, per_entry)
                    for i in zeros:
                        vmap.fill(entries, i, 1, VMAP_ZERO)
                    with self.catalog.write() as w:
                        w.put_pages(h.volume_id, entries)
                    vol.entries = entries
                    self._rebase(vol)
            with self.catalog.write() as w:
                w.drop_extent(extent)
            self.extents.remove(extent)

    def freeze_pending(self) -> int:
        """Hash every frozen extent (oldest first); the number done.  Nothing of an extent
        whose hashing is interrupted (stop_freezing) changes but unreferenced blocks for the GC."""
        with self._freeze_lock:
            self.changed.clear()
            with self.catalog.read() as r:
                frozen = sorted(e for e, (state, _owner) in r.extents().items() if state == EXTENT_FROZEN)
            done = 0
            for extent in frozen:
                try:
                    self.freeze_extent(extent)
                except FreezeInterrupted as exc:
                    log.info("%s", exc)
                    break
                done += 1
            return done

    def hash_list(self, name: str) -> tuple[str, int, int, bytes]:
        """(scheme, size, block size, digests) of a snapshot whose blocks are all hashed: what
        publishing it as an object names (no data copied)."""
        with self._lock:
            vol = self._load(name)
            if not vol.readonly:
                raise VolumeError(f"{name!r} is not a snapshot; snapshot it first")
        self.freeze_pending()
        with self._lock, vol.lock:
            h = vol.header
            zero_full = backing.zero_digest(h.scheme, h.block_size)
            zero_last = backing.zero_digest(h.scheme, block_length(h.size, h.block_size, h.count - 1))
            return h.scheme, h.size, h.block_size, vmap.ref_digests(vol.entries, zero_full, zero_last)


def open_volumes(data_dir: str | os.PathLike[str]) -> VolumeStore:
    """Open the block store of a data directory (taking its store lock) and its volumes."""
    blocks = BlockStore.open(backing.store_dir(data_dir))
    try:
        return VolumeStore(blocks, owns_blocks=True)
    except BaseException:
        blocks.close()
        raise
