"""net.swift_slo: SLO manifests as clients PUT them and as the server keeps them."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from net.http_errors import InvalidManifest, ManifestTooLarge, ProtocolError
from net.http_range import ByteRange, RangeSpec, Span, SuffixRange
from net.swift_slo import (
    MAX_MANIFEST_SEGMENTS,
    MAX_MANIFEST_SIZE,
    BulkDeleteResult,
    DataSegment,
    ManifestEntry,
    SegmentRef,
    StoredSegment,
    format_bulk_delete,
    format_manifest,
    format_raw_manifest,
    format_segment_range,
    manifest_etag,
    manifest_size,
    normalize_etag,
    parse_put_manifest,
    parse_segment_range,
    parse_stored_manifest,
    resolve_segment_range,
    slo_etag,
)

MD5 = hashlib.md5(b"x").hexdigest()


def put(*segs: object) -> bytes:
    return json.dumps(list(segs)).encode()


def test_parse_put_manifest() -> None:
    body = put(
        {"path": "/segs/a/000", "etag": MD5, "size_bytes": 5},
        {"path": "segs/b", "etag": None, "size_bytes": None},
        {"path": "/segs/ç d", "etag": f'"{MD5.upper()}"'},
        {"path": "/segs/e", "size_bytes": "7"},
    )
    assert parse_put_manifest(body) == [
        SegmentRef("segs", "a/000", MD5, 5),
        SegmentRef("segs", "b", None, None),
        SegmentRef("segs", "ç d", MD5, None),
        SegmentRef("segs", "e", None, 7),
    ]
    assert parse_put_manifest(body)[0].path == "/segs/a/000"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "valid JSON"),
        (b"[" * 100000 + b"]" * 100000, "valid JSON"),
        (b'{"path": "/a/b"}', "JSON list"),
        (b"[]", "at least one segment"),
        (put(1), "not a JSON object"),
        (put({"etag": MD5}), "path is required"),
        (put({"path": "/only-container"}), "/container/object"),
        (put({"path": "//obj"}), "/container/object"),
        (put({"path": 5}), "path must be a string"),
        (put({"path": "/c/a/../b"}), "segment 0"),
        (put({"path": "/c/o", "size_bytes": -1}), "size_bytes"),
        (put({"path": "/c/o", "size_bytes": True}), "size_bytes"),
        (put({"path": "/c/o", "size_bytes": 1.5}), "size_bytes"),
        (put({"path": "/c/o", "etag": 5}), "etag"),
        (put({"path": "/c/o", "etag": '""'}), "etag"),
        (put({"path": "/c/o", "etag": "é"}), "etag"),
        (put({"path": "/c/o", "colour": "red"}), "unknown key"),
        (put(*([{"path": "/c/o"}] * (MAX_MANIFEST_SEGMENTS + 1))), "too many segments"),
    ],
)
def test_parse_put_manifest_refuses(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidManifest) as exc:
        parse_put_manifest(body)
    assert reason in exc.value.reason and exc.value.status == 400


def test_parse_put_manifest_ranges_and_data() -> None:
    body = put(
        {"path": "/c/a", "range": "0-3"},
        {"data": "aGVsbG8="},
        {"path": "/c/b", "range": "5-", "size_bytes": 10, "etag": MD5},
        {"data": "aGk=="},  # extra padding is accepted (Swift uses the lenient decoder)
        {"path": "/c/a", "range": "-7"},
        {"path": "/c/a", "range": " 1 - 2 "},  # Swift drops every space
        {"path": "/c/a", "range": ""},  # Swift: an empty range is no range
        {"path": "/c/a", "range": None},
    )
    assert parse_put_manifest(body) == [
        SegmentRef("c", "a", range=ByteRange(0, 3)),
        DataSegment(b"hello"),
        SegmentRef("c", "b", MD5, 10, ByteRange(5)),
        DataSegment(b"hi"),
        SegmentRef("c", "a", range=SuffixRange(7)),
        SegmentRef("c", "a", range=ByteRange(1, 2)),
        SegmentRef("c", "a"),
        SegmentRef("c", "a"),
    ]


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("0-0", ByteRange(0, 0)),
        ("1048576-2097151", ByteRange(1048576, 2097151)),
        ("512-", ByteRange(512)),
        ("-2048", SuffixRange(2048)),
        ("-0", SuffixRange(0)),  # parses; never satisfiable
        ("007-010", ByteRange(7, 10)),
        (" 3 -  4", ByteRange(3, 4)),
        ("1" * 40 + "-", ByteRange(2**63)),  # past any object
    ],
)
def test_parse_segment_range(text: str, spec: RangeSpec) -> None:
    assert parse_segment_range(text) == spec


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "invalid range"),
        ("-", "invalid range"),
        ("5", "invalid range"),
        ("3-1", "invalid range"),
        ("a-b", "invalid range"),
        ("bytes=0-1", "invalid range"),
        ("0-1,", "invalid range"),
        (",0-1", "invalid range"),
        ("0-1,x", "invalid range"),  # every item is checked before "only one"
        ("+1-2", "invalid range"),
        ("1--2", "invalid range"),
        ("0x1-2", "invalid range"),
        ("\uff11-2", "invalid range"),  # fullwidth digit
        ("1\t-2", "invalid range"),
        ("0-1,3-4", "multiple ranges (only one allowed)"),
        ("-1,-2", "multiple ranges (only one allowed)"),
    ],
)
def test_parse_segment_range_refuses(text: str, reason: str) -> None:
    with pytest.raises(InvalidManifest) as exc:
        parse_segment_range(text)
    assert exc.value.reason == reason


@pytest.mark.parametrize(
    ("text", "size", "span"),
    [
        ("0-3", 10, Span(0, 3)),
        ("5-", 10, Span(5, 9)),
        ("-3", 10, Span(7, 9)),
        ("2-100", 10, Span(2, 9)),  # the end is clipped
        ("9-9", 10, Span(9, 9)),
        ("0-", 10, None),  # the whole object: no range is kept
        ("0-9", 10, None),
        ("0-100", 10, None),
        ("-10", 10, None),
        ("-11", 10, None),
        ("-5", 0, None),  # a suffix of an empty object is all of it, as in Swift
    ],
)
def test_resolve_segment_range(text: str, size: int, span: Span | None) -> None:
    assert resolve_segment_range(parse_segment_range(text), size) == span


@pytest.mark.parametrize(("text", "size"), [("10-", 10), ("10-20", 10), ("-0", 10), ("0-", 0), ("0-0", 0)])
def test_resolve_segment_range_unsatisfiable(text: str, size: int) -> None:
    with pytest.raises(InvalidManifest) as exc:
        resolve_segment_range(parse_segment_range(text), size)
    assert exc.value.reason == "unsatisfiable range"


@pytest.mark.parametrize(
    ("seg", "reason"),
    [
        ({"path": "/c/o", "range": "3-1"}, "segment 1: invalid range"),
        ({"path": "/c/o", "range": "0-1,5-6"}, "segment 1: multiple ranges (only one allowed)"),
        ({"path": "/c/o", "range": 5}, "segment 1: invalid range"),
        ({"path": "/c/o", "range": ["0-1"]}, "segment 1: invalid range"),
        ({"path": "/c/o", "range": False}, "segment 1: invalid range"),
        ({"path": "/c/o", "size_bytes": 10, "range": "10-"}, "segment 1: unsatisfiable range"),
        ({"path": "/c/o", "size_bytes": 10, "range": "-0"}, "segment 1: unsatisfiable range"),
        ({"path": "/c/o", "size_bytes": 0, "range": "0-"}, "segment 1: unsatisfiable range"),
        ({"data": "aGk"}, "segment 1: data must be valid base64"),  # short of padding
        ({"data": "aGk=aGk="}, "segment 1: data must be valid base64"),  # '=' inside
        ({"data": "aG k="}, "segment 1: data must be valid base64"),
        ({"data": "aGk=\n"}, "segment 1: data must be valid base64"),
        ({"data": "aGk-"}, "segment 1: data must be valid base64"),  # URL-safe alphabet
        ({"data": "\u00e9"}, "segment 1: data must be valid base64"),
        ({"data": 5}, "segment 1: data must be valid base64"),
        ({"data": None}, "segment 1: data must be valid base64"),
        ({"data": ["aGk="]}, "segment 1: data must be valid base64"),
        ({"data": ""}, "segment 1: too small; each segment must be at least 1 byte"),
        ({"data": "===="}, "segment 1: too small; each segment must be at least 1 byte"),
        ({"data": "aGk=", "path": "/c/o"}, "segment 1: unknown key 'path' in a data segment"),
        ({"data": "aGk=", "etag": None}, "segment 1: unknown key 'etag' in a data segment"),
        ({"path": "/c/o", "range": "0-1", "x": 1}, "segment 1: unknown key 'x'"),
        ({"range": "0-1"}, "segment 1: path is required"),
    ],
)
def test_parse_put_manifest_refuses_ranges_and_data(seg: dict[str, object], reason: str) -> None:
    body = json.dumps([{"path": "/c/first"}, seg])
    with pytest.raises(InvalidManifest) as exc:
        parse_put_manifest(body)
    assert exc.value.reason.startswith(reason) and exc.value.status == 400


def test_data_segments_alone_are_refused() -> None:
    with pytest.raises(InvalidManifest) as exc:
        parse_put_manifest(put({"data": "aGk="}, {"data": "aGk="}))
    assert exc.value.reason == "inline data segments require at least one object-backed segment"


def test_data_segments_do_not_count_against_the_segment_limit() -> None:
    many = [{"path": "/c/o"}] * MAX_MANIFEST_SEGMENTS + [{"data": "aGk="}] * 5
    assert len(parse_put_manifest(put(*many))) == MAX_MANIFEST_SEGMENTS + 5
    with pytest.raises(InvalidManifest, match="too many segments"):
        parse_put_manifest(put(*many, {"path": "/c/o"}))


def test_manifest_size_limit() -> None:
    with pytest.raises(ManifestTooLarge) as exc:
        parse_put_manifest(b" " * (MAX_MANIFEST_SIZE + 1))
    assert exc.value.status == 413
    assert len(parse_put_manifest(put(*([{"path": "/c/o"}] * MAX_MANIFEST_SEGMENTS)))) == MAX_MANIFEST_SEGMENTS


def test_slo_etag_and_normalize() -> None:
    assert slo_etag(["ab", "cd"]) == hashlib.md5(b"abcd").hexdigest()
    assert normalize_etag(' "ABC" ') == "abc" and normalize_etag('"') == '"'


def test_stored_manifest_is_swifts_format() -> None:
    e = ManifestEntry("segs", "a b", MD5, 3, "text/plain", "2026-01-02T03:04:05.000000")
    nested = ManifestEntry("c", "sub", "f" * 32, 10, "application/octet-stream", "x", sub_slo=True)
    doc = json.loads(format_manifest([e, nested]))
    assert doc[0] == {
        "name": "/segs/a b", "hash": MD5, "bytes": 3, "content_type": "text/plain",
        "last_modified": "2026-01-02T03:04:05.000000",
    }
    assert doc[1]["sub_slo"] is True
    assert json.loads(format_raw_manifest([e])) == [{"path": "/segs/a b", "etag": MD5, "size_bytes": 3}]


def swift_etag_part(seg: dict[str, object]) -> str:
    """An SLO ETag part written from Swift's documentation (and slo.py's PUT), not from
    the code under test: `hash`, `hash:range;` or the MD5 of the raw data."""
    if "data" in seg:
        return hashlib.md5(base64.b64decode(str(seg["data"]))).hexdigest()
    if seg.get("range"):
        return "%s:%s;" % (seg["hash"], seg["range"])
    return str(seg["hash"])


def test_ranges_and_data_stored_byte_for_byte() -> None:
    a = ManifestEntry("segs", "a", "0" * 32, 100, "text/plain", "2026-01-02T03:04:05.000000", range=Span(10, 19))
    data = DataSegment(b"\x00interstitial\xff")
    sub = ManifestEntry("c", "sub", "f" * 32, 50, "application/octet-stream", "x", sub_slo=True, range=Span(0, 0))
    whole = ManifestEntry("segs", "b", "1" * 32, 7, "text/plain", "y")
    entries: list[StoredSegment] = [a, data, sub, whole]
    stored = format_manifest(entries)
    assert stored == (
        b'[{"name": "/segs/a", "hash": "00000000000000000000000000000000", "bytes": 100, '
        b'"content_type": "text/plain", "last_modified": "2026-01-02T03:04:05.000000", "range": "10-19"}, '
        b'{"data": "AGludGVyc3RpdGlhbP8="}, '
        b'{"name": "/c/sub", "hash": "ffffffffffffffffffffffffffffffff", "bytes": 50, '
        b'"content_type": "application/octet-stream", "last_modified": "x", "range": "0-0", "sub_slo": true}, '
        b'{"name": "/segs/b", "hash": "11111111111111111111111111111111", "bytes": 7, '
        b'"content_type": "text/plain", "last_modified": "y"}]'
    )
    assert parse_stored_manifest(stored) == entries
    assert format_raw_manifest(entries) == (
        b'[{"etag": "00000000000000000000000000000000", "path": "/segs/a", "range": "10-19", "size_bytes": 100}, '
        b'{"data": "AGludGVyc3RpdGlhbP8="}, '
        b'{"etag": "ffffffffffffffffffffffffffffffff", "path": "/c/sub", "range": "0-0", "size_bytes": 50}, '
        b'{"etag": "11111111111111111111111111111111", "path": "/segs/b", "size_bytes": 7}]'
    )
    # the raw form is a PUT manifest that names the same bytes
    assert parse_put_manifest(format_raw_manifest(entries)) == [
        SegmentRef("segs", "a", "0" * 32, 100, ByteRange(10, 19)),
        data,
        SegmentRef("c", "sub", "f" * 32, 50, ByteRange(0, 0)),
        SegmentRef("segs", "b", "1" * 32, 7),
    ]
    assert manifest_size(entries) == 10 + 14 + 1 + 7
    want = hashlib.md5("".join(swift_etag_part(d) for d in json.loads(stored)).encode()).hexdigest()
    assert manifest_etag(entries) == want
    assert want == hashlib.md5(
        ("0" * 32 + ":10-19;" + hashlib.md5(data.data).hexdigest() + "f" * 32 + ":0-0;" + "1" * 32).encode()
    ).hexdigest()


def test_etag_of_swifts_documented_example() -> None:
    """slo.py's docstring: two ranged segments hash as 'etag:range;' each."""
    entries = [
        ManifestEntry("cont", "object1", "etagoftheobjectsegmentone", 10485760, range=Span(1, 2)),
        ManifestEntry("cont", "object2", "etagoftheobjectsegmenttwo", 10485760, range=Span(3, 4)),
    ]
    expected = hashlib.md5(b"etagoftheobjectsegmentone:1-2;etagoftheobjectsegmenttwo:3-4;").hexdigest()
    assert manifest_etag(entries) == expected and manifest_size(entries) == 4


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"name": "/c/o", "hash": MD5, "bytes": 10, "range": "5-10"}, "range"),
        ({"name": "/c/o", "hash": MD5, "bytes": 10, "range": "5-"}, "range"),
        ({"name": "/c/o", "hash": MD5, "bytes": 10, "range": "6-5"}, "range"),
        ({"name": "/c/o", "hash": MD5, "bytes": 10, "range": 5}, "range"),
        ({"data": "aGk"}, "base64"),
        ({"data": 5}, "string"),
    ],
)
def test_stored_manifest_refuses(entry: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidManifest) as exc:
        parse_stored_manifest(json.dumps([entry]))
    assert reason in exc.value.reason and "stored segment 0" in exc.value.reason


