"""Who may read or write an object, and who owns an account (sharing decides for non-owners)."""

from __future__ import annotations

from .http import HTTPError
from .request_context import HandlerBase, Req


class Permissions(HandlerBase):
    async def require_read(self, r: Req, account: str, container: str, name: str) -> None:
        if r.user == account:
            return
        perm = await self.meta.sharing.permission(account, container, name, r.user or "")
        if not perm.can_read:
            raise HTTPError(403, "forbidden")

    async def require_write(self, r: Req, account: str, container: str, name: str) -> None:
        if r.user == account:
            return
        perm = await self.meta.sharing.permission(account, container, name, r.user or "")
        if not perm.can_write:
            raise HTTPError(403, "forbidden")

    def require_owner(self, r: Req) -> None:
        if not r.owner:
            raise HTTPError(403, "forbidden")
