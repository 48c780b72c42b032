"""Async HTTP client for the nefeli object API (docs/blockd.md), on aiohttp."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from .config import Config
from .errors import CliError, Conflict, HttpError
from .file_attrs import DEFAULT_TYPE, MTIME_HEADER, parse_last_modified, parse_mtime

LISTING_PAGE = 10000
DIRECTORY_TYPE = "application/directory"
#: what the client asks for when it creates a container: BLAKE3 blocks (the fast
#: native hash); servers default to sha256, which every Pithos client can compute
CONTAINER_HASH = "blake3"
CONTAINER_BLOCK_SIZE = 4 << 20


def quote_path(*parts: str) -> str:
    return "/".join(quote(p, safe="") if i < len(parts) - 1 else quote(p, safe="/") for i, p in enumerate(parts))


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    block_size: int
    block_hash: str
    headers: dict[str, str]


@dataclass(frozen=True)
class RemoteMap:
    block_size: int
    block_hash: str
    size: int
    hashes: list[str]
    top_hash: str | None  # X-Object-Hash / ETag when the server sent one
    version: str | None
    mtime_ns: int | None = None  # X-Object-Meta-Mtime, else Last-Modified


class Client:
    """One session against one account.  Use as ``async with Client(cfg) as c``."""

    #: bytes a response body may buffer before aiohttp stops reading the socket
    #: (its default, 64 KiB, pauses and resumes reading many times a block)
    READ_BUFSIZE = 4 << 20

    def __init__(self, cfg: Config, *, connections: int = 16, timeout: float = 600) -> None:
        self.cfg = cfg
        self._connections = connections
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._connections, force_close=False),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=self._timeout),
            headers={"X-Auth-Token": self.cfg.token},
            auto_decompress=False,
            read_bufsize=self.READ_BUFSIZE,
        )
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use Client as an async context manager"
        return self._session

    # -- URLs ---------------------------------------------------------------

    def url(self, container: str | None = None, obj: str | None = None, query: str = "") -> URL:
        path = f"{self.cfg.api_prefix}/{quote(self.cfg.account, safe='')}"
        if container is not None:
            path += "/" + quote(container, safe="")
            if obj is not None:
                path += "/" + quote(obj, safe="/")
        return URL(self.cfg.url + path + (("?" + query) if query else ""), encoded=True)

    def public_url(self, path: str) -> str:
        if path.startswith("http://") or path.startswith("https://"):
            return path
        return self.cfg.url + ("" if path.startswith("/") else "/") + path

    # -- requests -----------------------------------------------------------

    async def request(
        self,
        method: str,
        url: URL,
        *,
        ok: Iterable[int] = (200, 201, 202, 204),
        headers: dict[str, str] | None = None,
        data: Any = None,
        read: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        async with self.session.request(method, url, headers=headers, data=data) as resp:
            body = await resp.read() if read or resp.status not in ok else b""
            if resp.status not in ok:
                raise HttpError(method, _display(url), resp.status, resp.reason or "", body_text(body))
            return resp.status, dict(resp.headers), body

    # -- account / containers -------------------------------------------------

    async def list_containers(self) -> list[dict[str, Any]]:
        return [x async for x in self._paged(self.url(), {})]

    async def head_container(self, container: str) -> ContainerInfo:
        _, headers, _ = await self.request("HEAD", self.url(container), ok=(200, 204))
        h = {k.lower(): v for k, v in headers.items()}
        try:
            bs = int(h.get("x-container-block-size", "4194304"))
        except ValueError:
            raise CliError(f"server sent a bad X-Container-Block-Size: {h.get('x-container-block-size')!r}") from None
        scheme = h.get("x-container-block-hash", "sha256").lower()
        return ContainerInfo(container, bs, scheme, h)

    async def ensure_container(self, container: str) -> ContainerInfo:
        try:
            return await self.head_container(container)
        except HttpError as exc:
            if exc.status != 404:
                raise
        await self.request(
            "PUT", self.url(container), ok=(201, 202, 204), headers={"X-Container-Policy-Block-Hash": CONTAINER_HASH}
        )
        return await self.head_container(container)

    async def list_objects(self, container: str, prefix: str = "", delimiter: str | None = None) -> list[dict[str, Any]]:
        params = {"prefix": prefix} if prefix else {}
        if delimiter:
            params["delimiter"] = delimiter
        return [x async for x in self._paged(self.url(container), params)]

    async def _paged(self, base: URL, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        marker: str | None = None
        while True:
            q = {"format": "json", "limit": str(LISTING_PAGE), **params}
            if marker is not None:
                q["marker"] = marker
            status, _, body = await self.request("GET", base.update_query(q), ok=(200, 204))
            items = json.loads(body) if status == 200 and body.strip() else []
            if not isinstance(items, list):
                raise CliError(f"server sent a listing that is not a JSON list: {body_text(body)[:100]}")
            for item in items:
                yield item
            if len(items) < LISTING_PAGE:
                return
            last = items[-1]
            marker = last.get("name") or last.get("subdir")

    # -- objects ------------------------------------------------------------

    async def get_hashmap(self, container: str, obj: str) -> RemoteMap:
        _, headers, body = await self.request("GET", self.url(container, obj, "hashmap&format=json"), ok=(200,))
        try:
            d = json.loads(body)
            m = RemoteMap(
                int(d["block_size"]), str(d["block_hash"]).lower(), int(d["bytes"]), [str(x).lower() for x in d["hashes"]],
                None, None,
            )
        except (ValueError, KeyError, TypeError):
            raise CliError(f"server sent a bad hashmap: {body_text(body)[:100]}") from None
        h = {k.lower(): v for k, v in headers.items()}
        top = h.get("x-object-hash")
        mtime = parse_mtime(h.get(MTIME_HEADER.lower()))
        if mtime is None:
            mtime = parse_last_modified(h.get("last-modified"))
        return RemoteMap(
            m.block_size, m.block_hash, m.size, m.hashes, top.lower() if top else None, h.get("x-object-version"), mtime
        )

    async def put_hashmap(
        self,
        container: str,
        obj: str,
        size: int,
        hashes: list[str],
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        content_type: str = DEFAULT_TYPE,
        meta: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """201 (headers) or 409 (missing digests); raises for anything else.

        The body is JSON (`format=json` says so), but Content-Type is the object's own,
        as Pithos clients send it: the server keeps it as the object's type."""
        headers = {"Content-Type": content_type}
        if if_match:
            headers["If-Match"] = if_match
        if if_none_match:
            headers["If-None-Match"] = "*"
        for k, v in (meta or {}).items():
            headers["X-Object-Meta-" + k] = v
        body = json.dumps({"bytes": size, "hashes": hashes}).encode()
        status, h, resp = await self.request(
            "PUT", self.url(container, obj, "hashmap&format=json"), ok=(201, 409), headers=headers, data=body
        )
        if status == 409:
            try:
                missing = json.loads(resp)
                if not isinstance(missing, list):
                    raise ValueError
            except ValueError:
                raise CliError(f"server sent a bad missing-blocks list: {body_text(resp)[:100]}") from None
            return 409, h, [str(x).lower() for x in missing]
        return 201, h, None

    async def post_blocks(self, container: str, data: Any, length: int) -> list[str]:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        _, _, body = await self.request("POST", self.url(container, None, "update"), ok=(202, 200, 201), headers=headers, data=data)
        try:
            got = json.loads(body)
            if not isinstance(got, list):
                raise ValueError
        except ValueError:
            raise CliError(f"server answered a block upload with {body_text(body)[:100]!r}") from None
        return [str(x).lower() for x in got]

    async def put_directory(self, container: str, obj: str) -> None:
        """Create a Pithos directory marker (0 bytes, application/directory) only where
        nothing exists yet (If-None-Match: *), so a concurrent writer is never overwritten.
        Raises Conflict when something is there already."""
        headers = {"Content-Type": DIRECTORY_TYPE, "Content-Length": "0", "If-None-Match": "*"}
        try:
            await self.request("PUT", self.url(container, obj), ok=(201,), headers=headers, data=b"")
        except HttpError as exc:
            if exc.status == 412:
                raise Conflict("exists on the server already") from None
            raise

    async def head_object(self, container: str, obj: str) -> dict[str, str]:
        _, headers, _ = await self.request("HEAD", self.url(container, obj), ok=(200, 204))
        return {k.lower(): v for k, v in headers.items()}

    async def delete_object(self, container: str, obj: str, ok: Iterable[int] = (200, 204)) -> int:
        status, _, _ = await self.request("DELETE", self.url(container, obj), ok=ok)
        return status

    async def post_object(self, container: str, obj: str, headers: dict[str, str]) -> dict[str, str]:
        _, h, _ = await self.request("POST", self.url(container, obj), ok=(200, 202, 204), headers=headers)
        return {k.lower(): v for k, v in h.items()}


def body_text(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("<"):  # an HTML error page: keep the words
        import re

        text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())


def _display(url: URL) -> str:
    return str(url.with_query(None)) + (f"?{url.raw_query_string}" if url.raw_query_string else "")


def split_target(target: str, need_object: bool = True) -> tuple[str, str]:
    """CONT/OBJ → (CONT, OBJ).  With need_object False the object part may be empty."""
    cont, _, obj = target.lstrip("/").partition("/")
    if not cont:
        raise CliError(f"bad target {target!r}: expected CONTAINER/OBJECT")
    if need_object and not obj:
        raise CliError(f"bad target {target!r}: expected CONTAINER/OBJECT")
    return cont, obj
