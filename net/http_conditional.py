"""Conditional requests (RFC 9110 §13): entity-tags, HTTP-dates, and the §13.2.2
evaluation order that turns If-Match / If-None-Match / If-Modified-Since /
If-Unmodified-Since into proceed, 304 or 412.

Pithos and Swift clients often send bare hex digests instead of quoted entity-tags, so an
unquoted token is accepted as a strong tag, and an all-hex tag is compared without regard
to case (a digest is the same whatever the case of its hex).
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Final

from net.http_errors import InvalidETag, InvalidHTTPDate

__all__ = [
    "ANY",
    "Decision",
    "ETag",
    "Outcome",
    "evaluate_preconditions",
    "format_etag",
    "format_http_date",
    "if_range_allows",
    "parse_etag",
    "parse_etag_list",
    "parse_etag_list_swift",
    "parse_http_date",
    "strong_match",
    "weak_match",
]

_HEX = frozenset("0123456789abcdefABCDEF")
_OWS = " \t"


def _etagc_ok(text: str, *, commas: bool) -> bool:
    """etagc = %x21 / %x23-7E / obs-text. Any non-ASCII character counts as obs-text: the
    server decodes header bytes as UTF-8 (or surrogate escapes), not as Latin-1."""
    return all(c == "!" or "#" <= c <= "~" or c >= "\x80" for c in text) and (commas or "," not in text)


def _normalise(opaque: str) -> str:
    return opaque.lower() if opaque and _HEX.issuperset(opaque) else opaque


@dataclass(frozen=True, slots=True)
class ETag:
    """An entity-tag: `opaque` is the text between the quotes, all-hex ones in lowercase."""

    opaque: str
    weak: bool = False

    def __str__(self) -> str:
        return format_etag(self.opaque, weak=self.weak)


class _Any:
    """The `*` of If-Match / If-None-Match: any current representation. Use the ANY singleton."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY"


ANY: Final = _Any()


def format_etag(opaque: str, *, weak: bool = False) -> str:
    """`"opaque"` or `W/"opaque"`, the ETag header value; ValueError for characters an
    entity-tag cannot hold."""
    if not opaque.isascii() or not _etagc_ok(opaque, commas=True):
        raise ValueError(f"{opaque!r} cannot be an entity-tag")
    return ('W/"' if weak else '"') + opaque + '"'


def _parse_one(item: str) -> ETag:
    weak = False
    text = item
    if text.startswith("W/"):
        weak, text = True, text[2:]
        if not text.startswith('"'):
            raise InvalidETag("a weak entity-tag must be quoted")
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise InvalidETag(f"unterminated entity-tag {item[:40]!r}")
        opaque = text[1:-1]
        if not _etagc_ok(opaque, commas=True):
            raise InvalidETag(f"bad character in entity-tag {item[:40]!r}")
        return ETag(_normalise(opaque), weak)
    # Unquoted: what Pithos/Swift clients send (a bare hex digest).
    if not text or text == "*" or not _etagc_ok(text, commas=False):
        raise InvalidETag(f"bad entity-tag {item[:40]!r}")
    return ETag(_normalise(text))


def parse_etag(value: str) -> ETag:
    """One entity-tag (an ETag or If-Range value), quoted or bare. Raises InvalidETag."""
    return _parse_one(value.strip(_OWS))


_ITEM = re.compile(r'((?:W/)?"[^"]*"|[^,"\s]+)[ \t]*(?:,|$)', re.ASCII)


def parse_etag_list(value: str) -> _Any | tuple[ETag, ...]:
    """If-Match / If-None-Match: `*` gives ANY, otherwise the listed tags (empty list
    elements are skipped, RFC 9110 §5.6.1). Raises InvalidETag."""
    v = value.strip(_OWS)
    if v == "*":
        return ANY
    tags: list[ETag] = []
    pos = 0
    while pos < len(v):
        if v[pos] in _OWS or v[pos] == ",":
            pos += 1
            continue
        m = _ITEM.match(v, pos)
        if m is None:
            raise InvalidETag(f"bad entity-tag list near {v[pos : pos + 40]!r}")
        tags.append(_parse_one(m.group(1)))
        pos = m.end()
    return tuple(tags)


