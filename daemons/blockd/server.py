"""The object API of docs/blockd.md as an aiohttp application over an ObjectStore.

One catch-all route: the path is percent-decoded here (from the raw path, so
`..` cannot be normalised away before it is refused) and split by
net.object_names into account / container / object under either prefix,
`/object-store/v1` (Pithos) or `/v1` (Swift).  The two differ only in what
ETag means (see docs/blockd.md): Pithos = the top hash, Swift = the MD5 when
known.  `X-Object-Hash` is always the top hash.

This module assembles the application: one Service (store, settings), the
handlers built over it, each given what it uses (auth, account, container,
object, hashmap sync, large objects, public), and dispatch, which hands each
request to one of them.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from aiohttp import web

from daemons.runtime import package_version
from net.object_names import parse_object_path
from storage_engine.objects.md5_backfill import Md5Backfill
from storage_engine.objects.store import ObjectStore

from .accounts import AccountHandler
from .astakos_account import PREFIX as ACCOUNT_API
from .astakos_account import AstakosAccountHandler
from .auth import AuthHandler
from .bulk import BulkDeleteHandler
from .capabilities import INFO_PATHS, capabilities
from .config import BlockdConfig
from .containers import ContainerHandler
from .errors import ErrorMiddleware
from .extract_archive import ExtractArchiveHandler
from .hashsync import HashSyncHandler
from .http import HTTPError
from .large_objects import LargeObjectHandler
from .objects import ObjectHandler
from .permissions import Permissions
from .public import PUBLIC_PREFIX, PublicHandler
from .request_context import Req, decode_path
from .service import Service
from .sharing import Sharing
from .tempurl import TempUrlHandler, on_response_prepare
from .versions import Versions

__all__ = ["MAX_META_BODY", "Req", "Server"]


MAX_META_BODY = 1 << 20
AUTH_V1_PATHS = ("/auth/v1.0", "/auth/v1.0/", "/auth/v1", "/v1.0", "/auth/1.0")


def www_authenticate(path: str) -> str:
    """The challenge of a 401: on the Swift path Swift's, naming the account of the
    path as realm (percent-quoted, so no header can be smuggled in); Pithos' otherwise."""
    if not path.startswith("/v1/"):
        return 'Token realm="nefeli"'
    account = path[len("/v1/") :].split("/", 1)[0]
    return f'Swift realm="{quote(account or "unknown")}"'


class Server:
    """The blockd HTTP server: the handlers over one Service, routed by dispatch."""

    def __init__(self, store: ObjectStore, config: BlockdConfig, md5_backfill: Md5Backfill | None = None) -> None:
        self.service = Service(store, config, md5_backfill, package_version())
        svc = self.service
        perms = Permissions(svc.meta)
        versions = Versions(svc)
        sharing = Sharing(svc.meta)
        hashsync = HashSyncHandler(svc, versions)
        large = LargeObjectHandler(svc, perms, versions, sharing)
        self.auth = AuthHandler(svc)
        self.astakos_account = AstakosAccountHandler(svc)
        self.accounts = AccountHandler(svc, perms)
        self.containers = ContainerHandler(svc, perms, versions, hashsync)
        self.objects = ObjectHandler(svc, perms, versions, sharing, large, hashsync)
        self.public = PublicHandler(svc, self.objects)
        self.tempurl = TempUrlHandler(svc, self.objects)
        self.bulk_delete = BulkDeleteHandler(self.containers, self.objects)
        self.extract_archive = ExtractArchiveHandler(svc, perms, versions, self.containers)
        self.errors = ErrorMiddleware(svc.metrics)

    # ------------------------------------------------------------------ app

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.errors.middleware], client_max_size=MAX_META_BODY)
        # [\s\S], not ".": a path may hold an encoded newline, and dispatch answers it
        app.router.add_route("*", "/{tail:[\\s\\S]*}", self.dispatch)
        app.on_response_prepare.append(on_response_prepare)
        return app

    # ------------------------------------------------------------------ dispatch

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        svc = self.service
        path = decode_path(request.raw_path)
        if path == "/healthz":
            return web.json_response({"status": "ok", "uptime": round(time.time() - svc.started, 3)})
        if path == "/metrics":
            return await svc.metrics.handle(request)
        if path in INFO_PATHS:  # capability discovery, no token needed (as Swift)
            if request.method not in ("GET", "HEAD"):
                raise HTTPError(405, "GET or HEAD /info", {"Allow": "GET, HEAD"})
            return web.json_response(capabilities(svc.config, svc.version))
        if path in AUTH_V1_PATHS:
            return await self.auth.auth_v1(request)
        if path.rstrip("/") == "/identity/v2.0/tokens":
            return await self.auth.identity_v2(request)
        if path.startswith(ACCOUNT_API) or path == ACCOUNT_API.rstrip("/"):
            return await self.astakos_account.handle(request, path[len(ACCOUNT_API) :])
        if path.startswith(PUBLIC_PREFIX):
            return await self.public.get(request, path[len(PUBLIC_PREFIX) :])
        if request.method != "OPTIONS" and ("temp_url_sig" in request.query or "temp_url_expires" in request.query):
            return await self.tempurl.handle(request, parse_object_path(path))
        token = request.headers.get("X-Auth-Token") or request.headers.get("X-Storage-Token")
        user = await svc.meta.tokens.resolve(token) if token else None
        if user is None:  # before the path is read, as Swift's auth answers first
            raise HTTPError(401, "missing or invalid X-Auth-Token", {"WWW-Authenticate": www_authenticate(path)})
        op = parse_object_path(path)
        r = Req(request, op.api, op.account, op.container, op.object, user, svc.base_url(request))
        if r.api == "swift" and r.account and "bulk-delete" in request.query and request.method in ("POST", "DELETE"):
            return await self.bulk_delete.handle(r)
        if r.api == "swift" and r.account and "extract-archive" in request.query and request.method == "PUT":
            return await self.extract_archive.handle(r)
        if r.account is None:
            return await self.accounts.top_level(r)
        if r.container is None:
            return await self.accounts.handle(r)
        if r.obj is None:
            return await self.containers.handle(r)
        return await self.objects.handle(r)