def test_bulk_delete_formats() -> None:
    ok = BulkDeleteResult(deleted=3, not_found=1)
    assert json.loads(format_bulk_delete(ok, "json")) == {
        "Number Deleted": 3, "Number Not Found": 1, "Response Body": "", "Response Status": "200 OK", "Errors": [],
    }
    bad = BulkDeleteResult(deleted=1, errors=[("/c/o", "403 Forbidden")])
    text = format_bulk_delete(bad, "plain").decode()
    assert "Number Deleted: 1\n" in text and "Response Status: 400 Bad Request\n" in text
    assert text.endswith("Errors:\n/c/o, 403 Forbidden\n")


# --- properties -----------------------------------------------------------------------

_name_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/")
container_names = st.text(_name_chars, min_size=1, max_size=20).filter(lambda s: s not in (".", ".."))
object_names = st.lists(
    st.text(_name_chars, min_size=1, max_size=10).filter(lambda s: s not in (".", "..")), min_size=1, max_size=3
).map("/".join)
etags = st.one_of(st.none(), st.text("0123456789abcdef", min_size=32, max_size=32))
sizes = st.one_of(st.none(), st.integers(0, 2**63 - 1))
segment_refs = st.builds(SegmentRef, container_names, object_names, etags, sizes)
range_specs = st.one_of(
    st.builds(SuffixRange, st.integers(0, 40)),
    st.builds(ByteRange, st.integers(0, 40)),
    st.tuples(st.integers(0, 40), st.integers(0, 40)).map(lambda t: ByteRange(min(t), max(t))),
)


