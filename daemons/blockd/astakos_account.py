"""`/account/v1.0/`: the parts of Astakos' account API Pithos clients call (net/astakos_account.py).

`user_catalogs` turns uuids into display names and back (kamaki's `-A ACCOUNT`,
`sharer list`, permissions by name); `quotas` and `service_quotas` give the object
store's quota and usage of the token's own account.  On nefeli a user's uuid and
display name are its account name.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from net.astakos_account import MAX_BODY, catalogs_document, parse_catalog_request, quotas_document
from net.http_errors import BadRequest
from storage_engine.objects.metadata import errors as merr

from .http import HTTPError, read_body
from .service import Service

PREFIX = "/account/v1.0/"


class AstakosAccountHandler:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.meta = service.meta

    async def handle(self, request: web.Request, sub: str) -> web.StreamResponse:
        token = request.headers.get("X-Auth-Token")
        user = await self.meta.tokens.resolve(token) if token else None
        if user is None:
            raise HTTPError(401, "missing or invalid X-Auth-Token")
        sub = sub.strip("/")
        if sub in ("user_catalogs", "service/user_catalogs"):
            if request.method != "POST":
                raise HTTPError(405, "use POST", {"Allow": "POST"})
            try:
                q = parse_catalog_request(await read_body(request, MAX_BODY))
            except BadRequest as exc:
                raise HTTPError(400, exc.reason) from None
            known = {name for name in {*q.uuids, *q.displaynames} if await self._account_exists(name)}
            return web.json_response(
                catalogs_document({u: u for u in q.uuids if u in known}, {n: n for n in q.displaynames if n in known})
            )
        if sub in ("quotas", "service_quotas"):
            if request.method not in ("GET", "HEAD"):
                raise HTTPError(405, "use GET", {"Allow": "GET, HEAD"})
            doc = await self._quotas(user)
            if sub == "quotas":
                return web.json_response(doc)
            wanted = request.query.get("user")
            if wanted is not None and wanted != user:
                # a user's token, not a service's: it sees its own quotas only
                raise HTTPError(403, "service_quotas of another user need a service token")
            return web.json_response({user: doc})
        raise HTTPError(404, f"no account API {sub!r}")

    async def _account_exists(self, name: str) -> bool:
        try:
            await self.meta.accounts.get(name)
        except (merr.AccountNotFound, merr.InvalidName):
            return False
        return True

    async def _quotas(self, user: str) -> dict[str, Any]:
        a = await self.meta.accounts.ensure(user)
        return quotas_document(user, a.quota, a.usage.bytes_used)
