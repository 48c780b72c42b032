"""net.http_range: Range parsing and resolution, Content-Range, multipart/byteranges, and
Pithos partial-update Content-Range, against RFC 9110 §14 examples and properties."""

from __future__ import annotations

import email.parser
import email.policy
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.http_errors import (
    InvalidContentRange,
    InvalidRange,
    ProtocolError,
    RangeNotSatisfiable,
    UnsupportedRangeUnit,
)
from net.http_range import (
    MAX_RANGES,
    ByteRange,
    MultipartByteranges,
    Span,
    SuffixRange,
    UpdatePlan,
    UpdateRange,
    content_range,
    format_range,
    parse_range,
    parse_update_content_range,
    plan_update,
    resolve_ranges,
    select_ranges,
    unsatisfied_content_range,
)

# --- RFC 9110 §14.1.2 examples, for a representation of 10000 bytes --------------------


@pytest.mark.parametrize(
    ("header", "specs", "spans"),
    [
        ("bytes=0-499", (ByteRange(0, 499),), [Span(0, 499)]),  # the first 500 bytes
        ("bytes=500-999", (ByteRange(500, 999),), [Span(500, 999)]),  # the second 500 bytes
        ("bytes=-500", (SuffixRange(500),), [Span(9500, 9999)]),  # the final 500 bytes
        ("bytes=9500-", (ByteRange(9500),), [Span(9500, 9999)]),  # the final 500 bytes
        ("bytes=0-0,-1", (ByteRange(0, 0), SuffixRange(1)), [Span(0, 0), Span(9999, 9999)]),  # first and last
        ("bytes=500-600,601-999", (ByteRange(500, 600), ByteRange(601, 999)), [Span(500, 999)]),  # adjacent: merged
        ("bytes=500-700,601-999", (ByteRange(500, 700), ByteRange(601, 999)), [Span(500, 999)]),  # overlapping: merged
    ],
)
def test_rfc9110_range_examples(header: str, specs: tuple, spans: list[Span]) -> None:
    assert parse_range(header) == specs
    assert resolve_ranges(specs, 10000) == spans
    assert select_ranges(header, 10000) == spans


@pytest.mark.parametrize(
    ("span", "size", "value"),
    [  # RFC 9110 §14.4 examples
        (Span(0, 499), 1234, "bytes 0-499/1234"),
        (Span(500, 999), 1234, "bytes 500-999/1234"),
        (Span(500, 1233), 1234, "bytes 500-1233/1234"),
        (Span(734, 1233), 1234, "bytes 734-1233/1234"),
    ],
)
def test_rfc9110_content_range_examples(span: Span, size: int, value: str) -> None:
    assert content_range(span, size) == value
    assert span.length == span.end - span.start + 1


def test_unsatisfied_content_range() -> None:
    assert unsatisfied_content_range(1234) == "bytes */1234"
    with pytest.raises(RangeNotSatisfiable) as ei:
        select_ranges("bytes=1234-", 1234)
    assert ei.value.status == 416
    assert ei.value.content_range == "bytes */1234"
    assert ei.value.size == 1234


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-499",
        "Bytes=0-499",
        "BYTES=0-499",
        " bytes = 0 - 499 ",
        "bytes=\t0-499\t",
        "bytes=,0-499,",
        "bytes=0-499,,",
    ],
)
def test_whitespace_case_and_empty_elements_tolerated(header: str) -> None:
    assert parse_range(header) == (ByteRange(0, 499),)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "bytes",
        "bytes=",
        "bytes=,",
        "bytes=-",
        "bytes=5-1",  # last before first
        "bytes=a-b",
        "bytes=1-2-3",
        "bytes=0-1;x",
        "bytes=0 1-2",
        "bytes=+1-2",
        "bytes=0x10-20",
        "bytes=²-3",  # str.isdigit() would accept this
        "bytes=٣-4",  # Arabic-Indic digit: int() would accept this
        "bytes 0-1",
        "=0-1",
        "by tes=0-1",
    ],
)
def test_invalid_ranges(header: str) -> None:
    with pytest.raises(InvalidRange) as ei:
        parse_range(header)
    assert ei.value.status == 400 and ei.value.reason
    assert select_ranges(header, 100) is None  # RFC 9110 §14.2: ignore it, send 200


