"""Object requests: GET/HEAD (ranges, manifests, versions), PUT, POST (metadata, partial update), DELETE, COPY/MOVE."""

from __future__ import annotations

import hashlib
import json

from aiohttp import web

from daemons.runtime.access_log import BYTES_IN, TRANSACTION_ID
from net.http_conditional import evaluate_preconditions, if_range_allows
from net.http_errors import RangeNotSatisfiable
from net.http_range import (
    MultipartByteranges,
    UpdateRange,
    content_range,
    parse_update_content_range,
    plan_update,
    select_ranges,
)
from net.pithos_hashmap import MAX_OBJECT_SIZE
from net.pithos_listing import format_version_timestamp
from storage_engine.objects.byte_sources import ByteSource, BytesSource, StreamSource
from storage_engine.objects.large_objects import DLO_MANIFEST_ATTR, is_static_large_object
from storage_engine.objects.metadata import Precondition, WriteResult, check_quota
from storage_engine.objects.metadata.records import ObjectVersion
from storage_engine.objects.store import MD5_ATTR

from .hashsync import HashSyncHandler
from .http import HTTPError, RequestBody, int_header, prefixed
from .large_objects import LargeObjectHandler
from .permissions import Permissions
from .request_context import (
    ATTR_HEADERS,
    Req,
    attrs_from,
    content_type_of,
    put_content_type,
    is_conditional,
    serial_of,
    source_version_of,
    split_ref,
    truthy,
)
from .service import Service
from .sharing import Sharing
from .until import until_of
from .versions import Versions


#: an object up to this size is answered in one piece (one Response), larger ones streamed
SMALL_BODY = 64 << 10


