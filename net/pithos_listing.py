"""Listings (account, container and top-level), as Swift and Pithos clients read them:
plain text, JSON and XML bodies, and the listing query parameters.

Formatting is pure: the server fetches records from the metadata store and hands them
here. JSON is compact and ASCII-only (every non-ASCII character escaped), so no name
can break the encoding; XML replaces the few characters XML 1.0 cannot carry at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from net.http_errors import InvalidListingQuery, ListingLimitTooLarge

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_DELIMITER",
    "MAX_LIMIT",
    "AccountRecord",
    "ContainerRecord",
    "Format",
    "ListingQuery",
    "ObjectRecord",
    "SubdirRecord",
    "content_type_for",
    "format_account_listing",
    "format_container_listing",
    "format_iso8601",
    "format_object_listing",
    "format_version_timestamp",
    "negotiate_format",
    "parse_listing_query",
]

DEFAULT_LIMIT = 10000
MAX_LIMIT = 10000
#: a delimiter may be any string up to an object name's length
MAX_DELIMITER = 1024
Format = Literal["plain", "json", "xml"]


def _utc(ts: datetime | float) -> datetime:
    if isinstance(ts, datetime):
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return datetime.fromtimestamp(ts, UTC)


def format_iso8601(ts: datetime | float) -> str:
    """Swift's listing time: UTC, microseconds, no zone (`2026-11-24T06:50:30.123456`).
    A naive datetime is taken as UTC, a number as seconds since the epoch."""
    return _utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%f")


def format_version_timestamp(ts: datetime | float) -> str:
    """Pithos's version timestamp: seconds since the epoch with six decimals, as a string."""
    if isinstance(ts, datetime):
        d = _utc(ts)
        whole = int(d.replace(microsecond=0).timestamp())
        return f"{whole}.{d.microsecond:06d}"
    return f"{ts:.6f}"


@dataclass(frozen=True, slots=True)
class ObjectRecord:
    """One object of a container listing. `hash` is the ETag; None fields are left out;
    `meta` (X-Object-Meta-*) is listed as `x_object_meta_<key>`, lowercased, `-` as `_`."""

    name: str
    size: int
    hash: str
    content_type: str
    last_modified: datetime | float
    x_object_hash: str | None = None
    uuid: str | None = None
    version: int | None = None
    version_timestamp: datetime | float | None = None
    modified_by: str | None = None
    sharing: str | None = None
    allowed_to: str | None = None
    public: str | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    #: a static large object's ETag, quoted (Swift lists it beside the manifest's hash)
    slo_etag: str | None = None

    def fields(self) -> list[tuple[str, Any]]:
        """(key, value) pairs in output order, as JSON keys and XML element names."""
        out: list[tuple[str, Any]] = [
            ("name", self.name),
            ("bytes", self.size),
            ("hash", self.hash),
            ("content_type", self.content_type),
            ("last_modified", format_iso8601(self.last_modified)),
        ]
        optional: list[tuple[str, Any]] = [
            ("slo_etag", self.slo_etag),
            ("x_object_hash", self.x_object_hash),
            ("x_object_uuid", self.uuid),
            ("x_object_version", self.version),
            (
                "x_object_version_timestamp",
                None if self.version_timestamp is None else format_version_timestamp(self.version_timestamp),
            ),
            ("x_object_modified_by", self.modified_by),
            ("x_object_sharing", self.sharing),
            ("x_object_allowed_to", self.allowed_to),
            ("x_object_public", self.public),
        ]
        out += [(k, v) for k, v in optional if v is not None]
        out += [("x_object_meta_" + k.lower().replace("-", "_"), self.meta[k]) for k in sorted(self.meta)]
        return out


@dataclass(frozen=True, slots=True)
class SubdirRecord:
    """A common prefix up to the delimiter (`a/`), listed when a delimiter is given."""

    name: str


