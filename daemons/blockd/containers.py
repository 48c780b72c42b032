"""Container requests: HEAD/GET (headers and object listing), PUT/POST (policy, metadata), DELETE."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from net.http_conditional import format_http_date
from net.pithos_listing import ObjectRecord, SubdirRecord, format_object_listing
from storage_engine.objects.large_objects import listed_size, listed_slo_etag
from storage_engine.objects.metadata import Container, ContainerPolicy, ListingExtras, Subdir
from storage_engine.objects.metadata import errors as merr

from .hashsync import HashSyncHandler
from .http import HTTPError, int_header, prefixed
from .listings import listing_head_headers, listing_query, listing_response
from .permissions import Permissions
from .public_paths import public_path
from .request_context import Req, metadata_post_status
from .service import Service
from .until import until_headers, until_of
from .versions import Versions


class ContainerHandler:
    def __init__(self, service: Service, perms: Permissions, versions: Versions, hashsync: HashSyncHandler) -> None:
        self.perms = perms
        self.service = service
        self.meta = service.meta
        self.versions = versions
        self.hashsync = hashsync

    @staticmethod
    def _container_headers(c: Container) -> dict[str, str]:
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
            # rounded up, as Swift sends it: the listing's last_modified (microseconds) is
            # then never later than the header a client compares it with
            "Last-Modified": format_http_date(math.ceil(c.mtime)),
            "X-Timestamp": f"{c.created:.5f}",
        }
        for k, v in c.meta.items():
            h["X-Container-Meta-" + k.title()] = v  # title case, as Swift sends them
        return h

    async def _container_headers_at(self, acct: str, cont: str, until: float) -> dict[str, str]:
        """HEAD headers of the container as it was at ``until`` (usage computed from history)."""
        at = await self.meta.history.container(acct, cont, until=until)
        return until_headers(
            self._container_headers(at.container), "Container", at.usage.object_count, at.usage.bytes_used,
            at.last_modified,
        )

    @staticmethod
    def _policy_changes(r: Req) -> dict[str, Any]:
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

    async def handle(self, r: Req) -> web.StreamResponse:
        acct, cont = r.account, r.container
        assert acct is not None and cont is not None
        m = r.method
        if m == "HEAD":
            if not r.owner:  # whether or not it exists
                raise HTTPError(403, "forbidden")
            until = until_of(r)
            if until is not None:
                headers = await self._container_headers_at(acct, cont, until)
            else:
                headers = self._container_headers(await self.meta.containers.get(acct, cont))
            return web.Response(status=204, headers=listing_head_headers(r, headers))
        if m == "GET":
            await self.perms.require_shared(r, acct, cont)
            c = await self.meta.containers.get(acct, cont)
            q = listing_query(r)
            until = until_of(r)
            page: dict[str, Any] = dict(
                prefix=q.prefix or None, delimiter=q.delimiter, marker=q.marker, end_marker=q.end_marker,
                limit=q.limit, shared="shared" in r.query and r.owner, public="public" in r.query and r.owner,
                path=q.path,  # no subdir entries under path=
                reverse=q.reverse,
            )
            extras: dict[str, ListingExtras] = {}
            if until is not None and q.reverse:
                raise HTTPError(400, "a listing of the past (until) cannot be reversed")
            if until is not None:
                # The past as the owner saw it; sharing and publication are not kept in history.
                items = await self.meta.history.objects(
                    acct, cont, until=until, prefix=q.prefix or None, delimiter=q.delimiter, marker=q.marker,
                    end_marker=q.end_marker, limit=q.limit,
                )
            elif not r.owner:
                items = await self.meta.listing.objects(acct, cont, as_user=r.user, **page)
            elif q.format == "plain":
                items = await self.meta.listing.objects(acct, cont, **page)
            else:
                # Sharing and publication are the owner's to see, as on object HEAD.
                items, extras = await self.meta.listing.objects_with_extras(acct, cont, **page)
            recs: list[ObjectRecord | SubdirRecord] = []
            for it in items:
                if isinstance(it, Subdir):
                    recs.append(SubdirRecord(it.name))
                else:
                    extra = extras.get(it.name)
                    recs.append(
                        ObjectRecord(
                            name=it.name, size=listed_size(it),
                            hash=self.versions.etag_for(r.api, it) or it.etag,
                            content_type=it.content_type, last_modified=it.mtime,
                            x_object_hash=it.etag, uuid=it.uuid, version=it.serial, version_timestamp=it.mtime,
                            modified_by=it.modified_by, meta=dict(it.meta), slo_etag=listed_slo_etag(it),
                            sharing=extra.sharing.format() if extra and extra.sharing else None,
                            public=public_path(extra.public_token) if extra and extra.public_token else None,
                        )
                    )
            body = format_object_listing(recs, q.format, container=cont)
            headers = self._container_headers(c) if r.owner else {}
            if until is not None:
                headers = await self._container_headers_at(acct, cont, until)
            return listing_response(r, body, q.format, headers)
        if m == "PUT":
            Permissions.require_owner(r)
            await self.meta.accounts.ensure(acct)
            changes = self._policy_changes(r)
            meta = prefixed(r.headers, "x-container-meta-")
            try:
                policy = ContainerPolicy(
                    versioning=changes.get("versioning", self.service.config.default_versioning),
                    quota=changes.get("quota"),
                    block_size=changes.get("block_size", self.service.config.default_block_size),
                    hash_scheme=changes.get("hash_scheme", self.service.config.default_hash),
                )
                await self.meta.containers.create(acct, cont, policy=policy, meta=meta)
                return web.Response(status=201)
            except merr.ContainerExists:
                if changes or meta:
                    await self.meta.containers.update(acct, cont, meta=meta or None, **changes)
                return web.Response(status=202)
        if m == "POST":
            Permissions.require_owner(r)
            ctype = (r.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if "update" in r.query and ctype == "application/octet-stream" and (
                (r.request.content_length or 0) > 0 or r.request.headers.get("Transfer-Encoding")
            ):
                return await self.hashsync.upload_blocks(r)
            await self.meta.containers.get(acct, cont)
            changes = self._policy_changes(r)
            meta = prefixed(r.headers, "x-container-meta-")
            replace = r.api == "pithos" and "update" not in r.query
            if changes or meta or replace:
                await self.meta.containers.update(
                    acct, cont, meta=meta if (meta or replace) else None, replace_meta=replace, **changes
                )
            return web.Response(status=metadata_post_status(r.api))
        if m == "DELETE":
            Permissions.require_owner(r)
            if r.api == "pithos" and r.query.get("delimiter"):
                # Pithos: empty the container (whatever the delimiter), keep the container.
                await self.service.store.delete_objects(acct, cont, modified_by=r.user or acct)
                return web.Response(status=204)
            await self.service.store.delete_container(acct, cont)
            return web.Response(status=204)
        raise HTTPError(405, "method not allowed on a container")
