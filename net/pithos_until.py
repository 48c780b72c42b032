"""The Pithos `until` parameter: a point in time for reading the past.

Pithos reads `until` as a UNIX timestamp; clients also send the dates they
got from the server, so an HTTP-date (IMF-fixdate, RFC 850, asctime, as in
`Last-Modified`) and an ISO 8601 date-time (as in listings' `last_modified`)
are accepted too. Fractions of a second are kept: `x_object_version_timestamp`
has six decimals and names one version exactly.

Anything else is refused with InvalidUntil (400) rather than ignored, so a typo
never silently shows the present instead of the past: empty, negative, not a
number or a date, or later than the last second of year 9999 (what an HTTP-date
can spell).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar, Final

from net.http_conditional import parse_http_date
from net.http_errors import BadRequest, InvalidHTTPDate

__all__ = ["MAX_UNTIL", "InvalidUntil", "parse_until"]

#: 9999-12-31T23:59:59Z, the last second an HTTP-date or a 4-digit ISO year can name.
MAX_UNTIL: Final = 253402300799.0
#: Longer values are refused before any parsing (an HTTP-date is 29 characters).
_MAX_LENGTH: Final = 64
_OWS = " \t"

_NUMBER = re.compile(r"([0-9]+)(?:\.([0-9]*))?", re.ASCII)
_ISO = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?)?"
    r"(?:([Zz])|([+-])([0-9]{2}):?([0-9]{2}))?",
    re.ASCII,
)


class InvalidUntil(BadRequest):
    """An `until` value that is not a time nefeli can read (400)."""

    status: ClassVar[int] = 400


def _seconds(whole: int, fraction: str | None) -> float:
    """`whole`.`fraction` as a float, its range checked on the exact whole seconds
    (a fraction of the last second may round the float up to MAX_UNTIL + 1)."""
    if whole < 0:
        raise InvalidUntil("until is before 1970")
    if whole > MAX_UNTIL:
        raise InvalidUntil("until is too far in the future")
    return float(f"{whole}.{(fraction or '0')[:9] or '0'}")


def _from_number(whole: str, fraction: str | None) -> float:
    digits = whole.lstrip("0") or "0"
    if len(digits) > len(str(int(MAX_UNTIL))):
        raise InvalidUntil("until is too far in the future")
    return _seconds(int(digits), fraction)


def _from_iso(m: re.Match[str]) -> float:
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = m.groups()
    tz = UTC
    if sign is not None:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if offset >= timedelta(hours=24) or int(off_m) > 59:
            raise InvalidUntil("until has a bad UTC offset")
        tz = timezone(-offset if sign == "-" else offset)
    try:
        when = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=tz
        )
    except ValueError:
        raise InvalidUntil("until is not a real date and time") from None
    # Whole seconds exactly (no float rounding of the epoch), then the fraction.
    return _seconds(int((when - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()), fraction)


def parse_until(value: str) -> float:
    """Seconds since the epoch (UTC) named by an `until` query value.

    Accepts `1700000000`, `1700000000.123456`, an HTTP-date, and ISO 8601
    `YYYY-MM-DD[THH:MM[:SS[.frac]]][Z|±HH:MM]` (no zone means UTC). Surrounding
    blanks are ignored. Raises InvalidUntil."""
    if len(value) > _MAX_LENGTH:
        raise InvalidUntil("until is too long")
    v = value.strip(_OWS)
    if not v:
        raise InvalidUntil("until is empty")
    if v[0] == "-" and _NUMBER.fullmatch(v[1:]):
        raise InvalidUntil("until must not be negative")
    if m := _NUMBER.fullmatch(v):
        seconds = _from_number(m.group(1), m.group(2))
    elif m := _ISO.fullmatch(v):
        seconds = _from_iso(m)
    else:
        try:
            seconds = _seconds(int(parse_http_date(v).timestamp()), None)
        except InvalidHTTPDate:
            raise InvalidUntil(
                "until must be a UNIX timestamp, an HTTP-date or an ISO 8601 date-time"
            ) from None
    return seconds