def test_other_units_are_ignored() -> None:
    with pytest.raises(UnsupportedRangeUnit):
        parse_range("items=0-9")
    assert select_ranges("items=0-9", 100) is None
    assert select_ranges(None, 100) is None


def test_too_many_ranges_ignored() -> None:
    ok = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(MAX_RANGES))
    assert len(parse_range(ok)) == MAX_RANGES
    bad = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(MAX_RANGES + 1))
    with pytest.raises(InvalidRange, match="more than"):
        parse_range(bad)
    assert select_ranges(bad, 10**6) is None
    with pytest.raises(InvalidRange):
        parse_range("bytes=" + "," * 10**5 + "0-1")
    assert len(parse_range("bytes=0-1,2-3", max_ranges=2)) == 2


def test_huge_numbers_are_clamped_not_crashing() -> None:
    assert select_ranges("bytes=0-" + "9" * 5000, 10) == [Span(0, 9)]
    assert select_ranges("bytes=-" + "9" * 5000, 10) == [Span(0, 9)]
    with pytest.raises(RangeNotSatisfiable):
        select_ranges("bytes=" + "9" * 5000 + "-", 10)
    assert parse_range("bytes=" + "0" * 5000 + "7-8") == (ByteRange(7, 8),)


def test_clipping_and_unsatisfiable_members() -> None:
    assert select_ranges("bytes=9000-20000", 10000) == [Span(9000, 9999)]
    assert select_ranges("bytes=-20000", 10000) == [Span(0, 9999)]
    # an unsatisfiable member is dropped, the rest served
    assert select_ranges("bytes=20000-30000,0-1", 10000) == [Span(0, 1)]
    assert select_ranges("bytes=-0,5-6", 10000) == [Span(5, 6)]
    for h in ("bytes=-0", "bytes=10000-", "bytes=10000-10001,-0"):
        with pytest.raises(RangeNotSatisfiable):
            select_ranges(h, 10000)


def test_zero_length_object() -> None:
    with pytest.raises(RangeNotSatisfiable) as ei:
        select_ranges("bytes=0-", 0)
    assert ei.value.content_range == "bytes */0"
    # a suffix is satisfiable but empty: no Content-Range can say it, so 200 with no body
    assert resolve_ranges(parse_range("bytes=-5"), 0) == []
    assert select_ranges("bytes=-5", 0) is None
    with pytest.raises(RangeNotSatisfiable):
        select_ranges("bytes=-0", 0)


def test_coalescing_keeps_request_order() -> None:
    assert select_ranges("bytes=900-999,0-99", 1000) == [Span(900, 999), Span(0, 99)]
    assert select_ranges("bytes=100-200,0-10,5-20,15-30", 1000) == [Span(100, 200), Span(0, 30)]
    assert select_ranges("bytes=0-0,0-0,0-0", 10) == [Span(0, 0)]
    # many overlapping ranges of the whole object collapse to one
    assert select_ranges("bytes=" + ",".join(["0-"] * 50), 10) == [Span(0, 9)]
    # small gaps are bridged only when asked
    assert select_ranges("bytes=0-9,20-29", 100) == [Span(0, 9), Span(20, 29)]
    assert select_ranges("bytes=0-9,20-29", 100, coalesce_gap=10) == [Span(0, 29)]
    assert select_ranges("bytes=0-9,20-29", 100, coalesce_gap=9) == [Span(0, 9), Span(20, 29)]


def test_format_range() -> None:
    specs = (ByteRange(0, 499), ByteRange(9500), SuffixRange(500))
    assert format_range(specs) == "bytes=0-499,9500-,-500"
    assert parse_range(format_range(specs)) == specs


# --- multipart/byteranges -------------------------------------------------------------------

DATA = bytes(range(256)) * 40  # 10240 bytes


def test_multipart_exact_bytes() -> None:
    m = MultipartByteranges([Span(0, 3), Span(10, 11)], 20, "text/plain", boundary="XYZ")
    data = b"abcdefghijklmnopqrst"
    expected = (
        b"--XYZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-3/20\r\n\r\nabcd"
        b"\r\n--XYZ\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-11/20\r\n\r\nkl"
        b"\r\n--XYZ--\r\n"
    )
    assert m.render(data) == expected
    assert m.content_length == len(expected)
    assert m.content_type == "multipart/byteranges; boundary=XYZ"
    assert list(m.chunks())[1] == Span(0, 3)
    heads = list(m.parts())
    assert heads[0][0].startswith(b"--XYZ\r\n") and heads[1][0].startswith(b"\r\n--XYZ\r\n")
    assert m.tail == b"\r\n--XYZ--\r\n"


