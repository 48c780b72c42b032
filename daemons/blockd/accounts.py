"""Account requests: HEAD/GET (headers and container listing) and POST (metadata, groups)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from net.http_conditional import format_http_date
from net.pithos_listing import ContainerRecord, format_container_listing, parse_listing_query
from net.pithos_policy import format_quota, parse_account_policy
from net.pithos_sharing import parse_group_headers
from storage_engine.objects.metadata import Subdir
from storage_engine.objects.metadata import errors as merr

from .http import HTTPError, prefixed
from .request_context import HandlerBase, Req
from .until import until_headers, until_of


class AccountHandlers(HandlerBase):
    async def account_op(self, r: Req) -> web.StreamResponse:
        acct = r.account
        assert acct is not None
        m = r.method
        if m in ("GET", "HEAD"):
            if r.owner:
                try:
                    a = await self.meta.accounts.get(acct)
                except merr.AccountNotFound:
                    a = await self.meta.accounts.ensure(acct)
                headers = self._account_headers(a)
            else:
                await self.meta.accounts.get(acct)  # 404 for an unknown account
                headers = {}
            until = until_of(r)
            if until is not None:
                at = await self.meta.history.account(acct, until=until)
                headers = until_headers(
                    self._account_headers(at.account), "Account", at.usage.object_count, at.usage.bytes_used,
                    at.last_modified,
                )
                headers["X-Account-Container-Count"] = str(at.container_count)
            if m == "HEAD":
                if not r.owner:
                    raise HTTPError(403, "forbidden")
                return web.Response(status=204, headers=headers)
            q = parse_listing_query(r.query, accept=r.headers.get("Accept"))
            if until is not None:
                # Today's containers created by then (deletions are not recorded), usage of then.
                past = await self.meta.history.containers(
                    acct, until=until, prefix=q.prefix or None, delimiter=q.delimiter, marker=q.marker,
                    end_marker=q.end_marker, limit=q.limit,
                )
                recs = [
                    ContainerRecord(c.container.name, c.usage.object_count, c.usage.bytes_used, c.container.mtime)
                    for c in past
                    if not isinstance(c, Subdir)
                ]
            else:
                items = await self.meta.listing.containers(
                    acct, prefix=q.prefix or None, delimiter=q.delimiter, marker=q.marker,
                    end_marker=q.end_marker, limit=q.limit, as_user=None if r.owner else r.user,
                )
                recs = [
                    ContainerRecord(c.name, c.usage.object_count, c.usage.bytes_used, c.mtime)
                    for c in items
                    if not isinstance(c, Subdir)
                ]
            body = format_container_listing(recs, q.format, account=acct)
            return self._listing_response(r, body, q.format, headers)
        if m == "POST":
            self.require_owner(r)  # so a quota is set by the account itself, for itself
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
            return web.Response(status=202)
        raise HTTPError(405, "method not allowed on an account")

    def _account_headers(self, a: Any) -> dict[str, str]:
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
            h["X-Account-Meta-" + k] = v
        for g, members in a.groups.items():
            h["X-Account-Group-" + g] = ",".join(members)
        return h
