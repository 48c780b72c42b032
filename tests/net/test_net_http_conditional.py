"""net.http_conditional: entity-tags, HTTP-dates and RFC 9110 §13.2.2 evaluation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.http_conditional import (
    ANY,
    ETag,
    Outcome,
    evaluate_preconditions,
    format_etag,
    format_http_date,
    if_range_allows,
    parse_etag,
    parse_etag_list,
    parse_etag_list_swift,
    parse_http_date,
    strong_match,
    weak_match,
)
from net.http_errors import InvalidETag, InvalidHTTPDate, ProtocolError

RFC_DATE = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)
RFC_EPOCH = 784111777
H = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# --- HTTP-date (RFC 9110 §5.6.7) ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # obsolete RFC 850 format
        "Sun Nov  6 08:49:37 1994",  # ANSI C's asctime() format
        "  Sun, 06 Nov 1994 08:49:37 GMT\t",
        "sun, 06 nov 1994 08:49:37 gmt",
        "Mon, 06 Nov 1994 08:49:37 GMT",  # weekday is not checked
    ],
)
def test_rfc9110_date_forms(text: str) -> None:
    assert parse_http_date(text) == RFC_DATE


def test_format_http_date() -> None:
    assert format_http_date(RFC_EPOCH) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_http_date(RFC_EPOCH + 0.999) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_http_date(RFC_DATE) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_http_date(RFC_DATE.replace(tzinfo=None)) == "Sun, 06 Nov 1994 08:49:37 GMT"
    athens = RFC_DATE.astimezone(timezone(timedelta(hours=2)))
    assert format_http_date(athens) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"


def test_two_digit_years() -> None:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", now=now).year == 1994
    assert parse_http_date("Tuesday, 01-Jan-76 00:00:00 GMT", now=now).year == 2076  # exactly 50 ahead: kept
    assert parse_http_date("Friday, 01-Jan-77 00:00:00 GMT", now=now).year == 1977
    assert parse_http_date("Friday, 01-Jan-26 00:00:00 GMT", now=now).year == 2026


def test_leap_second_reads_as_59() -> None:
    assert parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT") == datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1994-11-06T08:49:37Z",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 29 Feb 1900 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 0000 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT x",
        "Sun, ٠٦ Nov 1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
    ],
)
def test_invalid_dates(text: str) -> None:
    with pytest.raises(InvalidHTTPDate):
        parse_http_date(text)


# --- entity-tags (RFC 9110 §8.8.3) ----------------------------------------------------


def test_rfc9110_etag_examples() -> None:
    assert parse_etag('"xyzzy"') == ETag("xyzzy")
    assert parse_etag('W/"xyzzy"') == ETag("xyzzy", weak=True)
    assert parse_etag('""') == ETag("")
    assert str(ETag("xyzzy", weak=True)) == 'W/"xyzzy"'
    assert format_etag("xyzzy") == '"xyzzy"'


@pytest.mark.parametrize(
    ("a", "b", "strong", "weak"),
    [  # the table of RFC 9110 §8.8.3.2
        ('W/"1"', 'W/"1"', False, True),
        ('W/"1"', 'W/"2"', False, False),
        ('W/"1"', '"1"', False, True),
        ('"1"', '"1"', True, True),
    ],
)
def test_rfc9110_comparison_table(a: str, b: str, strong: bool, weak: bool) -> None:
    ta, tb = parse_etag(a), parse_etag(b)
    assert strong_match(ta, tb) is strong
    assert weak_match(ta, tb) is weak


def test_bare_hex_tags_as_pithos_clients_send() -> None:
    assert parse_etag(H.upper()) == ETag(H)
    assert parse_etag(f'"{H.upper()}"') == ETag(H)
    assert parse_etag("Not-Hex") == ETag("Not-Hex")  # only hex is case-folded
    assert parse_etag_list(f"{H}, d41d8cd98f00b204e9800998ecf8427e") == (
        ETag(H),
        ETag("d41d8cd98f00b204e9800998ecf8427e"),
    )


def test_rfc9110_if_match_examples() -> None:
    assert parse_etag_list('"xyzzy"') == (ETag("xyzzy"),)
    assert parse_etag_list('"xyzzy", "r2d2xxxx", "c3piozzzz"') == (ETag("xyzzy"), ETag("r2d2xxxx"), ETag("c3piozzzz"))
    assert parse_etag_list("*") is ANY
    assert parse_etag_list(" * ") is ANY
    assert parse_etag_list('W/"xyzzy", W/"r2d2xxxx"') == (ETag("xyzzy", True), ETag("r2d2xxxx", True))
    assert parse_etag_list('"a,b", "c"') == (ETag("a,b"), ETag("c"))  # a comma inside quotes
    assert parse_etag_list(' ,"a",, ,"b", ') == (ETag("a"), ETag("b"))  # empty elements skipped
    assert parse_etag_list("") == ()


@pytest.mark.parametrize(
    "text",
    [
        '"abc',
        'abc"',
        "W/abc",
        'W/"a"b',
        '"a" "b"',
        '*, "a"',
        '"a", *',
        "a b",
        '"a\x01"',
        "a\nb",
        "W/",
        '"a"x',
        '"a\x7f"',
        "a\x00",
    ],
)
def test_invalid_etag_lists(text: str) -> None:
    with pytest.raises(InvalidETag):
        parse_etag_list(text)


def test_non_ascii_is_obs_text_when_parsing_only() -> None:
    assert parse_etag('"€"') == ETag("€")  # aiohttp hands header bytes over as UTF-8
    assert parse_etag_list('é\udcff, "x"') == (ETag("é\udcff"), ETag("x"))
    for bad in ('a"b', "€", "a\x7f", "a b"):
        with pytest.raises(ValueError):
            format_etag(bad)


# --- evaluation (RFC 9110 §13.2.2) ------------------------------------------------------

OLD = "Sun, 06 Nov 1994 08:49:37 GMT"
NEWER = "Sun, 06 Nov 1994 08:49:38 GMT"
OLDER = "Sun, 06 Nov 1994 08:49:36 GMT"


def ev(
    method: str = "GET", etag: str | ETag | None = "abc", mtime: float | None = RFC_EPOCH + 0.5, **h: str
) -> Outcome:
    return evaluate_preconditions(method, etag=etag, last_modified=mtime, **h).outcome


P, N, F = Outcome.PROCEED, Outcome.NOT_MODIFIED, Outcome.PRECONDITION_FAILED


def test_no_conditions() -> None:
    d = evaluate_preconditions("GET", etag="abc", last_modified=0)
    assert d.proceed and d.status == 200 and d.outcome is P


def test_if_match() -> None:
    assert ev(if_match='"abc"') is P
    assert ev(if_match='"x", "abc"') is P
    assert ev(if_match='"x"') is F
    assert ev(if_match='W/"abc"') is F  # If-Match uses the strong comparison
    assert ev(if_match="*") is P
    assert ev(etag=None, if_match="*") is F  # no current representation
    assert ev("PUT", if_match='"x"') is F
    d = evaluate_preconditions("GET", etag="abc", last_modified=None, if_match='"x"')
    assert d.status == 412 and "If-Match" in d.reason


def test_if_unmodified_since() -> None:
    assert ev(if_unmodified_since=OLD) is P  # same second (sub-seconds dropped)
    assert ev(if_unmodified_since=NEWER) is P
    assert ev(if_unmodified_since=OLDER) is F
    assert ev("PUT", if_unmodified_since=OLDER) is F
    assert ev(if_unmodified_since="garbage") is P  # invalid date: ignored
    assert ev(mtime=None, if_unmodified_since=OLDER) is P  # no date known: ignored
    assert ev(if_match='"abc"', if_unmodified_since=OLDER) is P  # If-Match wins


def test_if_none_match() -> None:
    assert ev(if_none_match='"abc"') is N
    assert ev("HEAD", if_none_match='"abc"') is N
    assert ev(if_none_match='W/"abc"') is N  # weak comparison
    assert ev(if_none_match='"x"') is P
    assert ev("POST", if_none_match='"abc"') is F
    assert ev(if_none_match="*") is N
    assert ev("PUT", if_none_match="*") is F  # create-only PUT on an existing object
    assert ev("PUT", etag=None, if_none_match="*") is P  # ... on a new one
    assert ev("put", if_none_match='"abc"') is F  # methods compare case-insensitively


def test_if_modified_since() -> None:
    assert ev(if_modified_since=OLD) is N
    assert ev(if_modified_since=NEWER) is N
    assert ev(if_modified_since=OLDER) is P
    assert ev(if_modified_since="Sun, 06 Nov 1994 08:49:37") is P  # invalid: ignored
    assert ev("PUT", if_modified_since=NEWER) is P  # only for GET/HEAD
    assert ev(if_none_match='"x"', if_modified_since=NEWER) is P  # If-None-Match wins
    assert ev(mtime=None, if_modified_since=NEWER) is P


def test_order_of_evaluation() -> None:
    assert ev(if_match='"abc"', if_none_match='"abc"') is N
    assert ev("DELETE", if_match='"abc"', if_none_match='"abc"') is F
    assert ev(if_match='"x"', if_none_match='"x"') is F  # step 1 fails before step 3
    assert ev(if_unmodified_since=OLDER, if_modified_since=NEWER) is F


def test_pithos_bare_and_uppercase_tags() -> None:
    assert ev(etag=H, if_match=H.upper()) is P
    assert ev(etag=H.upper(), if_match=f'"{H}"') is P
    assert ev(etag=H, if_none_match=H) is N
    assert ev(etag=ETag("abc", weak=True), if_match='"abc"') is F


def test_unparsable_tag_lists_are_400() -> None:
    with pytest.raises(InvalidETag) as ei:
        ev(if_match='"abc')
    assert ei.value.status == 400
    with pytest.raises(InvalidETag):
        ev(if_none_match="a b")


def test_swift_reading_of_tag_lists() -> None:
    # Swift's swob.Match: split at commas, one pair of quotes off, the rest kept as text
    assert parse_etag_list_swift("*") is ANY
    assert parse_etag_list_swift(f'not-"{H}"') == (ETag(f'not-"{H}"'),)
    assert parse_etag_list_swift(f'"bogus", {H.upper()} ,, W/"w"') == (ETag("bogus"), ETag(H), ETag("w", weak=True))
    assert parse_etag_list_swift("") == ()


def test_lenient_evaluation_never_refuses_a_tag_list() -> None:
    # what Swift's functional tests send: the quoted ETag with text in front
    assert evaluate_preconditions("GET", etag=H, last_modified=None, if_match=f'not-"{H}"', lenient=True).outcome is F
    assert evaluate_preconditions("GET", etag=H, last_modified=None, if_none_match=f'not-"{H}"', lenient=True).outcome is P
    assert evaluate_preconditions("HEAD", etag=H, last_modified=None, if_none_match=f'"{H}"', lenient=True).outcome is N
    with pytest.raises(InvalidETag):  # the strict (Pithos) reading still refuses it
        evaluate_preconditions("GET", etag=H, last_modified=None, if_match=f'not-"{H}"')


@given(st.text(max_size=60))
def test_swift_tag_lists_never_raise(text: str) -> None:
    tags = parse_etag_list_swift(text)
    assert tags is ANY or all(isinstance(t, ETag) for t in tags)


def test_if_range() -> None:
    assert if_range_allows(None, etag="abc", last_modified=RFC_EPOCH)
    assert if_range_allows('"abc"', etag="abc", last_modified=RFC_EPOCH)
    assert if_range_allows("ABC", etag="abc", last_modified=RFC_EPOCH)
    assert not if_range_allows('W/"abc"', etag="abc", last_modified=RFC_EPOCH)
    assert not if_range_allows('"x"', etag="abc", last_modified=RFC_EPOCH)
    assert not if_range_allows('"x"', etag=None, last_modified=RFC_EPOCH)
    assert if_range_allows(OLD, etag="abc", last_modified=RFC_EPOCH + 0.3)
    assert not if_range_allows(NEWER, etag="abc", last_modified=RFC_EPOCH)
    assert not if_range_allows(OLD, etag="abc", last_modified=None)
    assert not if_range_allows("not a date", etag="abc", last_modified=RFC_EPOCH)
    assert not if_range_allows('"unterminated', etag="abc", last_modified=RFC_EPOCH)


# --- properties ----------------------------------------------------------------------------


@given(st.integers(0, 253402300799))
def test_date_round_trip(t: int) -> None:
    text = format_http_date(t)
    assert len(text) == 29
    assert parse_http_date(text) == datetime.fromtimestamp(t, UTC)


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)))
def test_asctime_and_rfc850_agree_with_imf(d: datetime) -> None:
    d = d.replace(microsecond=0, tzinfo=UTC)
    asctime = d.strftime("%a %b ") + f"{d.day:2d}" + d.strftime(" %H:%M:%S ") + f"{d.year:04d}"
    assert parse_http_date(asctime) == d
    rfc850 = d.strftime("%A, %d-%b-") + f"{d.year % 100:02d}" + d.strftime(" %H:%M:%S GMT")
    assert parse_http_date(rfc850, now=d) == d  # a two-digit year of this century


_opaque = st.text(alphabet=st.characters(codec="ascii", exclude_characters='"\x7f', min_codepoint=0x21), max_size=20)


@given(st.lists(st.tuples(_opaque, st.booleans()), max_size=8))
def test_etag_list_round_trip(tags: list[tuple[str, bool]]) -> None:
    header = ", ".join(format_etag(o, weak=w) for o, w in tags)
    parsed = parse_etag_list(header)
    assert parsed == tuple(
        ETag(o.lower() if o and all(c in "0123456789abcdefABCDEF" for c in o) else o, w) for o, w in tags
    )


_header = st.none() | st.text(max_size=40) | st.text(alphabet='W/"*, \tabc0123', max_size=30)


@given(st.text(max_size=60))
def test_arbitrary_text_only_raises_typed_errors(text: str) -> None:
    for fn in (parse_etag, parse_etag_list, parse_http_date):
        try:
            fn(text)
        except ProtocolError:
            pass
    if_range_allows(text, etag="abc", last_modified=0)  # never raises


@given(
    st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE"]),
    _header,
    _header,
    _header,
    _header,
    st.none() | st.just("abc"),
)
def test_evaluation_never_crashes(
    method: str, im: str | None, inm: str | None, ims: str | None, ius: str | None, etag: str | None
) -> None:
    try:
        d = evaluate_preconditions(
            method,
            etag=etag,
            last_modified=RFC_EPOCH,
            if_match=im,
            if_none_match=inm,
            if_modified_since=ims,
            if_unmodified_since=ius,
        )
    except InvalidETag:
        return
    assert d.status == _rfc9110_status(method, etag, RFC_EPOCH, im, inm, ims, ius)


def _rfc9110_status(
    method: str, etag: str | None, mtime: int, im: str | None, inm: str | None, ims: str | None, ius: str | None
) -> int:
    """RFC 9110 §13.2.2 step by step, written from the RFC: the one right answer."""

    def date(h: str) -> float | None:
        try:
            return parse_http_date(h).timestamp()
        except InvalidHTTPDate:
            return None  # an invalid date: the field is ignored

    def listed(h: str, *, weak: bool) -> bool:
        tags = parse_etag_list(h)
        if etag is None:
            return False
        if not isinstance(tags, tuple):  # ANY
            return True
        return any(t.opaque == etag and (weak or not t.weak) for t in tags)

    safe = method in ("GET", "HEAD")
    if im is not None:  # step 1
        if not listed(im, weak=False):
            return 412
    elif ius is not None and (since := date(ius)) is not None and mtime > since:  # step 2
        return 412
    if inm is not None:  # step 3
        if listed(inm, weak=True):
            return 304 if safe else 412
    elif safe and ims is not None and (since := date(ims)) is not None and mtime <= since:  # step 4
        return 304
    return 200


@pytest.mark.parametrize(
    ("method", "im", "inm", "ims", "ius", "status"),
    [
        ("GET", None, None, "Sun, 06 Nov 1994 08:49:37 GMT", None, 304),
        ("GET", None, None, "Sun, 06 Nov 1994 08:49:36 GMT", None, 200),
        ("PUT", None, None, "Sun, 06 Nov 1994 08:49:37 GMT", None, 200),  # If-Modified-Since: GET/HEAD only
        ("PUT", None, None, None, "Sun, 06 Nov 1994 08:49:36 GMT", 412),
        ("PUT", '"abc"', None, None, "Sun, 06 Nov 1994 08:49:36 GMT", 200),  # If-Match wins over the date
        ("GET", None, '"abc"', "Sun, 06 Nov 1994 08:49:36 GMT", None, 304),  # If-None-Match wins
        ("GET", None, 'W/"abc"', None, None, 304),  # weak comparison
        ("PUT", 'W/"abc"', None, None, None, 412),  # strong comparison
        ("DELETE", None, "*", None, None, 412),
        ("GET", None, None, "not a date", None, 200),
    ],
)
def test_the_rfc_order_by_hand(
    method: str, im: str | None, inm: str | None, ims: str | None, ius: str | None, status: int
) -> None:
    d = evaluate_preconditions(
        method, etag="abc", last_modified=RFC_EPOCH, if_match=im, if_none_match=inm,
        if_modified_since=ims, if_unmodified_since=ius,
    )
    assert d.status == status == _rfc9110_status(method, "abc", RFC_EPOCH, im, inm, ims, ius)
