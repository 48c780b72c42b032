"""Swift static large objects (SLO): the manifest a client PUTs with
`?multipart-manifest=put`, the manifest the server keeps (what
`?multipart-manifest=get` returns), the SLO ETag, and the bulk-delete style
answer of `DELETE ?multipart-manifest=delete`.

Only what can be checked without the store is checked here: JSON shape, names,
sizes, ETag syntax and Swift's limits. Whether segments exist and match is the
server's part.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from net.http_errors import InvalidManifest, InvalidName, ManifestTooLarge
from net.object_names import validate_container, validate_object

__all__ = [
    "MAX_MANIFEST_DEPTH",
    "MAX_MANIFEST_SEGMENTS",
    "MAX_MANIFEST_SIZE",
    "BulkDeleteResult",
    "ManifestEntry",
    "SegmentRef",
    "format_bulk_delete",
    "format_manifest",
    "format_raw_manifest",
    "normalize_etag",
    "parse_put_manifest",
    "parse_stored_manifest",
    "slo_etag",
]

# Swift's defaults (max_manifest_segments, max_manifest_size, and the depth at
# which its GET stops following sub-manifests).
MAX_MANIFEST_SEGMENTS = 1000
MAX_MANIFEST_SIZE = 8 * 1024 * 1024
MAX_MANIFEST_DEPTH = 10
_MAX_ETAG = 256
_MAX_SIZE = 2**63 - 1
_PUT_KEYS = frozenset({"path", "etag", "size_bytes"})
_UNSUPPORTED_KEYS = {
    "range": "segment ranges are not supported",
    "data": "inline data segments are not supported",
}


def normalize_etag(etag: str) -> str:
    """An ETag as compared: without surrounding quotes, lowercase (Swift accepts both forms)."""
    e = etag.strip()
    if len(e) >= 2 and e[0] == e[-1] == '"':
        e = e[1:-1]
    return e.lower()


def slo_etag(hashes: Iterable[str]) -> str:
    """Swift's SLO ETag (unquoted): MD5 hex of the segments' ETags concatenated."""
    h = hashlib.md5()
    for x in hashes:
        h.update(x.encode("ascii", "replace"))
    return h.hexdigest()


def _split_path(path: Any, where: str) -> tuple[str, str]:
    if not isinstance(path, str):
        raise InvalidManifest(f"{where}: path must be a string")
    cont, sep, name = path.lstrip("/").partition("/")
    if not sep or not cont or not name:
        raise InvalidManifest(f"{where}: path must be of the form /container/object")
    try:
        return validate_container(cont), validate_object(name)
    except InvalidName as exc:
        raise InvalidManifest(f"{where}: {exc.reason}") from None


def _etag(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_ETAG:
        raise InvalidManifest(f"{where}: etag must be a string or null")
    e = normalize_etag(value)
    if not e or not e.isascii() or not e.isprintable():
        raise InvalidManifest(f"{where}: etag must be a non-empty printable ASCII string")
    return e


def _size(value: Any, where: str, key: str) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_SIZE:
        raise InvalidManifest(f"{where}: {key} must be a non-negative integer")
    return value


def _load(body: bytes | str) -> Any:
    if len(body) > MAX_MANIFEST_SIZE:
        raise ManifestTooLarge(f"manifest over {MAX_MANIFEST_SIZE} bytes")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidManifest("manifest must be valid JSON") from None


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """One segment as the client names it; etag/size_bytes None = not to be checked."""

    container: str
    name: str
    etag: str | None = None
    size_bytes: int | None = None

    @property
    def path(self) -> str:
        return f"/{self.container}/{self.name}"


def parse_put_manifest(body: bytes | str) -> list[SegmentRef]:
    """The body of `PUT ?multipart-manifest=put`: a JSON list of
    `{"path": "/cont/obj", "etag": ..., "size_bytes": ...}`, 1..MAX_MANIFEST_SEGMENTS long.

    InvalidManifest (400) names the first bad entry; ManifestTooLarge (413) for a
    body over MAX_MANIFEST_SIZE."""
    doc = _load(body)
    if not isinstance(doc, list):
        raise InvalidManifest("manifest must be a JSON list of segments")
    if not doc:
        raise InvalidManifest("manifest must have at least one segment")
    if len(doc) > MAX_MANIFEST_SEGMENTS:
        raise InvalidManifest(f"too many segments: at most {MAX_MANIFEST_SEGMENTS}")
    out: list[SegmentRef] = []
    for i, seg in enumerate(doc):
        where = f"segment {i}"
        if not isinstance(seg, dict):
            raise InvalidManifest(f"{where}: not a JSON object")
        for key, reason in _UNSUPPORTED_KEYS.items():
            if key in seg:
                raise InvalidManifest(f"{where}: {reason}")
        extra = set(seg) - _PUT_KEYS
        if extra:
            raise InvalidManifest(f"{where}: unknown key {sorted(extra)[0]!r}")
        if "path" not in seg:
            raise InvalidManifest(f"{where}: path is required")
        cont, name = _split_path(seg["path"], where)
        size = seg.get("size_bytes")
        out.append(
            SegmentRef(
                cont, name, _etag(seg.get("etag"), where), None if size is None else _size(size, where, "size_bytes")
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One segment as the server keeps it (Swift's stored manifest): what it was when
    the manifest was PUT. `sub_slo` marks a segment that is itself an SLO."""

    container: str
    name: str
    hash: str
    bytes: int
    content_type: str = "application/octet-stream"
    last_modified: str = ""
    sub_slo: bool = False

    @property
    def path(self) -> str:
        return f"/{self.container}/{self.name}"


