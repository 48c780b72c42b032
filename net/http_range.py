"""Byte ranges (RFC 9110 §14): the `Range` request header, resolving it against an object,
`Content-Range` values, a streaming multipart/byteranges framer, and the request
`Content-Range` of Pithos partial updates.

Sans-I/O: nothing here reads object data. The server resolves a `Range` to spans, then
streams each span block by block between the framing bytes this module computes, with
the exact Content-Length known before the first byte goes out.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from net.http_errors import (
    InvalidContentRange,
    InvalidRange,
    RangeNotSatisfiable,
    UnsupportedRangeUnit,
)

__all__ = [
    "MAX_RANGES",
    "ByteRange",
    "MultipartByteranges",
    "RangeSpec",
    "Span",
    "SuffixRange",
    "UpdatePlan",
    "UpdateRange",
    "content_range",
    "format_range",
    "parse_range",
    "parse_update_content_range",
    "plan_update",
    "resolve_ranges",
    "select_ranges",
    "unsatisfied_content_range",
]

# More ranges than this is a broken client or a denial-of-service attempt (RFC 9110 §14.2).
MAX_RANGES = 100
# Numbers with more digits are clamped: no object is a billion terabytes, and int() of a
# 5000-digit string would raise instead of failing cleanly.
_MAX_DIGITS = 18
_HUGE: int = 10**_MAX_DIGITS
_DIGITS = frozenset("0123456789")
_OWS = " \t"
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """`first-last` or `first-` (last None) as written in the header."""

    first: int
    last: int | None = None


@dataclass(frozen=True, slots=True)
class SuffixRange:
    """`-length`: the final `length` bytes."""

    length: int


RangeSpec = ByteRange | SuffixRange


@dataclass(frozen=True, slots=True)
class Span:
    """A concrete, satisfiable byte span: `start`..`end` inclusive, as HTTP counts."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def _number(text: str, what: str, error: type[InvalidRange | InvalidContentRange]) -> int:
    """ASCII digits only (str.isdigit accepts '²'), clamped to _HUGE."""
    if not text or not _DIGITS.issuperset(text):
        raise error(f"{what}: expected digits, got {text[:20]!r}")
    stripped = text.lstrip("0")
    if len(stripped) > _MAX_DIGITS:
        return _HUGE
    return int(stripped or "0")


def _parse_spec(item: str) -> RangeSpec:
    first, dash, last = item.partition("-")
    if not dash:
        raise InvalidRange(f"range {item[:40]!r} has no '-'")
    first, last = first.strip(_OWS), last.strip(_OWS)
    if not first:
        if not last:
            raise InvalidRange("range '-' has neither end")
        return SuffixRange(_number(last, "suffix length", InvalidRange))
    start = _number(first, "first byte", InvalidRange)
    if not last:
        return ByteRange(start)
    end = _number(last, "last byte", InvalidRange)
    if end < start:
        raise InvalidRange(f"range {item[:40]!r} ends before it starts")
    return ByteRange(start, end)


def parse_range(value: str, *, max_ranges: int = MAX_RANGES) -> tuple[RangeSpec, ...]:
    """Parse a `Range` value (`bytes=0-499,-500`). Whitespace is tolerated around `=`, `,`
    and `-`; empty list elements are skipped (RFC 9110 §5.6.1).

    Raises UnsupportedRangeUnit for another unit and InvalidRange for bad syntax or more
    than `max_ranges` ranges; RFC 9110 §14.2 says the server then ignores the header.
    """
    unit, eq, rest = value.partition("=")
    unit = unit.strip(_OWS)
    if not eq:
        raise InvalidRange("Range has no '='")
    if unit.lower() != "bytes":
        if unit and _TCHAR.issuperset(unit):
            raise UnsupportedRangeUnit(f"range unit {unit[:20]!r} is not supported")
        raise InvalidRange("Range unit is not a token")
    if rest.count(",") >= max_ranges * 2:  # cheap bound before splitting huge values
        raise InvalidRange(f"more than {max_ranges} ranges")
    items = [x for x in (i.strip(_OWS) for i in rest.split(",")) if x]
    if not items:
        raise InvalidRange("Range has no ranges")
    if len(items) > max_ranges:
        raise InvalidRange(f"more than {max_ranges} ranges")
    return tuple(_parse_spec(i) for i in items)


def format_range(specs: Sequence[RangeSpec]) -> str:
    """The canonical `Range` value for `specs` (what a client would send)."""
    out = []
    for s in specs:
        if isinstance(s, SuffixRange):
            out.append(f"-{s.length}")
        elif s.last is None:
            out.append(f"{s.first}-")
        else:
            out.append(f"{s.first}-{s.last}")
    return "bytes=" + ",".join(out)


