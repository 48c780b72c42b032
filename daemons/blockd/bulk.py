"""Swift's bulk delete (`POST` or `DELETE` with `?bulk-delete` on the Swift path, at
any depth: the names are the account's): objects first, then containers, each as
its own DELETE would be (rights, versioning), answered as Swift's bulk middleware
answers: 200 with the counts and a `[name, status]` per failure, in the format the
Accept header asks for. One failed name never stops the others; after
MAX_FAILED_DELETES failures the rest are not tried (400, as Swift)."""

from __future__ import annotations

from aiohttp import web

from net.pithos_listing import negotiate_format
from net.swift_bulk import MAX_FAILED_DELETES, BulkName, max_body_size, parse_bulk_delete
from net.swift_slo import BulkDeleteResult, format_bulk_delete
from storage_engine.objects.metadata import errors as merr

from .http import HTTPError, read_body
from .permissions import Permissions
from .request_context import Req
from .service import Service

_TYPES = {"json": "application/json", "xml": "application/xml", "plain": "text/plain"}


class BulkDeleteHandler:
    def __init__(self, service: Service, perms: Permissions) -> None:
        self.service = service
        self.perms = perms

    async def delete(self, r: Req) -> web.StreamResponse:
        ctype = (r.headers.get("Content-Type") or "").strip().lower()
        if ctype and not ctype.startswith("text/plain"):
            raise HTTPError(406, "a bulk delete body is text/plain: one name a line")
        if r.request.content_length is None and "chunked" not in (r.headers.get("Transfer-Encoding") or "").lower():
            raise HTTPError(411, "Content-Length or chunked transfer encoding required")
        names = parse_bulk_delete(await read_body(r.request, max_body_size()))
        acct = r.account or ""
        result = BulkDeleteResult()
        for item in [n for n in names if n.error is not None]:
            result.errors.append((item.name, item.error or ""))
        # objects before containers, so a container emptied by the same request can go
        objects = [n for n in names if n.error is None and n.obj is not None]
        containers = [n for n in names if n.error is None and n.obj is None]
        aborted = False
        for item in [*objects, *containers]:
            if len(result.errors) >= MAX_FAILED_DELETES:
                aborted = True
                break
            status = await self._delete_one(r, acct, item)
            if status is None:
                result.deleted += 1
            elif status.startswith("404"):
                result.not_found += 1
            else:
                result.errors.append((item.name, status))
        fmt = negotiate_format(r.headers.get("Accept"))
        body = format_bulk_delete(result, fmt, root="delete", aborted=aborted)
        return web.Response(status=200, body=body, content_type=_TYPES[fmt], charset="utf-8")

    async def _delete_one(self, r: Req, acct: str, item: BulkName) -> str | None:
        """None when deleted, else the status line this name gets."""
        cont, obj = item.container or "", item.obj
        by = r.user or acct
        try:
            if obj is None:
                Permissions.require_owner(r)
                await self.service.store.delete_container(acct, cont)
            else:
                await self.perms.require_write(r, acct, cont, obj)
                await self.service.store.delete(acct, cont, obj, modified_by=by)
        except HTTPError as exc:
            return "403 Forbidden" if exc.status == 403 else f"{exc.status} {exc.reason}"
        except (merr.ObjectNotFound, merr.ContainerNotFound, merr.AccountNotFound):
            return "404 Not Found"
        except merr.ContainerNotEmpty:
            return "409 Conflict"
        return None
