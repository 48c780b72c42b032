"""Swift static large objects (SLO): the manifest a client PUTs with
`?multipart-manifest=put`, the manifest the server keeps (what
`?multipart-manifest=get` returns), the SLO ETag, and the bulk-delete style
answer of `DELETE ?multipart-manifest=delete`.

A segment is either an object (`path`, optionally only a byte `range` of it) or
inline `data` (base64 in the manifest), as in Swift's SLO middleware.

Only what can be checked without the store is checked here: JSON shape, names,
sizes, ranges, ETag syntax, base64 and Swift's limits. Whether segments exist and
match (and whether a range fits a segment whose size was not given) is the
server's part.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from net.http_errors import InvalidManifest, InvalidName, InvalidPartNumber, ManifestTooLarge, RangeNotSatisfiable
from net.http_range import ByteRange, RangeSpec, Span, SuffixRange, resolve_ranges
from net.object_names import validate_container, validate_object

__all__ = [
    "MAX_MANIFEST_DEPTH",
    "MAX_MANIFEST_SEGMENTS",
    "MAX_MANIFEST_SIZE",
    "MAX_STORED_MANIFEST_SIZE",
    "PART_NUMBER_INVALID",
    "PART_NUMBER_UNSATISFIABLE",
    "BulkDeleteResult",
    "DataSegment",
    "ManifestEntry",
    "PutSegment",
    "SegmentRef",
    "StoredSegment",
    "format_bulk_delete",
    "format_manifest",
    "format_raw_manifest",
    "format_segment_range",
    "manifest_etag",
    "manifest_size",
    "normalize_etag",
    "part_span",
    "parse_part_number",
    "parse_put_manifest",
    "parse_segment_range",
    "parse_stored_manifest",
    "resolve_segment_range",
    "slo_etag",
]

# Swift's defaults (max_manifest_segments, which counts object segments only,
# max_manifest_size, and the depth at which its GET stops following sub-manifests).
MAX_MANIFEST_SEGMENTS = 1000
MAX_MANIFEST_SIZE = 8 * 1024 * 1024
MAX_MANIFEST_DEPTH = 10
# The stored manifest says more per object segment than the PUT body (hash, bytes,
# content type, date, a normalized range, escaped names) and `{"data": ...}` entries
# take a little more room than the tightest JSON a client can send, so it may be
# larger than MAX_MANIFEST_SIZE; this bounds what the server writes and reads back.
MAX_STORED_MANIFEST_SIZE = 3 * MAX_MANIFEST_SIZE
_MAX_ETAG = 256
_MAX_SIZE = 2**63 - 1
_MAX_DIGITS = 19
_PATH_KEYS = frozenset({"path", "etag", "size_bytes", "range"})
_DIGITS = frozenset(string.digits)
_B64_CHARS = frozenset(string.ascii_letters + string.digits + "+/")


def normalize_etag(etag: str) -> str:
    """An ETag as compared: without surrounding quotes, lowercase (Swift accepts both forms)."""
    e = etag.strip()
    if len(e) >= 2 and e[0] == e[-1] == '"':
        e = e[1:-1]
    return e.lower()


def slo_etag(hashes: Iterable[str]) -> str:
    """Swift's SLO ETag (unquoted): MD5 hex of the segments' ETag parts concatenated
    (see ManifestEntry.etag_part and DataSegment.etag_part)."""
    h = hashlib.md5()
    for x in hashes:
        h.update(x.encode("ascii", "replace"))
    return h.hexdigest()


# --- segment ranges -----------------------------------------------------------------


def _range_number(text: str) -> int:
    """ASCII digits (checked by the caller); past _MAX_DIGITS it is just 'larger than
    any object', which keeps int() of a huge string out of the way."""
    stripped = text.lstrip("0")
    return _MAX_SIZE + 1 if len(stripped) > _MAX_DIGITS else int(stripped or "0")