def _coalesce(spans: list[Span], gap: int) -> list[Span]:
    """Merge spans that overlap or lie within `gap` bytes of each other (RFC 9110 §15.3.7.2
    allows it); the rest keep the order they were asked in (RFC 9110 §14.6 SHOULD)."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i].start, i))
    groups: list[list[int]] = []  # [start, end, first index in request order]
    for i in order:
        s = spans[i]
        if groups and s.start <= groups[-1][1] + 1 + gap:
            g = groups[-1]
            g[1] = max(g[1], s.end)
            g[2] = min(g[2], i)
        else:
            groups.append([s.start, s.end, i])
    groups.sort(key=lambda g: g[2])
    return [Span(g[0], g[1]) for g in groups]


def resolve_ranges(specs: Sequence[RangeSpec], size: int, *, coalesce_gap: int = 0) -> list[Span]:
    """Turn parsed ranges into concrete spans of an object of `size` bytes.

    Ranges past the end are clipped, unsatisfiable ones dropped, overlapping or adjacent
    ones (or closer than `coalesce_gap`) merged. Raises RangeNotSatisfiable (416) when
    none is satisfiable. Returns [] only for a 0-byte object asked for a suffix: RFC 9110
    calls that satisfiable but no Content-Range can express it, so send the (empty) 200.
    """
    if size < 0:
        raise ValueError("size must be >= 0")
    spans: list[Span] = []
    satisfiable = False
    for s in specs:
        if isinstance(s, SuffixRange):
            if s.length == 0:
                continue
            satisfiable = True
            if size:
                spans.append(Span(max(0, size - s.length), size - 1))
        elif s.first < size:
            satisfiable = True
            end = size - 1 if s.last is None else min(s.last, size - 1)
            spans.append(Span(s.first, end))
    if not satisfiable:
        raise RangeNotSatisfiable(f"no requested range is within the {size} bytes of the object", size)
    return _coalesce(spans, coalesce_gap) if len(spans) > 1 else spans


def select_ranges(
    header: str | None, size: int, *, max_ranges: int = MAX_RANGES, coalesce_gap: int = 0
) -> list[Span] | None:
    """What a GET should send: None = the whole object with 200 (no Range, or one the RFC
    says to ignore), else the spans for a 206. Raises RangeNotSatisfiable for a 416."""
    if header is None:
        return None
    try:
        specs = parse_range(header, max_ranges=max_ranges)
    except InvalidRange:
        return None
    return resolve_ranges(specs, size, coalesce_gap=coalesce_gap) or None


def content_range(span: Span, size: int) -> str:
    """`bytes first-last/size`, the 206 Content-Range of one span."""
    return f"bytes {span.start}-{span.end}/{size}"


def unsatisfied_content_range(size: int) -> str:
    """`bytes */size`, the Content-Range a 416 carries."""
    return f"bytes */{size}"


_BCHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ")


class MultipartByteranges:
    """The framing of a multipart/byteranges body (RFC 9110 §14.6) around spans of data.

    `content_length` is exact before any data is read. Stream with `chunks()`: bytes items
    are framing to send as they are, Span items mean "send these bytes of the object now".
    """

    def __init__(
        self,
        spans: Sequence[Span],
        size: int,
        content_type: str | None = "application/octet-stream",
        boundary: str | None = None,
    ) -> None:
        if not spans:
            raise ValueError("multipart/byteranges needs at least one span")
        for s in spans:
            if not 0 <= s.start <= s.end < size:
                raise ValueError(f"span {s.start}-{s.end} is outside an object of {size} bytes")
        self.boundary = secrets.token_hex(16) if boundary is None else boundary
        if not 1 <= len(self.boundary) <= 70 or not _BCHARS.issuperset(self.boundary) or self.boundary.endswith(" "):
            raise ValueError("invalid multipart boundary")
        if content_type is not None and (
            not content_type.isascii() or any(c < " " or c == "\x7f" for c in content_type)
        ):
            raise ValueError("content type must be printable ASCII")
        self.spans = tuple(spans)
        self.size = size
        ctype = b"" if content_type is None else b"Content-Type: " + content_type.encode("ascii") + b"\r\n"
        delim = b"--" + self.boundary.encode("ascii") + b"\r\n"
        self._heads = [
            (b"\r\n" if i else b"")
            + delim
            + ctype
            + b"Content-Range: "
            + content_range(s, size).encode("ascii")
            + b"\r\n\r\n"
            for i, s in enumerate(self.spans)
        ]
        self.tail = b"\r\n--" + self.boundary.encode("ascii") + b"--\r\n"
        self.content_length = sum(len(h) + s.length for h, s in zip(self._heads, self.spans, strict=True)) + len(
            self.tail
        )

    @property
    def content_type(self) -> str:
        """The response's Content-Type header value."""
        return f"multipart/byteranges; boundary={self.boundary}"

    def parts(self) -> Iterator[tuple[bytes, Span]]:
        """(framing before the part's data, the span of data) per part; then send `tail`."""
        return iter(zip(self._heads, self.spans, strict=True))

    def chunks(self) -> Iterator[bytes | Span]:
        """The whole body in order: framing bytes interleaved with spans to fill in."""
        for head, span in zip(self._heads, self.spans, strict=True):
            yield head
            yield span
        yield self.tail

    def render(self, data: bytes) -> bytes:
        """The whole body for an object held in memory (tests, tiny objects)."""
        if len(data) != self.size:
            raise ValueError("data length differs from the object size")
        return b"".join(c if isinstance(c, bytes) else data[c.start : c.end + 1] for c in self.chunks())