def parse_etag_list_swift(value: str) -> _Any | tuple[ETag, ...]:
    """If-Match / If-None-Match read as Swift reads them: the value split at commas, one
    pair of surrounding quotes taken off each item, anything else kept as opaque text.
    Never raises: an item no entity-tag can equal (`not-"abc"`) simply matches nothing,
    so `If-Match: not-"abc"` is a 412 and `If-None-Match` a pass, as Swift clients expect."""
    v = value.strip(_OWS)
    if v == "*":
        return ANY
    tags: list[ETag] = []
    for item in v.split(","):
        text = item.strip(_OWS)
        if not text:
            continue
        weak = text.startswith('W/"')
        if weak:
            text = text[2:]
        if len(text) > 1 and text[0] == '"' and text[-1] == '"':
            text = text[1:-1]
        tags.append(ETag(_normalise(text), weak))
    return tuple(tags)


def strong_match(a: ETag, b: ETag) -> bool:
    """RFC 9110 §8.8.3.2 strong comparison: both strong and the same."""
    return not a.weak and not b.weak and a.opaque == b.opaque


def weak_match(a: ETag, b: ETag) -> bool:
    """RFC 9110 §8.8.3.2 weak comparison: the same opaque text, weakness ignored."""
    return a.opaque == b.opaque


# --- HTTP-date (RFC 9110 §5.6.7) --------------------------------------------------------

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_LONG_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NO = {m.lower(): i for i, m in enumerate(_MONTHS, 1)}
_D = "|".join(_DAYS)
_M = "|".join(_MONTHS)
_T = r"(\d\d):(\d\d):(\d\d)"
_IMF = re.compile(rf"(?:{_D}), (\d\d) ({_M}) (\d{{4}}) {_T} GMT", re.IGNORECASE | re.ASCII)
_RFC850 = re.compile(rf"(?:{'|'.join(_LONG_DAYS)}), (\d\d)-({_M})-(\d\d) {_T} GMT", re.IGNORECASE | re.ASCII)
_ASCTIME = re.compile(rf"(?:{_D}) ({_M}) ([ \d]\d) {_T} (\d{{4}})", re.IGNORECASE | re.ASCII)


def parse_http_date(value: str, *, now: datetime | None = None) -> datetime:
    """Parse an IMF-fixdate, RFC 850 or asctime date into an aware UTC datetime.

    Day and month names match without regard to case; the weekday is not checked against
    the date. A two-digit RFC 850 year more than 50 years ahead of `now` is taken as the
    last such year in the past (RFC 9110 §5.6.7). A leap second 60 reads as 59.
    Raises InvalidHTTPDate.
    """
    v = value.strip(_OWS)
    if m := _IMF.fullmatch(v):
        day, mon, year, hh, mm, ss = m.groups()
        y = int(year)
    elif m := _RFC850.fullmatch(v):
        day, mon, yy, hh, mm, ss = m.groups()
        ref = (now or datetime.now(UTC)).year
        y = ref // 100 * 100 + int(yy)
        if y > ref + 50:
            y -= 100
    elif m := _ASCTIME.fullmatch(v):
        mon, day, hh, mm, ss, year = m.groups()
        y = int(year)
    else:
        raise InvalidHTTPDate(f"not an HTTP-date: {value[:40]!r}")
    mo, d, h, mi, s = _MONTH_NO[mon.lower()], int(day.strip()), int(hh), int(mm), int(ss)
    if y < 1 or h > 23 or mi > 59 or s > 60 or not 1 <= d <= calendar.monthrange(y, mo)[1]:
        raise InvalidHTTPDate(f"no such date or time: {value[:40]!r}")
    return datetime(y, mo, d, h, mi, min(s, 59), tzinfo=UTC)


def _epoch(when: datetime | float) -> int:
    """Whole seconds since the epoch; a naive datetime is taken as UTC."""
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return calendar.timegm(when.utctimetuple())
    return int(when // 1)


def format_http_date(when: datetime | float) -> str:
    """IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for Last-Modified and friends;
    locale-independent, sub-seconds dropped. A naive datetime is taken as UTC."""
    return _format_epoch(_epoch(when))


@functools.lru_cache(maxsize=1024)
def _format_epoch(seconds: int) -> str:
    # cached: every GET, HEAD and PUT answer formats one (or two) of a few hot mtimes
    t = datetime.fromtimestamp(seconds, UTC)
    return f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} {t:%H:%M:%S} GMT"


# --- evaluation (RFC 9110 §13.2.2) ----------------------------------------------------


