"""Swift extract-archive: ``PUT /v1/<acct>[/<cont>[/<prefix>]]?extract-archive=tar|tar.gz|tar.bz2``.

Every regular file of the archive becomes an object at ``<upload path>/<its
name>``; with no container in the path, each file's first directory is its
container (created when missing) and files at the top are skipped, as Swift's
bulk middleware does.  The archive is read as it arrives, never spooled:
tarfile reads synchronously, so it runs in a worker thread whose reads wait on
the request body in the event loop (BodyReader), and each member is stored as
a PUT stores a body, its bytes read by that same thread.  The
answer is always 200 with the outcome in the body (net.swift_bulk), keyed
``Number Files Created``.
"""

from __future__ import annotations

import asyncio
import mimetypes
import tarfile
from concurrent.futures import CancelledError as FutureCancelled
from typing import IO

from aiohttp import web

from net.http_errors import ProtocolError
from net.object_names import validate_container, validate_object
from net.pithos_hashmap import MAX_OBJECT_SIZE
from net.swift_bulk import ARCHIVE_TYPES, BulkResult, format_result, pick_format
from storage_engine.objects.metadata import errors as merr

from .bulk import status_line
from .containers import ContainerHandler
from .errors import ErrorMiddleware
from .http import HTTPError, RequestBody, prefixed
from .permissions import Permissions
from .request_context import Req
from .service import Service
from .versions import Versions

__all__ = ["MAX_CONTAINERS_PER_EXTRACTION", "MAX_FAILED_EXTRACTIONS", "ExtractArchiveHandler", "info"]

MAX_CONTAINERS_PER_EXTRACTION = 10000
MAX_FAILED_EXTRACTIONS = 1000
#: the largest archive accepted (one object's limit)
MAX_ARCHIVE = MAX_OBJECT_SIZE
#: pax keys whose values become metadata (GNU tar and BSD tar spellings of user.meta.*)
PAX_META_PREFIXES = ("SCHILY.xattr.user.meta.", "LIBARCHIVE.xattr.user.meta.")
PAX_MIME_KEYS = ("SCHILY.xattr.user.mime_type", "LIBARCHIVE.xattr.user.mime_type")


def info() -> dict[str, int]:
    """The ``bulk_upload`` section of /info."""
    return {
        "max_containers_per_extraction": MAX_CONTAINERS_PER_EXTRACTION,
        "max_failed_extractions": MAX_FAILED_EXTRACTIONS,
    }


class BodyReader:
    """The request body as the blocking file tarfile wants, for a worker thread:
    each read waits for the event loop to read the body."""

    def __init__(self, body: RequestBody, loop: asyncio.AbstractEventLoop) -> None:
        self._body = body
        self._loop = loop

    def read(self, n: int = -1) -> bytes:
        try:
            return asyncio.run_coroutine_threadsafe(self._body.read(n if n > 0 else 1 << 18), self._loop).result()
        except FutureCancelled:
            return b""


class MemberSource:
    """One archive member as the object store's byte source; reads run in a thread."""

    def __init__(self, fobj: IO[bytes]) -> None:
        self._f = fobj

    async def read(self, n: int) -> bytes:
        return await asyncio.to_thread(self._f.read, n)

    async def readany(self) -> bytes:
        return await self.read(1 << 18)


