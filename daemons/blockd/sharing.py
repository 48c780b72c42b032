"""Object sharing and public access: the owner-only headers on read and X-Object-Sharing/X-Object-Public on write."""

from __future__ import annotations

import asyncio

from storage_engine.metadata.records import ObjectVersion

from .http import HTTPError
from .public import public_path
from .request_context import HandlerBase, Req, truthy


class SharingHandlers(HandlerBase):
    async def _add_owner_headers(self, r: Req, v: ObjectVersion, headers: dict[str, str]) -> None:
        # two independent reads: on two reader connections at once
        eff, tok = await asyncio.gather(
            self.meta.sharing.effective(v.account, v.container, v.name),
            self.meta.public.token(v.account, v.container, v.name),
        )
        if eff is not None and eff.sharing:
            headers["X-Object-Sharing"] = eff.sharing.format()
            if eff.path != v.name:
                headers["X-Object-Shared-By"] = f"{v.container}/{eff.path}"
        if tok:
            headers["X-Object-Public"] = r.base + public_path(tok)

    def _check_sharing_owner(self, r: Req) -> None:
        if (r.headers.get("X-Object-Sharing") is not None or r.headers.get("X-Object-Public") is not None) and not r.owner:
            raise HTTPError(403, "only the owner may change sharing or public access")

    async def _apply_sharing_public(self, r: Req, acct: str, cont: str, name: str) -> None:
        sharing = r.headers.get("X-Object-Sharing")
        public = r.headers.get("X-Object-Public")
        self._check_sharing_owner(r)
        if sharing is not None:
            await self.meta.sharing.set(acct, cont, name, sharing.strip())
        if public is not None:
            if truthy(public):
                await self.meta.public.publish(acct, cont, name)
            else:
                await self.meta.public.unpublish(acct, cont, name)
