"""Swift's bulk middleware formats, sans I/O: the bulk-delete request body and the
result document that bulk delete and extract-archive answer with.

A bulk delete body is a newline-separated list of percent-encoded
``/container/object`` or ``/container`` paths.  The answer is always
``200 OK``; the real outcome is in the body, in the format the ``Accept``
header picks among text/plain (the default), application/json,
application/xml and text/xml (docs/blockd.md, "Bulk operations").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes
from xml.sax.saxutils import escape

__all__ = [
    "ACCEPTABLE_FORMATS",
    "ARCHIVE_TYPES",
    "BulkResult",
    "InvalidBulkList",
    "format_result",
    "parse_delete_list",
    "pick_format",
]

ACCEPTABLE_FORMATS: tuple[str, ...] = ("text/plain", "application/json", "application/xml", "text/xml")
#: ?extract-archive= value -> the tarfile compression it names ("" = none)
ARCHIVE_TYPES: dict[str, str] = {"tar": "", "tar.gz": "gz", "tar.bz2": "bz2"}


class InvalidBulkList(ValueError):
    """A bulk-delete body that cannot be read (a line too long or not UTF-8, too many lines)."""


@dataclass
class BulkResult:
    """What a bulk operation did: counters by their Swift names, failed paths with their status."""

    status: str = "200 OK"
    body: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"Response Status": self.status, "Response Body": self.body, **self.counts}


def parse_delete_list(body: bytes, *, max_items: int, max_line: int) -> list[str]:
    """The decoded paths of a bulk-delete body, blank lines dropped, in order."""
    out: list[str] = []
    for raw in body.split(b"\n"):
        line = raw.strip()
        if not line:
            continue
        if len(line) > max_line:
            raise InvalidBulkList("Invalid File Name")
        try:
            name = unquote_to_bytes(line).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidBulkList("a path is not valid UTF-8") from None
        out.append(name)
        if len(out) > max_items:
            raise InvalidBulkList(f"Maximum Bulk Deletes: {max_items} per request")
    return out


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            k, _, v = p.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = min(max(float(v), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        if media:
            ranges.append((media.lower(), q))
    return ranges


def _quality(fmt: str, ranges: list[tuple[str, float]]) -> float:
    """q of the most specific range matching fmt (exact, then type/*, then */*)."""
    main = fmt.partition("/")[0]
    for wanted in (fmt, main + "/*", "*/*"):
        qs = [q for media, q in ranges if media == wanted]
        if qs:
            return max(qs)
    return 0.0


def pick_format(accept: str | None) -> str | None:
    """The answer's type for an Accept header (the acceptable format of highest
    quality, the earlier listed on a tie); None when it accepts none (406)."""
    if accept is None or not accept.strip():
        return "text/plain"
    ranges = _media_ranges(accept)
    best, best_q = None, 0.0
    for fmt in ACCEPTABLE_FORMATS:
        q = _quality(fmt, ranges)
        if q > best_q:
            best, best_q = fmt, q
    return best


def format_result(fmt: str, result: BulkResult, root_tag: str) -> bytes:
    """The result document in one of ACCEPTABLE_FORMATS (root_tag: ``delete`` or ``extract``)."""
    d = result.as_dict()
    if fmt == "application/json":
        return json.dumps({**d, "Errors": [list(e) for e in result.errors]}).encode("ascii")
    if fmt.endswith("/xml"):
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n', f"<{root_tag}>\n"]
        for key in sorted(d):
            tag = key.replace(" ", "_").lower()
            out.append(f"<{tag}>{escape(str(d[key]))}</{tag}>\n")
        out.append("<errors>\n")
        for name, status in result.errors:
            out.append(f"<object><name>{escape(name)}</name><status>{escape(status)}</status></object>\n")
        out.append(f"</errors>\n</{root_tag}>\n")
        return "".join(out).encode("utf-8")
    lines = [f"{key}: {d[key]}\n" for key in sorted(d)]
    lines.append("Errors:\n")
    lines.extend(f"{name}, {status}\n" for name, status in result.errors)
    return "".join(lines).encode("utf-8")
