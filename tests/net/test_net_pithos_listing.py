"""net.pithos_listing: listing bodies (plain, JSON, XML) and listing query parameters."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.http_errors import InvalidListingQuery, ListingLimitTooLarge, ProtocolError
from net.pithos_listing import (
    MAX_DELIMITER,
    AccountRecord,
    ContainerRecord,
    ListingQuery,
    ObjectRecord,
    SubdirRecord,
    content_type_for,
    format_account_listing,
    format_container_listing,
    format_iso8601,
    format_object_listing,
    format_version_timestamp,
    negotiate_format,
    parse_listing_query,
)

T = datetime(2026, 11, 24, 6, 50, 30, 123456, tzinfo=UTC)
H = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

OBJ = ObjectRecord(
    name="photos/cat.jpg",
    size=14,
    hash=H,
    content_type="image/jpeg",
    last_modified=T,
    x_object_hash=H,
    version=98,
    version_timestamp=1322813441.565891,
    modified_by="user-uuid",
    meta={"Color": "grey", "owner-name": "Zoë"},
)
MIN = ObjectRecord(name="a&b<c>", size=0, hash=H, content_type="application/directory", last_modified=0)


def test_times() -> None:
    assert format_iso8601(T) == "2026-11-24T06:50:30.123456"
    assert format_iso8601(T.replace(microsecond=0)) == "2026-11-24T06:50:30.000000"
    assert format_iso8601(T.replace(tzinfo=None)) == "2026-11-24T06:50:30.123456"  # naive = UTC
    assert format_iso8601(T.astimezone(timezone(timedelta(hours=2)))) == "2026-11-24T06:50:30.123456"
    assert format_iso8601(0) == "1970-01-01T00:00:00.000000"
    assert format_iso8601(1322813441.5) == "2011-12-02T08:10:41.500000"
    assert format_version_timestamp(1322813441.565891) == "1322813441.565891"
    assert format_version_timestamp(datetime(2011, 12, 2, 8, 10, 41, 565891, tzinfo=UTC)) == "1322813441.565891"
    assert format_version_timestamp(5) == "5.000000"


def test_object_listing_json_exact() -> None:
    got = format_object_listing([OBJ, SubdirRecord("photos/2026/"), MIN], "json", container="c")
    assert got == (
        b'[{"name":"photos/cat.jpg","bytes":14,"hash":"' + H.encode() + b'","content_type":"image/jpeg",'
        b'"last_modified":"2026-11-24T06:50:30.123456","x_object_hash":"' + H.encode() + b'",'
        b'"x_object_version":98,"x_object_version_timestamp":"1322813441.565891",'
        b'"x_object_modified_by":"user-uuid","x_object_meta_color":"grey","x_object_meta_owner_name":"Zo\\u00eb"},'
        b'{"subdir":"photos/2026/"},'
        b'{"name":"a&b<c>","bytes":0,"hash":"' + H.encode() + b'","content_type":"application/directory",'
        b'"last_modified":"1970-01-01T00:00:00.000000"}]'
    )
    assert format_object_listing([], "json", container="c") == b"[]"


def test_object_listing_optional_pithos_fields() -> None:
    r = ObjectRecord("o", 1, "h", "t", 0, uuid="8ed9af1b", sharing="read=*", allowed_to="read", public="/public/abc")
    d = json.loads(format_object_listing([r], "json", container="c"))[0]
    assert list(d)[5:] == ["x_object_uuid", "x_object_sharing", "x_object_allowed_to", "x_object_public"]
    odd = ObjectRecord("o", 1, "h", "t", 0, meta={"Odd.Key!#": "v"})
    assert json.loads(format_object_listing([odd], "json", container="c"))[0]["x_object_meta_odd.key!#"] == "v"
    xml = format_object_listing([odd], "xml", container="c")
    assert b"<x_object_meta_odd.key__>v</x_object_meta_odd.key__>" in xml
    ET.fromstring(xml)


def test_object_listing_plain_exact() -> None:
    recs: list[ObjectRecord | SubdirRecord] = [OBJ, SubdirRecord("photos/2026/"), ObjectRecord("Γειά", 1, H, "t", 0)]
    assert format_object_listing(recs, "plain", container="c") == "photos/cat.jpg\nphotos/2026/\nΓειά\n".encode()
    assert format_object_listing([], "plain", container="c") == b""


def test_object_listing_xml_exact() -> None:
    # Swift's layout (swift/common/middleware/listing_formats.py container_to_xml): no
    # whitespace between elements, its five fields first in its order
    got = format_object_listing([MIN, SubdirRecord('d"ir/')], "xml", container='my "c" & co')
    assert got == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<container name="my &quot;c&quot; &amp; co">'
        b"<object><name>a&amp;b&lt;c&gt;</name><hash>" + H.encode() + b"</hash><bytes>0</bytes>"
        b"<content_type>application/directory</content_type><last_modified>1970-01-01T00:00:00.000000</last_modified></object>"
        b'<subdir name="d&quot;ir/"><name>d"ir/</name></subdir>'
        b"</container>"
    )
    assert (
        format_object_listing([], "xml", container="c")
        == b'<?xml version="1.0" encoding="UTF-8"?>\n<container name="c"></container>'
    )


def test_object_listing_xml_has_no_whitespace_nodes() -> None:
    # Swift's functional tests walk childNodes and read .tagName of each: a text node fails
    from xml.dom import minidom

    doc = minidom.parseString(format_object_listing([OBJ, MIN, SubdirRecord("d/")], "xml", container="c"))
    root = doc.documentElement
    assert [n.nodeType for n in root.childNodes] == [minidom.Node.ELEMENT_NODE] * 3
    for node in root.childNodes:
        assert all(c.nodeType == c.ELEMENT_NODE for c in node.childNodes)
    assert [c.tagName for c in root.childNodes[0].childNodes][:5] == [
        "name", "hash", "bytes", "content_type", "last_modified",
    ]


def test_object_listing_xml_parses_back() -> None:
    root = ET.fromstring(format_object_listing([OBJ, SubdirRecord("photos/2026/")], "xml", container="c"))
    assert root.tag == "container" and root.get("name") == "c"
    obj = root.find("object")
    assert obj is not None
    assert {e.tag: e.text for e in obj} == {k: str(v) for k, v in OBJ.fields()}
    assert obj.findtext("x_object_meta_owner_name") == "Zoë"
    sub = root.find("subdir")
    assert sub is not None and sub.get("name") == "photos/2026/" and sub.findtext("name") == "photos/2026/"


def test_xml_survives_characters_xml_cannot_hold() -> None:
    r = ObjectRecord("a\x01b\rc\td\ne", 1, H, "t", 0)
    root = ET.fromstring(format_object_listing([r], "xml", container="x\x02\ty"))
    assert root.findtext("object/name") == "a\ufffdb\rc\td\ne"
    assert root.get("name") == "x\ufffd\ty"


def test_container_listing() -> None:
    recs = [ContainerRecord("pithos", 3, 1024, T), ContainerRecord("trash", 0, 0, 0)]
    assert format_container_listing(recs, "plain", account="u") == b"pithos\ntrash\n"
    assert format_container_listing(recs, "json", account="u") == (
        b'[{"name":"pithos","count":3,"bytes":1024,"last_modified":"2026-11-24T06:50:30.123456"},'
        b'{"name":"trash","count":0,"bytes":0,"last_modified":"1970-01-01T00:00:00.000000"}]'
    )
    # Swift's account_to_xml: one element a line, storage_policy after the four fields
    both = [ContainerRecord("pithos", 3, 1024, T, "sha256"), SubdirRecord("p-")]
    assert format_container_listing(both, "xml", account="u&1") == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<account name="u&amp;1">\n'
        b"<container><name>pithos</name><count>3</count><bytes>1024</bytes>"
        b"<last_modified>2026-11-24T06:50:30.123456</last_modified><storage_policy>sha256</storage_policy></container>\n"
        b'<subdir name="p-" />\n</account>'
    )
    assert format_container_listing(both, "json", account="u") == (
        b'[{"name":"pithos","count":3,"bytes":1024,"last_modified":"2026-11-24T06:50:30.123456",'
        b'"storage_policy":"sha256"},{"subdir":"p-"}]'
    )
    assert format_container_listing(both, "plain", account="u") == b"pithos\np-\n"


def test_account_listing() -> None:
    recs = [AccountRecord("alice", T), AccountRecord("bob")]
    assert format_account_listing(recs, "plain") == b"alice\nbob\n"
    assert (
        format_account_listing(recs, "json")
        == b'[{"name":"alice","last_modified":"2026-11-24T06:50:30.123456"},{"name":"bob"}]'
    )
    assert format_account_listing(recs, "xml") == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<accounts>\n'
        b"<account><name>alice</name><last_modified>2026-11-24T06:50:30.123456</last_modified></account>\n"
        b"<account><name>bob</name></account>\n</accounts>"
    )


def test_content_types() -> None:
    assert content_type_for("json") == "application/json; charset=utf-8"
    assert content_type_for("xml") == "application/xml; charset=utf-8"
    assert content_type_for("plain") == "text/plain; charset=utf-8"


# --- query parameters -----------------------------------------------------------------


def test_defaults() -> None:
    assert parse_listing_query({}) == ListingQuery(10000, None, None, "", None, "plain")
    empty = {k: "" for k in ("limit", "marker", "end_marker", "prefix", "delimiter", "format")}
    assert parse_listing_query(empty) == ListingQuery()


def test_all_parameters() -> None:
    q = parse_listing_query(
        {"limit": "50", "marker": "b", "end_marker": "y", "prefix": "p/", "delimiter": "/", "format": "json"}
    )
    assert q == ListingQuery(50, "b", "y", "p/", "/", "json")


@pytest.mark.parametrize(("value", "limit"), [("0", 0), ("1", 1), ("10000", 10000), ("0010", 10), ("0" * 50, 0)])
def test_limit(value: str, limit: int) -> None:
    assert parse_listing_query({"limit": value}).limit == limit


@pytest.mark.parametrize("value", ["-1", "+1", "1.5", "ten", " 1", "1e3", "١٠"])
def test_bad_limit(value: str) -> None:
    with pytest.raises(InvalidListingQuery) as ei:
        parse_listing_query({"limit": value})
    assert ei.value.status == 400


@pytest.mark.parametrize("value", ["10001", "99999999999999999999999", "9" * 5000])
def test_limit_too_large_is_412(value: str) -> None:
    with pytest.raises(ListingLimitTooLarge, match="Maximum limit is 10000") as ei:
        parse_listing_query({"limit": value})
    assert ei.value.status == 412


def test_custom_max_limit() -> None:
    assert parse_listing_query({}, max_limit=100).limit == 100
    with pytest.raises(ListingLimitTooLarge):
        parse_listing_query({"limit": "101"}, max_limit=100)


@pytest.mark.parametrize(
    ("path", "prefix"), [("photos", "photos/"), ("photos/", "photos/"), ("a/b//", "a/b/"), ("", ""), ("/", "/")]
)
def test_path(path: str, prefix: str) -> None:
    q = parse_listing_query({"path": path, "prefix": "ignored", "delimiter": "|"})
    assert (q.prefix, q.delimiter) == (prefix, "/")


def test_delimiter_and_text_params() -> None:
    assert parse_listing_query({"delimiter": "é"}).delimiter == "é"
    # several characters, as Swift 2.26 and later take them
    assert parse_listing_query({"delimiter": "-/"}).delimiter == "-/"
    assert parse_listing_query({"delimiter": "é" * 512}).delimiter == "é" * 512
    with pytest.raises(InvalidListingQuery, match="longer than"):
        parse_listing_query({"delimiter": "é" * 513})
    for key in ("marker", "end_marker", "prefix", "delimiter", "path"):
        if key in ("prefix", "delimiter", "path"):
            with pytest.raises(InvalidListingQuery, match="NUL"):
                parse_listing_query({key: "\x00" if key == "delimiter" else "a\x00"})
        with pytest.raises(InvalidListingQuery, match="UTF-8"):
            parse_listing_query({key: "\udcff"})
    # a marker is a bound, and names hold no NUL: Swift clients page "through x" with x + NUL
    q = parse_listing_query({"marker": "b1\x00", "end_marker": "a\x00"})
    assert (q.marker, q.end_marker) == ("b1\x00", "a\x00")


def test_reverse_and_swift_limits() -> None:
    for yes in ("on", "true", "1", "yes", "t", "Y", "TRUE"):
        assert parse_listing_query({"reverse": yes}).reverse
    for no in ("off", "false", "no", "", "0", "maybe"):
        assert not parse_listing_query({"reverse": no}).reverse
    # Swift ignores a limit that is not all digits; the Pithos path refuses it
    assert parse_listing_query({"limit": "5000.0"}, swift=True).limit == 10000
    with pytest.raises(InvalidListingQuery):
        parse_listing_query({"limit": "5000.0"})
    with pytest.raises(ListingLimitTooLarge):
        parse_listing_query({"limit": "10001"}, swift=True)


@pytest.mark.parametrize(
    ("fmt", "accept", "want"),
    [
        ("json", None, "json"),
        ("JSON", None, "json"),
        ("xml", "application/json", "xml"),
        ("plain", None, "plain"),
        ("text", None, "plain"),
        (None, None, "plain"),
        (None, "application/json", "json"),
        (None, "text/xml", "xml"),
        (None, "application/xml;q=0.9, application/json", "xml"),
        (None, "application/json;q=0, application/xml", "xml"),
        (None, "application/json; q=0.0", "plain"),
        (None, "text/html, */*", "plain"),
        (None, "image/png", "plain"),
        (None, "", "plain"),
    ],
)
def test_format_negotiation(fmt: str | None, accept: str | None, want: str) -> None:
    params = {} if fmt is None else {"format": fmt}
    assert parse_listing_query(params, accept=accept).format == want
    if fmt is None:
        assert negotiate_format(accept) == want


def test_bad_format() -> None:
    with pytest.raises(InvalidListingQuery, match="format"):
        parse_listing_query({"format": "yaml"})


# --- properties ----------------------------------------------------------------------------

_name = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)
_records = st.lists(
    st.one_of(
        st.builds(SubdirRecord, _name),
        st.builds(
            ObjectRecord,
            name=_name,
            size=st.integers(0, 2**50),
            hash=st.text(alphabet="0123456789abcdef", max_size=64),
            content_type=_name,
            last_modified=st.floats(0, 4e9),
            x_object_hash=st.none() | st.text(alphabet="0123456789abcdef", max_size=64),
            version=st.none() | st.integers(0, 2**40),
            version_timestamp=st.none() | st.floats(0, 4e9),
            modified_by=st.none() | _name,
            meta=st.dictionaries(st.text(alphabet="abcXYZ-_09.!#$~", min_size=1, max_size=10), _name, max_size=3),
        ),
    ),
    max_size=6,
)


@given(_records)
def test_json_and_xml_parse_back(records: list) -> None:
    docs = json.loads(format_object_listing(records, "json", container="c"))
    assert len(docs) == len(records)
    for d, r in zip(docs, records):
        assert (
            (d == {"subdir": r.name}) if isinstance(r, SubdirRecord) else (d["name"] == r.name and d["bytes"] == r.size)
        )
    root = ET.fromstring(format_object_listing(records, "xml", container="c"))  # always well-formed
    assert len(root) == len(records)
    plain = format_object_listing(records, "plain", container="c").decode()
    assert plain == "".join(r.name + "\n" for r in records)


@given(
    st.dictionaries(
        st.sampled_from(["limit", "marker", "end_marker", "prefix", "delimiter", "path", "format", "x"]),
        st.text(max_size=12),
    ),
    st.none() | st.text(max_size=30),
)
def test_arbitrary_params_only_raise_typed_errors(params: dict[str, str], accept: str | None) -> None:
    try:
        q = parse_listing_query(params, accept=accept)
    except ProtocolError:
        return
    assert 0 <= q.limit <= 10000
    assert q.delimiter is None or 0 < len(q.delimiter.encode()) <= MAX_DELIMITER
    assert q.format in ("plain", "json", "xml")
