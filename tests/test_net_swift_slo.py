"""net.swift_slo: SLO manifests as clients PUT them and as the server keeps them."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.http_errors import InvalidManifest, ManifestTooLarge, ProtocolError
from net.swift_slo import (
    MAX_MANIFEST_SEGMENTS,
    MAX_MANIFEST_SIZE,
    BulkDeleteResult,
    ManifestEntry,
    SegmentRef,
    format_bulk_delete,
    format_manifest,
    format_raw_manifest,
    normalize_etag,
    parse_put_manifest,
    parse_stored_manifest,
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
        (put({"path": "/c/o", "range": "0-3"}), "ranges are not supported"),
        (put({"data": "aGk="}), "inline data"),
        (put({"path": "/c/o", "colour": "red"}), "unknown key"),
        (put(*([{"path": "/c/o"}] * (MAX_MANIFEST_SEGMENTS + 1))), "too many segments"),
    ],
)
def test_parse_put_manifest_refuses(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidManifest) as exc:
        parse_put_manifest(body)
    assert reason in exc.value.reason and exc.value.status == 400


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


@given(st.lists(segment_refs, min_size=1, max_size=20))
def test_valid_manifests_round_trip(refs: list[SegmentRef]) -> None:
    body = put(*({"path": r.path, "etag": r.etag, "size_bytes": r.size_bytes} for r in refs))
    assert parse_put_manifest(body) == refs


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
put_like = st.dictionaries(
    st.sampled_from(["path", "etag", "size_bytes", "range", "data", "x"]),
    st.one_of(json_values, st.text(max_size=30).map(lambda s: "/c/" + s)),
)


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
    assert [(r.path, r.size_bytes) for r in raw] == [(e.path, e.bytes) for e in entries]


@given(st.lists(st.text("0123456789abcdef", min_size=32, max_size=32), max_size=10))
def test_slo_etag_is_md5_of_joined_etags(hashes: list[str]) -> None:
    assert slo_etag(hashes) == hashlib.md5("".join(hashes).encode()).hexdigest()
