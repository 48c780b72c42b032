"""Getting a token: Swift auth v1.0 (X-Auth-User/X-Auth-Key) and Keystone-style identity v2.0."""

from __future__ import annotations

import json
import time

from aiohttp import web

from .http import HTTPError, read_body
from .request_context import HandlerBase


class AuthHandlers(HandlerBase):
    async def auth_v1(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            raise HTTPError(405, "use GET")
        user = request.headers.get("X-Auth-User") or request.headers.get("X-Storage-User")
        key = request.headers.get("X-Auth-Key") or request.headers.get("X-Storage-Pass")
        if not user or not key:
            raise HTTPError(401, "X-Auth-User and X-Auth-Key required")
        account = await self.meta.tokens.verify_key(user, key)
        if account is None:
            raise HTTPError(401, "wrong user or key")
        tok = await self.meta.tokens.create(account, ttl=self.config.auth_token_ttl, description="auth/v1.0")
        url = f"{self._base(request)}/v1/{account}"
        return web.Response(
            status=200,
            headers={
                "X-Storage-Url": url,
                "X-Auth-Token": tok.token,
                "X-Storage-Token": tok.token,
                "X-Auth-Token-Expires": str(int(self.config.auth_token_ttl)),
            },
        )

    async def identity_v2(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            raise HTTPError(405, "use POST")
        body = await read_body(request, 1 << 16)
        try:
            doc = json.loads(body or b"{}")
            auth = doc.get("auth") if isinstance(doc, dict) else None
            if not isinstance(auth, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise HTTPError(400, "expected a JSON body {\"auth\": {...}}") from None
        account: str | None = None
        token_value: str | None = None
        expires: float | None = None
        tok = auth.get("token")
        creds = auth.get("passwordCredentials")
        if isinstance(tok, dict) and isinstance(tok.get("id"), str):
            account = await self.meta.tokens.resolve(tok["id"])
            token_value = tok["id"]
        elif isinstance(creds, dict) and isinstance(creds.get("username"), str) and isinstance(
            creds.get("password"), str
        ):
            account = await self.meta.tokens.verify_key(creds["username"], creds["password"])
            if account is not None:
                new = await self.meta.tokens.create(
                    account, ttl=self.config.auth_token_ttl, description="identity/v2.0"
                )
                token_value = new.token
                expires = new.info.expires
        else:
            raise HTTPError(400, "auth needs token.id or passwordCredentials")
        if account is None or token_value is None:
            raise HTTPError(401, "invalid credentials")
        base = self._base(request)
        iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(expires or (time.time() + 86400 * 365)))
        access = {
            "token": {"id": token_value, "expires": iso, "tenant": {"id": account, "name": account}},
            "user": {"id": account, "name": account, "roles": [{"id": "member", "name": "member"}]},
            "serviceCatalog": [
                {
                    "type": "object-store",
                    "name": "pithos",
                    "endpoints": [
                        {
                            "region": "default",
                            "versionId": "v1",
                            "publicURL": f"{base}/object-store/v1",
                            "internalURL": f"{base}/object-store/v1",
                        }
                    ],
                    "endpoints_links": [],
                }
            ],
        }
        return web.json_response({"access": access})