def _range_spec(item: str) -> RangeSpec:
    first, dash, last = item.partition("-")
    if not dash or not (first or last) or not _DIGITS.issuperset(first) or not _DIGITS.issuperset(last):
        raise InvalidManifest("invalid range")
    if not first:
        return SuffixRange(_range_number(last))
    start = _range_number(first)
    if not last:
        return ByteRange(start)
    end = _range_number(last)
    if end < start:
        raise InvalidManifest("invalid range")
    return ByteRange(start, end)


def parse_segment_range(value: str) -> RangeSpec:
    """A segment's `range`: Swift's `Range` header syntax without `bytes=` (`a-b`, `a-`,
    `-n`; spaces anywhere are dropped, as Swift does), and exactly one range.

    Like Swift, every item must parse before "only one" is checked. InvalidManifest
    (without the segment's name; the caller adds it)."""
    specs = [_range_spec(item) for item in value.replace(" ", "").split(",")]
    if len(specs) > 1:
        raise InvalidManifest("multiple ranges (only one allowed)")
    return specs[0]


def format_segment_range(spec: RangeSpec) -> str:
    """A range as a manifest PUT writes it (no `bytes=`)."""
    if isinstance(spec, SuffixRange):
        return f"-{spec.length}"
    return f"{spec.first}-" if spec.last is None else f"{spec.first}-{spec.last}"


def resolve_segment_range(spec: RangeSpec, size: int) -> Span | None:
    """The bytes of a segment of `size` bytes a range selects, as Swift resolves it
    (a suffix longer than the object is all of it, an end past it is clipped).
    None when that is the whole object: Swift then keeps no range at all, so the
    segment's ETag part is its bare hash. InvalidManifest("unsatisfiable range")."""
    try:
        spans = resolve_ranges([spec], size)
    except RangeNotSatisfiable:
        raise InvalidManifest("unsatisfiable range") from None
    if not spans or spans[0] == Span(0, size - 1):
        return None
    return spans[0]


def _stored_range(value: Any, size: int, where: str) -> Span | None:
    """The normalized `first-last` the server wrote, which must fit the segment."""
    if value is None:
        return None
    if isinstance(value, str):
        first, dash, last = value.partition("-")
        if dash and first and last and _DIGITS.issuperset(first) and _DIGITS.issuperset(last):
            span = Span(_range_number(first), _range_number(last))
            if span.start <= span.end < size:
                return span
    raise InvalidManifest(f"{where}: range must be first-last within the segment")


# --- inline data --------------------------------------------------------------------


def _b64(value: Any, where: str) -> bytes:
    """Inline data as Swift takes it: a string of base64 characters with '=' only at the
    ends, which the standard decoder accepts (so padding may be short of nothing but
    may be extra), decoding to at least one byte."""
    if not isinstance(value, str) or not _B64_CHARS.issuperset(value.strip("=")):
        raise InvalidManifest(f"{where}: data must be valid base64")
    try:
        data = base64.b64decode(value)
    except (binascii.Error, ValueError):
        raise InvalidManifest(f"{where}: data must be valid base64") from None
    if not data:
        raise InvalidManifest(f"{where}: too small; each segment must be at least 1 byte")
    return data


@dataclass(frozen=True, slots=True)
class DataSegment:
    """An inline `data` segment: the decoded bytes. The same in a PUT manifest and in
    the stored one (where Swift keeps it re-encoded, without extra padding)."""

    data: bytes

    @property
    def length(self) -> int:
        return len(self.data)

    @property
    def etag_part(self) -> str:
        """What it adds to the SLO ETag: the MD5 of the bytes, as if they were an object."""
        return hashlib.md5(self.data).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {"data": base64.b64encode(self.data).decode("ascii")}


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


def _load(body: bytes | str, limit: int = MAX_MANIFEST_SIZE) -> Any:
    if len(body) > limit:
        raise ManifestTooLarge(f"manifest over {limit} bytes")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidManifest("manifest must be valid JSON") from None


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """One object segment as the client names it; etag/size_bytes None = not to be
    checked (both describe the whole object even with a range); range None = all of it."""

    container: str
    name: str
    etag: str | None = None
    size_bytes: int | None = None
    range: RangeSpec | None = None

    @property
    def path(self) -> str:
        return f"/{self.container}/{self.name}"


PutSegment = SegmentRef | DataSegment