def format_manifest(entries: Sequence[ManifestEntry]) -> bytes:
    """The stored manifest: a JSON list of `name, hash, bytes, content_type,
    last_modified` (and `sub_slo: true` for nested SLOs), as Swift keeps it."""
    doc: list[dict[str, Any]] = []
    for e in entries:
        d: dict[str, Any] = {
            "name": e.path,
            "hash": e.hash,
            "bytes": e.bytes,
            "content_type": e.content_type,
            "last_modified": e.last_modified,
        }
        if e.sub_slo:
            d["sub_slo"] = True
        doc.append(d)
    return json.dumps(doc, separators=(", ", ": ")).encode()


def parse_stored_manifest(body: bytes | str) -> list[ManifestEntry]:
    """Read back what format_manifest wrote (InvalidManifest if it is not that)."""
    doc = _load(body)
    if not isinstance(doc, list):
        raise InvalidManifest("stored manifest is not a JSON list")
    out: list[ManifestEntry] = []
    for i, d in enumerate(doc):
        where = f"stored segment {i}"
        if not isinstance(d, dict):
            raise InvalidManifest(f"{where}: not a JSON object")
        cont, name = _split_path(d.get("name"), where)
        h, ctype, lm = d.get("hash"), d.get("content_type", ""), d.get("last_modified", "")
        if not isinstance(h, str) or not isinstance(ctype, str) or not isinstance(lm, str):
            raise InvalidManifest(f"{where}: hash, content_type and last_modified must be strings")
        out.append(
            ManifestEntry(cont, name, h, _size(d.get("bytes"), where, "bytes"), ctype, lm, d.get("sub_slo") is True)
        )
    return out


def format_raw_manifest(entries: Sequence[ManifestEntry]) -> bytes:
    """`?multipart-manifest=get&format=raw`: the stored manifest in the form a PUT takes."""
    return json.dumps(
        [{"path": e.path, "etag": e.hash, "size_bytes": e.bytes} for e in entries], separators=(", ", ": ")
    ).encode()


@dataclass(slots=True)
class BulkDeleteResult:
    """What `DELETE ?multipart-manifest=delete` did; `errors` are (path, status line)."""

    deleted: int = 0
    not_found: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "400 Bad Request" if self.errors else "200 OK"


def format_bulk_delete(result: BulkDeleteResult, fmt: Literal["json", "plain"]) -> bytes:
    """The answer body of Swift's bulk delete, which its SLO delete reuses."""
    if fmt == "json":
        return json.dumps(
            {
                "Number Deleted": result.deleted,
                "Number Not Found": result.not_found,
                "Response Body": "",
                "Response Status": result.status,
                "Errors": [[p, s] for p, s in result.errors],
            }
        ).encode()
    lines = [
        f"Number Deleted: {result.deleted}",
        f"Number Not Found: {result.not_found}",
        "Response Body: ",
        f"Response Status: {result.status}",
        "Errors:",
        *(f"{p}, {s}" for p, s in result.errors),
    ]
    return ("\n".join(lines) + "\n").encode()
