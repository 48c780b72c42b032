"""Swift's bulk delete request body (`POST|DELETE ...?bulk-delete`): one URL-encoded
`/container/object` or `/container` a line, as swiftclient and Swift's bulk
middleware send it. Sans-I/O: bytes in, the names to delete out; a line that names
nothing deletable is kept with the status Swift answers for it, so the answer can
list it among the errors (the body itself is refused only when it is too large).
The answer body is net.swift_slo.format_bulk_delete (SLO deletes share it).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from net.http_errors import InvalidName, PayloadTooLarge
from net.object_names import MAX_CONTAINER_NAME, MAX_OBJECT_NAME, validate_container, validate_object

__all__ = ["MAX_BULK_DELETES", "MAX_FAILED_DELETES", "BulkName", "max_body_size", "parse_bulk_delete"]

#: Swift's defaults (max_deletes_per_request, max_failed_deletes), listed in /info
MAX_BULK_DELETES = 10000
MAX_FAILED_DELETES = 1000
#: a line longer than this (percent-encoded, three bytes a byte) names nothing
_MAX_LINE = 3 * (MAX_CONTAINER_NAME + MAX_OBJECT_NAME + 2)


@dataclass(frozen=True, slots=True)
class BulkName:
    """One line: `name` as the answer quotes it back, the container and (None for a
    container delete) the object, or `error`, the status line that line gets."""

    name: str
    container: str | None = None
    obj: str | None = None
    error: str | None = None


def max_body_size(max_deletes: int = MAX_BULK_DELETES) -> int:
    """The largest body a bulk delete of ``max_deletes`` names can need."""
    return max_deletes * (_MAX_LINE + 1)


def _one(raw: bytes) -> BulkName:
    quoted = raw.decode("latin-1")  # the answer names a line as it came (it is percent-encoded)
    if len(raw) > _MAX_LINE:
        return BulkName(quoted[:200], error="400 Bad Request")
    try:
        path = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return BulkName(quoted, error="412 Precondition Failed")  # Swift: not UTF-8
    cont, _, obj = path.lstrip("/").partition("/")
    try:
        validate_container(cont)
        if obj:
            validate_object(obj)
    except InvalidName:
        return BulkName(quoted, error="400 Bad Request")
    return BulkName(quoted, cont, obj or None)


def parse_bulk_delete(body: bytes, *, max_deletes: int = MAX_BULK_DELETES) -> list[BulkName]:
    """The names of a bulk delete body, in order; blank lines are skipped. More than
    ``max_deletes`` names raise PayloadTooLarge (413, as Swift answers)."""
    out: list[BulkName] = []
    for line in body.split(b"\n"):
        raw = line.strip()
        if not raw:
            continue
        if len(out) == max_deletes:
            raise PayloadTooLarge(f"Maximum Bulk Deletes: {max_deletes} per request")
        out.append(_one(raw))
    return out