@dataclass(frozen=True, slots=True)
class ContainerRecord:
    """One container of an account listing."""

    name: str
    count: int
    size: int
    last_modified: datetime | float
    #: the container's storage policy as Swift names it (blockd: the block hash scheme)
    storage_policy: str | None = None

    def fields(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = [
            ("name", self.name),
            ("count", self.count),
            ("bytes", self.size),
            ("last_modified", format_iso8601(self.last_modified)),
        ]
        if self.storage_policy is not None:
            out.append(("storage_policy", self.storage_policy))
        return out


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """One account of the top-level listing (accounts sharing with the user)."""

    name: str
    last_modified: datetime | float | None = None

    def fields(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = [("name", self.name)]
        if self.last_modified is not None:
            out.append(("last_modified", format_iso8601(self.last_modified)))
        return out


def content_type_for(fmt: Format) -> str:
    """The Content-Type of a listing body."""
    return {
        "plain": "text/plain; charset=utf-8",
        "json": "application/json; charset=utf-8",
        "xml": "application/xml; charset=utf-8",
    }[fmt]


# --- bodies ----------------------------------------------------------------------------

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(v: Any) -> str:
    s = _XML_BAD.sub("\ufffd", str(v))
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _xml_attr(v: str) -> str:
    return _xml_text(v).replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;")


_NOT_NAME_CHAR = re.compile(r"[^A-Za-z0-9._-]", re.ASCII)


#: the elements Swift's XML listing of objects has, in its order; other fields follow
_SWIFT_OBJECT_FIELDS = ("name", "hash", "bytes", "content_type", "last_modified")


def _xml_fields(tag: str, pairs: Iterable[tuple[str, Any]], first: Sequence[str] = ()) -> str:
    # Metadata keys are header tokens; the few token characters XML names cannot hold become "_".
    items = list(pairs)
    if first:
        rank = {k: i for i, k in enumerate(first)}
        items.sort(key=lambda kv: rank.get(kv[0], len(rank)))  # stable: the rest keep their order
    names = ((_NOT_NAME_CHAR.sub("_", k), v) for k, v in items)
    inner = "".join(f"<{k}>{_xml_text(v)}</{k}>" for k, v in names)
    return f"<{tag}>{inner}</{tag}>"


_XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _plain(names: Iterable[str]) -> bytes:
    # surrogatepass: a name the server stored can always be sent back, never crash here
    return "".join(n + "\n" for n in names).encode("utf-8", "surrogatepass")


def _json(docs: list[dict[str, Any]]) -> bytes:
    return json.dumps(docs, separators=(",", ":")).encode("ascii")


def format_object_listing(records: Sequence[ObjectRecord | SubdirRecord], fmt: Format, *, container: str) -> bytes:
    """A container's listing. Plain text is one name per line (subdirs end with the
    delimiter already); an empty plain listing is b"" (the server answers 204).
    XML is laid out as Swift's (no whitespace between elements: its functional tests
    walk the child nodes), Swift's five object fields first."""
    if fmt == "plain":
        return _plain(r.name for r in records)
    if fmt == "json":
        return _json([{"subdir": r.name} if isinstance(r, SubdirRecord) else dict(r.fields()) for r in records])
    body = [_XML_HEAD, f'<container name="{_xml_attr(container)}">']
    for r in records:
        if isinstance(r, SubdirRecord):
            body.append(f'<subdir name="{_xml_attr(r.name)}"><name>{_xml_text(r.name)}</name></subdir>')
        else:
            body.append(_xml_fields("object", r.fields(), _SWIFT_OBJECT_FIELDS))
    body.append("</container>")
    return "".join(body).encode("utf-8")


def format_container_listing(
    records: Sequence[ContainerRecord | SubdirRecord], fmt: Format, *, account: str
) -> bytes:
    """An account's listing of its containers (and, with a delimiter, subdirs). XML as
    Swift lays it out: one element a line, a subdir an empty element with its name."""
    if fmt == "plain":
        return _plain(r.name for r in records)
    if fmt == "json":
        return _json([{"subdir": r.name} if isinstance(r, SubdirRecord) else dict(r.fields()) for r in records])
    body = [_XML_HEAD, f'<account name="{_xml_attr(account)}">\n']
    for r in records:
        if isinstance(r, SubdirRecord):
            body.append(f'<subdir name="{_xml_attr(r.name)}" />\n')
        else:
            body.append(_xml_fields("container", r.fields()) + "\n")
    body.append("</account>")
    return "".join(body).encode("utf-8")


def format_account_listing(records: Sequence[AccountRecord], fmt: Format) -> bytes:
    """The top-level listing of accounts (Pithos: those sharing objects with the user)."""
    if fmt == "plain":
        return _plain(r.name for r in records)
    if fmt == "json":
        return _json([dict(r.fields()) for r in records])
    body = [_XML_HEAD, "<accounts>\n"]
    body += [_xml_fields("account", r.fields()) + "\n" for r in records]
    body.append("</accounts>")
    return "".join(body).encode("utf-8")


# --- query parameters ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListingQuery:
    """Validated listing parameters; `path` has already been folded into prefix/delimiter,
    and is kept too: a `path=` listing has no subdir entries."""

    limit: int = DEFAULT_LIMIT
    marker: str | None = None
    end_marker: str | None = None
    prefix: str = ""
    delimiter: str | None = None
    format: Format = "plain"
    path: str | None = None
    #: Swift's `reverse=`: names in descending order, marker an upper bound, end_marker a lower one
    reverse: bool = False


#: what Swift's config_true_value takes for yes (reverse=on, reverse=t ...)
_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})
_FORMATS: dict[str, Format] = {"plain": "plain", "text": "plain", "json": "json", "xml": "xml"}
_ACCEPT: dict[str, Format] = {
    "application/json": "json",
    "application/xml": "xml",
    "text/xml": "xml",
    "text/plain": "plain",
    "*/*": "plain",
    "text/*": "plain",
}