def _put_segment(seg: Any, where: str) -> PutSegment:
    if not isinstance(seg, dict):
        raise InvalidManifest(f"{where}: not a JSON object")
    if "data" in seg:  # Swift looks for `data` first: a `path` beside it is an extra key
        extra = set(seg) - {"data"}
        if extra:
            raise InvalidManifest(f"{where}: unknown key {sorted(extra)[0]!r} in a data segment")
        return DataSegment(_b64(seg["data"], where))
    if "path" not in seg:
        raise InvalidManifest(f"{where}: path is required (or data, for an inline data segment)")
    extra = set(seg) - _PATH_KEYS
    if extra:
        raise InvalidManifest(f"{where}: unknown key {sorted(extra)[0]!r}")
    cont, name = _split_path(seg["path"], where)
    etag = _etag(seg.get("etag"), where)
    raw_size = seg.get("size_bytes")
    size = None if raw_size is None else _size(raw_size, where, "size_bytes")
    raw_range = seg.get("range")
    spec = None
    if raw_range is not None and raw_range != "":  # Swift: an empty range is no range
        if not isinstance(raw_range, str):
            raise InvalidManifest(f"{where}: invalid range (must be a string)")
        try:
            spec = parse_segment_range(raw_range)
            if size is not None:  # the size was given: the range can be checked now
                resolve_segment_range(spec, size)
        except InvalidManifest as exc:
            raise InvalidManifest(f"{where}: {exc.reason}") from None
    return SegmentRef(cont, name, etag, size, spec)


