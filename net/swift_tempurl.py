"""Swift temporary URLs (the tempurl middleware's query parameters and signatures), sans I/O.

A temporary URL is an object URL with ``temp_url_sig`` and ``temp_url_expires``
(and optionally ``temp_url_prefix``, ``temp_url_ip_range``, ``filename``,
``inline``) in its query.  The signature is an HMAC, keyed with one of the
account's or container's ``Temp-URL-Key`` / ``Temp-URL-Key-2`` metadata values,
over::

    [ip=<range>\\n]<METHOD>\\n<expires>\\n<path>

where path is ``/v1/<account>/<container>/<object>`` (percent-decoded, UTF-8),
or ``prefix:/v1/<account>/<container>/<prefix>`` for a prefix signature.  The
signature is given in hex (its length names the digest: 40 sha1, 64 sha256,
128 sha512) or as ``<digest>:<base64>`` (standard or URL-safe alphabet, padding
optional).  ``temp_url_expires`` is unix seconds or ISO 8601
``YYYY-MM-DDTHH:MM:SSZ``.  docs/blockd.md ("Temporary URLs") has the table.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

__all__ = [
    "DIGESTS",
    "EXPIRES_ISO8601",
    "KEY_NAMES",
    "METHODS",
    "Signature",
    "TempUrlQuery",
    "content_disposition",
    "parse_expires",
    "parse_query",
    "parse_signature",
    "sign",
    "signed_path",
    "string_to_sign",
    "verify",
]

#: the digests a signature may use, by hex length
DIGESTS: dict[str, int] = {"sha1": 40, "sha256": 64, "sha512": 128}
#: methods a temporary URL may be made for (Swift's default ``methods``)
METHODS: tuple[str, ...] = ("GET", "HEAD", "PUT", "POST", "DELETE")
#: the metadata keys (account or container) that hold signing keys
KEY_NAMES: tuple[str, ...] = ("temp-url-key", "temp-url-key-2")
EXPIRES_ISO8601 = "%Y-%m-%dT%H:%M:%SZ"
#: the last second an HTTP date can name (9999-12-31T23:59:59Z); later expiries are refused
MAX_EXPIRES = 253402300799
#: methods whose signature also admits a HEAD (Swift: a GET or PUT URL may be HEADed)
HEAD_ALSO_BY: tuple[str, ...] = ("HEAD", "GET", "POST", "PUT")

_HEX = re.compile(r"[0-9a-fA-F]+")
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


@dataclass(frozen=True)
class Signature:
    """A parsed ``temp_url_sig``: the digest it names and the raw MAC bytes."""

    digest: str
    mac: bytes


@dataclass(frozen=True)
class TempUrlQuery:
    """The tempurl parameters of a query (None: the parameter is absent)."""

    sig: str | None
    expires: str | None
    prefix: str | None = None
    ip_range: str | None = None
    filename: str | None = None
    inline: bool = False

    @property
    def present(self) -> bool:
        """Whether the request asks to be a temporary URL at all."""
        return self.sig is not None or self.expires is not None


def parse_query(query: Mapping[str, str]) -> TempUrlQuery:
    """The tempurl parameters of a parsed query string (first value of each)."""
    return TempUrlQuery(
        sig=query.get("temp_url_sig"),
        expires=query.get("temp_url_expires"),
        prefix=query.get("temp_url_prefix"),
        ip_range=query.get("temp_url_ip_range"),
        filename=query.get("filename"),
        inline="inline" in query,
    )


def parse_expires(raw: str) -> int | None:
    """Unix seconds of ``temp_url_expires`` (digits or ISO 8601 UTC); None if neither,
    or past year 9999 (no Expires header could say it)."""
    raw = raw.strip()
    if raw.isascii() and raw.isdigit():
        return int(raw) if len(raw) <= 12 and int(raw) <= MAX_EXPIRES else None
    if _ISO.fullmatch(raw):
        try:
            return calendar.timegm(time.strptime(raw, EXPIRES_ISO8601))
        except ValueError:
            return None
    return None


def parse_signature(raw: str) -> Signature:
    """``temp_url_sig`` as digest name and MAC; ValueError for anything else."""
    if ":" in raw:
        name, _, b64 = raw.partition(":")
        if name not in DIGESTS:
            raise ValueError(f"unknown digest {name[:16]!r}")
        if ("-" in b64 or "_" in b64) and not ("+" in b64 or "/" in b64):
            b64 = b64.replace("-", "+").replace("_", "/")
        b64 = b64.rstrip("=")
        b64 += "=" * (-len(b64) % 4)
        if not _B64.fullmatch(b64) or len(b64) % 4:
            raise ValueError("signature is not base64")
        try:
            mac = base64.b64decode(b64, validate=True)
        except binascii.Error:
            raise ValueError("signature is not base64") from None
        if len(mac) * 2 != DIGESTS[name]:
            raise ValueError(f"a {name} signature is {DIGESTS[name] // 2} bytes")
        return Signature(name, mac)
    if not _HEX.fullmatch(raw):
        raise ValueError("signature is neither hex nor <digest>:<base64>")
    for name, length in DIGESTS.items():
        if len(raw) == length:
            return Signature(name, bytes.fromhex(raw))
    raise ValueError("hex signature of no known digest's length")


def signed_path(account: str, container: str, obj: str, prefix: str | None = None) -> str:
    """The path a signature covers: the object's, or ``prefix:`` and the prefix's."""
    if prefix is None:
        return f"/v1/{account}/{container}/{obj}"
    return f"prefix:/v1/{account}/{container}/{prefix}"


def string_to_sign(method: str, expires: int, path: str, ip_range: str | None = None) -> bytes:
    """What the HMAC is computed over (Swift's ``get_hmac``)."""
    body = f"{method}\n{expires}\n{path}"
    if ip_range:
        body = f"ip={ip_range}\n{body}"
    return body.encode("utf-8")


def sign(key: str, method: str, expires: int, path: str, digest: str = "sha256", ip_range: str | None = None) -> bytes:
    """The MAC of a temporary URL (raw bytes; hex() it for the usual form)."""
    if digest not in DIGESTS:
        raise ValueError(f"unknown digest {digest!r}")
    return hmac.new(key.encode("utf-8"), string_to_sign(method, expires, path, ip_range), getattr(hashlib, digest)).digest()


def verify(
    sig: Signature,
    keys: Iterable[str],
    method: str,
    expires: int,
    path: str,
    ip_range: str | None = None,
) -> str | None:
    """The key that signed ``sig`` for this request, or None.

    A HEAD is admitted by a signature for HEAD, GET, POST or PUT (as Swift);
    every other method only by its own.  Comparisons are constant-time."""
    methods = HEAD_ALSO_BY if method == "HEAD" else (method,)
    for key in keys:
        for m in methods:
            if hmac.compare_digest(sign(key, m, expires, path, sig.digest, ip_range), sig.mac):
                return key
    return None


def content_disposition(kind: str, filename: str) -> str:
    """``attachment`` or ``inline`` with the filename in both RFC 6266 forms (as Swift)."""
    value = f"{kind}; filename=\"{quote(filename, safe=' /')}\"; filename*=UTF-8''{quote(filename)}"
    return value.replace("\n", "%0A")
