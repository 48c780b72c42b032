"""Swift temporary URLs: an object request signed with a Temp-URL-Key instead of a token.

dispatch hands a Swift-path request whose query carries ``temp_url_sig`` or
``temp_url_expires`` here.  A valid signature (net.swift_tempurl) makes it a
request by the account itself, limited as Swift's tempurl middleware limits
it: to the one object (or prefix) and method signed, to the container whose
key signed it when that was a container key (a large object reading segments
from elsewhere is refused), with the query reduced to the tempurl parameters
(so ``multipart-manifest`` and friends cannot be slipped in), without the
headers that would let a PUT or POST point at other data, and with the
object's private metadata taken out of the answer.  Every refusal is Swift's
``401 Temp URL invalid``.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from posixpath import basename
from urllib.parse import unquote, urlencode

from aiohttp import web

from daemons.runtime.access_log import BYTES_IN
from multidict import CIMultiDict

from net.object_names import ObjectPath
from net.http_errors import InvalidManifest
from net.swift_slo import ManifestEntry, parse_stored_manifest
from net.swift_tempurl import (
    KEY_NAMES,
    METHODS,
    content_disposition,
    parse_expires,
    parse_query,
    parse_signature,
    signed_path,
    verify,
)
from net.http_conditional import format_http_date
from storage_engine.objects.large_objects import DLO_MANIFEST_ATTR, is_static_large_object
from storage_engine.objects.metadata import errors as merr

from .http import HTTPError
from .objects import ObjectHandler
from .request_context import Req
from .service import Service

__all__ = ["ALLOWED_DIGESTS", "TEMPURL", "TempUrlHandler", "info", "on_response_prepare"]

#: digests accepted (and listed in /info); Swift 2.38 still accepts sha1 when configured
ALLOWED_DIGESTS: tuple[str, ...] = ("sha1", "sha256", "sha512")
#: request headers a PUT/POST/DELETE temporary URL may not carry: Swift's three (they
#: point at other data), and nefeli's own that read other objects (Pithos move, update
#: from a source, cross-account copy) or outlive the URL (sharing, a public URL)
DISALLOWED_HEADERS: tuple[str, ...] = (
    "x-object-manifest", "x-symlink-target", "x-copy-from",
    "x-move-from", "x-source-object", "x-source-account", "x-copy-from-account",
    "x-object-sharing", "x-object-public",
)
INCOMING_REMOVE: tuple[str, ...] = ("x-timestamp", "x-open-expired")
OUTGOING_REMOVE_PREFIX = "x-object-meta-"
OUTGOING_ALLOW_PREFIX = "x-object-meta-public-"
#: the request-state key under which a granted temporary URL is kept for on_response_prepare
TEMPURL = "nefeli.tempurl"
#: the largest stored SLO manifest read to check a container-scoped URL's segments
MAX_SCOPE_MANIFEST = 1 << 22


@dataclass(frozen=True)
class Grant:
    """A temporary URL that was accepted: what its answer needs."""

    expires: int
    obj: str
    filename: str | None
    inline: bool


def info() -> dict[str, object]:
    """The ``tempurl`` section of /info, in Swift's layout."""
    return {
        "methods": list(METHODS),
        "allowed_digests": list(ALLOWED_DIGESTS),
        "incoming_remove_headers": list(INCOMING_REMOVE),
        "incoming_allow_headers": [],
        "outgoing_remove_headers": [OUTGOING_REMOVE_PREFIX + "*"],
        "outgoing_allow_headers": [OUTGOING_ALLOW_PREFIX + "*"],
    }


def invalid(reason: str) -> HTTPError:
    """Swift's answer to every bad temporary URL; the reason goes to the log only."""
    del reason  # one answer for all, so a prober learns nothing; see the access log's 401
    return HTTPError(401, "401 Unauthorized: Temp URL invalid", {"WWW-Authenticate": 'Swift realm="nefeli"'})


