"""Pithos sharing: the `X-Object-Sharing` header and `X-Account-Group-<name>` headers.

`X-Object-Sharing: read=u1,acct:grp;write=u2` grants read or write to accounts, to groups
(`account:group`) or to everyone (`*`). Parsing normalises the way Pithos does, so one
permission set has one spelling: `*` absorbs the other names of its list, a name with
write access is dropped from the read list (write implies read), duplicates collapse.
An empty value means "remove sharing". Group names are lowercased (they travel in header
names, which are case-insensitive); account names keep their case.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from net.http_errors import InvalidGroup, InvalidSharing

__all__ = [
    "EVERYONE",
    "GROUP_HEADER_PREFIX",
    "MAX_NAME_BYTES",
    "Sharing",
    "format_group_header",
    "format_sharing",
    "group_name_from_header",
    "parse_group_headers",
    "parse_group_members",
    "parse_sharing",
]

EVERYONE = "*"
MAX_NAME_BYTES = 256
# Separators of the two headers, and characters that would confuse paths or quoting.
_FORBIDDEN = frozenset(',;=:*/\\"')
_GROUP_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.")
_OWS = " \t"
GROUP_HEADER_PREFIX = "x-account-group-"


def _check_account(name: str, error: type[InvalidSharing | InvalidGroup]) -> None:
    if not name:
        raise error("empty account name")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise error(f"account name longer than {MAX_NAME_BYTES} bytes")
    for c in name:
        if c in _FORBIDDEN or c.isspace() or unicodedata.category(c)[0] == "C":
            raise error(f"bad character {c!r} in account name {name[:40]!r}")


def _check_group(name: str, error: type[InvalidSharing | InvalidGroup]) -> str:
    g = name.lower()
    if not g:
        raise error("empty group name")
    if len(g) > MAX_NAME_BYTES or not _GROUP_CHARS.issuperset(g):
        raise error(f"group name {name[:40]!r} must be letters, digits and dots")
    return g


def _principal(name: str) -> str:
    """Validate one `*`, `account` or `account:group`; returns its canonical spelling."""
    if name == EVERYONE:
        return name
    account, colon, group = name.partition(":")
    _check_account(account, InvalidSharing)
    if colon:
        return f"{account}:{_check_group(group, InvalidSharing)}"
    return account


def _canonical(names: Iterable[str]) -> frozenset[str]:
    s = frozenset(_principal(n) for n in names)
    return frozenset({EVERYONE}) if EVERYONE in s else s


@dataclass(frozen=True, slots=True)
class Sharing:
    """Who may read and who may write; both empty means not shared.

    Construction validates and normalises, so every instance is canonical.
    """

    read: frozenset[str] = field(default_factory=frozenset)
    write: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        write = _canonical(self.write)
        read = _canonical(self.read)
        if EVERYONE not in read:
            read = read - write
        object.__setattr__(self, "read", read)
        object.__setattr__(self, "write", write)

    @property
    def is_empty(self) -> bool:
        return not self.read and not self.write

    def format(self) -> str:
        return format_sharing(self)


def _split_names(text: str, what: str) -> list[str]:
    names = [n.strip(_OWS) for n in text.split(",")]
    if any(not n for n in names):
        raise InvalidSharing(f"empty name in the {what} list")
    return names


def parse_sharing(value: str) -> Sharing:
    """Parse an X-Object-Sharing value. Keys are `read` and `write` (any case; a repeated
    key adds to its list); whitespace around tokens is ignored. Raises InvalidSharing."""
    v = value.strip(_OWS)
    if not v:
        return Sharing()
    read: list[str] = []
    write: list[str] = []
    for directive in v.split(";"):
        key, eq, names = directive.partition("=")
        key = key.strip(_OWS).lower()
        if not eq:
            raise InvalidSharing(f"directive {directive.strip(_OWS)[:40]!r} is not key=names")
        if key == "read":
            read += _split_names(names, "read")
        elif key == "write":
            write += _split_names(names, "write")
        else:
            raise InvalidSharing(f"unknown sharing key {key[:20]!r} (expected read or write)")
    return Sharing(frozenset(read), frozenset(write))


def format_sharing(sharing: Sharing) -> str:
    """Canonical value: `read=a,b; write=c` with sorted names, empty lists left out, ""
    when not shared (the `; ` separator is what Pithos sends)."""
    out = []
    if sharing.read:
        out.append("read=" + ",".join(sorted(sharing.read)))
    if sharing.write:
        out.append("write=" + ",".join(sorted(sharing.write)))
    return "; ".join(out)


# --- groups: X-Account-Group-<name>: u1,u2 --------------------------------------------


def group_name_from_header(header: str) -> str | None:
    """The group a header name sets (`X-Account-Group-Friends` → `friends`), None for
    other headers. Raises InvalidGroup for a bad group name (Pithos forbids `-` and `_`,
    which header names turn into each other)."""
    if not header.lower().startswith(GROUP_HEADER_PREFIX):
        return None
    return _check_group(header[len(GROUP_HEADER_PREFIX) :], InvalidGroup)


def parse_group_members(value: str) -> frozenset[str]:
    """The accounts of a group header value; empty (or only commas and spaces) means
    "delete the group". Empty list elements are skipped, as Pithos does. Raises InvalidGroup."""
    members = [m.strip(_OWS) for m in value.split(",")]
    out = frozenset(m for m in members if m)
    for m in out:
        _check_account(m, InvalidGroup)
    return out


def format_group_header(name: str, members: Iterable[str]) -> tuple[str, str]:
    """(header name, value) for a group, members sorted; validates both."""
    g = _check_group(name, InvalidGroup)
    ms = sorted(set(members))
    for m in ms:
        _check_account(m, InvalidGroup)
    return f"X-Account-Group-{g}", ",".join(ms)


def parse_group_headers(headers: Iterable[tuple[str, str]] | Mapping[str, str]) -> dict[str, frozenset[str]]:
    """All group headers of a request: {group: members}, an empty set meaning delete."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    groups: dict[str, frozenset[str]] = {}
    for k, v in items:
        g = group_name_from_header(k)
        if g is not None:
            groups[g] = parse_group_members(v)
    return groups