class Outcome(Enum):
    """What to do with a conditional request."""

    PROCEED = 200
    NOT_MODIFIED = 304
    PRECONDITION_FAILED = 412


@dataclass(frozen=True, slots=True)
class Decision:
    """An outcome and a short reason for logs and the 412 body."""

    outcome: Outcome
    reason: str = ""

    @property
    def proceed(self) -> bool:
        return self.outcome is Outcome.PROCEED

    @property
    def status(self) -> int:
        return self.outcome.value


_GO = Decision(Outcome.PROCEED)


def _tag_list(value: str, *, lenient: bool) -> _Any | tuple[ETag, ...]:
    return parse_etag_list_swift(value) if lenient else parse_etag_list(value)


def _matches(tags: _Any | Sequence[ETag], current: ETag | None, *, weak: bool) -> bool:
    if current is None:
        return False
    if tags is ANY:
        return True
    assert not isinstance(tags, _Any)
    cmp = weak_match if weak else strong_match
    return any(cmp(t, current) for t in tags)


def _date_or_none(value: str | None) -> int | None:
    """RFC 9110 §13.1.3/§13.1.4: an invalid date makes the field be ignored."""
    if value is None:
        return None
    try:
        return _epoch(parse_http_date(value))
    except InvalidHTTPDate:
        return None


def evaluate_preconditions(
    method: str,
    *,
    etag: str | ETag | None,
    last_modified: datetime | float | None,
    if_match: str | None = None,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
    if_unmodified_since: str | None = None,
    lenient: bool = False,
) -> Decision:
    """Evaluate the precondition headers in RFC 9110 §13.2.2 order.

    `etag` is the current representation's entity-tag (a bare opaque string is taken as
    a strong tag); None means there is no current representation (`If-Match: *` fails,
    `If-None-Match: *` passes: create-only PUT). Dates compare at one-second resolution.
    Invalid dates are ignored; an unparsable entity-tag list raises InvalidETag (400),
    unless `lenient` (the Swift path), where tag lists are read as Swift reads them
    (parse_etag_list_swift) and never refused, and If-Unmodified-Since is checked
    even when If-Match matched (as Swift's swob does).
    """
    current = ETag(_normalise(etag)) if isinstance(etag, str) else etag
    safe = method.upper() in ("GET", "HEAD")
    mtime = None if last_modified is None else _epoch(last_modified)
    # 1. If-Match, else 2. If-Unmodified-Since (Swift checks the date even after a match)
    if if_match is not None:
        if not _matches(_tag_list(if_match, lenient=lenient), current, weak=False):
            return Decision(Outcome.PRECONDITION_FAILED, "If-Match: no current entity-tag matches")
    if (if_match is None or lenient) and if_unmodified_since is not None and mtime is not None:
        since = _date_or_none(if_unmodified_since)
        if since is not None and mtime > since:
            return Decision(Outcome.PRECONDITION_FAILED, "If-Unmodified-Since: modified since then")
    # 3. If-None-Match, else 4. If-Modified-Since (GET/HEAD only)
    if if_none_match is not None:
        if _matches(_tag_list(if_none_match, lenient=lenient), current, weak=True):
            if safe:
                return Decision(Outcome.NOT_MODIFIED, "If-None-Match: entity-tag matches")
            return Decision(Outcome.PRECONDITION_FAILED, "If-None-Match: the resource exists or its entity-tag matches")
    elif safe and if_modified_since is not None and mtime is not None:
        since = _date_or_none(if_modified_since)
        if since is not None and mtime <= since:
            return Decision(Outcome.NOT_MODIFIED, "If-Modified-Since: not modified since then")
    return _GO


def if_range_allows(if_range: str | None, *, etag: str | ETag | None, last_modified: datetime | float | None) -> bool:
    """RFC 9110 §13.1.5: True when the Range may be honoured, False to send the whole
    object with 200. An entity-tag must match strongly, a date exactly; anything that
    parses as neither means the condition is false."""
    if if_range is None:
        return True
    value = if_range.strip(_OWS)
    if not value.startswith(('"', "W/")) and " " in value:  # dates have spaces, tags need none
        when = _date_or_none(value)
        return when is not None and last_modified is not None and when == _epoch(last_modified)
    try:
        tag = parse_etag(value)
    except InvalidETag:
        return False
    current = ETag(_normalise(etag)) if isinstance(etag, str) else etag
    return current is not None and strong_match(tag, current)
