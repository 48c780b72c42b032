"""Object sharing and public access: the owner-only headers on read and X-Object-Sharing/X-Object-Public on write."""

from __future__ import annotations

from net.pithos_sharing import parse_sharing
from storage_engine.objects.metadata import MetadataStore
from storage_engine.objects.metadata.records import EffectiveSharing, ObjectVersion

from .http import HTTPError
from .public_paths import public_path
from .request_context import Req, truthy


class Sharing:
    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    @staticmethod
    def owner_headers(
        r: Req, v: ObjectVersion, eff: EffectiveSharing | None, tok: str | None, headers: dict[str, str]
    ) -> None:
        """X-Object-Sharing, -Shared-By and -Public, which only the owner is shown."""
        if eff is not None and eff.sharing:
            headers["X-Object-Sharing"] = eff.sharing.format()
            if eff.path != v.name:
                headers["X-Object-Shared-By"] = f"{v.container}/{eff.path}"
        if tok:
            headers["X-Object-Public"] = r.base + public_path(tok)

    @staticmethod
    def check(r: Req) -> None:
        """Before anything is written: only the owner may change sharing or publication
        (403), and X-Object-Sharing must parse as Pithos parses it (400)."""
        sharing = r.headers.get("X-Object-Sharing")
        if (sharing is not None or r.headers.get("X-Object-Public") is not None) and not r.owner:
            raise HTTPError(403, "only the owner may change sharing or public access")
        if sharing is not None:
            parse_sharing(sharing)

    async def apply(self, r: Req, acct: str, cont: str, name: str) -> None:
        """X-Object-Sharing and X-Object-Public of a write, once the object is written."""
        sharing = r.headers.get("X-Object-Sharing")
        public = r.headers.get("X-Object-Public")
        self.check(r)
        if sharing is not None:
            await self.meta.sharing.set(acct, cont, name, sharing.strip())
        if public is not None:
            if truthy(public):
                await self.meta.public.publish(acct, cont, name)
            else:
                await self.meta.public.unpublish(acct, cont, name)
