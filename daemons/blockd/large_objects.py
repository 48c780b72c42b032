"""Swift large objects: static ones (SLO: `PUT ?multipart-manifest=put`, GET/HEAD as the
concatenation of the segments, `?multipart-manifest=get`, `DELETE ?multipart-manifest=delete`)
and the reads of dynamic ones (DLO, X-Object-Manifest).

An SLO is stored as Swift stores it: the object's bytes are the manifest JSON
(net.swift_slo.format_manifest, what `?multipart-manifest=get` returns) and its
attrs carry the total size, the SLO ETag and the nesting depth. No segment data
is copied; segments stay ordinary objects, checked against the manifest (size
and ETag of the whole object, even when only a range of it is used) whenever
they are read, so a segment replaced or deleted later makes the SLO unreadable
rather than silently different. Inline `data` segments live in the manifest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from aiohttp import web

from daemons.runtime.access_log import BYTES_IN
from net.http_conditional import format_http_date
from net.http_errors import InvalidManifest, InvalidPartNumber, RangeNotSatisfiable
from net.http_range import Span, select_ranges
from net.object_names import validate_container
from net.pithos_listing import format_iso8601
from net.swift_slo import (
    MAX_MANIFEST_DEPTH,
    MAX_MANIFEST_SIZE,
    MAX_STORED_MANIFEST_SIZE,
    PART_NUMBER_UNSATISFIABLE,
    BulkDeleteResult,
    DataSegment,
    ManifestEntry,
    SegmentRef,
    StoredSegment,
    format_bulk_delete,
    format_manifest,
    format_raw_manifest,
    manifest_etag,
    manifest_size,
    normalize_etag,
    parse_part_number,
    parse_put_manifest,
    part_span,
    parse_stored_manifest,
    resolve_segment_range,
)
from storage_engine.objects.byte_sources import BytesSource, StreamSource
from storage_engine.objects.large_objects import (
    DLO_MANIFEST_ATTR,
    LARGE_OBJECT_ATTRS,
    SLO_DEPTH_ATTR,
    SLO_ETAG_ATTR,
    SLO_SIZE_ATTR,
    LargeObjects,
    is_static_large_object,
    slo_depth,
)
from storage_engine.objects.metadata import Precondition, WriteResult
from storage_engine.objects.metadata import errors as merr
from storage_engine.objects.metadata.records import ObjectVersion
from storage_engine.objects.store import MD5_ATTR

from .http import HTTPError, prefixed, read_body
from .permissions import Permissions
from .request_context import Req, attrs_from, put_content_type
from .service import Service
from .sharing import Sharing
from .versions import Versions

log = logging.getLogger("nefeli-blockd")

#: segment look-ups of one manifest PUT under way at once
_LOOKUPS = 32
#: problems listed in a 400 answer
_MAX_PROBLEMS = 20
#: the largest joined content a copy of a large object makes while its client waits
#: (Swift's default max_file_size, which limits such a copy there)
MAX_JOINED_COPY = 5 * 1024**3
#: inline data pieces are gathered up to this size before they are sent
_DATA_WRITE = 64 * 1024


ReadSpan = Callable[[int, int], AsyncGenerator[bytes, None]]
CheckSpan = Callable[[int, int], Awaitable[None]]


@dataclass
class SloView:
    """How GET/HEAD serves an SLO version: headers to add, the ETag conditionals compare,
    and — unless the manifest itself was asked for — the total size and a reader of
    byte spans (inclusive) of the concatenation."""

    headers: dict[str, str]
    etag: str
    size: int | None = None
    read: ReadSpan | None = None
    check: CheckSpan | None = None
    #: the bytes ?part-number= asks for (served as a 206 whatever the Range)
    part: Span | None = None
    raw_manifest: bool = False
    entries: list[StoredSegment] = field(default_factory=list)


@dataclass(frozen=True)
class ResolvedSegment:
    """A segment found while checking a manifest PUT: its stored entry and manifest depth."""

    entry: ManifestEntry
    depth: int


async def _no_bytes() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


def part_number_of(r: Req) -> int | None:
    """``?part-number=`` of an SLO GET/HEAD/COPY; 400 with Swift's text if it is no
    positive integer (the manifest itself, ?multipart-manifest=get, ignores it)."""
    raw = r.query.get("part-number")
    if raw is None or r.query.get("multipart-manifest") == "get":
        return None
    try:
        return parse_part_number(raw)
    except InvalidPartNumber as exc:
        raise HTTPError(400, exc.reason, exact=True) from None


class LargeObjectHandler:
    """SLO PUT, GET/HEAD, copy and delete; DLO reads (with storage_engine.objects.large_objects)."""

    def __init__(self, service: Service, perms: Permissions, versions: Versions, sharing: Sharing) -> None:
        self.service = service
        self.perms = perms
        self.versions = versions
        self.sharing = sharing
        self.engine = LargeObjects(service.store)

    # ------------------------------------------------------------------ DLO

    async def dlo_segments(self, r: Req, acct: str, manifest: str, until: float | None = None) -> list[ObjectVersion]:
        """The segments of an X-Object-Manifest object, in name order; with ``until``
        (the owner's alone, see until.py), the segments as they were then."""
        cont, _, prefix = unquote(manifest).lstrip("/").partition("/")
        validate_container(cont)
        return await self.engine.dynamic_segments(
            acct, cont, prefix, as_user=None if r.owner or r.user is None else r.user, until=until
        )

    def read_joined(self, segments: Sequence[ObjectVersion], start: int, end: int) -> AsyncIterator[bytes]:
        return self.engine.read_joined(segments, start, end)

    # ------------------------------------------------------------------ PUT

    async def put(self, r: Req) -> web.StreamResponse:
        """PUT ?multipart-manifest=put: check every segment, keep the manifest (not the data)."""
        acct, cont, name = r.account or "", r.container or "", r.obj or ""
        await self.perms.require_write(r, acct, cont, name)
        self.sharing.check(r)
        c = await self.service.meta.containers.get(acct, cont)
        cur = await self.versions.current(acct, cont, name)
        pre = self.versions.write_precondition(r, cur)
        body = await read_body(r.request, MAX_MANIFEST_SIZE)
        items = parse_put_manifest(body)
        sem = asyncio.Semaphore(_LOOKUPS)
        last = len(items) - 1  # as in Swift, a data segment after it makes an empty object segment "not last"

        async def resolve(i: int, ref: SegmentRef) -> ResolvedSegment | list[str]:
            if (ref.container, ref.name) == (cont, name):
                # the PUT would replace the segment it names: the SLO could never be read
                return ["a manifest cannot be its own segment"]
            async with sem:
                return await self._resolve_segment(r, acct, ref, last=i == last)

        refs = [(i, it) for i, it in enumerate(items) if isinstance(it, SegmentRef)]
        found = await asyncio.gather(*(resolve(i, ref) for i, ref in refs))
        problems = [f"{ref.path}, {p}" for (_, ref), f in zip(refs, found) if isinstance(f, list) for p in f]
        if problems:
            more = len(problems) - _MAX_PROBLEMS
            text = "\n".join(["bad SLO manifest; errors:", *problems[:_MAX_PROBLEMS]])
            raise HTTPError(400, text + (f"\n... and {more} more" if more > 0 else ""))
        resolved = {i: f for (i, _), f in zip(refs, found) if isinstance(f, ResolvedSegment)}
        depth = 1 + max(s.depth for s in resolved.values())  # the codec made sure there is an object segment
        if depth > MAX_MANIFEST_DEPTH:
            raise HTTPError(400, f"bad SLO manifest: manifests nested more than {MAX_MANIFEST_DEPTH} levels deep")
        entries = [it if isinstance(it, DataSegment) else resolved[i].entry for i, it in enumerate(items)]
        etag = manifest_etag(entries)
        want = r.headers.get("ETag")
        if want and normalize_etag(want) != etag:
            raise HTTPError(422, "the ETag sent does not match the SLO's (MD5 of the segments' ETag parts)")
        attrs = {k: v for k, v in attrs_from(r).items() if k != DLO_MANIFEST_ATTR}
        attrs.update(
            {SLO_SIZE_ATTR: str(manifest_size(entries)), SLO_ETAG_ATTR: etag, SLO_DEPTH_ATTR: str(depth)}
        )
        manifest = format_manifest(entries)
        if len(manifest) > MAX_STORED_MANIFEST_SIZE:
            raise HTTPError(413, f"the stored SLO manifest would be over {MAX_STORED_MANIFEST_SIZE} bytes")

        result = await self.service.store.put_stream(
            acct, c, name, BytesSource(manifest), length=len(manifest), modified_by=r.user or acct,
            content_type=put_content_type(r),
            meta=prefixed(r.headers, "x-object-meta-"), attrs=attrs, precondition=pre,
        )
        r.request[BYTES_IN] = len(body)
        await self.sharing.apply(r, acct, cont, name)
        v = result.version
        return web.Response(
            status=201,
            headers={
                "ETag": f'"{etag}"',
                "X-Object-Version": str(v.serial),
                "X-Object-Hash": v.etag,
                "Last-Modified": format_http_date(v.mtime),
            },
        )

    async def _resolve_segment(
        self, r: Req, acct: str, ref: SegmentRef, *, last: bool
    ) -> ResolvedSegment | list[str]:
        """The stored entry for one segment of a PUT manifest, or why it cannot be one
        (every problem, in Swift's order: range, size, ETag)."""
        try:
            v = await self.service.meta.objects.get(acct, ref.container, ref.name)
        except (merr.ObjectNotFound, merr.ContainerNotFound):
            return ["404 Not Found"]
        if v.map is None:
            return ["404 Not Found"]
        if not await self.perms.may_read(r.user, acct, ref.container, ref.name):
            return ["403 Forbidden"]
        if v.attrs.get(DLO_MANIFEST_ATTR):
            return ["a dynamic large object cannot be a segment"]
        if is_static_large_object(v):
            size, etags, depth = int(v.attrs[SLO_SIZE_ATTR]), {v.attrs[SLO_ETAG_ATTR]}, slo_depth(v)
            recorded = v.attrs[SLO_ETAG_ATTR]
        else:
            md5 = v.attrs.get(MD5_ATTR)
            size, etags, depth = v.size, {v.etag, md5} - {None}, 0
            recorded = md5 or v.etag
        problems: list[str] = []
        span = None
        length = size
        if ref.range is not None:
            try:
                span = resolve_segment_range(ref.range, size)  # None: all of it, kept without a range
            except InvalidManifest:
                problems.append(f"Unsatisfiable Range (segment {size} bytes)")
            else:
                length = size if span is None else span.length
        if length == 0 and not last:
            problems.append("Too small; each segment but the last must be at least 1 byte")
        if ref.size_bytes is not None and ref.size_bytes != size:
            problems.append(f"Size Mismatch (manifest {ref.size_bytes}, segment {size} bytes)")
        if ref.etag is not None and ref.etag not in etags:
            problems.append("Etag Mismatch")
        if problems:
            return problems
        entry = ManifestEntry(
            ref.container, ref.name, recorded, size, v.content_type, format_iso8601(v.mtime), depth > 0, span
        )
        return ResolvedSegment(entry, depth)

    # ------------------------------------------------------------------ GET/HEAD

    async def view(self, r: Req, v: ObjectVersion) -> SloView | None:
        """None for anything but an SLO; else how GET/HEAD serves it (the manifest
        itself with ?multipart-manifest=get, otherwise the concatenation)."""
        if not is_static_large_object(v):
            return None
        headers = {"X-Static-Large-Object": "True"}
        if r.query.get("multipart-manifest") == "get":
            headers["Content-Type"] = "application/json; charset=utf-8"
            raw = (r.query.get("format") or "").lower() == "raw"
            etag = self.versions.etag_for(r.api, v) or v.etag
            return SloView(headers, etag, raw_manifest=raw, entries=await self._manifest(v) if raw else [])
        etag = v.attrs[SLO_ETAG_ATTR]
        headers["ETag"] = f'"{etag}"'
        manifest_md5 = self.versions.etag_for(r.api, v)
        if manifest_md5:
            headers["X-Manifest-Etag"] = manifest_md5  # the manifest's own MD5, as Swift sends it
        part = part_number_of(r)
        entries = await self._manifest(v) if r.method == "GET" or part is not None else []
        if part is not None:
            headers["X-Parts-Count"] = str(len(entries))

        def read(start: int, end: int) -> AsyncGenerator[bytes, None]:
            return self._slo_read(r, v, entries, start, end)

        async def check(start: int, end: int) -> None:
            async for _ in self._slo_leaves(r, v, entries, start, end, 1):
                pass

        size = int(v.attrs[SLO_SIZE_ATTR])
        view = SloView(headers, etag, size=size, read=read, check=check, entries=entries)
        if part is not None:
            view.part = self._part(entries, part, size, headers)
        return view

    @staticmethod
    def _part(entries: Sequence[StoredSegment], number: int, size: int, headers: dict[str, str]) -> Span:
        """The bytes ?part-number= names; 416 with Swift's text past the last part."""
        span = part_span(entries, number)
        if span is None:
            raise HTTPError(416, PART_NUMBER_UNSATISFIABLE, {**headers, "Content-Range": f"bytes */{size}"}, exact=True)
        return span

    async def raw_manifest(self, r: Req, view: SloView, headers: dict[str, str]) -> web.StreamResponse:
        """?multipart-manifest=get&format=raw: the manifest in the form a PUT takes."""
        body = format_raw_manifest(view.entries)
        headers = {k: val for k, val in headers.items() if k.lower() not in ("etag", "content-length")}
        if r.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=body, headers=headers)

    async def check_spans(self, view: SloView, spans: Sequence[tuple[int, int]]) -> None:
        """Find every segment the spans need (sub-manifests too) before any header is
        sent, so a segment deleted or replaced since the manifest was written is a 409
        rather than a connection cut halfway through the body. Only metadata is read."""
        if view.check is None:
            return
        for start, end in spans:
            await view.check(start, end)

    async def _manifest(self, v: ObjectVersion) -> list[StoredSegment]:
        if v.size > MAX_STORED_MANIFEST_SIZE:
            raise HTTPError(409, f"{v.container}/{v.name}: the stored SLO manifest is too large")
        data = bytearray()
        async for piece in self.service.store.read(v):
            data += piece
        try:
            return parse_stored_manifest(bytes(data))
        except InvalidManifest as exc:
            raise HTTPError(409, f"{v.container}/{v.name}: unreadable SLO manifest ({exc.reason})") from None

    async def _slo_read(
        self, r: Req, top: ObjectVersion, entries: list[StoredSegment], start: int, end: int
    ) -> AsyncGenerator[bytes, None]:
        held = bytearray()  # consecutive inline data, sent together rather than as tiny writes
        async for leaf in self._slo_leaves(r, top, entries, start, end, 1):
            if isinstance(leaf, bytes):
                held += leaf
                if len(held) < _DATA_WRITE:
                    continue
            if held:
                yield bytes(held)
                held.clear()
            if not isinstance(leaf, bytes):
                seg, lo, hi = leaf
                async for piece in self.service.store.read(seg, lo, hi):
                    yield piece
        if held:
            yield bytes(held)

    async def _slo_leaves(
        self, r: Req, top: ObjectVersion, entries: list[StoredSegment], start: int, end: int, depth: int
    ) -> AsyncIterator[tuple[ObjectVersion, int, int] | bytes]:
        """(segment, first, last byte in it) or inline bytes for the bytes start..end of
        these entries, following sub-manifests (into the range of them a segment uses);
        segments outside the span are not even looked up."""
        off = 0
        for e in entries:
            lo = off
            off += e.length
            if e.length == 0 or off - 1 < start:
                continue
            if lo > end:
                break
            first, last = max(start, lo) - lo, min(end, off - 1) - lo
            if isinstance(e, DataSegment):
                yield e.data[first : last + 1]
                continue
            seg = await self._slo_segment(r, top, e)
            if e.range is not None:  # offsets in the part used -> offsets in the object
                first, last = first + e.range.start, last + e.range.start
            if e.sub_slo:
                if depth >= MAX_MANIFEST_DEPTH:
                    raise self._broken(top, e, "manifests nested too deep")
                sub = await self._manifest(seg)
                async for leaf in self._slo_leaves(r, top, sub, first, last, depth + 1):
                    yield leaf
            else:
                yield seg, first, last

    async def _slo_segment(self, r: Req, top: ObjectVersion, e: ManifestEntry) -> ObjectVersion:
        """The segment's current version, if it is still what the manifest recorded."""
        try:
            v = await self.service.meta.objects.get(top.account, e.container, e.name)
        except (merr.ObjectNotFound, merr.ContainerNotFound):
            raise self._broken(top, e, "not found") from None
        if v.map is None:
            raise self._broken(top, e, "not found")
        if r.user is not None and r.user != top.account:
            await self.perms.require_read(r, top.account, e.container, e.name)
        if e.sub_slo:
            ok = is_static_large_object(v) and (v.attrs[SLO_ETAG_ATTR], int(v.attrs[SLO_SIZE_ATTR])) == (e.hash, e.bytes)
        else:
            ok = v.size == e.bytes and e.hash in (v.attrs.get(MD5_ATTR), v.etag)
        if not ok:
            raise self._broken(top, e, "changed since the manifest was written")
        return v

    @staticmethod
    def _broken(top: ObjectVersion, e: ManifestEntry, why: str) -> HTTPError:
        log.warning("SLO %s/%s/%s: segment %s %s", top.account, top.container, top.name, e.path, why)
        return HTTPError(409, f"SLO segment {e.path}: {why}")

    # ------------------------------------------------------------------ COPY

    async def copy_joined(
        self,
        r: Req,
        src: tuple[str, str, str],
        serial: int | None,
        dst: tuple[str, str, str],
        *,
        content_type: str | None,
        meta: dict[str, str] | None,
        fresh: bool,
        modified_by: str,
        precondition: Precondition | None,
    ) -> WriteResult | None:
        """Swift's copies that read the source's bytes (COPY, or PUT with X-Copy-From,
        on the Swift path), as Swift's copy middleware makes them with a GET of the
        source: a large object's copy is a plain object holding its segments joined
        (``?part-number=`` one part of an SLO), and a copy with a ``Range`` holds
        those bytes of any object. With ``?multipart-manifest=get`` the manifest
        itself is copied instead (the usual copy: another manifest over the same
        segments); so it is on the Pithos path. None when that usual copy, which
        shares the source's map, applies."""
        if r.api != "swift" or r.query.get("multipart-manifest") == "get":
            return None
        v = await self.versions.get(*src, serial)
        # segments are read as the source's reader: the caller's rights in the source account
        rs = r.at(*src)
        rng = r.headers.get("Range")
        read: Callable[[int, int], AsyncIterator[bytes]]
        part: Span | None = None
        if is_static_large_object(v):
            size = int(v.attrs[SLO_SIZE_ATTR])
            entries = await self._manifest(v)
            number = part_number_of(r)
            if number is not None:  # only that part is copied (Swift applies it to the source GET)
                part = self._part(entries, number, size, {})

            def read(first: int, last: int) -> AsyncIterator[bytes]:
                return self._slo_read(rs, v, entries, first, last)
        elif v.attrs.get(DLO_MANIFEST_ATTR):
            segments = await self.dlo_segments(rs, src[0], v.attrs[DLO_MANIFEST_ATTR])
            size = sum(s.size for s in segments)

            def read(first: int, last: int) -> AsyncIterator[bytes]:
                return self.read_joined(segments, first, last)
        elif rng is not None:
            size = v.size

            def read(first: int, last: int) -> AsyncIterator[bytes]:
                return self.service.store.read(v, first, last)
        else:
            return None
        first, last = 0, size - 1
        if part is not None:
            first, last = part.start, part.end
        elif rng is not None:
            try:
                spans = select_ranges(rng, size)
            except RangeNotSatisfiable as exc:
                raise HTTPError(416, exc.reason, {"Content-Range": f"bytes */{size}"}) from None
            if spans is not None:
                if len(spans) != 1:
                    raise HTTPError(400, "a copy takes one byte range")
                first, last = spans[0].start, spans[0].end
        size = last - first + 1
        if size > MAX_JOINED_COPY:
            raise HTTPError(
                413, f"a copy of a large object's content is limited to {MAX_JOINED_COPY} bytes "
                "(copy its manifest with ?multipart-manifest=get)",
            )
        c = await self.service.meta.containers.get(dst[0], dst[1])
        data: AsyncIterator[bytes] = read(first, last) if size > 0 else _no_bytes()
        return await self.service.store.copy_bytes(
            v, StreamSource(data), size, c, dst, modified_by=modified_by, content_type=content_type,
            meta=meta, replace_meta=fresh, precondition=precondition, drop_attrs=LARGE_OBJECT_ATTRS,
        )

    # ------------------------------------------------------------------ DELETE

    async def delete(self, r: Req) -> web.StreamResponse:
        """DELETE ?multipart-manifest=delete: the segments (sub-manifests' too), then the manifest.

        Answered as Swift's bulk delete: 200 with counts and per-segment errors; a
        segment the caller may not delete is an error, one already gone is counted."""
        acct, cont, name = r.account or "", r.container or "", r.obj or ""
        await self.perms.require_write(r, acct, cont, name)
        v = await self.versions.get(acct, cont, name, None)
        result = BulkDeleteResult()
        by = r.user or acct
        if is_static_large_object(v):
            await self._delete_segments(r, acct, await self._manifest(v), result, {(cont, name)}, 1)
        try:
            await self.service.store.delete(acct, cont, name, modified_by=by)
            result.deleted += 1
        except merr.ObjectNotFound:
            result.not_found += 1
        accept = (r.headers.get("Accept") or "").lower()
        fmt = "json" if "json" in accept or (r.query.get("format") or "").lower() == "json" else "plain"
        return web.Response(
            status=200, body=format_bulk_delete(result, fmt),
            content_type="application/json" if fmt == "json" else "text/plain",
        )

    async def _delete_segments(
        self, r: Req, acct: str, entries: list[StoredSegment], result: BulkDeleteResult,
        seen: set[tuple[str, str]], depth: int,
    ) -> None:
        """Inline data has nothing to delete; an object used for several ranges (or
        several times) is deleted once."""
        by = r.user or acct
        for e in entries:
            if isinstance(e, DataSegment) or (e.container, e.name) in seen:
                continue
            seen.add((e.container, e.name))
            try:
                await self.perms.require_write(r, acct, e.container, e.name)
                seg = await self.service.meta.objects.get(acct, e.container, e.name)
                if seg.map is None:
                    result.not_found += 1
                    continue
                if e.sub_slo and is_static_large_object(seg) and depth < MAX_MANIFEST_DEPTH:
                    await self._delete_segments(r, acct, await self._manifest(seg), result, seen, depth + 1)
                await self.service.store.delete(acct, e.container, e.name, modified_by=by)
                result.deleted += 1
            except (merr.ObjectNotFound, merr.ContainerNotFound):
                result.not_found += 1
            except HTTPError as exc:
                result.errors.append((e.path, "403 Forbidden" if exc.status == 403 else f"{exc.status} {exc.reason}"))
