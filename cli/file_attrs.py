"""What a local file's attributes become on the server, and back: its Content-Type and its mtime.

Content-Type is guessed from the object's name with `mimetypes`, as python-swiftclient
and Swift's proxy do for an upload that names none (`application/octet-stream` when the
name says nothing).  The mtime travels in `X-Object-Meta-Mtime` as rclone's swift
backend keeps it: seconds since the epoch with nine decimals ("1700000000.123456789"),
so a tree `nefeli sync` pushed shows rclone its local mtimes and the reverse.
"""

from __future__ import annotations

import mimetypes
import re
from email.utils import parsedate_to_datetime

DEFAULT_TYPE = "application/octet-stream"
MTIME_HEADER = "X-Object-Meta-Mtime"

# seconds, optionally a fraction; rclone writes 9 decimals, others fewer or none
_MTIME = re.compile(r"[ \t]*(-?)([0-9]{1,12})(?:\.([0-9]{1,9})[0-9]*)?[ \t]*", re.ASCII)


def guess_content_type(name: str) -> str:
    """The Content-Type an object named ``name`` gets."""
    ctype, _encoding = mimetypes.guess_type(name.rstrip("/").rsplit("/", 1)[-1], strict=False)
    return ctype or DEFAULT_TYPE


def format_mtime(mtime_ns: int) -> str:
    """`X-Object-Meta-Mtime` for a file's st_mtime_ns, exact to the nanosecond."""
    sec, frac = divmod(mtime_ns, 1_000_000_000)
    return f"{sec}.{frac:09d}"


def parse_mtime(value: str | None) -> int | None:
    """st_mtime_ns from an `X-Object-Meta-Mtime` value; None when absent or not a time."""
    if not value:
        return None
    m = _MTIME.fullmatch(value)
    if m is None:
        return None
    ns = int(m.group(2)) * 1_000_000_000 + int((m.group(3) or "0").ljust(9, "0"))
    return -ns if m.group(1) else ns


def parse_last_modified(value: str | None) -> int | None:
    """st_mtime_ns from a `Last-Modified` HTTP date; None when absent or malformed."""
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp()) * 1_000_000_000
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
