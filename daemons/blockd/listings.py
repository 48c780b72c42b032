"""Listings: the top level (accounts sharing with the user) and the shared listing response."""

from __future__ import annotations

from aiohttp import web

from net.pithos_listing import AccountRecord, content_type_for, format_account_listing, parse_listing_query

from .http import HTTPError
from .request_context import HandlerBase, Req


class ListingHandlers(HandlerBase):
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
