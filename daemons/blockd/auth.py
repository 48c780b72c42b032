"""Getting a token: Swift auth v1.0 (X-Auth-User/X-Auth-Key) and Keystone-style identity v2.0."""

from __future__ import annotations

import time

from aiohttp import web

from net.http_errors import BadRequest
from net.identity_v2 import MAX_BODY, TokenAuth, access_document, parse_token_request

from .http import HTTPError, read_body
from .service import Service


class AuthHandler:
    def __init__(self, service: Service) -> None:
        self.service = service

    async def auth_v1(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise HTTPError(405, "use GET")
        user = request.headers.get("X-Auth-User") or request.headers.get("X-Storage-User")
        key = request.headers.get("X-Auth-Key") or request.headers.get("X-Storage-Pass")
        if not user or not key:
            raise HTTPError(401, "X-Auth-User and X-Auth-Key required")
        # the user's still-valid token if it has one (as Swift's tempauth), else a new one
        tok = await self.service.meta.tokens.login_v1(user, key, ttl=self.service.config.auth_token_ttl)
        if tok is None:
            raise HTTPError(401, "wrong user or key")
        url = f"{self.service.base_url(request)}/v1/{tok.info.account}"
        headers = {"X-Storage-Url": url, "X-Auth-Token": tok.token, "X-Storage-Token": tok.token}
        if tok.info.expires is not None:
            headers["X-Auth-Token-Expires"] = str(max(0, int(tok.info.expires - time.time())))
        return web.Response(status=200, headers=headers)

    async def identity_v2(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            raise HTTPError(405, "use POST")
        try:
            # no body: the X-Auth-Token header's token (astakosclient's get_endpoints)
            creds = parse_token_request(await read_body(request, MAX_BODY), request.headers.get("X-Auth-Token"))
        except BadRequest as exc:
            raise HTTPError(400, exc.reason) from None
        account: str | None
        expires: float | None = None
        if isinstance(creds, TokenAuth):
            account, token_value = await self.service.meta.tokens.resolve(creds.token), creds.token
        else:
            account = await self.service.meta.tokens.verify_key(creds.username, creds.password)
            if account is None:
                raise HTTPError(401, "invalid credentials")
            new = await self.service.meta.tokens.create(account, ttl=self.service.config.auth_token_ttl, description="identity/v2.0")
            token_value, expires = new.token, new.info.expires
        if account is None:
            raise HTTPError(401, "invalid credentials")
        url = f"{self.service.base_url(request)}/object-store/v1"
        return web.json_response(
            access_document(token_value, account, expires or (time.time() + 86400 * 365), url)
        )
