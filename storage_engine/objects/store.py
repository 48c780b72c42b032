"""The object facade nefeli-blockd serves from: metadata + block store + map store.

One data directory holds everything of a node's object service:

    DATA/meta.db        the metadata DB (storage_engine.objects.metadata, SQLite WAL)
    DATA/blocks/        the block store with its map store (storage_engine.blocks, .maps)

No HTTP here: the server parses requests and calls these coroutines with plain
values and typed byte sources (byte_sources.ByteSource); errors are the
engine's kinds (storage_engine.errors), never a protocol status.

Map references
--------------
Every version holds one reference on its map: added before the metadata
commit, dropped after the commit that removes the version, always through
``storage_engine.maps.references.MapReferences`` (the one owner of that rule).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections import deque
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashmaps import SHA256_EMPTY, block_digest, top_hash

from storage_engine import errors as kinds
from storage_engine.blocks.aio import AsyncBlockStore
from storage_engine.blocks.core import PendingPut
from storage_engine.blocks.config import StoreConfig
from storage_engine.blocks.errors import BadMap
from storage_engine.blocks.errors import MissingBlocks as StoreMissingBlocks
from storage_engine.blocks.layout import store_dir
from storage_engine.maps.aio import AsyncMapStore
from storage_engine.maps.mapstore import HashMap, MapKey
from storage_engine.maps.references import MapReferences

from .metadata import (
    Container,
    DeleteResult,
    MapRef,
    MetadataStore,
    ObjectVersion,
    Precondition,
    PurgeResult,
    WriteResult,
)
from .byte_sources import ByteSource, StreamSource
from .metadata import errors as merr
from .metadata.objects import MD5_ATTR, new_object_uuid

log = logging.getLogger(__name__)

META_DB = "meta.db"
# MD5_ATTR: the attrs key holding the MD5 (hex) of a version's bytes, computed while
# a plain PUT streams in (or later, by Md5Backfill); Swift clients compare their own
# MD5 with the ETag.


async def _read_exact(source: ByteSource, length: int) -> bytes:
    """Exactly ``length`` bytes from a byte source; ShortBody if it ends first."""
    parts: list[bytes] = []
    got = 0
    while got < length:
        data = await source.readany()
        if not data:
            raise ShortBody(f"body ended after {got} of {length} bytes")
        if got + len(data) > length:
            data = memoryview(data)[: length - got]
        parts.append(bytes(data) if not isinstance(data, bytes) else data)
        got += len(data)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class MissingBlocks(kinds.Conflict):
    """A hashmap names blocks the store lacks (``digests``, in order): the client
    uploads them and tries again."""

    def __init__(self, digests: Sequence[bytes]) -> None:
        self.digests = list(digests)
        super().__init__(f"{len(self.digests)} block(s) missing")


class BadHashmap(kinds.InvalidArgument):
    """A hash list that does not fit the object (wrong count or size)."""


class ChecksumMismatch(kinds.ChecksumMismatch):
    """The ETag a client sent with a PUT is neither the MD5 nor the top hash of the body."""


class ShortBody(kinds.ClientGone):
    """The byte source ended before the announced length: the client went away or
    lied about the length."""


@dataclass
class Counters:
    """What the facade did, for /metrics (monotonic)."""

    blocks_received: int = 0
    blocks_deduplicated: int = 0
    blocks_zero: int = 0
    bytes_received: int = 0
    bytes_served: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredBlocks:
    """Digests of blocks just stored, in order, with their MD5 so far if asked."""

    digests: list[bytes]
    dedup: int
    size: int


def _hash_and_put(store: Any, scheme: str, blocks: Sequence[Any], md5: Any) -> tuple[list[bytes], int]:
    """Hash blocks and store them: one trip to a thread; the digests and how many of
    the blocks were stored already (dedup, from the put's own index lookup).

    Returns once every new block is durable (the block store's group commit)."""
    digests = [block_digest(b, scheme) for b in blocks]
    if md5 is not None:
        for b in blocks:
            md5.update(b)
    # verify=False: hashed just now, from the very buffers stored.
    pending = store.begin_put(scheme, list(zip(digests, blocks)), verify=False)
    store.finish_put(pending)
    return digests, pending.known


def _map_key(version: ObjectVersion) -> MapKey:
    """The map store key of a version's content; ObjectNotFound for a delete marker."""
    if version.map is None:
        raise merr.ObjectNotFound("no data in a deleted version")
    return MapKey(*version.map)


_ZEROS: dict[int, bytes] = {}


def _zeros(length: int) -> bytes:
    """An all-zero block (shared: bytes are immutable)."""
    z = _ZEROS.get(length)
    if z is None:
        z = bytes(length)
        if len(_ZEROS) < 8:
            _ZEROS[length] = z
    return z


#: Blocks smaller than this are hashed on the event loop (a thread hop costs more).
INLINE_HASH = 64 << 10
#: Blocks up to this size are read (index lookup, mapping view, checksum) on the
#: event loop: from the page cache that is some 20 µs, a thread hop costs 0.4 ms.
INLINE_READ = 64 << 10


class ObjectStore:
    """Metadata + blocks + maps of one data directory, with map refcounts kept in step."""

    def __init__(
        self,
        path: Path,
        meta: MetadataStore,
        blocks: AsyncBlockStore,
        *,
        hash_threads: int = 4,
        batch_blocks: int = 4,
    ) -> None:
        self.path = path
        self.meta = meta
        self.blocks = blocks
        self.maps = AsyncMapStore(blocks)
        self.refs = MapReferences(self.maps)
        self.counters = Counters()
        # MD5 of plain PUTs (fed in order, one job per block).
        self._hash_pool = ThreadPoolExecutor(max(1, hash_threads), thread_name_prefix="nefeli-hash")
        # Hash + probe + put_many of one block per job: a job waits for the group
        # commit, so there are more of these threads than CPUs; they mostly wait.
        self._put_pool = ThreadPoolExecutor(
            max(32, 4 * max(1, hash_threads)), thread_name_prefix="nefeli-put"
        )
        #: blocks of one stream being hashed/stored while the next ones arrive
        self.batch_blocks = max(1, batch_blocks)
        self._free: dict[int, list[bytearray]] = {}  # block buffers to reuse, by size

    # ------------------------------------------------------------------ open/close

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        store_config: StoreConfig | None = None,
        synchronous: str = "FULL",
        hash_threads: int | None = None,
    ) -> ObjectStore:
        """Open (creating on first use) the data directory at ``path``."""
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        meta = await MetadataStore.open(root / META_DB, synchronous=synchronous)
        try:
            blocks = await AsyncBlockStore.open(store_dir(root), store_config)
        except BaseException:
            await meta.close()
            raise
        return cls(root, meta, blocks, hash_threads=hash_threads or min(8, os.cpu_count() or 1))

    async def close(self) -> None:
        try:
            await self.refs.settle()  # the drops PUTs did not wait for
            await self.blocks.close()
        finally:
            await self.meta.close()
            self._hash_pool.shutdown(wait=False)
            self._put_pool.shutdown(wait=False)

    @staticmethod
    def is_new(path: str | os.PathLike[str]) -> bool:
        """True when no metadata DB exists yet at ``path`` (first start)."""
        return not (Path(path) / META_DB).exists()

    # ------------------------------------------------------------------ blocks

    async def put_blocks(self, scheme: str, blocks: Sequence[Any], md5: Any = None) -> StoredBlocks:
        """Hash and store these blocks (durably); their digests in order.

        ``md5`` (a hashlib object) is fed the blocks in order when given."""
        if not blocks:
            return StoredBlocks([], 0, 0)
        size = sum(len(memoryview(b)) for b in blocks)
        store = self.blocks.store
        if size <= INLINE_HASH and store.group_commit:
            # Small: hashed and written on the loop (cheaper than a thread hop), the
            # commit awaited through its batch's callback.
            digests = [block_digest(b, scheme) for b in blocks]
            if md5 is not None:
                for b in blocks:
                    md5.update(b)
            pending = store.begin_put(scheme, list(zip(digests, blocks)), verify=False)
            await self.blocks.wait_durable(pending)
            dedup = pending.known
        else:
            digests, dedup = await asyncio.get_running_loop().run_in_executor(
                self._put_pool, _hash_and_put, store, scheme, blocks, md5
            )
        c = self.counters
        c.blocks_received += len(blocks)
        c.blocks_deduplicated += dedup
        c.bytes_received += size
        return StoredBlocks(digests, dedup, size)

    async def missing(self, scheme: str, size: int, block_size: int, digests: Sequence[bytes]) -> list[bytes]:
        """The non-zero blocks of this hash list the store lacks (each once): the 409 list."""
        try:
            return await self.maps.missing(scheme, size, block_size, list(digests))
        except BadMap as exc:
            raise BadHashmap(str(exc)) from None

    def _buffer(self, size: int) -> bytearray:
        free = self._free.get(size)
        return free.pop() if free else bytearray(size)

    def _release(self, buf: Any) -> None:
        """Give back a block buffer nobody references any more (its put finished)."""
        if isinstance(buf, bytearray):
            free = self._free.setdefault(len(buf), [])
            if len(free) < 16:
                free.append(buf)

    async def _md5_feed(self, prev: asyncio.Future[None] | None, h: Any, block: Any) -> None:
        if prev is not None:
            await prev
        if len(block) <= INLINE_HASH:
            h.update(block)
        else:
            await asyncio.get_running_loop().run_in_executor(self._hash_pool, h.update, block)

    async def write_stream(
        self,
        scheme: str,
        block_size: int,
        source: ByteSource,
        *,
        length: int | None = None,
        md5: bool = True,
        chunk: int = 1 << 18,
    ) -> tuple[int, list[bytes], str | None]:
        """Store a byte stream block by block: (size, digests, md5 hex or None).

        Blocks are assembled in reused buffers and each one is hashed and
        stored (durably) while the next ones arrive; at most ``batch_blocks``
        of them are in flight, and all are stored before this returns.  With
        ``length``, exactly that many bytes are read (ShortBody if the source
        ends first); the source is read with ``readany()`` (what has arrived,
        no copy), and what goes past ``length`` is not used.
        """
        h = hashlib.md5() if md5 else None
        md5_tail: asyncio.Future[None] | None = None
        digests: list[bytes] = []
        # (put task, md5 task or None, buffer to give back)
        inflight: deque[tuple[asyncio.Future[StoredBlocks], asyncio.Future[None] | None, Any]] = deque()
        total = 0
        buf: bytearray | None = None
        fill = 0

        async def settle_one() -> None:
            put, m, owned = inflight.popleft()
            digests.extend((await put).digests)
            if m is not None:
                await m
            self._release(owned)

        def submit(block: Any, owned: Any) -> None:
            nonlocal md5_tail
            if h is not None:
                md5_tail = asyncio.ensure_future(self._md5_feed(md5_tail, h, block))
            put = asyncio.ensure_future(self.put_blocks(scheme, [block]))
            inflight.append((put, md5_tail, owned))

        try:
            while length is None or total < length:
                data = await source.readany()
                if length is not None and total + len(data) > length:
                    data = memoryview(data)[: length - total]
                if not data:
                    if length is not None:
                        raise ShortBody(f"body ended after {total} of {length} bytes")
                    break
                mv = memoryview(data)
                if mv.ndim != 1 or mv.itemsize != 1:
                    mv = mv.cast("B")
                n = len(mv)
                total += n
                pos = 0
                while pos < n:
                    if fill == 0 and (n - pos >= block_size or (length is not None and total == length)):
                        # a whole block (or the body's last one) inside the chunk: a view, no copy
                        take = min(block_size, n - pos)
                        submit(mv[pos : pos + take], None)
                        pos += take
                    else:
                        if buf is None:
                            buf = self._buffer(block_size)
                        take = min(block_size - fill, n - pos)
                        buf[fill : fill + take] = mv[pos : pos + take]
                        fill += take
                        pos += take
                        if fill == block_size:
                            submit(buf, buf)
                            buf, fill = None, 0
                    while len(inflight) >= self.batch_blocks:
                        await settle_one()
            if fill:
                assert buf is not None
                last = bytes(memoryview(buf)[:fill]) if fill <= INLINE_HASH else memoryview(buf)[:fill]
                submit(last, buf if fill > INLINE_HASH else None)
                if fill <= INLINE_HASH:
                    self._release(buf)
                buf = None
            while inflight:
                await settle_one()
        except BaseException:
            for put, m, _owned in inflight:  # their buffers are not reused
                put.cancel()
                if m is not None:
                    m.cancel()
            await asyncio.gather(*(x for put, m, _ in inflight for x in (put, m) if x is not None), return_exceptions=True)
            raise
        if total == 0 and scheme == "sha256":
            digests = [SHA256_EMPTY]
        return total, digests, (h.hexdigest() if h is not None else None)

    # ------------------------------------------------------------------ maps

    async def _add_ref(self, scheme: str, size: int, block_size: int, digests: Sequence[bytes]) -> MapRef:
        try:
            key = await self.refs.add(scheme, size, block_size, digests)
        except StoreMissingBlocks as exc:
            raise MissingBlocks(exc.digests) from None
        except BadMap as exc:
            raise BadHashmap(str(exc)) from None
        return MapRef(key.scheme, key.size, key.top)

    def map_ref(self, scheme: str, size: int, digests: Sequence[bytes]) -> MapRef:
        return MapRef(scheme, size, top_hash(list(digests), size, scheme))

    async def hashmap(self, version: ObjectVersion) -> HashMap:
        """The block list of a version (not a deleted marker)."""
        return await self.maps.get(_map_key(version))

    # ------------------------------------------------------------------ writes

    async def commit(
        self,
        account: str,
        container: Container,
        name: str,
        *,
        size: int,
        digests: Sequence[bytes],
        modified_by: str,
        content_type: str = "application/octet-stream",
        meta: Mapping[str, str] | None = None,
        attrs: Mapping[str, str] | None = None,
        precondition: Precondition | None = None,
        uuid: str | None = None,
        wait_drops: bool = True,
    ) -> WriteResult:
        """New current version of ``name`` made of these blocks (all already stored).

        ``uuid`` as for ``MetadataStore.objects.put`` (None: the object's own).
        ``wait_drops`` False: return without waiting for the replaced version's map
        reference to be dropped (MapReferences.drop_soon).
        MissingBlocks (409) if some are not; BadHashmap (400) if the list does not
        fit the size; metadata errors (412, 413, ...) otherwise."""
        pol = container.policy
        ref = await self._add_ref(pol.hash_scheme, size, pol.block_size, digests)
        return await self.refs.guarded(
            ref,
            self.meta.objects.put(
                account,
                container.name,
                name,
                map=ref,
                modified_by=modified_by,
                content_type=content_type,
                meta=meta,
                attrs=attrs,
                precondition=precondition,
                uuid=uuid,
            ),
            wait_drops=wait_drops,
        )

    async def put_stream(
        self,
        account: str,
        container: Container,
        name: str,
        source: ByteSource,
        *,
        length: int | None,
        modified_by: str,
        content_type: str = "application/octet-stream",
        meta: Mapping[str, str] | None = None,
        attrs: Mapping[str, str] | None = None,
        precondition: Precondition | None = None,
        expect_etag: str | None = None,
        uuid: str | None = None,
    ) -> WriteResult:
        """A plain PUT: store the stream's blocks, then commit; the MD5 goes to attrs.

        ``expect_etag`` (the request's ETag, unquoted) must equal the MD5 (Swift
        clients) or the top hash (Pithos clients) of the body, else ChecksumMismatch
        and nothing is committed (the blocks stay unreferenced for the GC)."""
        pol = container.policy
        if length is not None and 0 < length <= pol.block_size:
            return await self._put_one_block(
                account, container, name, await _read_exact(source, length), modified_by=modified_by,
                content_type=content_type, meta=meta, attrs=attrs, precondition=precondition,
                expect_etag=expect_etag, uuid=uuid,
            )
        size, digests, md5 = await self.write_stream(pol.hash_scheme, pol.block_size, source, length=length)
        if expect_etag:
            want = expect_etag.strip().strip('"').lower()
            top = top_hash(list(digests), size, pol.hash_scheme).hex()
            if want not in (md5, top):
                raise ChecksumMismatch("the ETag sent does not match the data (MD5 or top hash)")
        full_attrs = dict(attrs or {})
        if md5 is not None:
            full_attrs[MD5_ATTR] = md5
        return await self.commit(
            account,
            container,
            name,
            size=size,
            digests=digests,
            modified_by=modified_by,
            content_type=content_type,
            meta=meta,
            attrs=full_attrs,
            precondition=precondition,
            uuid=uuid,
            wait_drops=False,  # a PUT answers once its version is durable, not its drops
        )

    async def _put_one_block(
        self,
        account: str,
        container: Container,
        name: str,
        body: bytes,
        *,
        modified_by: str,
        content_type: str,
        meta: Mapping[str, str] | None,
        attrs: Mapping[str, str] | None,
        precondition: Precondition | None,
        expect_etag: str | None,
        uuid: str | None,
    ) -> WriteResult:
        """put_stream of a body that is one block: the block and the version's map
        reference are made durable by ONE block-store commit (one data sync, one
        LMDB transaction: MapReferences.begin_add_with_blocks), then the metadata
        commit.  A small body is hashed and written on the loop."""
        pol = container.policy
        scheme, bs = pol.hash_scheme, pol.block_size
        size = len(body)

        def prepare() -> tuple[str, MapKey, PendingPut]:
            digest = block_digest(body, scheme)
            md5 = hashlib.md5(body).hexdigest()
            if expect_etag:
                want = expect_etag.strip().strip('"').lower()
                if want not in (md5, top_hash([digest], size, scheme).hex()):
                    raise ChecksumMismatch("the ETag sent does not match the data (MD5 or top hash)")
            try:
                key, pending = self.refs.begin_add_with_blocks(scheme, size, bs, [digest], [(digest, body)])
            except BadMap as exc:
                raise BadHashmap(str(exc)) from None
            return md5, key, pending

        if size <= INLINE_HASH:
            md5, key, pending = prepare()
        else:
            md5, key, pending = await asyncio.get_running_loop().run_in_executor(self._put_pool, prepare)
        try:
            await self.refs.finish_add_with_blocks(key, pending)
        except StoreMissingBlocks as exc:  # GC took the block between the put and its commit
            raise MissingBlocks(exc.digests) from None
        c = self.counters
        c.blocks_received += 1
        c.blocks_deduplicated += pending.known
        c.bytes_received += size
        full_attrs = dict(attrs or {})
        full_attrs[MD5_ATTR] = md5
        ref = MapRef(key.scheme, key.size, key.top)
        return await self.refs.guarded(
            ref,
            self.meta.objects.put(
                account, container.name, name, map=ref, modified_by=modified_by, content_type=content_type,
                meta=meta, attrs=full_attrs, precondition=precondition, uuid=uuid,
            ),
            wait_drops=False,
        )

    async def copy(
        self,
        src: tuple[str, str, str],
        dst: tuple[str, str, str],
        *,
        move: bool = False,
        modified_by: str,
        serial: int | None = None,
        content_type: str | None = None,
        meta: Mapping[str, str | None] | None = None,
        replace_meta: bool = False,
        attrs: Mapping[str, str] | None = None,
        precondition: Precondition | None = None,
    ) -> WriteResult:
        """Copy/move without moving data (a new map reference); when the containers'
        policies differ, the data is re-hashed into the destination's scheme."""
        source = await self.meta.objects.get(*src, serial=serial)
        if source.map is None:
            raise merr.ObjectNotFound("the source version is deleted")
        scont = await self.meta.containers.get(src[0], src[1])
        dcont = await self.meta.containers.get(dst[0], dst[1])
        sp, dp = scont.policy, dcont.policy
        if (sp.hash_scheme, sp.block_size) != (dp.hash_scheme, dp.block_size):
            return await self._copy_data(
                source, dcont, dst, move=move, modified_by=modified_by, content_type=content_type,
                meta=meta, replace_meta=replace_meta, precondition=precondition,
            )
        await self.refs.add_existing(source.map)
        kwargs: dict[str, Any] = dict(
            modified_by=modified_by,
            content_type=content_type,
            meta=meta,
            replace_meta=replace_meta,
            attrs=attrs,
            precondition=precondition,
        )
        if move:
            op = self.meta.objects.move(src, dst, **kwargs)
        else:
            op = self.meta.objects.copy(src, dst, serial=serial, **kwargs)
        return await self.refs.guarded(source.map, op)

    async def _copy_data(
        self,
        source: ObjectVersion,
        dcont: Container,
        dst: tuple[str, str, str],
        *,
        move: bool,
        modified_by: str,
        content_type: str | None,
        meta: Mapping[str, str | None] | None,
        replace_meta: bool,
        precondition: Precondition | None,
    ) -> WriteResult:
        # A move is the same object elsewhere (its UUID goes along); a copy is a new one.
        result = await self.copy_bytes(
            source, StreamSource(self.read(source)), source.size, dcont, dst, modified_by=modified_by,
            content_type=content_type, meta=meta, replace_meta=replace_meta, precondition=precondition,
            uuid=source.uuid if move else None,
        )
        if move:
            await self.delete(source.account, source.container, source.name, modified_by=modified_by)
        return result

    async def copy_bytes(
        self,
        source: ObjectVersion,
        data: ByteSource,
        length: int,
        dcont: Container,
        dst: tuple[str, str, str],
        *,
        modified_by: str,
        content_type: str | None = None,
        meta: Mapping[str, str | None] | None = None,
        replace_meta: bool = False,
        precondition: Precondition | None = None,
        drop_attrs: Collection[str] = (),
        uuid: str | None = None,
    ) -> WriteResult:
        """A copy of ``source`` whose bytes are read from ``data`` and stored anew: a copy
        between containers of different block policies, or of what a large object
        reads as (its segments joined). Metadata as for ``copy``; ``source``'s attrs
        but ``drop_attrs`` (and the MD5, computed again) go along; a new UUID unless
        ``uuid`` is given."""
        new_meta: dict[str, str] = {} if replace_meta else dict(source.meta)
        for k, v in (meta or {}).items():
            if v:
                new_meta[k.lower()] = v
            else:
                new_meta.pop(k.lower(), None)
        drop = {MD5_ATTR, *drop_attrs}
        return await self.put_stream(
            dst[0], dcont, dst[2], data, length=length, modified_by=modified_by,
            content_type=content_type or source.content_type, meta=new_meta,
            attrs={k: v for k, v in source.attrs.items() if k not in drop}, precondition=precondition,
            uuid=uuid or new_object_uuid(),
        )

    async def update_meta(
        self,
        account: str,
        container: str,
        name: str,
        *,
        modified_by: str,
        meta: Mapping[str, str | None] | None = None,
        replace_meta: bool = False,
        content_type: str | None = None,
        attrs: Mapping[str, str] | None = None,
    ) -> WriteResult:
        """Object POST: a new version with other metadata, same map (one more reference);
        ``attrs`` replace the attributes whole when given."""
        cur = await self.meta.objects.get(account, container, name)
        assert cur.map is not None
        await self.refs.add_existing(cur.map)
        return await self.refs.guarded(
            cur.map,
            self.meta.objects.update_meta(
                account,
                container,
                name,
                modified_by=modified_by,
                meta=meta,
                replace_meta=replace_meta,
                content_type=content_type,
                attrs=attrs,
                precondition=Precondition(serial=cur.serial),
            ),
        )

    async def update_range(
        self,
        account: str,
        container: Container,
        name: str,
        *,
        offset: int,
        length: int,
        source: ByteSource,
        truncate: int | None = None,
        modified_by: str,
    ) -> WriteResult:
        """Partial update: write ``length`` bytes from ``source`` at ``offset`` (which
        may be the end: append), then truncate to ``truncate`` bytes if given.  Only
        the blocks touched are read, patched, hashed and stored; the others keep
        their digests.  The version must not change meanwhile (412)."""
        cur = await self.meta.objects.get(account, container.name, name)
        hmap = await self.hashmap(cur)
        bs = container.policy.block_size
        scheme = container.policy.hash_scheme
        old_size = cur.size
        if hmap.block_size != bs and old_size > bs:
            raise merr.PolicyMismatch("object block size differs from the container's")
        old = [] if old_size == 0 else list(hmap.hashes)
        new_size = max(old_size, offset + length)
        if truncate is not None:
            new_size = truncate if length == 0 else min(new_size, max(truncate, 0))
        nblocks = -(-new_size // bs)
        digests: list[bytes] = []
        first = offset // bs
        last = (offset + length - 1) // bs if length else -1
        for i in range(nblocks):
            start = i * bs
            blen = min(bs, new_size - start)
            touched = first <= i <= last
            old_len = max(0, min(bs, old_size - start))
            if not touched and old_len == blen and i < len(old):
                digests.append(old[i])
                continue
            block = bytearray(blen)
            if old_len and i < len(old):
                data = await self._block(hmap, i)
                block[: min(old_len, blen)] = memoryview(data)[: min(old_len, blen)]
            if touched:
                lo = max(offset, start)
                hi = min(offset + length, start + blen)
                need = hi - lo
                got = bytearray()
                while len(got) < need:
                    part = await source.read(need - len(got))
                    if not part:
                        raise ShortBody(f"update data ended {need - len(got)} bytes early")
                    got += part
                block[lo - start : hi - start] = got
            digests += (await self.put_blocks(scheme, [bytes(block)])).digests
        if new_size == 0 and scheme == "sha256":
            digests = [SHA256_EMPTY]
        attrs = {k: v for k, v in cur.attrs.items() if k != MD5_ATTR}
        return await self.commit(
            account,
            container,
            name,
            size=new_size,
            digests=digests,
            modified_by=modified_by,
            content_type=cur.content_type,
            meta=cur.meta,
            attrs=attrs,
            precondition=Precondition(serial=cur.serial),
        )

    async def delete(self, account: str, container: str, name: str, *, modified_by: str) -> DeleteResult:
        result = await self.meta.objects.delete(account, container, name, modified_by=modified_by)
        await self.refs.drop(result.dropped_maps)
        return result

    async def delete_tree(self, account: str, container: str, name: str, *, delimiter: str, modified_by: str) -> int:
        """The object and everything under ``name + delimiter``, in one transaction
        (Pithos' object DELETE with ``delimiter``).  Returns how many were deleted."""
        result = await self.meta.objects.delete_tree(
            account, container, name, delimiter=delimiter, modified_by=modified_by
        )
        await self.refs.drop(result.dropped_maps)
        return result.deleted

    async def delete_objects(self, account: str, container: str, *, modified_by: str, batch: int = 1000) -> int:
        """Delete every current object of the container (Pithos ``DELETE ?delimiter``),
        each as ``delete`` does (a marker under versioning auto), batch by batch;
        the container stays.  Returns how many were deleted.  Not one transaction:
        an object written while this runs may survive it."""
        total = 0
        while True:
            result = await self.meta.objects.delete_batch(account, container, modified_by=modified_by, limit=batch)
            await self.refs.drop(result.dropped_maps)
            total += result.deleted
            if not result.more:
                return total

    async def purge(
        self, account: str, container: str, *, before: float, name: str | None = None
    ) -> PurgeResult:
        result = await self.meta.objects.purge_history(account, container, before=before, name=name)
        await self.refs.drop(result.dropped_maps)
        return result

    async def delete_container(self, account: str, container: str) -> PurgeResult:
        result = await self.meta.containers.delete(account, container)
        await self.refs.drop(result.dropped_maps)
        return result

    # ------------------------------------------------------------------ reads

    async def _block(self, hmap: HashMap, i: int) -> bytes:
        length = hmap.block_length(i)
        if hmap.zero[i]:
            return bytes(length)
        return await self.blocks.get(hmap.scheme, hmap.hashes[i], length)

    async def _map_and_block_at(self, version: ObjectVersion, offset: int) -> tuple[HashMap, memoryview | bytes | None]:
        """A version's map and the block holding `offset`, in one trip to the store's
        threads (a small object's whole read); the block is None when it is a zero block."""
        key = _map_key(version)
        store = self.blocks.store
        maps = self.maps.sync

        def lookup() -> tuple[HashMap, memoryview | bytes | None]:
            hmap = maps.get(key)
            i = offset // hmap.block_size
            if i >= len(hmap.hashes) or hmap.zero[i]:
                return hmap, None
            return hmap, store.get_buffer(hmap.scheme, hmap.hashes[i], hmap.block_length(i))

        if version.size <= INLINE_READ:
            return lookup()  # an LMDB lookup and a small view of the mapping: no thread hop
        return await self.blocks.call(lookup)

    async def _block_view(self, hmap: HashMap, i: int) -> memoryview | bytes:
        """Like _block, but zero-copy when it can be: a read-only view of the
        segment mapping (checked against its record checksum), kept mapped
        while the view lives."""
        length = hmap.block_length(i)
        if hmap.zero[i]:
            return _zeros(length)
        if length <= INLINE_READ:
            return self.blocks.store.get_buffer(hmap.scheme, hmap.hashes[i], length)
        return await self.blocks.get_buffer(hmap.scheme, hmap.hashes[i], length)

    async def read(
        self,
        version: ObjectVersion,
        start: int = 0,
        end: int | None = None,
        hmap: HashMap | None = None,
        *,
        served: bool = True,
    ) -> AsyncIterator[bytes]:
        """The version's bytes ``start..end`` (inclusive; None = to the end), block by
        block; zero blocks are synthesised, the next block is fetched while the
        caller sends the current one.  ``served``: count the bytes as served to a
        client (the bytes_served counter); False for the store's own reads."""
        size = version.size
        if end is None or end >= size:
            end = size - 1
        if size == 0 or start > end:
            return
        ready: memoryview | bytes | None = None
        if hmap is None:
            hmap, ready = await self._map_and_block_at(version, start)
        bs = hmap.block_size
        first, last = start // bs, end // bs
        nxt: asyncio.Future[Any] | None = None if ready is not None else asyncio.ensure_future(self._block_view(hmap, first))
        try:
            for i in range(first, last + 1):
                if ready is not None:
                    data, ready = ready, None
                else:
                    assert nxt is not None
                    data = await nxt
                nxt = asyncio.ensure_future(self._block_view(hmap, i + 1)) if i < last else None
                lo = start - i * bs if i == first else 0
                hi = end - i * bs + 1 if i == last else len(data)
                piece = data if (lo == 0 and hi == len(data)) else data[lo:hi]
                if served:
                    self.counters.bytes_served += len(piece)
                yield piece
        finally:
            if nxt is not None and not nxt.done():
                nxt.cancel()

    async def md5_of(self, version: ObjectVersion) -> str:
        """MD5 of a version's bytes, from attrs, else by reading it (hashed in the
        hash pool, so the event loop keeps serving; not counted as bytes served)."""
        stored = version.attrs.get(MD5_ATTR)
        if stored:
            return stored
        h = hashlib.md5()
        loop = asyncio.get_running_loop()
        async for piece in self.read(version, served=False):
            if len(piece) <= INLINE_HASH:
                h.update(piece)
            else:
                await loop.run_in_executor(self._hash_pool, h.update, piece)
        return h.hexdigest()

    async def fill_md5(self, version: ObjectVersion) -> str:
        """The MD5 of a version stored without one, recorded on every version with the
        same content (metadata ``record_md5``): taken from one of them when it has
        it, else computed by reading the content."""
        md5 = version.attrs.get(MD5_ATTR)
        if md5:
            return md5
        if version.map is not None:
            md5 = await self.meta.objects.known_md5(version.map)
        if not md5:
            md5 = await self.md5_of(version)
        if version.map is not None:
            await self.meta.objects.record_md5(version.map, md5)
        return md5

    # ------------------------------------------------------------------ stats

    async def stats(self) -> dict[str, Any]:
        s = await self.blocks.stats()
        out = s.as_dict()
        c = self.counters
        out.update(
            blocks_received=c.blocks_received,
            blocks_deduplicated=c.blocks_deduplicated,
            bytes_received=c.bytes_received,
            bytes_served=c.bytes_served,
            map_refs_added=self.refs.counters.added,
            map_refs_dropped=self.refs.counters.dropped,
        )
        return out