# --- Pithos partial update: POST obj with Content-Range --------------------------------


@dataclass(frozen=True, slots=True)
class UpdateRange:
    """A request Content-Range: `bytes start-end/total`; start None = `bytes */*` (append);
    end None = `bytes start-/...` (length from the body); total None = `/*`."""

    start: int | None
    end: int | None = None
    total: int | None = None

    def format(self) -> str:
        if self.start is None:
            return "bytes */*"
        end = "" if self.end is None else str(self.end)
        total = "*" if self.total is None else str(self.total)
        return f"bytes {self.start}-{end}/{total}"


def parse_update_content_range(value: str) -> UpdateRange:
    """Parse the Content-Range of a Pithos partial-update POST. Raises InvalidContentRange."""
    v = value.strip(_OWS)
    unit, sp, rest = v.partition(" ")
    if not sp or unit.lower() != "bytes":
        raise InvalidContentRange("Content-Range must start with 'bytes '")
    rest = rest.strip(_OWS)
    rng, slash, total_text = rest.partition("/")
    if not slash:
        raise InvalidContentRange("Content-Range has no '/'")
    rng, total_text = rng.strip(_OWS), total_text.strip(_OWS)
    total = None if total_text == "*" else _number(total_text, "total length", InvalidContentRange)
    if rng == "*":
        if total is not None:
            raise InvalidContentRange("'bytes */N' is a 416 reply, not an update")
        return UpdateRange(None)
    first, dash, last = rng.partition("-")
    if not dash:
        raise InvalidContentRange("Content-Range range has no '-'")
    start = _number(first.strip(_OWS), "first byte", InvalidContentRange)
    last = last.strip(_OWS)
    end = _number(last, "last byte", InvalidContentRange) if last else None
    if end is not None and end < start:
        raise InvalidContentRange("Content-Range ends before it starts")
    if total is not None and (start >= total or (end is not None and end >= total)):
        raise InvalidContentRange("Content-Range goes past its total length")
    return UpdateRange(start, end, total)


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """Where the supplied data goes: write `length` bytes at `offset`."""

    offset: int
    length: int


def plan_update(rng: UpdateRange, object_size: int, data_length: int, *, from_source: bool = False) -> UpdatePlan:
    """Check a partial update against the object (Pithos semantics) and place the data.

    `data_length` is the body's Content-Length (or the X-Source-Object's size). A start
    past the end is 416; a range length that differs from the data is 400, except that
    data from a source object (``from_source``) longer than the range is cut to it, as
    Pithos does (kamaki's `file truncate` sends the object itself as the source with
    the range `0-N` and X-Object-Bytes); a total that differs from the object size, or
    a write that would grow an object whose total was given, is 416 (the client asked
    for a size check).
    """
    offset = object_size if rng.start is None else rng.start
    if offset > object_size:
        raise RangeNotSatisfiable("the update starts past the end of the object", object_size)
    if rng.start is not None and rng.end is not None:
        length = rng.end - rng.start + 1
        if length != data_length and not (from_source and length < data_length):
            raise InvalidContentRange(f"Content-Range covers {length} bytes but {data_length} were supplied")
    else:
        length = data_length
    if rng.total is not None and (rng.total != object_size or offset >= object_size or offset + length > object_size):
        raise RangeNotSatisfiable("the update would change the object's size", object_size)
    return UpdatePlan(offset, length)
