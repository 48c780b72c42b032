"""The object API of DESIGN.md §3 as an aiohttp application over an ObjectStore.

One catch-all route: the path is percent-decoded here (from the raw path, so
`..` cannot be normalised away before it is refused) and split by
net.object_names into account / container / object under either prefix,
`/object-store/v1` (Pithos) or `/v1` (Swift).  The two differ only in what
ETag means (see docs/blockd.md): Pithos = the top hash, Swift = the MD5 when
known.  `X-Object-Hash` is always the top hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from aiohttp import web

from net.http_conditional import evaluate_preconditions, format_http_date, if_range_allows
from net.http_errors import ProtocolError, RangeNotSatisfiable
from net.http_range import (
    MultipartByteranges,
    UpdateRange,
    content_range,
    parse_update_content_range,
    plan_update,
    select_ranges,
)
from net.object_names import parse_object_path, validate_container, validate_object
from net.pithos_hashmap import (
    format_hash_list_json,
    format_hashmap_json,
    format_hashmap_text,
    max_hashmap_body,
    parse_hashmap,
)
from net.pithos_listing import (
    AccountRecord,
    ContainerRecord,
    ObjectRecord,
    SubdirRecord,
    content_type_for,
    format_account_listing,
    format_container_listing,
    format_object_listing,
    format_version_timestamp,
    parse_listing_query,
)
from net.pithos_sharing import parse_group_headers
from storage_engine.errors import StoreError, StoreFull
from storage_engine.metadata import ContainerPolicy, Precondition, Subdir
from storage_engine.metadata import errors as merr
from storage_engine.metadata.records import ObjectVersion
from storage_engine.objects import MD5_ATTR, MissingBlocks, ObjectStore

from .config import BlockdConfig
from .http import HTTPError, body_source, int_header, prefixed, read_body, text_response
from .metrics import Metrics

log = logging.getLogger("nefeli-blockd")

ATTR_HEADERS = {
    "x-object-manifest": "manifest",
    "content-encoding": "content-encoding",
    "content-disposition": "content-disposition",
}
MAX_META_BODY = 1 << 20


@dataclass
class Req:
    request: web.Request
    api: str  # "pithos" | "swift"
    account: str | None
    container: str | None
    obj: str | None
    user: str | None
    base: str

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def headers(self) -> Any:
        return self.request.headers

    @property
    def query(self) -> Any:
        return self.request.query

    @property
    def owner(self) -> bool:
        return self.user is not None and self.user == self.account


def _decode_path(raw: str) -> str:
    path = raw.split("?", 1)[0]
    try:
        return unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPError(400, "the path is not valid UTF-8") from None


def _truthy(v: str | None) -> bool:
    return (v or "").strip().lower() in ("true", "1", "yes", "on")


class Server:
    def __init__(self, store: ObjectStore, config: BlockdConfig) -> None:
        self.store = store
        self.config = config
        self.meta = store.meta
        self.metrics = Metrics()
        self.started = time.time()

    # ------------------------------------------------------------------ app

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware], client_max_size=MAX_META_BODY)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        rid = request.headers.get("X-Trans-Id", "")[:64] or secrets.token_hex(8)
        request["rid"] = rid
        t0 = time.monotonic()
        resp: web.StreamResponse
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            resp = exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - everything becomes an answer
            resp = self._error_response(request, exc)
            stream = request.get("stream")
            if stream is not None and stream.prepared:
                # Headers are out: the only honest signal left is cutting the connection.
                self._observe(request, 500, t0, stream)
                raise
        if not resp.prepared:
            resp.headers["X-Trans-Id"] = rid
        self._observe(request, resp.status, t0, resp)
        return resp

    def _observe(self, request: web.Request, status: int, t0: float, resp: web.StreamResponse | None) -> None:
        out = 0
        if resp is not None:
            try:
                out = resp.body_length or (len(resp.body) if isinstance(resp, web.Response) and resp.body else 0)
            except Exception:  # noqa: BLE001
                out = 0
        if status >= 500:
            self.metrics.errors_500 += 1 if status == 500 else 0
        self.metrics.observe(
            request.method[:16], status, time.monotonic() - t0, request.get("bytes_in", 0), out
        )

    def _error_response(self, request: web.Request, exc: Exception) -> web.Response:
        if isinstance(exc, HTTPError):
            return text_response(exc.status, exc.reason, exc.headers)
        if isinstance(exc, RangeNotSatisfiable):
            headers = {"Content-Range": exc.content_range} if exc.content_range else {}
            return text_response(416, exc.reason, headers)
        if isinstance(exc, ProtocolError):
            return text_response(exc.status, exc.reason)
        if isinstance(exc, merr.MetadataError) and exc.status < 500 or isinstance(exc, merr.Busy):
            return text_response(exc.status, str(exc) or exc.__class__.__name__)
        if isinstance(exc, StoreFull):
            return text_response(507, "insufficient storage")
        status = getattr(exc, "status", None)
        if isinstance(status, int) and 400 <= status < 500 and not isinstance(exc, (StoreError, OSError)):
            return text_response(status, str(exc) or exc.__class__.__name__)
        log.error(
            "request %s %s %s failed",
            request.get("rid"),
            request.method,
            request.raw_path[:200],
            exc_info=exc,
        )
        return text_response(500, f"internal error (request id {request.get('rid')})")

    # ------------------------------------------------------------------ dispatch

    def _base(self, request: web.Request) -> str:
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        host = request.headers.get("Host") or f"{request.url.host}:{request.url.port}"
        return f"{request.scheme}://{host}"

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = _decode_path(request.raw_path)
        if path == "/healthz":
            return web.json_response({"status": "ok", "uptime": round(time.time() - self.started, 3)})
        if path == "/metrics":
            stats = None
            try:
                stats = await self.store.stats()
            except Exception:  # noqa: BLE001
                log.exception("stats failed")
            return web.Response(
                text=self.metrics.render(stats), content_type="text/plain", charset="utf-8",
                headers={"X-Content-Type-Options": "nosniff"},
            )
        if path in ("/auth/v1.0", "/auth/v1.0/", "/auth/v1", "/v1.0", "/auth/1.0"):
            return await self.auth_v1(request)
        if path.rstrip("/") == "/identity/v2.0/tokens":
            return await self.identity_v2(request)
        if path.startswith("/public/"):
            return await self.public_get(request, path[len("/public/") :])
        op = parse_object_path(path)
        token = request.headers.get("X-Auth-Token") or request.headers.get("X-Storage-Token")
        user = await self.meta.tokens.resolve(token) if token else None
        if user is None:
            raise HTTPError(401, "missing or invalid X-Auth-Token", {"WWW-Authenticate": 'Token realm="nefeli"'})
        r = Req(request, op.api, op.account, op.container, op.object, user, self._base(request))
        if r.account is None:
            return await self.top_level(r)
        if r.container is None:
            return await self.account_op(r)
        if r.obj is None:
            return await self.container_op(r)
        return await self.object_op(r)

    # ------------------------------------------------------------------ auth

    async def auth_v1(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise HTTPError(405, "use GET")
        user = request.headers.get("X-Auth-User") or request.headers.get("X-Storage-User")
        key = request.headers.get("X-Auth-Key") or request.headers.get("X-Storage-Pass")
        if not user or not key:
            raise HTTPError(401, "X-Auth-User and X-Auth-Key required")
        account = await self.meta.tokens.verify_key(user, key)
        if account is None:
            raise HTTPError(401, "wrong user or key")
        tok = await self.meta.tokens.create(account, ttl=self.config.auth_token_ttl, description="auth/v1.0")
        url = f"{self._base(request)}/v1/{account}"
        return web.Response(
            status=200,
            headers={
                "X-Storage-Url": url,
                "X-Auth-Token": tok.token,
                "X-Storage-Token": tok.token,
                "X-Auth-Token-Expires": str(int(self.config.auth_token_ttl)),
            },
        )

    async def identity_v2(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            raise HTTPError(405, "use POST")
        body = await read_body(request, 1 << 16)
        try:
            doc = json.loads(body or b"{}")
            auth = doc.get("auth") if isinstance(doc, dict) else None
            if not isinstance(auth, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise HTTPError(400, "expected a JSON body {\"auth\": {...}}") from None
        account: str | None = None
        token_value: str | None = None
        expires: float | None = None
        tok = auth.get("token")
        creds = auth.get("passwordCredentials")
        if isinstance(tok, dict) and isinstance(tok.get("id"), str):
            account = await self.meta.tokens.resolve(tok["id"])
            token_value = tok["id"]
        elif isinstance(creds, dict) and isinstance(creds.get("username"), str) and isinstance(
            creds.get("password"), str
        ):
            account = await self.meta.tokens.verify_key(creds["username"], creds["password"])
            if account is not None:
                new = await self.meta.tokens.create(
                    account, ttl=self.config.auth_token_ttl, description="identity/v2.0"
                )
                token_value = new.token
                expires = new.info.expires
        else:
            raise HTTPError(400, "auth needs token.id or passwordCredentials")
        if account is None or token_value is None:
            raise HTTPError(401, "invalid credentials")
        base = self._base(request)
        iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(expires or (time.time() + 86400 * 365)))
        access = {
            "token": {"id": token_value, "expires": iso, "tenant": {"id": account, "name": account}},
            "user": {"id": account, "name": account, "roles": [{"id": "member", "name": "member"}]},
            "serviceCatalog": [
                {
                    "type": "object-store",
                    "name": "pithos",
                    "endpoints": [
                        {
                            "region": "default",
                            "versionId": "v1",
                            "publicURL": f"{base}/object-store/v1",
                            "internalURL": f"{base}/object-store/v1",
                        }
                    ],
                    "endpoints_links": [],
                }
            ],
        }
        return web.json_response({"access": access})

    # ------------------------------------------------------------------ helpers

    def etag_for(self, r_api: str, v: ObjectVersion) -> str | None:
        """What ETag means on this API path (docs/blockd.md)."""
        if r_api == "swift":
            return v.attrs.get(MD5_ATTR) or None
        return v.etag

    def object_headers(self, api: str, v: ObjectVersion) -> dict[str, str]:
        h = {
            "Content-Type": v.content_type,
            "Last-Modified": format_http_date(v.mtime),
            "X-Timestamp": f"{v.mtime:.5f}",
            "X-Object-Hash": v.etag,
            "X-Object-Version": str(v.serial),
            "X-Object-Version-Timestamp": format_http_date(v.mtime),
            "X-Object-Modified-By": v.modified_by,
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

    async def container_of(self, account: str, name: str) -> Any:
        return await self.meta.containers.get(account, name)

    async def require_read(self, r: Req, account: str, container: str, name: str) -> None:
        if r.user == account:
            return
        perm = await self.meta.sharing.permission(account, container, name, r.user or "")
        if not perm.can_read:
            raise HTTPError(403, "forbidden")

    async def require_write(self, r: Req, account: str, container: str, name: str) -> None:
        if r.user == account:
            return
        perm = await self.meta.sharing.permission(account, container, name, r.user or "")
        if not perm.can_write:
            raise HTTPError(403, "forbidden")

    def require_owner(self, r: Req) -> None:
        if not r.owner:
            raise HTTPError(403, "forbidden")

    def _serial(self, r: Req) -> int | None:
        raw = r.query.get("version")
        if raw is None or raw == "" or raw == "list":
            return None
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18 or int(raw) <= 0:
            raise HTTPError(400, "version must be a positive integer or 'list'")
        return int(raw)

    def _listing_fmt(self, r: Req) -> str:
        return parse_listing_query({"format": r.query.get("format", "")}, accept=r.headers.get("Accept")).format

    # ------------------------------------------------------------------ top level / account

    async def top_level(self, r: Req) -> web.StreamResponse:
        if r.method not in ("GET", "HEAD"):
            raise HTTPError(405, "method not allowed")
        q = parse_listing_query(r.query, accept=r.headers.get("Accept"))
        names = await self.meta.sharing.accounts_sharing_with(r.user or "", marker=q.marker, limit=q.limit)
        body = format_account_listing([AccountRecord(n) for n in names], q.format)
        return self._listing_response(r, body, q.format, {})

    def _listing_response(self, r: Req, body: bytes, fmt: str, headers: dict[str, str]) -> web.Response:
        if fmt == "plain" and not body:
            return web.Response(status=204, headers=headers)
        headers = dict(headers)
        headers["Content-Type"] = content_type_for(fmt)  # type: ignore[arg-type]
        if r.method == "HEAD":
            headers["Content-Length"] = "0"
            return web.Response(status=204 if not body else 200, headers=headers)
        return web.Response(status=200, body=body, headers=headers)

    async def account_op(self, r: Req) -> web.StreamResponse:
        acct = r.account
        assert acct is not None
        m = r.method
        if m in ("GET", "HEAD"):
            if r.owner:
                try:
                    a = await self.meta.accounts.get(acct)
                except merr.AccountNotFound:
                    a = await self.meta.accounts.ensure(acct)
                headers = self._account_headers(a)
            else:
                await self.meta.accounts.get(acct)  # 404 for an unknown account
                headers = {}
            if m == "HEAD":
                if not r.owner:
                    raise HTTPError(403, "forbidden")
                return web.Response(status=204, headers=headers)
            q = parse_listing_query(r.query, accept=r.headers.get("Accept"))
            items = await self.meta.listing.containers(
                acct, prefix=q.prefix or None, delimiter=q.delimiter, marker=q.marker,
                end_marker=q.end_marker, limit=q.limit, as_user=None if r.owner else r.user,
            )
            recs = [
                ContainerRecord(c.name, c.usage.object_count, c.usage.bytes_used, c.mtime)
                for c in items
                if not isinstance(c, Subdir)
            ]
            body = format_container_listing(recs, q.format, account=acct)
            return self._listing_response(r, body, q.format, headers)
        if m == "POST":
            self.require_owner(r)
            await self.meta.accounts.ensure(acct)
            meta = prefixed(r.headers, "x-account-meta-")
            replace = r.api == "pithos" and "update" not in r.query
            if meta or replace:
                await self.meta.accounts.update_meta(acct, meta, replace=replace)
            groups = parse_group_headers(r.headers)
            if groups or replace:
                await self.meta.accounts.set_groups(acct, {g: sorted(m_) for g, m_ in groups.items()}, replace=replace)
            return web.Response(status=202)
        raise HTTPError(405, "method not allowed on an account")

    def _account_headers(self, a: Any) -> dict[str, str]:
        h = {
            "X-Account-Container-Count": str(a.container_count),
            "X-Account-Object-Count": str(a.usage.object_count),
            "X-Account-Bytes-Used": str(a.usage.bytes_used),
            "X-Account-Bytes-Stored": str(a.usage.stored_bytes),
            "Last-Modified": format_http_date(a.mtime),
            "X-Timestamp": f"{a.created:.5f}",
        }
        if a.quota is not None:
            h["X-Account-Policy-Quota"] = str(a.quota)
        for k, v in a.meta.items():
            h["X-Account-Meta-" + k] = v
        for g, members in a.groups.items():
            h["X-Account-Group-" + g] = ",".join(members)
        return h

    # ------------------------------------------------------------------ container

    def _container_headers(self, c: Any) -> dict[str, str]:
        p = c.policy
        h = {
            "X-Container-Object-Count": str(c.usage.object_count),
            "X-Container-Bytes-Used": str(c.usage.bytes_used),
            "X-Container-Bytes-Stored": str(c.usage.stored_bytes),
            "X-Container-Block-Size": str(p.block_size),
            "X-Container-Block-Hash": p.hash_scheme,
            "X-Container-Policy-Versioning": p.versioning,
            "X-Container-Policy-Block-Size": str(p.block_size),
            "X-Container-Policy-Block-Hash": p.hash_scheme,
            "X-Container-Policy-Quota": str(p.quota or 0),
            "Last-Modified": format_http_date(c.mtime),
            "X-Timestamp": f"{c.created:.5f}",
        }
        for k, v in c.meta.items():
            h["X-Container-Meta-" + k] = v
        return h

    def _policy_changes(self, r: Req) -> dict[str, Any]:
        pol = prefixed(r.headers, "x-container-policy-")
        out: dict[str, Any] = {}
        for key, value in pol.items():
            if key == "versioning":
                out["versioning"] = value.lower()
            elif key == "quota":
                q = int_header({"X-Container-Policy-Quota": value}, "X-Container-Policy-Quota")
                out["quota"] = q or None
            elif key == "block-size":
                out["block_size"] = int_header({"X-Container-Policy-Block-Size": value}, "X-Container-Policy-Block-Size", minimum=1)
            elif key == "block-hash":
                out["hash_scheme"] = value.lower()
            else:
                raise HTTPError(400, f"unknown container policy {key!r}")
        return out

    async def container_op(self, r: Req) -> web.StreamResponse:
        acct, cont = r.account, r.container
        assert acct is not None and cont is not None
        m = r.method
        if m == "HEAD":
            if not r.owner:
                await self.meta.containers.get(acct, cont)
                raise HTTPError(403, "forbidden")
            c = await self.meta.containers.get(acct, cont)
            return web.Response(status=204, headers=self._container_headers(c))
        if m == "GET":
            c = await self.meta.containers.get(acct, cont)
            q = parse_listing_query(r.query, accept=r.headers.get("Accept"))
            items = await self.meta.listing.objects(
                acct, cont, prefix=q.prefix or None, delimiter=q.delimiter, marker=q.marker,
                end_marker=q.end_marker, limit=q.limit, as_user=None if r.owner else r.user,
                shared="shared" in r.query and r.owner, public="public" in r.query and r.owner,
            )
            recs: list[ObjectRecord | SubdirRecord] = []
            for it in items:
                if isinstance(it, Subdir):
                    recs.append(SubdirRecord(it.name))
                else:
                    recs.append(
                        ObjectRecord(
                            name=it.name, size=it.size,
                            hash=self.etag_for(r.api, it) or it.etag,
                            content_type=it.content_type, last_modified=it.mtime,
                            x_object_hash=it.etag, version=it.serial, version_timestamp=it.mtime,
                            modified_by=it.modified_by, meta=dict(it.meta),
                        )
                    )
            body = format_object_listing(recs, q.format, container=cont)
            headers = self._container_headers(c) if r.owner else {}
            return self._listing_response(r, body, q.format, headers)
        if m == "PUT":
            self.require_owner(r)
            await self.meta.accounts.ensure(acct)
            changes = self._policy_changes(r)
            meta = prefixed(r.headers, "x-container-meta-")
            try:
                policy = ContainerPolicy(
                    versioning=changes.get("versioning", self.config.default_versioning),
                    quota=changes.get("quota"),
                    block_size=changes.get("block_size", self.config.default_block_size),
                    hash_scheme=changes.get("hash_scheme", self.config.default_hash),
                )
                await self.meta.containers.create(acct, cont, policy=policy, meta=meta)
                return web.Response(status=201)
            except merr.ContainerExists:
                if changes or meta:
                    await self.meta.containers.update(acct, cont, meta=meta or None, **changes)
                return web.Response(status=202)
        if m == "POST":
            self.require_owner(r)
            ctype = (r.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if "update" in r.query and ctype == "application/octet-stream" and (
                (r.request.content_length or 0) > 0 or r.request.headers.get("Transfer-Encoding")
            ):
                return await self.upload_blocks(r)
            await self.meta.containers.get(acct, cont)
            changes = self._policy_changes(r)
            meta = prefixed(r.headers, "x-container-meta-")
            replace = r.api == "pithos" and "update" not in r.query
            if changes or meta or replace:
                await self.meta.containers.update(
                    acct, cont, meta=meta if (meta or replace) else None, replace_meta=replace, **changes
                )
            return web.Response(status=202)
        if m == "DELETE":
            self.require_owner(r)
            await self.store.delete_container(acct, cont)
            return web.Response(status=204)
        raise HTTPError(405, "method not allowed on a container")

    async def upload_blocks(self, r: Req) -> web.StreamResponse:
        """POST /acct/cont?update, octet-stream: store blocks, answer their digests."""
        c = await self.meta.containers.get(r.account or "", r.container or "")
        p = c.policy
        size, digests, _ = await self.store.write_stream(
            p.hash_scheme, p.block_size, body_source(r.request), length=r.request.content_length, md5=False
        )
        r.request["bytes_in"] = size
        if size == 0:
            digests = []
        body = format_hash_list_json([d.hex() for d in digests])
        return web.Response(status=202, body=body, content_type="application/json")

    # ------------------------------------------------------------------ objects

    async def object_op(self, r: Req) -> web.StreamResponse:
        m = r.method
        if m in ("GET", "HEAD"):
            return await self.object_get(r)
        if m == "PUT":
            return await self.object_put(r)
        if m == "POST":
            return await self.object_post(r)
        if m == "DELETE":
            acct, cont, name = r.account or "", r.container or "", r.obj or ""
            await self.require_write(r, acct, cont, name)
            await self.store.delete(acct, cont, name, modified_by=r.user or acct)
            return web.Response(status=204)
        if m in ("COPY", "MOVE"):
            return await self.object_copy_method(r)
        raise HTTPError(405, "method not allowed on an object")

    async def _version(self, acct: str, cont: str, name: str, serial: int | None) -> ObjectVersion:
        v = await self.meta.objects.get(acct, cont, name, serial=serial)
        if v.map is None:
            raise HTTPError(404, "object not found")
        return v

    async def object_get(self, r: Req, public: bool = False) -> web.StreamResponse:
        acct, cont, name = r.account or "", r.container or "", r.obj or ""
        if not public:
            await self.require_read(r, acct, cont, name)
        if r.query.get("version") == "list" and not public:
            versions = await self.meta.objects.versions(acct, cont, name)
            doc = {"versions": [[s, format_version_timestamp(t)] for s, t in versions]}
            fmt = r.query.get("format", "json").lower()
            if fmt in ("", "text", "plain"):
                body = "".join(f"{s} {format_version_timestamp(t)}\n" for s, t in versions).encode()
                return web.Response(body=body, content_type="text/plain")
            return web.Response(body=json.dumps(doc).encode(), content_type="application/json")
        v = await self._version(acct, cont, name, None if public else self._serial(r))
        headers = self.object_headers(r.api, v)
        if r.owner:
            await self._add_owner_headers(r, v, headers)
        etag = self.etag_for(r.api, v) or v.etag
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
        manifest = v.attrs.get("manifest")
        segments: list[ObjectVersion] = [v]
        size = v.size
        if manifest:
            segments = await self._manifest_segments(r, acct, manifest)
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
        headers["X-Trans-Id"] = r.request.get("rid", "")
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
        await resp.prepare(r.request)
        if r.method == "HEAD":
            return resp
        for head, start, end in parts:
            if head:
                await resp.write(head)
            async for piece in self._read_segments(segments, start, end):
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

    async def _manifest_segments(self, r: Req, acct: str, manifest: str) -> list[ObjectVersion]:
        cont, _, prefix = unquote(manifest).lstrip("/").partition("/")
        validate_container(cont)
        out: list[ObjectVersion] = []
        marker = None
        while True:
            page = await self.meta.listing.objects(
                acct, cont, prefix=prefix or None, marker=marker, limit=10000,
                as_user=None if r.owner or r.user is None else r.user,
            )
            for it in page:
                if not isinstance(it, Subdir):
                    out.append(it)
            if len(page) < 10000:
                break
            marker = page[-1].name
        return out

    async def _add_owner_headers(self, r: Req, v: ObjectVersion, headers: dict[str, str]) -> None:
        # two independent reads: on two reader connections at once
        eff, tok = await asyncio.gather(
            self.meta.sharing.effective(v.account, v.container, v.name),
            self.meta.public.token(v.account, v.container, v.name),
        )
        if eff is not None and eff.sharing:
            headers["X-Object-Sharing"] = eff.sharing.format()
            if eff.path != v.name:
                headers["X-Object-Shared-By"] = f"{v.container}/{eff.path}"
        if tok:
            headers["X-Object-Public"] = f"{r.base}/public/{tok}"

    async def _hashmap_response(self, r: Req, v: ObjectVersion) -> web.StreamResponse:
        c = await self.meta.containers.get(v.account, v.container)
        hmap = await self.store.hashmap(v)
        hexes = [d.hex() for d in hmap.hashes]
        fmt = (r.query.get("format") or "json").lower()
        if fmt in ("text", "plain"):
            body = format_hashmap_text(hexes)
            ctype = "text/plain"
        else:
            body = format_hashmap_json(
                v.size, hexes, block_size=c.policy.block_size, block_hash=c.policy.hash_scheme
            )
            ctype = "application/json"
        headers = self.object_headers(r.api, v)
        headers["Content-Type"] = ctype
        if r.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=body, headers=headers)

    def _write_precondition(self, r: Req, cur: ObjectVersion | None) -> Precondition | None:
        h = r.headers
        if h.get("If-Match") is None and h.get("If-None-Match") is None:
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
        c = await self.meta.containers.get(acct, cont)
        cur = await self._current(acct, cont, name)
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
            fresh = _truthy(r.headers.get("X-Fresh-Metadata"))
            result = await self.store.copy(
                (src_acct, src_cont, src_name), (acct, cont, name), move=bool(move_from), modified_by=by,
                serial=None if move_from else self._source_version(r),
                content_type=self._content_type(r, None) if r.headers.get("Content-Type") else None,
                meta=meta or None, replace_meta=fresh, precondition=pre,
            )
        else:
            length = r.request.content_length
            chunked = "chunked" in (r.headers.get("Transfer-Encoding") or "").lower()
            if length is None and not chunked:
                raise HTTPError(411, "Content-Length or chunked transfer encoding required")
            if length is not None and c.policy.quota is not None:
                if c.usage.stored_bytes + length > c.policy.quota and (cur is None or length > cur.size):
                    raise HTTPError(413, "container quota exceeded")
            result = await self.store.put_stream(
                acct, c, name, body_source(r.request), length=length, modified_by=by,
                content_type=self._content_type(r) or "application/octet-stream", meta=meta,
                attrs=self._attrs_from(r), precondition=pre, expect_etag=r.headers.get("ETag"),
            )
            r.request["bytes_in"] = result.version.size
        v = result.version
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

    async def _put_hashmap(self, r: Req, c: Any, name: str, meta: dict[str, str], pre: Precondition | None) -> Any:
        p = c.policy
        body = await read_body(r.request, max_hashmap_body(p.block_size))
        hm = parse_hashmap(body, block_size=p.block_size, block_hash=p.hash_scheme)
        digests = [bytes.fromhex(x) for x in hm.hashes]
        missing = await self.store.missing(p.hash_scheme, hm.size, p.block_size, digests)
        if missing:
            return web.Response(
                status=409, body=format_hash_list_json([d.hex() for d in missing]), content_type="application/json"
            )
        try:
            return await self.store.commit(
                r.account or "", c, name, size=hm.size, digests=digests, modified_by=r.user or "",
                content_type=self._content_type(r) or "application/octet-stream", meta=meta,
                attrs=self._attrs_from(r), precondition=pre,
            )
        except MissingBlocks as exc:  # raced with GC
            return web.Response(
                status=409, body=format_hash_list_json([d.hex() for d in exc.digests]),
                content_type="application/json",
            )

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

    def _check_sharing_owner(self, r: Req) -> None:
        if (r.headers.get("X-Object-Sharing") is not None or r.headers.get("X-Object-Public") is not None) and not r.owner:
            raise HTTPError(403, "only the owner may change sharing or public access")

    async def _apply_sharing_public(self, r: Req, acct: str, cont: str, name: str) -> None:
        sharing = r.headers.get("X-Object-Sharing")
        public = r.headers.get("X-Object-Public")
        self._check_sharing_owner(r)
        if sharing is not None:
            await self.meta.sharing.set(acct, cont, name, sharing.strip())
        if public is not None:
            if _truthy(public):
                await self.meta.public.publish(acct, cont, name)
            else:
                await self.meta.public.unpublish(acct, cont, name)

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
        meta = prefixed(r.headers, "x-object-meta-")
        result = await self.store.copy(
            (acct, cont, name), (dacct, dcont, dname), move=move, modified_by=r.user or acct,
            serial=None if move else self._serial(r) or self._source_version(r),
            content_type=self._content_type(r, None) if r.headers.get("Content-Type") else None,
            meta=meta or None, replace_meta=_truthy(r.headers.get("X-Fresh-Metadata")), precondition=pre,
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
            stream = self.store.read(src_v)
            buf = bytearray()

            async def source(n: int) -> bytes:
                nonlocal buf
                while len(buf) < n:
                    try:
                        buf += await stream.__anext__()
                    except StopAsyncIteration:
                        break
                out, buf = bytes(buf[:n]), buf[n:]
                return out
        elif rng is not None:
            length = r.request.content_length
            if length is None:
                raise HTTPError(411, "a partial update needs Content-Length")
            if length > self.config.max_partial_update:
                raise HTTPError(413, "partial update too large")
            data_length = length
            source = body_source(r.request)
            r.request["bytes_in"] = length
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

    # ------------------------------------------------------------------ public

    async def public_get(self, request: web.Request, token: str) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise HTTPError(405, "public objects are read-only")
        target = await self.meta.public.resolve(token)
        if target is None:
            raise HTTPError(404, "no such public object")
        r = Req(request, "pithos", target.account, target.container, target.name, None, self._base(request))
        return await self.object_get(r, public=True)