def _is_q_zero(param: str) -> bool:
    name, _, value = param.partition("=")
    if name.strip(" \t").lower() != "q":
        return False
    v = value.strip(" \t")
    return bool(v) and v.isascii() and v.replace(".", "", 1).isdigit() and float(v) == 0


def negotiate_format(accept: str | None) -> Format:
    """The listing format an Accept header asks for: the first supported media range
    not given q=0, plain text when none is (what Swift and Pithos do)."""
    for item in (accept or "").split(","):
        media, *params = item.split(";")
        fmt = _ACCEPT.get(media.strip(" \t").lower())
        if fmt is not None and not any(_is_q_zero(p) for p in params):
            return fmt
    return "plain"


def _text_param(params: Mapping[str, str], key: str, *, nul_ok: bool = False) -> str | None:
    v = params.get(key)
    if v is None or v == "":
        return None
    if "\x00" in v and not nul_ok:
        raise InvalidListingQuery(f"{key} contains NUL")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidListingQuery(f"{key} is not valid UTF-8") from None
    return v


def parse_listing_query(
    params: Mapping[str, str], *, accept: str | None = None, max_limit: int = MAX_LIMIT, swift: bool = False
) -> ListingQuery:
    """Validate `limit`, `marker`, `end_marker`, `prefix`, `delimiter`, `path`, `reverse` and `format`
    (empty values count as absent). `path=p` means prefix `p/` and delimiter `/` (as in
    Swift, it overrides both). Without `format`, the Accept header decides.
    With ``swift``, a `limit` that is not all digits is ignored, as Swift's servers
    ignore it (its functional tests send `limit=5000.0`).
    Raises InvalidListingQuery (400) or ListingLimitTooLarge (412)."""
    limit = min(DEFAULT_LIMIT, max_limit)
    raw_limit = params.get("limit")
    if raw_limit and swift and not (raw_limit.isascii() and raw_limit.isdigit()):
        raw_limit = None
    if raw_limit:
        if not raw_limit.isascii() or not raw_limit.isdigit():
            raise InvalidListingQuery("limit must be a non-negative integer")
        digits = raw_limit.lstrip("0") or "0"
        if len(digits) > len(str(max_limit)) or int(digits) > max_limit:
            raise ListingLimitTooLarge(f"Maximum limit is {max_limit}")
        limit = int(digits)
    delimiter = _text_param(params, "delimiter")  # one character or several (Swift >= 2.26)
    if delimiter is not None and len(delimiter.encode("utf-8")) > MAX_DELIMITER:
        raise InvalidListingQuery(f"delimiter longer than {MAX_DELIMITER} bytes")
    prefix = _text_param(params, "prefix") or ""
    path = _text_param(params, "path")
    if "path" in params:
        prefix = path.rstrip("/") + "/" if path else ""
        delimiter = "/"
        path = path or ""
    raw_format = params.get("format")
    if raw_format:
        fmt = _FORMATS.get(raw_format.lower())
        if fmt is None:
            raise InvalidListingQuery("format must be json, xml or plain")
    else:
        fmt = negotiate_format(accept)
    return ListingQuery(
        limit=limit,
        marker=_text_param(params, "marker", nul_ok=True),  # a bound only: names hold no NUL
        end_marker=_text_param(params, "end_marker", nul_ok=True),
        prefix=prefix,
        delimiter=delimiter,
        format=fmt,
        path=path,
        reverse=(params.get("reverse") or "").strip().lower() in _TRUE,
    )