@given(st.lists(segment_refs, min_size=1, max_size=20))
def test_valid_manifests_round_trip(refs: list[SegmentRef]) -> None:
    body = put(*({"path": r.path, "etag": r.etag, "size_bytes": r.size_bytes} for r in refs))
    assert parse_put_manifest(body) == refs


ranged_refs = st.builds(SegmentRef, container_names, object_names, etags, st.none(), range_specs)
data_segments = st.builds(DataSegment, st.binary(min_size=1, max_size=50))


def put_form(seg: SegmentRef | DataSegment) -> dict[str, object]:
    if isinstance(seg, DataSegment):
        return {"data": base64.b64encode(seg.data).decode()}
    d: dict[str, object] = {"path": seg.path, "etag": seg.etag, "size_bytes": seg.size_bytes}
    if seg.range is not None:
        d["range"] = format_segment_range(seg.range)
    return d


@given(st.lists(st.one_of(ranged_refs, data_segments), min_size=1, max_size=20))
def test_manifests_with_ranges_and_data_round_trip(segs: list[SegmentRef | DataSegment]) -> None:
    assume(any(isinstance(s, SegmentRef) for s in segs))
    assert parse_put_manifest(put(*map(put_form, segs))) == segs


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
put_like = st.dictionaries(
    st.sampled_from(["path", "etag", "size_bytes", "range", "data", "x"]),
    st.one_of(json_values, st.text(max_size=30).map(lambda s: "/c/" + s)),
)


