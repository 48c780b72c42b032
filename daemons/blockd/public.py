"""Anonymous reads of published objects: GET/HEAD /public/TOKEN."""

from __future__ import annotations

from aiohttp import web

from .http import HTTPError
from .objects import ObjectHandler
from .public_paths import PUBLIC_PREFIX, public_path
from .request_context import Req
from .service import Service

__all__ = ["PUBLIC_PREFIX", "PublicHandler", "public_path"]


class PublicHandler:
    def __init__(self, service: Service, objects: ObjectHandler) -> None:
        self.service = service
        self.objects = objects

    async def get(self, request: web.Request, token: str) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise HTTPError(405, "public objects are read-only")
        target = await self.service.meta.public.resolve(token)
        if target is None:
            raise HTTPError(404, "no such public object")
        r = Req(request, "pithos", target.account, target.container, target.name, None, self.service.base_url(request))
        return await self.objects.get(r, public=True)
