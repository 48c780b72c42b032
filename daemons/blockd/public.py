"""Anonymous reads of published objects: GET/HEAD /public/TOKEN."""

from __future__ import annotations

from aiohttp import web

from .http import HTTPError
from .request_context import HandlerBase, Req


PUBLIC_PREFIX = "/public/"


def public_path(token: str) -> str:
    """Where a published object is served, relative to the server (listings show this)."""
    return PUBLIC_PREFIX + token


class PublicHandlers(HandlerBase):
    async def public_get(self, request: web.Request, token: str) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise HTTPError(405, "public objects are read-only")
        target = await self.meta.public.resolve(token)
        if target is None:
            raise HTTPError(404, "no such public object")
        r = Req(request, "pithos", target.account, target.container, target.name, None, self._base(request))
        return await self.object_get(r, public=True)