range_texts = st.one_of(
    st.text("0123456789- ,", max_size=12),
    st.builds(lambda a, b: f"{a}-{b}", st.integers(0, 2**70), st.integers(0, 2**70)),
    st.text(max_size=12),
)
data_texts = st.one_of(
    st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode()),
    st.text("ABCDabcd0189+/= -_\n", max_size=12),
    st.text(max_size=12),
)
put_with_ranges = st.one_of(
    st.fixed_dictionaries({"path": st.just("/c/o")}, optional={"range": st.one_of(range_texts, json_values)}),
    st.fixed_dictionaries({"data": st.one_of(data_texts, json_values)}, optional={"path": st.just("/c/o")}),
    st.fixed_dictionaries(
        {"path": st.just("/c/o"), "range": range_texts, "size_bytes": st.integers(-1, 50) | st.text("0123", max_size=3)}
    ),
)


@given(st.lists(put_with_ranges, min_size=1, max_size=6))
def test_any_ranges_and_data_parse_or_are_a_400(doc: list[dict[str, object]]) -> None:
    try:
        segs = parse_put_manifest(json.dumps(doc))
    except InvalidManifest as exc:
        assert exc.status == 400 and exc.reason
    else:
        assert len(segs) == len(doc) and any(isinstance(s, SegmentRef) for s in segs)
        for raw, seg in zip(doc, segs):
            if isinstance(seg, DataSegment):
                assert seg.data and base64.b64decode(str(raw["data"])) == seg.data
            else:
                assert seg.range == (parse_segment_range(str(raw["range"])) if raw.get("range") else None)