class TempUrlHandler:
    def __init__(self, service: Service, objects: ObjectHandler) -> None:
        self.service = service
        self.objects = objects

    async def handle(self, request: web.Request, op: ObjectPath) -> web.StreamResponse:
        q = parse_query(request.query)
        method = request.method
        if method not in METHODS:
            raise invalid("method")
        if not q.sig or not q.expires:
            raise invalid("temp_url_sig and temp_url_expires are both needed")
        expires = parse_expires(q.expires)
        if expires is None or expires < time.time():
            raise invalid("expired or unreadable temp_url_expires")
        try:
            sig = parse_signature(q.sig)
        except ValueError as exc:
            raise invalid(str(exc)) from None
        if sig.digest not in ALLOWED_DIGESTS:
            raise invalid("digest not allowed")
        if op.api != "swift" or not op.account or not op.container or not op.object:
            raise invalid("not an object on the Swift path")
        acct, cont, obj = op.account, op.container, op.object
        if q.ip_range is not None and not self._from(request, q.ip_range):
            raise invalid("client outside temp_url_ip_range")
        account_keys, container_keys = await self._keys(acct, cont)
        if q.prefix is not None and not obj.startswith(q.prefix):
            raise invalid("object outside the signed prefix")
        path = signed_path(acct, cont, obj, q.prefix)
        key = verify(sig, [*account_keys, *container_keys], method, expires, path, q.ip_range)
        if key is None:
            raise invalid("signature does not match")
        if method in ("PUT", "POST", "DELETE"):
            for h in DISALLOWED_HEADERS:
                if h in request.headers:
                    raise HTTPError(400, f"The header {h.title()!r} is not allowed in this tempurl")
        if key not in account_keys and method in ("GET", "HEAD"):
            await self._check_container_scope(acct, cont, obj)
        request[TEMPURL] = Grant(expires, obj, q.filename, q.inline)
        inner = self._narrowed(request, q.sig, q.expires, q.prefix, q.filename, q.inline)
        r = Req(inner, "swift", acct, cont, obj, acct, self.service.base_url(request))
        try:
            return await self.objects.handle(r)
        finally:
            for key in ("stream", BYTES_IN):  # what ErrorMiddleware and the access log read
                if inner.get(key) is not None:
                    request[key] = inner[key]

    # ------------------------------------------------------------------ parts

    @staticmethod
    def _from(request: web.Request, ip_range: str) -> bool:
        try:
            return ipaddress.ip_address(request.remote or "") in ipaddress.ip_network(ip_range)
        except ValueError:
            return False

    async def _keys(self, acct: str, cont: str) -> tuple[list[str], list[str]]:
        """The account's and the container's signing keys (either may have none)."""
        meta = self.service.meta
        try:
            a = (await meta.accounts.get(acct)).meta
        except merr.AccountNotFound:
            raise invalid("no such account") from None
        try:
            c = (await meta.containers.get(acct, cont)).meta
        except merr.ContainerNotFound:
            c = {}
        account_keys = [a[k] for k in KEY_NAMES if a.get(k)]
        container_keys = [c[k] for k in KEY_NAMES if c.get(k)]
        if not account_keys and not container_keys:
            raise invalid("no Temp-URL-Key set")
        return account_keys, container_keys

    async def _check_container_scope(self, acct: str, cont: str, obj: str) -> None:
        """A container key reaches only its container: a large object whose segments
        live elsewhere is refused, as Swift refuses the segment reads."""
        try:
            v = await self.service.meta.objects.get(acct, cont, obj)
        except (merr.ObjectNotFound, merr.ContainerNotFound):
            return  # the object handler answers 404
        manifest = v.attrs.get(DLO_MANIFEST_ATTR)
        if manifest:
            if unquote(manifest).lstrip("/").partition("/")[0] != cont:
                raise invalid("DLO segments outside the key's container")
            return
        if is_static_large_object(v) and v.size <= MAX_SCOPE_MANIFEST:
            data = bytearray()
            async for piece in self.service.store.read(v):
                data += piece
            try:
                entries = parse_stored_manifest(bytes(data))
            except InvalidManifest:
                return  # the object handler reports the broken manifest
            if any(isinstance(e, ManifestEntry) and e.container != cont for e in entries):
                raise invalid("SLO segments outside the key's container")

    @staticmethod
    def _narrowed(
        request: web.Request, sig: str, expires: str, prefix: str | None, filename: str | None, inline: bool
    ) -> web.Request:
        """The request as the object handler sees it: only the tempurl query, and
        without the headers Swift's tempurl removes."""
        qs = {"temp_url_sig": sig, "temp_url_expires": expires}
        if prefix is not None:
            qs["temp_url_prefix"] = prefix
        if filename:
            qs["filename"] = filename
        if inline:
            qs["inline"] = ""
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in INCOMING_REMOVE)
        rel = request.rel_url.with_query(urlencode(qs))
        return request.clone(rel_url=rel, headers=headers)


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Outgoing side of a granted temporary URL: private metadata out; on a
    successful GET/HEAD, Content-Disposition (inline / filename / stored / the
    object's name, in Swift's order) and Expires."""
    grant: Grant | None = request.get(TEMPURL)
    if grant is None:
        return
    h = response.headers
    for k in list(h.keys()):
        lk = k.lower()
        if lk.startswith(OUTGOING_REMOVE_PREFIX) and not lk.startswith(OUTGOING_ALLOW_PREFIX):
            del h[k]
    if request.method not in ("GET", "HEAD") or not 200 <= response.status < 300:
        return
    existing = h.pop("Content-Disposition", None)
    if grant.inline:
        value = content_disposition("inline", grant.filename) if grant.filename else "inline"
    elif grant.filename:
        value = content_disposition("attachment", grant.filename)
    elif existing:
        value = existing.replace("\n", "%0A")
    else:
        value = content_disposition("attachment", basename(grant.obj.rstrip("/")))
    h["Content-Disposition"] = value
    h["Expires"] = format_http_date(grant.expires)
