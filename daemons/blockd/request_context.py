"""What every handler shares: the parsed request (Req), path decoding, and the server's parts.

HandlerBase names the attributes Server gives each handler mixin (store, meta,
config, metrics); the handler modules (auth, accounts, containers, objects, ...)
are mixins of it, assembled into one Server in server.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from aiohttp import web

from storage_engine.objects.md5_backfill import Md5Backfill
from storage_engine.objects.store import ObjectStore

from .config import BlockdConfig
from .http import HTTPError
from .metrics import BlockdMetrics

# request header -> object attribute kept with the version
ATTR_HEADERS = {
    "x-object-manifest": "manifest",
    "content-encoding": "content-encoding",
    "content-disposition": "content-disposition",
}


@dataclass
class Req:
    request: web.Request
    api: str  # "pithos" | "swift"
    account: str | None
    container: str | None
    obj: str | None
    user: str | None
    base: str

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def headers(self) -> Any:
        return self.request.headers

    @property
    def query(self) -> Any:
        return self.request.query

    @property
    def owner(self) -> bool:
        return self.user is not None and self.user == self.account


def decode_path(raw: str) -> str:
    path = raw.split("?", 1)[0]
    try:
        return unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPError(400, "the path is not valid UTF-8") from None


def truthy(v: str | None) -> bool:
    return (v or "").strip().lower() in ("true", "1", "yes", "on")


class HandlerBase:
    """The parts of Server the handler mixins use (set in Server.__init__)."""

    store: ObjectStore
    config: BlockdConfig
    meta: Any
    metrics: BlockdMetrics
    started: float
    md5_backfill: Md5Backfill | None

    def _base(self, request: web.Request) -> str:
        """The scheme://host this server is reached at (for URLs in answers)."""
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        host = request.headers.get("Host") or f"{request.url.host}:{request.url.port}"
        return f"{request.scheme}://{host}"
