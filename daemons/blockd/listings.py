"""The answer every listing (accounts, containers, objects) shares."""

from __future__ import annotations

from aiohttp import web

from net.pithos_listing import Format, content_type_for

from .request_context import Req


def listing_response(r: Req, body: bytes, fmt: Format, headers: dict[str, str]) -> web.Response:
    if fmt == "plain" and not body:
        return web.Response(status=204, headers=headers)
    headers = dict(headers)
    headers["Content-Type"] = content_type_for(fmt)
    if r.method == "HEAD":
        headers["Content-Length"] = "0"
        return web.Response(status=204 if not body else 200, headers=headers)
    return web.Response(status=200, body=body, headers=headers)