@given(range_texts)
def test_any_range_text_parses_or_is_invalid(text: str) -> None:
    try:
        spec = parse_segment_range(text)
    except InvalidManifest as exc:
        assert exc.reason in ("invalid range", "multiple ranges (only one allowed)")
    else:
        assert parse_segment_range(format_segment_range(spec)) == spec


def swift_ranges_for_length(spec: RangeSpec, length: int) -> list[tuple[int, int]]:
    """Swift's Range.ranges_for_length for one range as its docstring states it:
    half-open (start, end) pairs; [] when unsatisfiable."""
    if isinstance(spec, SuffixRange):
        if spec.length == 0:
            return []
        return [(0, length)] if spec.length > length else [(length - spec.length, length)]
    if spec.first >= length:
        return []
    return [(spec.first, length if spec.last is None else min(spec.last + 1, length))]


@given(range_specs, st.integers(0, 40))
def test_resolve_segment_range_is_swifts(spec: RangeSpec, size: int) -> None:
    """As slo.py's PUT: no range -> unsatisfiable; the whole object -> the range is dropped;
    else 'first-last' (inclusive)."""
    ranges = swift_ranges_for_length(spec, size)
    if not ranges:
        with pytest.raises(InvalidManifest):
            resolve_segment_range(spec, size)
    elif ranges == [(0, size)]:
        assert resolve_segment_range(spec, size) is None
    else:
        span = resolve_segment_range(spec, size)
        assert span is not None and (span.start, span.end + 1) == ranges[0]


