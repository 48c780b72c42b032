"""Syncing by block hashes: hashmap GET, hashmap PUT (409 with the missing blocks) and POST ?update block upload."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from daemons.runtime.access_log import BYTES_IN
from net.pithos_hashmap import (
    format_hash_list_json,
    format_hashmap_json,
    format_hashmap_text,
    max_hashmap_body,
    parse_hashmap,
)
from storage_engine.objects.metadata import Precondition
from storage_engine.objects.metadata.records import ObjectVersion
from storage_engine.objects.store import MissingBlocks

from .http import body_source, read_body
from .request_context import HandlerBase, Req


class HashSyncHandlers(HandlerBase):
    async def upload_blocks(self, r: Req) -> web.StreamResponse:
        """POST /acct/cont?update, octet-stream: store blocks, answer their digests."""
        c = await self.meta.containers.get(r.account or "", r.container or "")
        p = c.policy
        size, digests, _ = await self.store.write_stream(
            p.hash_scheme, p.block_size, body_source(r.request), length=r.request.content_length, md5=False
        )
        r.request[BYTES_IN] = size
        if size == 0:
            digests = []
        body = format_hash_list_json([d.hex() for d in digests])
        return web.Response(status=202, body=body, content_type="application/json")

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
