"""Every failure becomes an HTTP answer here, and every answer is counted in the metrics.

The engine's errors carry no status: they are kinds (storage_engine.errors),
and ENGINE_STATUS below is the one place that says which status each kind is
answered with. Handlers' own answers (HTTPError) and the codecs' refusals
(net.http_errors) carry theirs. Anything else is logged with the request id
and becomes a 500.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from daemons.runtime.access_log import BYTES_IN, TRANSACTION_ID, note_reason
from net.http_errors import ProtocolError, RangeNotSatisfiable
from storage_engine import errors as kinds

from .http import HTTPError, text_response
from .metrics import BlockdMetrics

log = logging.getLogger("nefeli-blockd")

#: engine error kind -> the status it is answered with; the first kind an error is wins.
#: An engine error of none of these kinds (a corrupt block, a schema problem) is a 500.
ENGINE_STATUS: tuple[tuple[type[kinds.EngineError], int], ...] = (
    (kinds.InvalidArgument, 400),
    (kinds.PermissionDenied, 403),
    (kinds.NotFound, 404),
    (kinds.Conflict, 409),
    (kinds.PreconditionFailed, 412),
    (kinds.QuotaExceeded, 413),
    (kinds.TooLarge, 413),
    (kinds.ChecksumMismatch, 422),
    (kinds.ClientGone, 499),  # nginx's "client closed request": nobody reads it
    (kinds.Busy, 503),
    (kinds.StorageFull, 507),
)
#: what the answer says for a kind whose message is not for clients
_FIXED_TEXT = {507: "insufficient storage"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def engine_status(exc: BaseException) -> int | None:
    """The status ENGINE_STATUS gives this error, None if it is none of the kinds."""
    for kind, status in ENGINE_STATUS:
        if isinstance(exc, kind):
            return status
    return None


class ErrorMiddleware:
    def __init__(self, metrics: BlockdMetrics) -> None:
        self.metrics = metrics

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
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
            resp = self.error_response(request, exc)
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

    @classmethod
    def error_response(cls, request: web.Request, exc: Exception) -> web.Response:
        """The answer to a failed request; a refusal's one-line reason goes to the access log."""
        resp = cls.answer(request, exc)
        if resp.status < 500:
            note_reason(request, resp.text or "")
        if request.method == "HEAD":
            # a HEAD answer has no body; Content-Length: 0 as Swift sends (the reason is logged)
            headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-length"}
            resp = web.Response(status=resp.status, headers={**headers, "Content-Length": "0"})
        return resp

    @staticmethod
    def answer(request: web.Request, exc: Exception) -> web.Response:
        if isinstance(exc, HTTPError):
            return text_response(exc.status, exc.reason, exc.headers, newline=not exc.exact)
        if isinstance(exc, RangeNotSatisfiable):
            headers = {"Content-Range": exc.content_range} if exc.content_range else {}
            return text_response(416, exc.reason, headers)
        if isinstance(exc, ProtocolError):
            return text_response(exc.status, exc.reason)
        status = engine_status(exc)
        if status is not None:
            return text_response(status, _FIXED_TEXT.get(status) or str(exc) or exc.__class__.__name__)
        log.error(
            "request %s %s %s failed",
            request.get(TRANSACTION_ID),
            request.method,
            request.raw_path[:200],
            exc_info=exc,
        )
        return text_response(500, f"internal error (request id {request.get(TRANSACTION_ID)})")