@given(st.one_of(json_values, st.lists(put_like, max_size=5)))
def test_any_json_parses_or_is_a_400(doc: object) -> None:
    try:
        refs = parse_put_manifest(json.dumps(doc))
    except ProtocolError as exc:
        assert exc.status == 400 and exc.reason
    else:
        assert 1 <= len(refs) <= MAX_MANIFEST_SEGMENTS


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_a_400(body: bytes) -> None:
    try:
        parse_put_manifest(body)
    except ProtocolError as exc:
        assert exc.status == 400


stored_entries = st.builds(
    ManifestEntry, container_names, object_names, st.text("0123456789abcdef", min_size=32, max_size=64),
    st.integers(0, 2**63 - 1), st.text(max_size=20), st.text(max_size=30), st.booleans(),
)


@given(st.lists(stored_entries, max_size=20))
def test_stored_manifest_round_trip(entries: list[ManifestEntry]) -> None:
    assert parse_stored_manifest(format_manifest(entries)) == entries
    raw = parse_put_manifest(format_raw_manifest(entries)) if entries else []
    assert [(r.path, r.size_bytes) for r in raw] == [(e.path, e.bytes) for e in entries]  # type: ignore[union-attr]


@st.composite
def ranged_entries(draw: st.DrawFn) -> ManifestEntry:
    size = draw(st.integers(1, 2**63 - 1))
    first = draw(st.integers(0, size - 1))
    last = draw(st.integers(first, size - 1))
    e = draw(stored_entries)
    return ManifestEntry(e.container, e.name, e.hash, size, e.content_type, e.last_modified, e.sub_slo, Span(first, last))


@given(st.lists(st.one_of(stored_entries, ranged_entries(), data_segments), max_size=20))
def test_stored_manifest_with_ranges_and_data_round_trip(entries: list[StoredSegment]) -> None:
    stored = format_manifest(entries)
    assert parse_stored_manifest(stored) == entries
    assert manifest_size(entries) == sum(
        len(e.data) if isinstance(e, DataSegment) else e.bytes if e.range is None else e.range.end - e.range.start + 1
        for e in entries
    )
    parts = "".join(swift_etag_part(d) for d in json.loads(stored))
    assert manifest_etag(entries) == hashlib.md5(parts.encode()).hexdigest()
    if any(isinstance(e, ManifestEntry) for e in entries):
        raw = parse_put_manifest(format_raw_manifest(entries))
        assert len(raw) == len(entries)
        for e, r in zip(entries, raw):
            if isinstance(e, DataSegment):
                assert r == e
            else:
                assert isinstance(r, SegmentRef) and (r.path, r.etag, r.size_bytes) == (e.path, e.hash, e.bytes)
                want = None if e.range is None else resolve_segment_range(ByteRange(e.range.start, e.range.end), e.bytes)
                got = None if r.range is None else resolve_segment_range(r.range, e.bytes)
                assert got == want


@given(st.lists(st.text("0123456789abcdef", min_size=32, max_size=32), max_size=10))
def test_slo_etag_is_md5_of_joined_etags(hashes: list[str]) -> None:
    assert slo_etag(hashes) == hashlib.md5("".join(hashes).encode()).hexdigest()
