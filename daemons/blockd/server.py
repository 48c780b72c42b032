"""The object API of DESIGN.md §3 as an aiohttp application over an ObjectStore.

One catch-all route: the path is percent-decoded here (from the raw path, so
`..` cannot be normalised away before it is refused) and split by
net.object_names into account / container / object under either prefix,
`/object-store/v1` (Pithos) or `/v1` (Swift).  The two differ only in what
ETag means (see docs/blockd.md): Pithos = the top hash, Swift = the MD5 when
known.  `X-Object-Hash` is always the top hash.

This module assembles the application: the handler mixins (auth, accounts,
containers, objects, hashsync, listings, sharing, public, errors) become one
Server, and dispatch routes each request to them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from net.object_names import parse_object_path
from storage_engine.objects.md5_backfill import Md5Backfill
from storage_engine.objects.store import ObjectStore

from .accounts import AccountHandlers
from daemons.runtime import package_version

from .auth import AuthHandlers
from .capabilities import INFO_PATHS, capabilities
from .config import BlockdConfig
from .containers import ContainerHandlers
from .errors import ErrorMiddleware
from .hashsync import HashSyncHandlers
from .http import HTTPError
from .large_objects import LargeObjectHandlers
from .listings import ListingHandlers
from .metrics import BlockdMetrics
from .objects import ObjectHandlers
from .permissions import Permissions
from .public import PublicHandlers
from .request_context import Req, decode_path
from .sharing import SharingHandlers

__all__ = ["MAX_META_BODY", "Req", "Server"]

log = logging.getLogger("nefeli-blockd")

MAX_META_BODY = 1 << 20


class Server(
    ErrorMiddleware,
    AuthHandlers,
    Permissions,
    ListingHandlers,
    AccountHandlers,
    ContainerHandlers,
    HashSyncHandlers,
    ObjectHandlers,
    LargeObjectHandlers,
    SharingHandlers,
    PublicHandlers,
):
    """The blockd HTTP server: every handler mixin over one ObjectStore, routed by dispatch."""

    def __init__(self, store: ObjectStore, config: BlockdConfig, md5_backfill: Md5Backfill | None = None) -> None:
        self.store = store
        self.config = config
        self.meta = store.meta
        self.metrics = BlockdMetrics(self.sampled_stats)
        self.started = time.time()
        self.md5_backfill = md5_backfill
        self.version = package_version()

    async def sampled_stats(self) -> dict[str, Any]:
        """The store's and the MD5 backfill's numbers, read at each /metrics scrape."""
        stats = await self.store.stats()
        b = self.md5_backfill
        if b is not None:
            stats.update(
                md5_backfill_pending=b.pending, md5_backfill_filled=b.counters.filled,
                md5_backfill_failed=b.counters.failed, md5_backfill_dropped=b.counters.dropped,
            )
        return stats

    # ------------------------------------------------------------------ app

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware], client_max_size=MAX_META_BODY)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    # ------------------------------------------------------------------ dispatch

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = decode_path(request.raw_path)
        if path == "/healthz":
            return web.json_response({"status": "ok", "uptime": round(time.time() - self.started, 3)})
        if path == "/metrics":
            return await self.metrics.handle(request)
        if path in INFO_PATHS:  # capability discovery, no token needed (as Swift)
            if request.method not in ("GET", "HEAD"):
                raise HTTPError(405, "GET or HEAD /info", {"Allow": "GET, HEAD"})
            return web.json_response(capabilities(self.config, self.version))
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
