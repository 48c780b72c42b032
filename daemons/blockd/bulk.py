"""Swift bulk delete: ``POST`` (or ``DELETE``) ``?bulk-delete`` with a list of paths.

Each path is deleted as its own DELETE through the container and object
handlers (so permissions, versioning and SLO rules are theirs), objects first,
then containers (which must be empty by then), as Swift's bulk middleware
does.  The answer is always 200: the outcome is the body (net.swift_bulk), and
while a long list is worked through, whitespace is sent every few seconds so
a client or proxy does not time the request out.
"""

from __future__ import annotations

import time
from http import HTTPStatus

from aiohttp import web

from net.object_names import MAX_CONTAINER_NAME, MAX_OBJECT_NAME, validate_container, validate_object
from net.http_errors import ProtocolError
from net.swift_bulk import BulkResult, InvalidBulkList, format_result, parse_delete_list, pick_format

from .containers import ContainerHandler
from .errors import ErrorMiddleware
from .http import HTTPError, read_body
from .objects import ObjectHandler
from .request_context import Req

__all__ = ["MAX_DELETES_PER_REQUEST", "MAX_FAILED_DELETES", "BulkDeleteHandler", "info"]

MAX_DELETES_PER_REQUEST = 10000
MAX_FAILED_DELETES = 1000
#: a percent-encoded path may be three bytes a character
MAX_LINE = 3 * (MAX_CONTAINER_NAME + MAX_OBJECT_NAME + 2)
#: seconds between the whitespace sent while a long delete runs
HEARTBEAT = 10.0


def info() -> dict[str, int]:
    """The ``bulk_delete`` section of /info."""
    return {"max_deletes_per_request": MAX_DELETES_PER_REQUEST, "max_failed_deletes": MAX_FAILED_DELETES}


def status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


class Heartbeat:
    """Whitespace before the result, at most every HEARTBEAT seconds, so a long bulk
    request keeps its connection alive (the 200 and headers go out with the first)."""

    def __init__(self, resp: web.StreamResponse, request: web.Request) -> None:
        self.resp = resp
        self.request = request
        self.last = time.monotonic()

    async def maybe(self) -> None:
        if time.monotonic() - self.last < HEARTBEAT:
            return
        if not self.resp.prepared:
            await self.resp.prepare(self.request)
        await self.resp.write(b" ")
        self.last = time.monotonic()


class BulkDeleteHandler:
    def __init__(self, containers: ContainerHandler, objects: ObjectHandler) -> None:
        self.containers = containers
        self.objects = objects

    async def handle(self, r: Req) -> web.StreamResponse:
        fmt = pick_format(r.headers.get("Accept"))
        resp = web.StreamResponse(status=200)
        resp.content_type = fmt or "text/plain"
        result = BulkResult(counts={"Number Deleted": 0, "Number Not Found": 0})
        heartbeat = Heartbeat(resp, r.request)
        try:
            if fmt is None:
                raise HTTPError(406, "Not Acceptable")
            ctype = r.headers.get("Content-Type")
            if ctype and not ctype.startswith("text/plain"):
                raise HTTPError(406, "the list must be text/plain")
            if r.request.content_length is None and "chunked" not in r.headers.get("Transfer-Encoding", "").lower():
                raise HTTPError(411, "Length Required")
            body = await read_body(r.request, MAX_DELETES_PER_REQUEST * (MAX_LINE + 2))
            try:
                paths = parse_delete_list(body, max_items=MAX_DELETES_PER_REQUEST, max_line=MAX_LINE)
            except InvalidBulkList as exc:
                raise HTTPError(413 if "Maximum" in str(exc) else 400, str(exc)) from None
            failed_status = 400
            objects_first = [p for p in paths if "/" in p.strip("/")] + [p for p in paths if "/" not in p.strip("/")]
            for path in objects_first:
                code = await self._delete_one(r, path)
                if 200 <= code < 300:
                    result.counts["Number Deleted"] += 1
                elif code == 404:
                    result.counts["Number Not Found"] += 1
                else:
                    if code >= 500:
                        failed_status = 502
                    result.errors.append((path, status_line(code)))
                    if len(result.errors) >= MAX_FAILED_DELETES:
                        raise HTTPError(400, "Max delete failures exceeded")
                await heartbeat.maybe()
            if result.errors:
                result.status = status_line(failed_status)
            elif not (result.counts["Number Deleted"] or result.counts["Number Not Found"]):
                result.status, result.body = status_line(400), "Invalid bulk delete."
        except (HTTPError, ProtocolError) as exc:
            result.status = status_line(exc.status)
            result.body = exc.reason
        body = format_result(fmt or "text/plain", result, "delete")
        if not resp.prepared:
            resp.content_length = len(body)
            await resp.prepare(r.request)
        await resp.write(body)
        await resp.write_eof()
        return resp

    async def _delete_one(self, r: Req, path: str) -> int:
        """The status a DELETE of ``/container[/object]`` in the request's account answers."""
        cont, _, name = path.lstrip("/").partition("/")
        try:
            validate_container(cont)
            if name:
                validate_object(name)
        except ProtocolError as exc:
            return exc.status
        except ValueError:
            return 400
        sub = r.request.clone(method="DELETE", rel_url=r.request.rel_url.with_query({}))
        req = Req(sub, r.api, r.account, cont, name or None, r.user, r.base)
        try:
            resp = await (self.objects.handle(req) if name else self.containers.handle(req))
        except Exception as exc:  # noqa: BLE001 - each failure is one line of the result
            return ErrorMiddleware.answer(sub, exc).status
        return resp.status