class ExtractArchiveHandler:
    def __init__(self, service: Service, perms: Permissions, versions: Versions, containers: ContainerHandler) -> None:
        self.service = service
        self.perms = perms
        self.versions = versions
        self.containers = containers

    async def handle(self, r: Req) -> web.StreamResponse:
        fmt = pick_format(r.headers.get("Accept"))
        result = BulkResult("201 Created", counts={"Number Files Created": 0})
        try:
            if fmt is None:
                raise HTTPError(406, "Not Acceptable")
            kind = (r.query.get("extract-archive") or "").strip().lower().strip(".")
            if kind not in ARCHIVE_TYPES:
                raise HTTPError(400, "Unsupported archive format")
            if r.request.content_length is None and "chunked" not in r.headers.get("Transfer-Encoding", "").lower():
                raise HTTPError(411, "Length Required")
            reader = BodyReader(RequestBody(r.request, MAX_ARCHIVE), asyncio.get_running_loop())
            await self._extract(r, reader, ARCHIVE_TYPES[kind], result)
        except (HTTPError, ProtocolError) as exc:
            result.status, result.body = status_line(exc.status), exc.reason
        body = format_result(fmt or "text/plain", result, "extract")
        return web.Response(status=200, body=body, content_type=fmt or "text/plain")

    async def _extract(self, r: Req, reader: BodyReader, compression: str, result: BulkResult) -> None:
        acct = r.account or ""
        base = "/".join(p for p in (r.container, r.obj) if p)
        try:
            tar = await asyncio.to_thread(tarfile.open, mode="r|" + compression, fileobj=reader)
        except (tarfile.TarError, EOFError, OSError, ValueError):
            raise HTTPError(400, "Invalid Tar File: not a tar archive of that kind") from None
        failed_status = 400
        created_containers: set[str] = set()
        known_containers: set[str] = set()
        with tar:
            while True:
                try:
                    member = await asyncio.to_thread(tar.next)
                except (tarfile.TarError, EOFError, OSError, ValueError, UnicodeError) as exc:
                    raise HTTPError(400, f"Invalid Tar File: {exc.__class__.__name__}") from None
                if member is None:
                    break
                if not member.isfile():
                    continue
                name = member.name[2:] if member.name.startswith("./") else member.name
                path = (base + "/" + name.lstrip("/")) if base else name.lstrip("/")
                if "/" not in path:
                    continue  # a top-level file with no container to go to
                cont, _, obj = path.partition("/")
                code = await self._store(r, acct, cont, obj, tar, member, known_containers, created_containers)
                if 200 <= code < 300:
                    result.counts["Number Files Created"] += 1
                else:
                    if code >= 500:
                        failed_status = 502
                    result.errors.append((path, status_line(code)))
                    if code == 401:
                        raise HTTPError(401, "Unauthorized")
                    if len(result.errors) >= MAX_FAILED_EXTRACTIONS:
                        raise HTTPError(400, "Max delete failures exceeded")
        if result.errors:
            result.status = status_line(failed_status)
        elif not result.counts["Number Files Created"]:
            result.status, result.body = status_line(400), "Invalid Tar File: No Valid Files"

    async def _store(
        self, r: Req, acct: str, cont: str, obj: str, tar: tarfile.TarFile, member: tarfile.TarInfo,
        known: set[str], created: set[str],
    ) -> int:
        """The status a PUT of this member would answer."""
        try:
            validate_container(cont)
            validate_object(obj)
        except ProtocolError as exc:
            return exc.status
        if member.size > MAX_OBJECT_SIZE:
            return 413
        try:
            if cont not in known:
                if r.container is None:
                    if len(created) >= MAX_CONTAINERS_PER_EXTRACTION:
                        raise HTTPError(400, f"More than {MAX_CONTAINERS_PER_EXTRACTION} containers to create")
                    if await self._ensure_container(r, cont):
                        created.add(cont)
                known.add(cont)
            await self.perms.require_write(r.at(acct, cont, obj), acct, cont, obj)
            c = await self.service.meta.containers.get(acct, cont)
            ctype, meta = self._type_and_meta(r, obj, member)
            fobj = await asyncio.to_thread(tar.extractfile, member)
            if fobj is None:
                return 400
            result = await self.service.store.put_stream(
                acct, c, obj, MemberSource(fobj), length=member.size, modified_by=r.user or acct,
                content_type=ctype, meta=meta,
            )
            self.versions.want_md5(result.version)
            return 201
        except HTTPError as exc:
            if exc.status == 400 and exc.reason.startswith("More than"):
                raise
            return exc.status
        except (merr.ContainerNotFound, merr.AccountNotFound):
            return 404
        except Exception as exc:  # noqa: BLE001 - one failed file is one line of the result
            return ErrorMiddleware.answer(r.request, exc).status

    async def _ensure_container(self, r: Req, cont: str) -> bool:
        """Create a container the archive names (True when it was created)."""
        try:
            await self.service.meta.containers.get(r.account or "", cont)
            return False
        except merr.ContainerNotFound:
            pass
        headers = {k: v for k, v in r.headers.items() if k.lower() in ("x-auth-token", "x-storage-token")}
        sub = r.request.clone(method="PUT", rel_url=r.request.rel_url.with_query({}), headers=headers)
        resp = await self.containers.handle(Req(sub, r.api, r.account, cont, None, r.user, r.base))
        if resp.status not in (201, 202):
            raise HTTPError(resp.status, "Create Container Failed")
        return True

    @staticmethod
    def _type_and_meta(r: Req, obj: str, member: tarfile.TarInfo) -> tuple[str, dict[str, str]]:
        """The request's Content-Type (or the name's guess) and X-Object-Meta-*, then
        the member's pax xattrs user.mime_type and user.meta.*, as Swift applies them."""
        ct = r.headers.get("Content-Type")
        if not ct or ct.strip().lower() in ("application/x-tar", "application/gzip", "application/x-bzip2") or (
            (r.headers.get("X-Detect-Content-Type") or "").lower() == "true"
        ):
            ct = mimetypes.guess_type(obj)[0] or "application/octet-stream"
        meta = prefixed(r.headers, "x-object-meta-")
        for key, value in (member.pax_headers or {}).items():
            if key in PAX_MIME_KEYS:
                ct = value
            for p in PAX_META_PREFIXES:
                if key.startswith(p) and len(key) > len(p):
                    meta[key[len(p):].lower()] = value
        return ct.strip(), meta
