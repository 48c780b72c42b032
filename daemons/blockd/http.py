"""Small HTTP helpers of blockd: errors, header groups, the request body as a byte source."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from net.http_errors import PayloadTooLarge

from storage_engine.objects.store import ShortBody


class HTTPError(Exception):
    """An answer decided by a handler: status, short text, extra headers."""

    def __init__(
        self, status: int, reason: str, headers: Mapping[str, str] | None = None, *, exact: bool = False
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})
        self.exact = exact  # the body is the reason as it is, no newline added (Swift's texts)


def text_response(
    status: int, text: str, headers: Mapping[str, str] | None = None, *, newline: bool = True
) -> web.Response:
    body = (text.rstrip("\n") + ("\n" if newline else "")).encode("utf-8", "replace") if text else b""
    resp = web.Response(status=status, body=body, headers=dict(headers or {}))
    if body:
        resp.content_type = "text/plain"
        resp.charset = "utf-8"
    return resp


def prefixed(headers: Mapping[str, str], prefix: str) -> dict[str, str]:
    """{suffix: value} of the headers starting with prefix (case-insensitive); a
    header that is the prefix alone names nothing: 400, as Swift answers it."""
    n = len(prefix)
    out: dict[str, str] = {}
    for k, v in headers.items():
        if k.lower().startswith(prefix):
            if len(k) == n:
                raise HTTPError(400, f"{k}: a metadata header needs a name after the prefix")
            out[k[n:].lower()] = v.strip()
    return out


def int_header(headers: Mapping[str, str], name: str, *, minimum: int = 0) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise HTTPError(400, f"{name} must be a non-negative integer")
    value = int(raw)
    if value < minimum:
        raise HTTPError(400, f"{name} must be at least {minimum}")
    return value


BODY_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,
    ConnectionError,
    asyncio.IncompleteReadError,
    aiohttp.http_exceptions.HttpProcessingError,
    aiohttp.EofStream,
)


class RequestBody:
    """A request body as the object store's typed byte source (ByteSource).

    A broken body raises ShortBody (the client went away), one that goes past
    ``limit`` bytes PayloadTooLarge (413: a chunked body has no Content-Length
    to refuse up front). ``readany()`` answers whatever the body has buffered
    (a whole network chunk, no copy), which is what ObjectStore.write_stream reads."""

    def __init__(self, request: web.Request, limit: int | None = None) -> None:
        self._content = request.content
        self._limit = limit
        self._seen = 0

    def _counted(self, data: bytes) -> bytes:
        self._seen += len(data)
        if self._limit is not None and self._seen > self._limit:
            raise PayloadTooLarge(f"body over {self._limit} bytes")
        return data

    async def read(self, n: int) -> bytes:
        try:
            return self._counted(await self._content.read(n))
        except BODY_ERRORS as exc:
            raise ShortBody(f"request body broken: {exc.__class__.__name__}") from None

    async def readany(self) -> bytes:
        try:
            while True:
                # one buffered network chunk as it is (readany() would join them: a copy)
                data, end_of_http_chunk = await self._content.readchunk()
                if data or not end_of_http_chunk:
                    return self._counted(data)
        except BODY_ERRORS as exc:
            raise ShortBody(f"request body broken: {exc.__class__.__name__}") from None


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole (small) body, refusing more than ``limit`` bytes (413)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body over {limit} bytes")
    body = RequestBody(request)
    data = bytearray()
    while True:
        chunk = await body.read(1 << 16)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise PayloadTooLarge(f"body over {limit} bytes")
    if request.content_length is not None and len(data) != request.content_length:
        raise ShortBody("body shorter than Content-Length")
    return bytes(data)
