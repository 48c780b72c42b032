"""Syncing by block hashes: hashmap GET, hashmap PUT (409 with the missing blocks) and POST ?update block upload."""

from __future__ import annotations

from aiohttp import web

from daemons.runtime.access_log import BYTES_IN
from net.pithos_hashmap import (
    format_hash_list_json,
    format_hashmap_json,
    format_hashmap_text,
    max_hashmap_body,
    parse_hashmap,
)
from storage_engine.objects.metadata import Container, Precondition, WriteResult
from storage_engine.objects.metadata.records import ObjectVersion
from storage_engine.objects.store import MissingBlocks

from .http import RequestBody, read_body
from .request_context import Req, attrs_from, content_type_of
from .service import Service
from .versions import Versions


def missing_response(digests: list[bytes]) -> web.Response:
    """409 with the blocks the client has to upload before it PUTs the hashmap again."""
    return web.Response(
        status=409, body=format_hash_list_json([d.hex() for d in digests]), content_type="application/json"
    )


class HashSyncHandler:
    def __init__(self, service: Service, versions: Versions) -> None:
        self.service = service
        self.versions = versions

    async def upload_blocks(self, r: Req) -> web.StreamResponse:
        """POST /acct/cont?update, octet-stream: store blocks, answer their digests."""
        c = await self.service.meta.containers.get(r.account or "", r.container or "")
        p = c.policy
        size, digests, _ = await self.service.store.write_stream(
            p.hash_scheme, p.block_size, RequestBody(r.request), length=r.request.content_length, md5=False
        )
        r.request[BYTES_IN] = size
        if size == 0:
            digests = []
        body = format_hash_list_json([d.hex() for d in digests])
        return web.Response(status=202, body=body, content_type="application/json")

    async def hashmap_response(self, r: Req, v: ObjectVersion) -> web.StreamResponse:
        """GET/HEAD ?hashmap: the version's block list."""
        c = await self.service.meta.containers.get(v.account, v.container)
        hmap = await self.service.store.hashmap(v)
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
        headers = self.versions.headers(r.api, v)
        headers["Content-Type"] = ctype
        if r.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return web.Response(status=200, headers=headers)
        return web.Response(status=200, body=body, headers=headers)

    async def put_hashmap(
        self, r: Req, c: Container, name: str, meta: dict[str, str], pre: Precondition | None
    ) -> WriteResult | web.Response:
        """PUT ?hashmap: the new version, or the 409 answer naming the missing blocks."""
        p = c.policy
        body = await read_body(r.request, max_hashmap_body(p.block_size))
        hm = parse_hashmap(body, block_size=p.block_size, block_hash=p.hash_scheme)
        digests = [bytes.fromhex(x) for x in hm.hashes]
        store = self.service.store
        missing = await store.missing(p.hash_scheme, hm.size, p.block_size, digests)
        if missing:
            return missing_response(missing)
        try:
            return await store.commit(
                r.account or "", c, name, size=hm.size, digests=digests, modified_by=r.user or "",
                content_type=content_type_of(r) or "application/octet-stream", meta=meta,
                attrs=attrs_from(r), precondition=pre,
            )
        except MissingBlocks as exc:  # raced with GC
            return missing_response(exc.digests)