def test_multipart_without_part_content_type() -> None:
    m = MultipartByteranges([Span(0, 0), Span(2, 2)], 3, None, boundary="b")
    assert m.render(b"xyz") == (
        b"--b\r\nContent-Range: bytes 0-0/3\r\n\r\nx\r\n--b\r\nContent-Range: bytes 2-2/3\r\n\r\nz\r\n--b--\r\n"
    )


def test_multipart_parses_back_with_email_parser() -> None:
    spans = [Span(500, 999), Span(7000, 7999), Span(0, 0)]
    m = MultipartByteranges(spans, len(DATA), "application/pdf")
    body = m.render(DATA)
    assert len(body) == m.content_length
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + m.content_type.encode() + b"\r\n\r\n" + body
    )
    parts = list(msg.iter_parts())
    assert len(parts) == 3
    for part, span in zip(parts, spans):
        assert part["Content-Type"] == "application/pdf"
        assert part["Content-Range"] == f"bytes {span.start}-{span.end}/{len(DATA)}"
        assert part.get_payload(decode=True) == DATA[span.start : span.end + 1]


def test_multipart_random_boundary_and_validation() -> None:
    a = MultipartByteranges([Span(0, 1)], 2)
    b = MultipartByteranges([Span(0, 1)], 2)
    assert a.boundary != b.boundary and len(a.boundary) == 32
    for bad in ("", "x" * 71, "a\r\nb", "ends with space ", "bad\x00"):
        with pytest.raises(ValueError):
            MultipartByteranges([Span(0, 1)], 2, boundary=bad)
    with pytest.raises(ValueError):
        MultipartByteranges([], 2)
    with pytest.raises(ValueError):
        MultipartByteranges([Span(0, 2)], 2)
    with pytest.raises(ValueError):
        MultipartByteranges([Span(0, 1)], 2, "text/plain\r\nX-Evil: 1")
    with pytest.raises(ValueError):
        a.render(b"abc")


# --- request Content-Range of Pithos partial updates ---------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("bytes 0-9/*", UpdateRange(0, 9, None)),
        ("bytes 5-/*", UpdateRange(5, None, None)),
        ("bytes */*", UpdateRange(None)),
        ("bytes 0-9/100", UpdateRange(0, 9, 100)),
        ("bytes 10-/100", UpdateRange(10, None, 100)),
        (" Bytes  3-4/* ", UpdateRange(3, 4, None)),
    ],
)
def test_update_content_range(value: str, parsed: UpdateRange) -> None:
    assert parse_update_content_range(value) == parsed
    assert parse_update_content_range(parsed.format()) == parsed


@pytest.mark.parametrize(
    "value",
    [
        "",
        "bytes",
        "bytes 0-9",
        "items 0-9/*",
        "bytes 9-0/*",
        "bytes 0-100/100",
        "bytes 100-/100",
        "bytes */100",
        "bytes -5/*",
        "bytes a-b/*",
        "bytes 0-9/x",
        "bytes 0-9/-1",
        "bytes */",
        "bytes=0-9/*",
    ],
)
def test_bad_update_content_range(value: str) -> None:
    with pytest.raises(InvalidContentRange) as ei:
        parse_update_content_range(value)
    assert ei.value.status == 400


