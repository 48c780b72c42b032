"""One log line per HTTP request, and one line for each request aiohttp refuses.

The line says who asked what, the answer and what it cost:

    127.0.0.1 "PUT /v1/demo/photos/a.jpg" 201 in=4096 out=0 2.31ms tx=5f0c9e2ab1d34c07

``in`` is the request body as the daemon read it, ``out`` the bytes sent
(status line and headers included, as aiohttp counts them). A 4xx adds the
one-line reason the handler gave (``note_reason``), so an
operator sees why a client was refused without turning on debug logging; a
5xx is logged at WARNING (its traceback is logged once, by the daemon's error
handling). Credentials that can ride in a query string (temp URL signatures,
tokens) are masked.

aiohttp itself answers requests it cannot parse (bad request line, header
overflow, broken chunked encoding) and logs each as an ERROR with a
traceback; those are a client's fault, not the daemon's, so
:func:`quiet_protocol_errors` turns them into one WARNING line.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, quote

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from .schema import setting

__all__ = [
    "AccessLog",
    "BYTES_IN",
    "REASON",
    "TRANSACTION_ID",
    "access_log_setting",
    "note_reason",
    "quiet_protocol_errors",
    "runner_options",
]

#: Request keys a daemon may set for its access line.
REASON = "nefeli.reason"
TRANSACTION_ID = "nefeli.transaction_id"
BYTES_IN = "nefeli.bytes_in"

#: Query parameters whose values are credentials.
SECRET_PARAMS = frozenset({"temp_url_sig", "signature", "sig", "token", "x-auth-token", "password"})
MAX_PATH = 300


def note_reason(request: web.BaseRequest, reason: str) -> None:
    """Record why ``request`` was refused; the access line shows it for a 4xx."""
    request[REASON] = reason.splitlines()[0][:200] if reason else reason


def _target(request: web.BaseRequest) -> str:
    path = request.raw_path
    base, _, query = path.partition("?")
    if len(base) > MAX_PATH:
        base = base[:MAX_PATH] + "..."
    if not query:
        return base
    shown = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.lower() in SECRET_PARAMS:
            value = "***"
        shown.append(f"{quote(key, safe='')}={quote(value, safe='')}" if value else quote(key, safe=""))
    text = "&".join(shown)
    if len(text) > MAX_PATH:
        text = text[:MAX_PATH] + "..."
    return f"{base}?{text}"


class AccessLog(AbstractAccessLogger):
    """aiohttp access logger writing the line above through ``logging``."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        status = response.status
        tx = request.get(TRANSACTION_ID) or response.headers.get("X-Trans-Id") or "-"
        received = request.get(BYTES_IN)
        if received is None:
            received = request.content_length or 0
        line = (
            f'{request.remote or "-"} "{request.method} {_target(request)}" {status} '
            f"in={received} out={response.body_length} {time * 1000:.2f}ms tx={tx}"
        )
        reason = request.get(REASON)
        if reason and 400 <= status < 500:
            line += f" reason={reason!r}"
        self.logger.log(logging.WARNING if status >= 500 else logging.INFO, line)


def runner_options(prog: str, enabled: bool) -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner``: our access line, or none at all."""
    if not enabled:
        return {"access_log": None}
    return {"access_log_class": AccessLog, "access_log": logging.getLogger(f"{prog}.access")}


def access_log_setting() -> Any:
    """The ``access_log`` setting every HTTP daemon declares (``--no-access-log`` turns it off)."""
    return setting(
        True,
        help="log one line per request (method, path, status, bytes, duration, transaction id)",
        reloadable=False,
    )


class _ProtocolErrorFilter(logging.Filter):
    """Rewrites aiohttp's 'Error handling request' for unparseable requests into one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = record.exc_info
        if info and isinstance(info[1], HttpProcessingError):
            exc = info[1]
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "-"
            record.msg = "refused a malformed request from %s: %s %s"
            record.args = (remote, exc.code, (exc.message or type(exc).__name__).splitlines()[0][:200])
            record.exc_info = None
            record.exc_text = None
            record.levelno = logging.WARNING
            record.levelname = "WARNING"
        return True


_FILTER = _ProtocolErrorFilter()


def quiet_protocol_errors() -> None:
    """Install the filter on aiohttp's server logger (idempotent; App does it for every daemon)."""
    logger = logging.getLogger("aiohttp.server")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
