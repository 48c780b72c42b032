"""The middleware that turns every failure into an HTTP answer and records metrics.

Known errors (HTTPError, range and protocol errors, metadata 4xx, a full store)
map to their status; anything else is logged with the request id and becomes a 500.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from aiohttp import web

from daemons.runtime.access_log import BYTES_IN, TRANSACTION_ID, note_reason
from net.http_errors import ProtocolError, RangeNotSatisfiable
from storage_engine.blocks.errors import StoreError, StoreFull
from storage_engine.objects.metadata import errors as merr

from .http import HTTPError, text_response
from .request_context import HandlerBase

log = logging.getLogger("nefeli-blockd")


class ErrorMiddleware(HandlerBase):
    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        rid = request.headers.get("X-Trans-Id", "")[:64] or secrets.token_hex(8)
        request[TRANSACTION_ID] = rid
        t0 = time.monotonic()
        resp: web.StreamResponse
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            resp = exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - everything becomes an answer
            resp = self._error_response(request, exc)
            stream = request.get("stream")
            if stream is not None and stream.prepared:
                # Headers are out: the only honest signal left is cutting the connection.
                self._observe(request, 500, t0, stream)
                raise
        if not resp.prepared:
            resp.headers["X-Trans-Id"] = rid
        self._observe(request, resp.status, t0, resp)
        return resp

    def _observe(self, request: web.Request, status: int, t0: float, resp: web.StreamResponse | None) -> None:
        out = 0
        if resp is not None:
            try:
                out = resp.body_length or (len(resp.body) if isinstance(resp, web.Response) and resp.body else 0)
            except Exception:  # noqa: BLE001
                out = 0
        self.metrics.observe(request.method[:16], status, time.monotonic() - t0, request.get(BYTES_IN, 0), out)

    def _error_response(self, request: web.Request, exc: Exception) -> web.Response:
        resp = self._answer(request, exc)
        if resp.status < 500:
            note_reason(request, resp.text or "")
        return resp

    def _answer(self, request: web.Request, exc: Exception) -> web.Response:
        if isinstance(exc, HTTPError):
            return text_response(exc.status, exc.reason, exc.headers)
        if isinstance(exc, RangeNotSatisfiable):
            headers = {"Content-Range": exc.content_range} if exc.content_range else {}
            return text_response(416, exc.reason, headers)
        if isinstance(exc, ProtocolError):
            return text_response(exc.status, exc.reason)
        if isinstance(exc, merr.MetadataError) and exc.status < 500 or isinstance(exc, merr.Busy):
            return text_response(exc.status, str(exc) or exc.__class__.__name__)
        if isinstance(exc, StoreFull):
            return text_response(507, "insufficient storage")
        status = getattr(exc, "status", None)
        if isinstance(status, int) and 400 <= status < 500 and not isinstance(exc, (StoreError, OSError)):
            return text_response(status, str(exc) or exc.__class__.__name__)
        log.error(
            "request %s %s %s failed",
            request.get(TRANSACTION_ID),
            request.method,
            request.raw_path[:200],
            exc_info=exc,
        )
        return text_response(500, f"internal error (request id {request.get(TRANSACTION_ID)})")