class ObjectHandler:
    def __init__(
        self,
        service: Service,
        perms: Permissions,
        versions: Versions,
        sharing: Sharing,
        large: LargeObjectHandler,
        hashsync: HashSyncHandler,
    ) -> None:
        self.service = service
        self.perms = perms
        self.versions = versions
        self.sharing = sharing
        self.large = large
        self.hashsync = hashsync

    async def handle(self, r: Req) -> web.StreamResponse:
        m = r.method
        if m in ("GET", "HEAD"):
            return await self.get(r)
        if m == "PUT":
            if r.query.get("multipart-manifest") == "put":
                return await self.large.put(r)
            return await self.put(r)
        if m == "POST":
            return await self.post(r)
        if m == "DELETE":
            if r.query.get("multipart-manifest") == "delete":
                return await self.large.delete(r)
            acct, cont, name = r.names
            await self.perms.require_write(r, acct, cont, name)
            delimiter = r.query.get("delimiter")
            if delimiter and r.api == "pithos":
                # kamaki's `file delete -r`: the marker and all under it, in one transaction
                Permissions.require_owner(r)
                await self.service.store.delete_tree(acct, cont, name, delimiter=delimiter, modified_by=r.user or acct)
                return web.Response(status=204)
            await self.service.store.delete(acct, cont, name, modified_by=r.user or acct)
            return web.Response(status=204)
        if m in ("COPY", "MOVE"):
            return await self.copy_method(r)
        raise HTTPError(405, "method not allowed on an object")

    async def get(self, r: Req, public: bool = False) -> web.StreamResponse:
        acct, cont, name = r.names
        if not public:
            await self.perms.require_read(r, acct, cont, name)
        if r.query.get("version") == "list" and not public:
            until = until_of(r)
            if until is not None:
                versions = await self.service.meta.history.versions(acct, cont, name, until=until)
            else:
                versions = await self.service.meta.objects.versions(acct, cont, name)
            doc = {"versions": [[s, format_version_timestamp(t)] for s, t in versions]}
            fmt = r.query.get("format", "json").lower()
            if fmt in ("", "text", "plain"):
                body = "".join(f"{s} {format_version_timestamp(t)}\n" for s, t in versions).encode()
                return web.Response(body=body, content_type="text/plain")
            return web.Response(body=json.dumps(doc).encode(), content_type="application/json")
        until = None if public else until_of(r)
        if until is not None and serial_of(r) is not None:
            raise HTTPError(400, "give version or until, not both")
        owner_view = None
        if until is not None:  # the version current then; sharing is not kept in history
            v = await self.service.meta.history.object(acct, cont, name, until=until)
        elif r.owner and not public:  # the version and what only the owner sees, in one read
            owner_view = await self.service.meta.objects.get_for_owner(acct, cont, name, serial=serial_of(r))
            v = self.versions.with_data(owner_view.version)
        else:
            v = await self.versions.get(acct, cont, name, None if public else serial_of(r))
        headers = self.versions.headers(r.api, v)
        if owner_view is not None:
            self.sharing.owner_headers(r, v, owner_view.sharing, owner_view.public_token, headers)
        slo = await self.large.view(r, v)
        if slo is not None:
            headers.update(slo.headers)
        etag = slo.etag if slo is not None else self.versions.etag_for(r.api, v) or v.etag
        # a DLO is served joined (its ETag that of the join) unless the manifest object
        # itself is asked for, as Swift does with ?multipart-manifest=get
        manifest = None if r.query.get("multipart-manifest") == "get" else v.attrs.get(DLO_MANIFEST_ATTR)
        segments: list[ObjectVersion] = [v]
        size = v.size
        if slo is not None and slo.size is not None:
            size = slo.size
        elif manifest:
            segments = await self.large.dlo_segments(r, acct, manifest, until)
            size = sum(s.size for s in segments)
            md5s = hashlib.md5()
            for s in segments:
                md5s.update((s.attrs.get(MD5_ATTR) or s.etag).encode())
            etag = md5s.hexdigest()
            headers["ETag"] = f'"{etag}"'
        h = r.headers
        decision = evaluate_preconditions(
            r.method, etag=etag, last_modified=v.mtime, if_match=h.get("If-Match"),
            if_none_match=h.get("If-None-Match"), if_modified_since=h.get("If-Modified-Since"),
            if_unmodified_since=h.get("If-Unmodified-Since"), lenient=r.api == "swift",
        )
        if not decision.proceed:
            # 304 and 412 describe the object as a 200 would (Swift sends the same headers)
            if decision.status == 304:
                return web.Response(status=304, headers=headers)
            raise HTTPError(412, decision.reason, headers)
        if "hashmap" in r.query:
            return await self.hashsync.hashmap_response(r, v)
        if slo is not None and slo.raw_manifest:
            return await self.large.raw_manifest(r, slo, headers)
        spans = None
        if slo is not None and slo.part is not None:
            spans = [slo.part]  # ?part-number=: that part, whatever the Range says
        elif "Range" in h and if_range_allows(h.get("If-Range"), etag=etag, last_modified=v.mtime):
            try:
                spans = select_ranges(h.get("Range"), size)
            except RangeNotSatisfiable as exc:
                raise HTTPError(416, exc.reason, {**headers, "Content-Range": f"bytes */{size}"}) from None
        headers["X-Trans-Id"] = r.request.get(TRANSACTION_ID, "")
        if spans is None and slo is None and r.method == "GET" and 0 < size <= SMALL_BODY:
            # A small object whole (what most GETs are): read before answering and
            # send as one Response, without the streaming machinery; a read error
            # is then an error answer rather than a cut connection.
            body = b"".join([piece async for piece in self.large.read_joined(segments, 0, size - 1)])
            return web.Response(status=200, headers=headers, body=body)
        resp = web.StreamResponse(status=200, headers=headers)
        r.request["stream"] = resp
        if spans is None:
            resp.content_length = size
            parts: list[tuple[bytes, int, int]] = [(b"", 0, size - 1)] if size else []
            tail = b""
        elif len(spans) == 1:
            resp.set_status(206)
            resp.headers["Content-Range"] = content_range(spans[0], size)
            resp.content_length = spans[0].length
            parts = [(b"", spans[0].start, spans[0].end)]
            tail = b""
        else:
            mp = MultipartByteranges(spans, size, content_type=v.content_type if v.content_type.isascii() else None)
            resp.set_status(206)
            resp.headers["Content-Type"] = mp.content_type
            resp.content_length = mp.content_length
            parts = [(head, s.start, s.end) for head, s in mp.parts()]
            tail = mp.tail
        if slo is not None and parts and r.method == "GET":
            await self.large.check_spans(slo, [(start, end) for _, start, end in parts])
        await resp.prepare(r.request)
        if r.method == "HEAD":
            return resp
        for head, start, end in parts:
            if head:
                await resp.write(head)
            pieces = slo.read(start, end) if slo is not None and slo.read else self.large.read_joined(segments, start, end)
            async for piece in pieces:
                await resp.write(piece)
        if tail:
            await resp.write(tail)
        await resp.write_eof()
        return resp

    async def put(self, r: Req) -> web.StreamResponse:
        acct, cont, name = r.names
        await self.perms.require_write(r, acct, cont, name)
        self.sharing.check(r)
        copy_from = r.headers.get("X-Copy-From")
        move_from = r.headers.get("X-Move-From")
        src: tuple[str, str, str] | None = None
        if (copy_from or move_from) and "hashmap" not in r.query:
            # the source's rights first, as Swift's copy reads the source before anything
            # else: a source the caller may not read is a 403 even into no container
            # X-Copy-From-Account is Swift's name for Pithos' X-Source-Account
            src_acct = r.headers.get("X-Copy-From-Account") or r.headers.get("X-Source-Account") or acct
            src_cont, src_name = split_ref(copy_from or move_from or "", status=412 if r.api == "swift" else 400)
            if move_from:
                await self.perms.require_write(r, src_acct, src_cont, src_name)
            else:
                await self.perms.require_read(r, src_acct, src_cont, src_name)
            src = (src_acct, src_cont, src_name)
        ref = await self.service.meta.containers.ref(acct, cont)
        c = ref.container
        has_quota = c.policy.quota is not None or ref.account_quota is not None
        # The current version matters only to conditional headers and the quota check:
        # skip that read otherwise (most PUTs).
        need_cur = is_conditional(r) or has_quota
        cur = await self.versions.current(acct, cont, name) if need_cur else None
        pre = self.versions.write_precondition(r, cur)
        meta = prefixed(r.headers, "x-object-meta-")
        by = r.user or acct
        if "hashmap" in r.query:
            result = await self.hashsync.put_hashmap(r, c, name, meta, pre)
            if isinstance(result, web.StreamResponse):
                return result
        elif src is not None:
            result = await self._copy_object(
                r, src, (acct, cont, name), move=bool(move_from),
                serial=None if move_from else source_version_of(r), meta=meta, modified_by=by, precondition=pre,
            )
        else:
            length = r.request.content_length
            chunked = "chunked" in (r.headers.get("Transfer-Encoding") or "").lower()
            if length is None and not chunked:
                raise HTTPError(411, "Content-Length or chunked transfer encoding required")
            if length is not None and length > MAX_OBJECT_SIZE:
                raise HTTPError(413, f"an object is at most {MAX_OBJECT_SIZE} bytes (max_file_size in /info)")
            if length is not None and has_quota:
                # refuse a body that cannot fit before receiving it (the commit checks
                # again, exactly); replacing the current version is counted as freeing it
                freed = cur.size if cur is not None else 0
                check_quota(ref, length, freed, freed)
            result = await self.service.store.put_stream(
                acct, c, name, RequestBody(r.request, MAX_OBJECT_SIZE), length=length, modified_by=by,
                content_type=put_content_type(r), meta=meta,
                attrs=attrs_from(r), precondition=pre, expect_etag=r.headers.get("ETag"),
            )
            r.request[BYTES_IN] = result.version.size
        v = result.version
        self.versions.want_md5(v)
        await self.sharing.apply(r, acct, cont, name)
        return web.Response(status=201, headers=self.versions.written(r.api, v, last_modified=True))

    async def _copy_object(
        self,
        r: Req,
        src: tuple[str, str, str],
        dst: tuple[str, str, str],
        *,
        move: bool,
        serial: int | None,
        meta: dict[str, str],
        modified_by: str,
        precondition: Precondition | None,
    ) -> WriteResult:
        """A copy or move as PUT + X-Copy-From/X-Move-From and COPY/MOVE make it, with the
        request's Content-Type, X-Object-Meta-* and X-Fresh-Metadata; a Swift-path copy
        of a large object joins its segments (copy_joined), any other shares the map."""
        ctype = content_type_of(r, None) if r.headers.get("Content-Type") else None
        fresh = truthy(r.headers.get("X-Fresh-Metadata"))
        if not move:
            joined = await self.large.copy_joined(
                r, src, serial, dst, content_type=ctype, meta=meta or None, fresh=fresh,
                modified_by=modified_by, precondition=precondition,
            )
            if joined is not None:
                return joined
        return await self.service.store.copy(
            src, dst, move=move, modified_by=modified_by, serial=serial, content_type=ctype,
            meta=meta or None, replace_meta=fresh, precondition=precondition,
        )

    async def copy_method(self, r: Req) -> web.StreamResponse:
        acct, cont, name = r.names
        dest = r.headers.get("Destination")
        bad_dest = 412 if r.api == "swift" else 400  # Swift's answer to a missing or malformed one
        if not dest:
            raise HTTPError(bad_dest, "Destination header required")
        dcont, dname = split_ref(dest, status=bad_dest)
        dacct = r.headers.get("Destination-Account") or acct
        move = r.method == "MOVE"
        if move:
            await self.perms.require_write(r, acct, cont, name)
        else:
            await self.perms.require_read(r, acct, cont, name)
        await self.perms.require_write(r.at(dacct, dcont, dname), dacct, dcont, dname)
        cur = await self.versions.current(dacct, dcont, dname)
        pre = self.versions.write_precondition(r, cur)
        result = await self._copy_object(
            r, (acct, cont, name), (dacct, dcont, dname), move=move,
            serial=None if move else serial_of(r) or source_version_of(r),
            meta=prefixed(r.headers, "x-object-meta-"), modified_by=r.user or acct, precondition=pre,
        )
        return web.Response(status=201, headers=self.versions.written(r.api, result.version))

    async def post(self, r: Req) -> web.StreamResponse:
        acct, cont, name = r.names
        await self.perms.require_write(r, acct, cont, name)
        self.sharing.check(r)
        h = r.headers
        cur = await self.versions.get(acct, cont, name, None)
        by = r.user or acct
        if h.get("Content-Range") is not None or h.get("X-Source-Object") or h.get("X-Object-Bytes") is not None:
            v = await self._partial_update(r, cur)
            self.versions.want_md5(v)
            return web.Response(status=204, headers=self.versions.written(r.api, v))
        meta = prefixed(h, "x-object-meta-")
        ctype = content_type_of(r, None) if h.get("Content-Type") else None
        if ctype is not None and ctype.split(";")[0].strip().lower() in ("application/x-www-form-urlencoded",):
            ctype = None  # what some clients send by default on an empty POST
        replace = r.api == "swift" or "update" not in r.query
        attrs = None
        if r.api == "swift":
            # as Swift's object POST: X-Object-Manifest, Content-Encoding and
            # Content-Disposition are set afresh, dropped when not sent again
            attrs = {k: val for k, val in cur.attrs.items() if k not in ATTR_HEADERS.values()} | attrs_from(r)
            if attrs == cur.attrs:
                attrs = None
        sharing_only = not meta and ctype is None and attrs is None and (
            h.get("X-Object-Sharing") is not None or h.get("X-Object-Public") is not None
        )
        if not sharing_only and (meta or ctype or attrs is not None or (replace and cur.meta)):
            await self.service.store.update_meta(
                acct, cont, name, modified_by=by, meta=meta, replace_meta=replace, content_type=ctype, attrs=attrs
            )
        await self.sharing.apply(r, acct, cont, name)
        return web.Response(status=202)

    async def _partial_update(self, r: Req, cur: ObjectVersion) -> ObjectVersion:
        acct, cont, name = r.names
        h = r.headers
        if is_static_large_object(cur):
            raise HTTPError(409, "a static large object cannot be updated in place; PUT a new manifest")
        c = await self.service.meta.containers.get(acct, cont)
        truncate = int_header(h, "X-Object-Bytes")
        rng = parse_update_content_range(h["Content-Range"]) if h.get("Content-Range") else None
        source_ref = h.get("X-Source-Object")
        if source_ref:
            sc, sn = split_ref(source_ref)
            sacct = h.get("X-Source-Account") or acct
            await self.perms.require_read(r, sacct, sc, sn)
            src_v = await self.versions.get(sacct, sc, sn, source_version_of(r))
            data_length = src_v.size
            source: ByteSource = StreamSource(self.service.store.read(src_v))
        elif rng is not None:
            length = r.request.content_length
            if length is None:
                raise HTTPError(411, "a partial update needs Content-Length")
            if length > self.service.config.max_partial_update:
                raise HTTPError(413, "partial update too large")
            data_length = length
            source = RequestBody(r.request)
            r.request[BYTES_IN] = length
        else:
            data_length = 0
            source = BytesSource()

        if rng is None:
            rng = UpdateRange(None)  # data without a range (X-Source-Object alone) appends
        plan = plan_update(rng, cur.size, data_length, from_source=bool(source_ref))
        result = await self.service.store.update_range(
            acct, c, name, offset=plan.offset, length=plan.length, source=source,
            truncate=truncate, modified_by=r.user or acct,
        )
        return result.version