def parse_put_manifest(body: bytes | str) -> list[PutSegment]:
    """The body of `PUT ?multipart-manifest=put`: a JSON list of object segments
    `{"path": "/cont/obj", "etag": ..., "size_bytes": ..., "range": "a-b"}` (all but
    path optional) and inline `{"data": "<base64>"}` segments; at least one object
    segment and at most MAX_MANIFEST_SEGMENTS of them (data segments do not count).

    InvalidManifest (400) names the first bad entry; ManifestTooLarge (413) for a
    body over MAX_MANIFEST_SIZE."""
    doc = _load(body)
    if not isinstance(doc, list):
        raise InvalidManifest("manifest must be a JSON list of segments")
    if not doc:
        raise InvalidManifest("manifest must have at least one segment")
    if sum(1 for seg in doc if not (isinstance(seg, dict) and "data" in seg)) > MAX_MANIFEST_SEGMENTS:
        raise InvalidManifest(f"too many segments: at most {MAX_MANIFEST_SEGMENTS} object segments")
    out = [_put_segment(seg, f"segment {i}") for i, seg in enumerate(doc)]
    if all(isinstance(seg, DataSegment) for seg in out):
        raise InvalidManifest("inline data segments require at least one object-backed segment")
    return out


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One object segment as the server keeps it (Swift's stored manifest): what the
    object was when the manifest was PUT (`hash` and `bytes` are the whole object's),
    and the part of it used: `range`, None = all of it. `sub_slo` marks an SLO."""

    container: str
    name: str
    hash: str
    bytes: int
    content_type: str = "application/octet-stream"
    last_modified: str = ""
    sub_slo: bool = False
    range: Span | None = None

    @property
    def path(self) -> str:
        return f"/{self.container}/{self.name}"

    @property
    def length(self) -> int:
        """The bytes it adds to the SLO."""
        return self.bytes if self.range is None else self.range.length

    @property
    def etag_part(self) -> str:
        """What it adds to the SLO ETag: the hash, or `hash:first-last;` with a range."""
        return self.hash if self.range is None else f"{self.hash}:{self.range.start}-{self.range.end};"


StoredSegment = ManifestEntry | DataSegment


def manifest_etag(entries: Iterable[StoredSegment]) -> str:
    """The SLO ETag (unquoted) of a stored manifest, as Swift computes it on PUT."""
    return slo_etag(e.etag_part for e in entries)


def manifest_size(entries: Iterable[StoredSegment]) -> int:
    """The SLO's size: ranges count only their bytes, data segments their decoded bytes."""
    return sum(e.length for e in entries)


#: Swift's own words for a bad ?part-number= (its clients and tests compare them)
PART_NUMBER_INVALID = "Part number must be an integer greater than 0"
PART_NUMBER_UNSATISFIABLE = "The requested part number is not satisfiable"


def parse_part_number(value: str) -> int:
    """`?part-number=N` of an SLO GET/HEAD/COPY: N counts the manifest's entries from 1.
    Raises InvalidPartNumber (400)."""
    if not value.isascii() or not value.isdigit() or len(value) > 9 or int(value) < 1:
        raise InvalidPartNumber(PART_NUMBER_INVALID)
    return int(value)


def part_span(entries: Sequence[StoredSegment], number: int) -> Span | None:
    """Where the ``number``-th entry's bytes lie in the whole SLO; None past the last
    entry or for an entry of no bytes (416: nothing to send)."""
    if number > len(entries):
        return None
    start = sum(e.length for e in entries[: number - 1])
    length = entries[number - 1].length
    return Span(start, start + length - 1) if length else None


def format_manifest(entries: Sequence[StoredSegment]) -> bytes:
    """The stored manifest: a JSON list of `name, hash, bytes, content_type,
    last_modified` (+ `range: "first-last"` and `sub_slo: true` when so) and
    `{"data": "<base64>"}` entries, as Swift keeps it."""
    doc: list[dict[str, Any]] = []
    for e in entries:
        if isinstance(e, DataSegment):
            doc.append(e.to_json())
            continue
        d: dict[str, Any] = {
            "name": e.path,
            "hash": e.hash,
            "bytes": e.bytes,
            "content_type": e.content_type,
            "last_modified": e.last_modified,
        }
        if e.range is not None:
            d["range"] = f"{e.range.start}-{e.range.end}"
        if e.sub_slo:
            d["sub_slo"] = True
        doc.append(d)
    return json.dumps(doc, separators=(", ", ": ")).encode()


def _stored_data(value: Any, where: str) -> DataSegment:
    if not isinstance(value, str):
        raise InvalidManifest(f"{where}: data must be a string")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidManifest(f"{where}: data must be base64") from None
    return DataSegment(data)


def parse_stored_manifest(body: bytes | str) -> list[StoredSegment]:
    """Read back what format_manifest wrote (InvalidManifest if it is not that)."""
    doc = _load(body, MAX_STORED_MANIFEST_SIZE)
    if not isinstance(doc, list):
        raise InvalidManifest("stored manifest is not a JSON list")
    out: list[StoredSegment] = []
    for i, d in enumerate(doc):
        where = f"stored segment {i}"
        if not isinstance(d, dict):
            raise InvalidManifest(f"{where}: not a JSON object")
        if "data" in d:
            out.append(_stored_data(d["data"], where))
            continue
        cont, name = _split_path(d.get("name"), where)
        h, ctype, lm = d.get("hash"), d.get("content_type", ""), d.get("last_modified", "")
        if not isinstance(h, str) or not isinstance(ctype, str) or not isinstance(lm, str):
            raise InvalidManifest(f"{where}: hash, content_type and last_modified must be strings")
        size = _size(d.get("bytes"), where, "bytes")
        out.append(
            ManifestEntry(
                cont, name, h, size, ctype, lm, d.get("sub_slo") is True, _stored_range(d.get("range"), size, where)
            )
        )
    return out


def format_raw_manifest(entries: Sequence[StoredSegment]) -> bytes:
    """`?multipart-manifest=get&format=raw`: the stored manifest in the form a PUT takes
    (`path, etag, size_bytes`, `range` kept, data entries as they are), keys sorted as
    Swift writes it."""
    doc: list[dict[str, Any]] = []
    for e in entries:
        if isinstance(e, DataSegment):
            doc.append(e.to_json())
            continue
        d: dict[str, Any] = {"path": e.path, "etag": e.hash, "size_bytes": e.bytes}
        if e.range is not None:
            d["range"] = f"{e.range.start}-{e.range.end}"
        doc.append(d)
    return json.dumps(doc, sort_keys=True, separators=(", ", ": ")).encode()


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
