"""net.pithos_until: the `until` parameter as a timestamp, an HTTP-date or ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from net.http_conditional import format_http_date
from net.http_errors import ProtocolError
from net.pithos_until import MAX_UNTIL, InvalidUntil, parse_until

BLANKS = st.text(" \t", max_size=3)
SECONDS = st.integers(min_value=0, max_value=int(MAX_UNTIL))
MICROS = st.integers(min_value=0, max_value=999_999)
# datetimes whose UTC time lies between the epoch and the end of year 9999
MOMENTS = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(lambda m: timedelta(minutes=m))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("1700000000", 1700000000.0),
        (" 1700000000.5\t", 1700000000.5),
        ("1322813441.565891", 1322813441.565891),
        ("0001700000000", 1700000000.0),
        ("5.", 5.0),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784111777.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 784111777.0),
        ("Sun Nov  6 08:49:37 1994", 784111777.0),
        ("2011-12-02T08:10:41.565891+00:00", 1322813441.565891),
        ("2011-12-02T08:10:41Z", 1322813441.0),
        ("2011-12-02 08:10:41", 1322813441.0),
        ("2011-12-02T10:10:41+02:00", 1322813441.0),
        ("2011-12-02T07:10:41-0100", 1322813441.0),
        ("2011-12-02", 1322784000.0),
        ("2011-12-02T08:10", 1322813400.0),
        ("9999-12-31T23:59:59Z", MAX_UNTIL),
    ],
)
def test_until_values(value: str, seconds: float) -> None:
    assert parse_until(value) == pytest.approx(seconds, abs=1e-6)


@pytest.mark.parametrize(
    "value",
    ["", "  ", "abc", "-1", "-0.5", "+5", "1e9", "0x10", "١٢", "1 2", "1.2.3", ".5",
     str(int(MAX_UNTIL) + 1), "9" * 40, "1" * 100,
     "2011-13-01", "2011-02-30", "2011-12-02T24:00:00", "2011-12-02T08:10:60", "1969-12-31T23:59:59Z",
     "1970-01-01T00:30:00+01:00", "2011-12-02T08:10:41+24:00", "2011-12-02T08:10:41+01:60", "10000-01-01",
     "Sun, 06 Nov 1994 08:49:37", "Sun, 31 Feb 1994 08:49:37 GMT", "yesterday", "now"],
)
def test_bad_values_are_400(value: str) -> None:
    with pytest.raises(InvalidUntil) as info:
        parse_until(value)
    assert info.value.status == 400 and info.value.reason


@given(SECONDS, MICROS, BLANKS, BLANKS)
@example(int(MAX_UNTIL), 999_985, "", "")  # the last second: its float rounds up to MAX_UNTIL + 1
def test_timestamps_round_trip(seconds: int, micros: int, before: str, after: str) -> None:
    text = f"{seconds}.{micros:06d}"
    assert parse_until(before + text + after) == pytest.approx(seconds + micros / 1e6, abs=1e-6)
    assert parse_until(str(seconds)) == seconds


@given(SECONDS)
def test_http_dates_round_trip(seconds: int) -> None:
    assert parse_until(format_http_date(seconds)) == seconds


@given(MOMENTS, OFFSETS)
def test_iso_dates_round_trip(moment: datetime, offset: timedelta) -> None:
    local = moment.astimezone(timezone(offset))
    expected = moment.timestamp()
    assert parse_until(local.isoformat()) == pytest.approx(expected, abs=1e-6)
    assert parse_until(moment.replace(tzinfo=None).isoformat()) == pytest.approx(expected, abs=1e-6)


@given(st.integers(min_value=-(10**30), max_value=10**30), st.integers(min_value=0, max_value=99))
def test_every_integer_is_a_time_or_a_400(n: int, frac: int) -> None:
    for text in (str(n), f"{n}.{frac:02d}"):
        try:
            seconds = parse_until(text)
        except InvalidUntil as exc:
            assert exc.status == 400 and (n < 0 or n > MAX_UNTIL)
        else:
            assert 0 <= n <= MAX_UNTIL and int(seconds) == n


@given(st.text(max_size=70))
def test_any_text_is_a_time_or_a_400(value: str) -> None:
    """Never an exception other than the codec's own; an accepted time is in range."""
    try:
        seconds = parse_until(value)
    except ProtocolError as exc:
        assert isinstance(exc, InvalidUntil) and exc.status == 400 and exc.reason
        return
    assert 0 <= seconds < MAX_UNTIL + 1
