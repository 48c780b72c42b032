"""The answer every listing (accounts, containers, objects) shares."""

from __future__ import annotations

from aiohttp import web

from net.pithos_listing import Format, ListingQuery, content_type_for, parse_listing_query

from .request_context import Req


def listing_query(r: Req) -> ListingQuery:
    """The listing parameters of the request, read as its API path reads them."""
    return parse_listing_query(r.query, accept=r.headers.get("Accept"), swift=r.api == "swift")


def listing_head_headers(r: Req, headers: dict[str, str]) -> dict[str, str]:
    """HEAD of an account or container: its headers, and the Content-Type a GET with
    the same format (query or Accept) would have, as Swift sends them."""
    q = listing_query(r)
    return {**headers, "Content-Type": content_type_for(q.format)}


def listing_response(r: Req, body: bytes, fmt: Format, headers: dict[str, str]) -> web.Response:
    headers = dict(headers)
    headers["Content-Type"] = content_type_for(fmt)  # an empty listing too, as Swift sends it
    if fmt == "plain" and not body:
        return web.Response(status=204, headers=headers)
    if r.method == "HEAD":
        headers["Content-Length"] = "0"
        return web.Response(status=204 if not body else 200, headers=headers)
    return web.Response(status=200, body=body, headers=headers)
