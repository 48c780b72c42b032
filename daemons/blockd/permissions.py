"""Who may read or write an object, and who owns an account (sharing decides for non-owners)."""

from __future__ import annotations

from storage_engine.objects.metadata import MetadataStore

from .http import HTTPError
from .request_context import Req


class Permissions:
    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    async def may_read(self, user: str | None, account: str, container: str, name: str) -> bool:
        if user == account:
            return True
        perm = await self.meta.sharing.permission(account, container, name, user or "")
        return perm.can_read

    async def require_read(self, r: Req, account: str, container: str, name: str) -> None:
        if not await self.may_read(r.user, account, container, name):
            raise HTTPError(403, "forbidden")

    async def require_write(self, r: Req, account: str, container: str, name: str) -> None:
        if r.user == account:
            return
        perm = await self.meta.sharing.permission(account, container, name, r.user or "")
        if not perm.can_write:
            raise HTTPError(403, "forbidden")

    async def require_shared(self, r: Req, account: str, container: str | None = None) -> None:
        """403 unless the user owns ``account`` or it (its ``container``) shares
        something with them: checked before any lookup, so another account's
        resources answer the same whether or not they exist."""
        if r.owner:
            return
        if r.user is None or not await self.meta.sharing.shares_with(account, r.user, container):
            raise HTTPError(403, "forbidden")

    @staticmethod
    def require_owner(r: Req) -> None:
        if not r.owner:
            raise HTTPError(403, "forbidden")
