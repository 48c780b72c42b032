"""Key-range arithmetic on names, in the order SQLite's BINARY collation uses.

SQLite compares TEXT as UTF-8 bytes, and UTF-8 byte order is code-point order, so
Python's str comparison agrees with the database as long as names are valid UTF-8
(validation refuses lone surrogates).
"""

from __future__ import annotations

_MAX = 0x10FFFF


def upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``;
    None when there is none (empty prefix, or only U+10FFFF characters)."""
    s = prefix
    while s:
        c = ord(s[-1])
        if c < _MAX:
            n = c + 1
            if 0xD800 <= n <= 0xDFFF:  # surrogates cannot be stored; skip them
                n = 0xE000
            return s[:-1] + chr(n)
        s = s[:-1]
    return None


def exact_upper(name: str) -> str:
    """Upper bound of the range holding exactly ``name`` (names never contain NUL)."""
    return name + "\x00"