def test_plan_update() -> None:
    p = parse_update_content_range
    assert plan_update(p("bytes */*"), 100, 10) == UpdatePlan(100, 10)  # append
    assert plan_update(p("bytes 10-19/*"), 100, 10) == UpdatePlan(10, 10)
    assert plan_update(p("bytes 95-/*"), 100, 10) == UpdatePlan(95, 10)  # grows the object
    assert plan_update(p("bytes 100-/*"), 100, 10) == UpdatePlan(100, 10)  # at the end: append
    assert plan_update(p("bytes 10-19/100"), 100, 10) == UpdatePlan(10, 10)  # size checked, fits
    with pytest.raises(RangeNotSatisfiable) as ei:
        plan_update(p("bytes 101-/*"), 100, 10)
    assert ei.value.content_range == "bytes */100"
    with pytest.raises(InvalidContentRange):
        plan_update(p("bytes 10-19/*"), 100, 11)  # body length differs from the range
    # a source object longer than the range is cut to it (kamaki's truncate: 0-8 of itself)
    assert plan_update(p("bytes 0-8/*"), 36, 36, from_source=True) == UpdatePlan(0, 9)
    with pytest.raises(InvalidContentRange):
        plan_update(p("bytes 0-8/*"), 36, 5, from_source=True)  # a shorter source still is not enough
    with pytest.raises(RangeNotSatisfiable):
        plan_update(p("bytes 10-19/50"), 100, 10)  # total differs from the object size
    with pytest.raises(RangeNotSatisfiable):
        plan_update(p("bytes 95-/100"), 100, 10)  # would grow an object whose size was pinned


# --- properties ----------------------------------------------------------------------------

_spec = st.one_of(
    st.builds(ByteRange, st.integers(0, 10**6), st.none()),
    st.integers(0, 10**6).flatmap(lambda a: st.builds(ByteRange, st.just(a), st.integers(a, a + 10**6))),
    st.builds(SuffixRange, st.integers(0, 10**6)),
)


@given(st.lists(_spec, min_size=1, max_size=MAX_RANGES))
def test_format_parse_round_trip(specs: list) -> None:
    assert parse_range(format_range(specs)) == tuple(specs)


_range_text = st.text(alphabet="bytes=0123456789-, \t;*/xB", max_size=60) | st.text(max_size=60)


@given(_range_text, st.integers(0, 100))
def test_arbitrary_text_only_raises_typed_errors(text: str, size: int) -> None:
    for fn in (parse_range, parse_update_content_range):
        try:
            fn(text)
        except ProtocolError:
            pass
    try:
        spans = select_ranges(text, size)
    except RangeNotSatisfiable:
        return
    assert spans is None or all(0 <= s.start <= s.end < size for s in spans)


@given(
    st.lists(
        st.one_of(
            st.builds(ByteRange, st.integers(0, 80), st.none()),
            st.integers(0, 80).flatmap(lambda a: st.builds(ByteRange, st.just(a), st.integers(a, 90))),
            st.builds(SuffixRange, st.integers(0, 90)),
        ),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 64),
    st.integers(0, 5),
)
def test_resolution_covers_exactly_what_was_asked(specs: list, size: int, gap: int) -> None:
    wanted: set[int] = set()
    for s in specs:
        if isinstance(s, SuffixRange):
            wanted |= set(range(max(0, size - s.length), size)) if s.length else set()
        elif s.first < size:
            wanted |= set(range(s.first, size if s.last is None else min(s.last + 1, size)))
    try:
        spans = resolve_ranges(specs, size, coalesce_gap=gap)
    except RangeNotSatisfiable:
        assert not wanted
        assert all(
            (isinstance(s, SuffixRange) and s.length == 0) or (isinstance(s, ByteRange) and s.first >= size)
            for s in specs
        )
        return
    got: set[int] = set()
    for s in spans:
        assert 0 <= s.start <= s.end < size
        got |= set(range(s.start, s.end + 1))
    assert wanted <= got
    # with no gap bridging nothing extra is sent; with it, only gaps of at most `gap` bytes
    if gap == 0:
        assert got == wanted
    assert len(got - wanted) <= gap * max(0, len(spans) + len(specs))
    ordered = sorted(spans, key=lambda s: s.start)
    for a, b in itertools.pairwise(ordered):
        assert b.start > a.end + 1 + gap  # disjoint, not adjacent, not within the gap


@given(
    st.lists(st.tuples(st.integers(0, 299), st.integers(0, 299)), min_size=1, max_size=8),
    st.sampled_from([None, "application/octet-stream"]),
)
def test_multipart_length_is_exact(pairs: list[tuple[int, int]], ctype: str | None) -> None:
    data = bytes(range(256)) + bytes(range(44))
    spans = [Span(min(a, b), max(a, b)) for a, b in pairs]
    m = MultipartByteranges(spans, len(data), ctype)
    body = m.render(data)
    assert len(body) == m.content_length
    assert body.endswith(b"--" + m.boundary.encode() + b"--\r\n")
    assert body.count(b"Content-Range: ") == len(spans)
