"""The parsed request (Req) and what handlers read from a request's headers and query.

Pure functions of the request: no store access, so every handler can use them
without depending on another handler.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from aiohttp import web

from net.object_names import validate_container, validate_object

from .http import HTTPError

# request header -> object attribute kept with the version
ATTR_HEADERS = {
    "x-object-manifest": "manifest",
    "content-encoding": "content-encoding",
    "content-disposition": "content-disposition",
}


@dataclass(frozen=True)
class Req:
    """One API request: which API path, whose account, what object, by which user."""

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

    @property
    def names(self) -> tuple[str, str, str]:
        """(account, container, object) of an object request."""
        return self.account or "", self.container or "", self.obj or ""

    def at(self, account: str, container: str, name: str) -> Req:
        """The same request and user, about another object (a copy's destination, a segment)."""
        return replace(self, account=account, container=container, obj=name)


def decode_path(raw: str) -> str:
    path = raw.split("?", 1)[0]
    try:
        return unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPError(400, "the path is not valid UTF-8") from None


def metadata_post_status(api: str) -> int:
    """An account or container POST: 204 on the Swift path (as Swift answers), 202 on Pithos'."""
    return 204 if api == "swift" else 202


def truthy(v: str | None) -> bool:
    return (v or "").strip().lower() in ("true", "1", "yes", "on")


def content_type_of(r: Req, default: str | None = "application/octet-stream") -> str | None:
    ct = r.headers.get("Content-Type")
    return ct.strip() if ct and ct.strip() else default


def put_content_type(r: Req) -> str:
    """The Content-Type an object PUT stores. On the Swift path a PUT without one (or
    with X-Detect-Content-Type: true) gets the type its name suggests, as Swift's proxy
    guesses it (mimetypes on the object path); otherwise application/octet-stream."""
    ct = content_type_of(r, None)
    if r.api == "swift" and (ct is None or truthy(r.headers.get("X-Detect-Content-Type"))):
        guessed, _encoding = mimetypes.guess_type(r.obj or "")
        return guessed or "application/octet-stream"
    return ct or "application/octet-stream"


def attrs_from(r: Req) -> dict[str, str]:
    """The object attributes the request's headers set (ATTR_HEADERS)."""
    out = {}
    for header, attr in ATTR_HEADERS.items():
        val = r.headers.get(header)
        if val:
            out[attr] = val
    return out


def _positive(raw: str, what: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18 or int(raw) <= 0:
        raise HTTPError(400, what)
    return int(raw)


def serial_of(r: Req) -> int | None:
    """``?version=N`` (None for absent, empty or ``list``)."""
    raw = r.query.get("version")
    if raw is None or raw == "" or raw == "list":
        return None
    return _positive(raw, "version must be a positive integer or 'list'")


def source_version_of(r: Req) -> int | None:
    """``X-Source-Version`` of a copy, move or update from another object."""
    raw = r.headers.get("X-Source-Version")
    if raw is None or raw == "":
        return None
    return _positive(raw, "X-Source-Version must be a positive integer")


def split_ref(ref: str, *, status: int = 400) -> tuple[str, str]:
    """``/container/object`` of X-Copy-From, Destination, X-Source-Object; a
    malformed one is answered with ``status`` (Swift: 412 for a copy's)."""
    path = unquote(ref)
    path = path[1:] if path.startswith("/") else path
    cont, _, name = path.partition("/")
    if not cont or not name:
        raise HTTPError(status, "expected /container/object")
    return validate_container(cont), validate_object(name)


def is_conditional(r: Req) -> bool:
    return r.headers.get("If-Match") is not None or r.headers.get("If-None-Match") is not None
