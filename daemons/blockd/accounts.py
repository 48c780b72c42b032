"""Account requests: HEAD/GET (headers and container listing) and POST (metadata, groups)."""

from __future__ import annotations

from aiohttp import web

from net.http_conditional import format_http_date
from net.pithos_listing import (
    AccountRecord,
    ContainerRecord,
    SubdirRecord,
    format_account_listing,
    format_container_listing,
)
from net.pithos_policy import format_quota, parse_account_policy
from net.pithos_sharing import parse_group_headers
from storage_engine.objects.metadata import Account, Subdir
from storage_engine.objects.metadata import errors as merr

from .http import HTTPError, prefixed
from .listings import listing_head_headers, listing_query, listing_response
from .permissions import Permissions
from .request_context import Req, metadata_post_status
from .service import Service
from .until import until_headers, until_of


class AccountHandler:
    def __init__(self, service: Service, perms: Permissions) -> None:
        self.perms = perms
        self.service = service
        self.meta = service.meta

    async def top_level(self, r: Req) -> web.StreamResponse:
        """GET / : the accounts sharing something with the user."""
        if r.method not in ("GET", "HEAD"):
            raise HTTPError(405, "method not allowed")
        q = listing_query(r)
        names = await self.meta.sharing.accounts_sharing_with(r.user or "", marker=q.marker, limit=q.limit)
        # kamaki's `sharer list` reads each entry's last_modified (the account's mtime)
        records = [AccountRecord(n, (await self.meta.accounts.get(n)).mtime) for n in names]
        body = format_account_listing(records, q.format)
        return listing_response(r, body, q.format, {})

    async def handle(self, r: Req) -> web.StreamResponse:
        acct = r.account
        assert acct is not None
        m = r.method
        if m in ("GET", "HEAD"):
            if r.owner:
                try:
                    a = await self.meta.accounts.get(acct)
                except merr.AccountNotFound:
                    a = await self.meta.accounts.ensure(acct)
                headers = AccountHandler._account_headers(a)
            else:
                if m == "HEAD":  # whether or not the account exists
                    raise HTTPError(403, "forbidden")
                await self.perms.require_shared(r, acct)  # 403 for an unknown account too
                headers = {}
            until = until_of(r)
            if until is not None:
                at = await self.meta.history.account(acct, until=until)
                headers = until_headers(
                    AccountHandler._account_headers(at.account), "Account", at.usage.object_count, at.usage.bytes_used,
                    at.last_modified,
                )
                headers["X-Account-Container-Count"] = str(at.container_count)
            if m == "HEAD":
                if not r.owner:
                    raise HTTPError(403, "forbidden")
                return web.Response(status=204, headers=listing_head_headers(r, headers))
            q = listing_query(r)
            recs: list[ContainerRecord | SubdirRecord]
            if until is not None and q.reverse:
                raise HTTPError(400, "a listing of the past (until) cannot be reversed")
            if until is not None:
                # Today's containers created by then (deletions are not recorded), usage of then.
                past = await self.meta.history.containers(
                    acct, until=until, prefix=q.prefix or None, delimiter=q.delimiter, marker=q.marker,
                    end_marker=q.end_marker, limit=q.limit,
                )
                recs = [
                    SubdirRecord(c.name) if isinstance(c, Subdir) else ContainerRecord(
                        c.container.name, c.usage.object_count, c.usage.bytes_used, c.container.mtime,
                        c.container.policy.hash_scheme,
                    )
                    for c in past
                ]
            else:
                items = await self.meta.listing.containers(
                    acct, prefix=q.prefix or None, delimiter=q.delimiter, marker=q.marker,
                    end_marker=q.end_marker, limit=q.limit, as_user=None if r.owner else r.user, reverse=q.reverse,
                )
                recs = [
                    SubdirRecord(c.name) if isinstance(c, Subdir) else ContainerRecord(
                        c.name, c.usage.object_count, c.usage.bytes_used, c.mtime, c.policy.hash_scheme
                    )
                    for c in items
                ]
            body = format_container_listing(recs, q.format, account=acct)
            return listing_response(r, body, q.format, headers)
        if m == "POST":
            Permissions.require_owner(r)  # so a quota is set by the account itself, for itself
            # Parse every header before changing anything: a 400 leaves the account as it was.
            policy = parse_account_policy(r.headers)
            groups = parse_group_headers(r.headers)
            await self.meta.accounts.ensure(acct)
            meta = prefixed(r.headers, "x-account-meta-")
            replace = r.api == "pithos" and "update" not in r.query
            if meta or replace:
                await self.meta.accounts.update_meta(acct, meta, replace=replace)
            if groups or replace:
                await self.meta.accounts.set_groups(acct, {g: sorted(m_) for g, m_ in groups.items()}, replace=replace)
            if policy is not None:  # policies are changed only when given, even by a replacing POST
                await self.meta.accounts.set_quota(acct, policy.quota)
            return web.Response(status=metadata_post_status(r.api))
        raise HTTPError(405, "method not allowed on an account")

    @staticmethod
    def _account_headers(a: Account) -> dict[str, str]:
        h = {
            "X-Account-Container-Count": str(a.container_count),
            "X-Account-Object-Count": str(a.usage.object_count),
            "X-Account-Bytes-Used": str(a.usage.bytes_used),
            "X-Account-Bytes-Stored": str(a.usage.stored_bytes),
            "Last-Modified": format_http_date(a.mtime),
            "X-Timestamp": f"{a.created:.5f}",
        }
        h["X-Account-Policy-Quota"] = format_quota(a.quota)
        for k, v in a.meta.items():
            h["X-Account-Meta-" + k.title()] = v  # title case, as Swift sends them
        for g, members in a.groups.items():
            h["X-Account-Group-" + g] = ",".join(members)
        return h
