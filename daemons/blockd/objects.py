"""Object requests: GET/HEAD (ranges, manifests, versions), PUT, POST (metadata, partial update), DELETE, COPY/MOVE."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from urllib.parse import unquote

from aiohttp import web

from daemons.runtime.access_log import BYTES_IN, TRANSACTION_ID
from net.http_conditional import evaluate_preconditions, format_http_date, if_range_allows
from net.http_errors import RangeNotSatisfiable
from net.http_range import (
    MultipartByteranges,
    UpdateRange,
    content_range,
    parse_update_content_range,
    plan_update,
    select_ranges,
)
from net.object_names import validate_container, validate_object
from net.pithos_hashmap import MAX_OBJECT_SIZE
from net.pithos_listing import format_version_timestamp
from storage_engine.objects.metadata import Precondition, Subdir, WriteResult, check_quota
from storage_engine.objects.metadata import errors as merr
from storage_engine.objects.metadata.records import ObjectVersion
from storage_engine.objects.store import MD5_ATTR, stream_source

from .http import HTTPError, body_source, int_header, prefixed
from .large_objects import is_static_large_object
from .request_context import ATTR_HEADERS, HandlerBase, Req, truthy
from .until import until_of


class ObjectHandlers(HandlerBase):
    async def object_op(self, r: Req) -> web.StreamResponse:
        m = r.method
        if m in ("GET", "HEAD"):
            return await self.object_get(r)
        if m == "PUT":
            if r.query.get("multipart-manifest") == "put":
                return await self.slo_put(r)
            return await self.object_put(r)
        if m == "POST":
            return await self.object_post(r)
        if m == "DELETE":
            if r.query.get("multipart-manifest") == "delete":
                return await self.slo_delete(r)
            acct, cont, name = r.account or "", r.container or "", r.obj or ""
            await self.require_write(r, acct, cont, name)
            await self.store.delete(acct, cont, name, modified_by=r.user or acct)
            return web.Response(status=204)
        if m in ("COPY", "MOVE"):
            return await self.object_copy_method(r)
        raise HTTPError(405, "method not allowed on an object")

    def etag_for(self, r_api: str, v: ObjectVersion) -> str | None:
        """What ETag means on this API path (docs/blockd.md). On the Swift path a
        version without a known MD5 has none yet: its MD5 is queued to be computed."""
        if r_api == "swift":
            md5 = v.attrs.get(MD5_ATTR)
            if not md5:
                self.want_md5(v, needed=True)
            return md5 or None
        return v.etag

    def want_md5(self, v: ObjectVersion, *, needed: bool = False) -> None:
        """Have the MD5 of a version stored without one computed in the background
        (hashmap PUTs, partial updates: storage_engine.objects.md5_backfill): right after the
        write under md5_backfill "eager", once a Swift request ``needed`` it otherwise."""
        if self.md5_backfill is None or v.map is None or v.attrs.get(MD5_ATTR):
            return
        if needed or self.config.md5_backfill == "eager":
            self.md5_backfill.schedule(v)

    def object_headers(self, api: str, v: ObjectVersion) -> dict[str, str]:
        h = {
            "Content-Type": v.content_type,
            "Last-Modified": format_http_date(v.mtime),
            "X-Timestamp": f"{v.mtime:.5f}",
            "X-Object-Hash": v.etag,
            "X-Object-Version": str(v.serial),
            "X-Object-Version-Timestamp": format_http_date(v.mtime),
            "X-Object-Modified-By": v.modified_by,
            "X-Object-UUID": v.uuid,
            "Accept-Ranges": "bytes",
        }
        etag = self.etag_for(api, v)
        if etag:
            h["ETag"] = etag
        for k, val in v.meta.items():
            h["X-Object-Meta-" + k] = val
        for header, attr in ATTR_HEADERS.items():
            if attr in v.attrs:
                h[header.title()] = v.attrs[attr]
        return h

    def _serial(self, r: Req) -> int | None:
        raw = r.query.get("version")
        if raw is None or raw == "" or raw == "list":
            return None
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18 or int(raw) <= 0:
            raise HTTPError(400, "version must be a positive integer or 'list'")
        return int(raw)

    async def _version(self, acct: str, cont: str, name: str, serial: int | None) -> ObjectVersion:
        return self._with_data(await self.meta.objects.get(acct, cont, name, serial=serial))

    @staticmethod
    def _with_data(v: ObjectVersion) -> ObjectVersion:
        """The version, unless it is a delete marker (404)."""
        if v.map is None:
            raise HTTPError(404, "object not found")
        return v

    async def object_get(self, r: Req, public: bool = False) -> web.StreamResponse:
        acct, cont, name = r.account or "", r.container or "", r.obj or ""
        if not public:
            await self.require_read(r, acct, cont, name)
        if r.query.get("version") == "list" and not public:
            until = until_of(r)
            if until is not None:
                versions = await self.meta.history.versions(acct, cont, name, until=until)
            else:
                versions = await self.meta.objects.versions(acct, cont, name)
            doc = {"versions": [[s, format_version_timestamp(t)] for s, t in versions]}
            fmt = r.query.get("format", "json").lower()
            if fmt in ("", "text", "plain"):
                body = "".join(f"{s} {format_version_timestamp(t)}\n" for s, t in versions).encode()
                return web.Response(body=body, content_type="text/plain")
            return web.Response(body=json.dumps(doc).encode(), content_type="application/json")
        until = None if public else until_of(r)
        if until is not None and self._serial(r) is not None:
            raise HTTPError(400, "give version or until, not both")
        owner_view = None
        if until is not None:  # the version current then; sharing is not kept in history
            v = await self.meta.history.object(acct, cont, name, until=until)
        elif r.owner and not public:  # the version and what only the owner sees, in one read
            owner_view = await self.meta.objects.get_for_owner(acct, cont, name, serial=self._serial(r))
            v = self._with_data(owner_view.version)
        else:
            v = await self._version(acct, cont, name, None if public else self._serial(r))
        headers = self.object_headers(r.api, v)
        if owner_view is not None:
            self._owner_headers(r, v, owner_view.sharing, owner_view.public_token, headers)
        slo = await self.slo_view(r, v)
        if slo is not None:
            headers.update(slo.headers)
        etag = slo.etag if slo is not None else self.etag_for(r.api, v) or v.etag
        h = r.headers
        decision = evaluate_preconditions(
            r.method, etag=etag, last_modified=v.mtime, if_match=h.get("If-Match"),
            if_none_match=h.get("If-None-Match"), if_modified_since=h.get("If-Modified-Since"),
            if_unmodified_since=h.get("If-Unmodified-Since"),
        )
        if not decision.proceed:
            if decision.status == 304:
                keep = {k: headers[k] for k in ("ETag", "Last-Modified", "X-Object-Hash") if k in headers}
                return web.Response(status=304, headers=keep)
            raise HTTPError(412, decision.reason)
        if "hashmap" in r.query:
            return await self._hashmap_response(r, v)
        if slo is not None and slo.raw_manifest:
            return await self.slo_raw_manifest(r, slo, headers)
        manifest = v.attrs.get("manifest")
        segments: list[ObjectVersion] = [v]
        size = v.size
        if slo is not None and slo.size is not None:
            size = slo.size
        elif manifest:
            segments = await self._manifest_segments(r, acct, manifest, until)
            size = sum(s.size for s in segments)
            md5s = hashlib.md5()
            for s in segments:
                md5s.update((s.attrs.get(MD5_ATTR) or s.etag).encode())
            headers["ETag"] = '"' + md5s.hexdigest() + '"'
        spans = None
        if "Range" in h and if_range_allows(h.get("If-Range"), etag=etag, last_modified=v.mtime):
            try:
                spans = select_ranges(h.get("Range"), size)
            except RangeNotSatisfiable as exc:
                raise HTTPError(416, exc.reason, {"Content-Range": f"bytes */{size}"}) from None
        headers["X-Trans-Id"] = r.request.get(TRANSACTION_ID, "")
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
        if slo is not None and slo.read is not None and parts and r.method == "GET":
            await self.slo_check_first(slo, parts[0][1], parts[0][2])
        await resp.prepare(r.request)
        if r.method == "HEAD":
            return resp
        for head, start, end in parts:
            if head:
                await resp.write(head)
            pieces = slo.read(start, end) if slo is not None and slo.read else self._read_segments(segments, start, end)
            async for piece in pieces:
                await resp.write(piece)
        if tail:
            await resp.write(tail)
        await resp.write_eof()
        return resp

    async def _read_segments(self, segments: list[ObjectVersion], start: int, end: int) -> AsyncIterator[bytes]:
        off = 0
        for s in segments:
            lo, hi = off, off + s.size - 1
            off += s.size
            if s.size == 0 or hi < start or lo > end:
                continue
            async for piece in self.store.read(s, max(start, lo) - lo, min(end, hi) - lo):
                yield piece

    async def _manifest_segments(
        self, r: Req, acct: str, manifest: str, until: float | None = None
    ) -> list[ObjectVersion]:
        """The segments of an X-Object-Manifest object, in name order; with ``until``
        (the owner's alone, see until.py), the segments as they were then."""
        cont, _, prefix = unquote(manifest).lstrip("/").partition("/")
        validate_container(cont)
        out: list[ObjectVersion] = []
        marker = None
        while True:
            if until is not None:
                page = await self.meta.history.objects(
                    acct, cont, until=until, prefix=prefix or None, marker=marker, limit=10000
                )
            else:
                page = await self.meta.listing.objects(
                    acct, cont, prefix=prefix or None, marker=marker, limit=10000,
                    as_user=None if r.owner or r.user is None else r.user,
                )
            out.extend(it for it in page if not isinstance(it, Subdir))
            if len(page) < 10000:
                return out
            marker = page[-1].name

    @staticmethod
    def _is_conditional(r: Req) -> bool:
        return r.headers.get("If-Match") is not None or r.headers.get("If-None-Match") is not None

    def _write_precondition(self, r: Req, cur: ObjectVersion | None) -> Precondition | None:
        h = r.headers
        if not self._is_conditional(r):
            return None
        etag = (self.etag_for(r.api, cur) or cur.etag) if cur is not None else None
        d = evaluate_preconditions(
            "PUT", etag=etag, last_modified=cur.mtime if cur else None,
            if_match=h.get("If-Match"), if_none_match=h.get("If-None-Match"),
        )
        if not d.proceed:
            raise HTTPError(412, d.reason)
        if cur is None:
            return Precondition(if_none_match="*")
        return Precondition(serial=cur.serial)

    async def _current(self, acct: str, cont: str, name: str) -> ObjectVersion | None:
        try:
            v = await self.meta.objects.get(acct, cont, name)
        except merr.ObjectNotFound:
            return None
        return v if v.map is not None else None

    def _attrs_from(self, r: Req) -> dict[str, str]:
        out = {}
        for header, attr in ATTR_HEADERS.items():
            val = r.headers.get(header)
            if val:
                out[attr] = val
        return out

    def _content_type(self, r: Req, default: str | None = "application/octet-stream") -> str | None:
        ct = r.headers.get("Content-Type")
        return ct.strip() if ct and ct.strip() else default

    async def object_put(self, r: Req) -> web.StreamResponse:
        acct, cont, name = r.account or "", r.container or "", r.obj or ""
        await self.require_write(r, acct, cont, name)
        self._check_sharing_owner(r)
        ref = await self.meta.containers.ref(acct, cont)
        c = ref.container
        has_quota = c.policy.quota is not None or ref.account_quota is not None
        # The current version matters only to conditional headers and the quota check:
        # skip that read otherwise (most PUTs).
        need_cur = self._is_conditional(r) or has_quota
        cur = await self._current(acct, cont, name) if need_cur else None
        pre = self._write_precondition(r, cur)
        meta = prefixed(r.headers, "x-object-meta-")
        by = r.user or acct
        copy_from = r.headers.get("X-Copy-From")
        move_from = r.headers.get("X-Move-From")
        if "hashmap" in r.query:
            result = await self._put_hashmap(r, c, name, meta, pre)
            if isinstance(result, web.StreamResponse):
                return result
        elif copy_from or move_from:
            src_acct = r.headers.get("X-Source-Account") or acct
            src_cont, src_name = self._split_ref(copy_from or move_from or "")
            if move_from:
                await self.require_write(r, src_acct, src_cont, src_name)
            else:
                await self.require_read(r, src_acct, src_cont, src_name)
            result = await self._copy_object(
                r, (src_acct, src_cont, src_name), (acct, cont, name), move=bool(move_from),
                serial=None if move_from else self._source_version(r), meta=meta, modified_by=by, precondition=pre,
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
            result = await self.store.put_stream(
                acct, c, name, body_source(r.request, MAX_OBJECT_SIZE), length=length, modified_by=by,
                content_type=self._content_type(r) or "application/octet-stream", meta=meta,
                attrs=self._attrs_from(r), precondition=pre, expect_etag=r.headers.get("ETag"),
            )
            r.request[BYTES_IN] = result.version.size
        v = result.version
        self.want_md5(v)
        await self._apply_sharing_public(r, acct, cont, name)
        headers = {
            "X-Object-Version": str(v.serial),
            "X-Object-Hash": v.etag,
            "Last-Modified": format_http_date(v.mtime),
        }
        etag = self.etag_for(r.api, v)
        if etag:
            headers["ETag"] = etag
        return web.Response(status=201, headers=headers)

    def _split_ref(self, ref: str) -> tuple[str, str]:
        path = unquote(ref).lstrip("/")
        cont, _, name = path.partition("/")
        if not cont or not name:
            raise HTTPError(400, "expected /container/object")
        return validate_container(cont), validate_object(name)

    def _source_version(self, r: Req) -> int | None:
        raw = r.headers.get("X-Source-Version")
        if raw is None or raw == "":
            return None
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18 or int(raw) <= 0:
            raise HTTPError(400, "X-Source-Version must be a positive integer")
        return int(raw)

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
        ctype = self._content_type(r, None) if r.headers.get("Content-Type") else None
        fresh = truthy(r.headers.get("X-Fresh-Metadata"))
        if not move:
            joined = await self.copy_joined(
                r, src, serial, dst, content_type=ctype, meta=meta or None, fresh=fresh,
                modified_by=modified_by, precondition=precondition,
            )
            if joined is not None:
                return joined
        return await self.store.copy(
            src, dst, move=move, modified_by=modified_by, serial=serial, content_type=ctype,
            meta=meta or None, replace_meta=fresh, precondition=precondition,
        )

    async def object_copy_method(self, r: Req) -> web.StreamResponse:
        acct, cont, name = r.account or "", r.container or "", r.obj or ""
        dest = r.headers.get("Destination")
        if not dest:
            raise HTTPError(400, "Destination header required")
        dcont, dname = self._split_ref(dest)
        dacct = r.headers.get("Destination-Account") or acct
        move = r.method == "MOVE"
        if move:
            await self.require_write(r, acct, cont, name)
        else:
            await self.require_read(r, acct, cont, name)
        await self.require_write(Req(r.request, r.api, dacct, dcont, dname, r.user, r.base), dacct, dcont, dname)
        cur = await self._current(dacct, dcont, dname)
        pre = self._write_precondition(r, cur)
        result = await self._copy_object(
            r, (acct, cont, name), (dacct, dcont, dname), move=move,
            serial=None if move else self._serial(r) or self._source_version(r),
            meta=prefixed(r.headers, "x-object-meta-"), modified_by=r.user or acct, precondition=pre,
        )
        v = result.version
        headers = {"X-Object-Version": str(v.serial), "X-Object-Hash": v.etag}
        etag = self.etag_for(r.api, v)
        if etag:
            headers["ETag"] = etag
        return web.Response(status=201, headers=headers)

    async def object_post(self, r: Req) -> web.StreamResponse:
        acct, cont, name = r.account or "", r.container or "", r.obj or ""
        await self.require_write(r, acct, cont, name)
        self._check_sharing_owner(r)
        h = r.headers
        cur = await self._version(acct, cont, name, None)
        by = r.user or acct
        if h.get("Content-Range") is not None or h.get("X-Source-Object") or h.get("X-Object-Bytes") is not None:
            v = await self._partial_update(r, cur)
            self.want_md5(v)
            headers = {"X-Object-Version": str(v.serial), "X-Object-Hash": v.etag}
            etag = self.etag_for(r.api, v)
            if etag:
                headers["ETag"] = etag
            return web.Response(status=204, headers=headers)
        meta = prefixed(h, "x-object-meta-")
        ctype = self._content_type(r, None) if h.get("Content-Type") else None
        if ctype is not None and ctype.split(";")[0].strip().lower() in ("application/x-www-form-urlencoded",):
            ctype = None  # what some clients send by default on an empty POST
        replace = r.api == "swift" or "update" not in r.query
        sharing_only = not meta and ctype is None and (
            h.get("X-Object-Sharing") is not None or h.get("X-Object-Public") is not None
        )
        if not sharing_only and (meta or ctype or (replace and cur.meta)):
            await self.store.update_meta(
                acct, cont, name, modified_by=by, meta=meta, replace_meta=replace, content_type=ctype
            )
        await self._apply_sharing_public(r, acct, cont, name)
        return web.Response(status=202)

    async def _partial_update(self, r: Req, cur: ObjectVersion) -> ObjectVersion:
        acct, cont, name = r.account or "", r.container or "", r.obj or ""
        h = r.headers
        if is_static_large_object(cur):
            raise HTTPError(409, "a static large object cannot be updated in place; PUT a new manifest")
        c = await self.meta.containers.get(acct, cont)
        truncate = int_header(h, "X-Object-Bytes")
        rng = parse_update_content_range(h["Content-Range"]) if h.get("Content-Range") else None
        source_ref = h.get("X-Source-Object")
        if source_ref:
            sc, sn = self._split_ref(source_ref)
            sacct = h.get("X-Source-Account") or acct
            await self.require_read(r, sacct, sc, sn)
            src_v = await self._version(sacct, sc, sn, self._source_version(r))
            data_length = src_v.size
            source = stream_source(self.store.read(src_v))
        elif rng is not None:
            length = r.request.content_length
            if length is None:
                raise HTTPError(411, "a partial update needs Content-Length")
            if length > self.config.max_partial_update:
                raise HTTPError(413, "partial update too large")
            data_length = length
            source = body_source(r.request)
            r.request[BYTES_IN] = length
        else:
            data_length = 0

            async def source(n: int) -> bytes:
                return b""

        if rng is None:
            rng = UpdateRange(None)  # data without a range (X-Source-Object alone) appends
        plan = plan_update(rng, cur.size, data_length)
        result = await self.store.update_range(
            acct, c, name, offset=plan.offset, length=plan.length, source=source,
            truncate=truncate, modified_by=r.user or acct,
        )
        return result.version
