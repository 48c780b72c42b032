"""Validation of everything a client can put into the metadata DB.

Done here, once, so every caller (server, CLI, tests) gets the same rules and the
same typed errors.  Limits follow Swift's defaults where Swift has one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from . import errors
from .records import HASH_SCHEMES, VERSIONING_MODES, ContainerPolicy, MapRef, Sharing

MAX_ACCOUNT_NAME = 256  # bytes of UTF-8
MAX_CONTAINER_NAME = 256
MAX_OBJECT_NAME = 1024
MAX_CONTENT_TYPE = 256
MAX_META_KEY = 128
MAX_META_VALUE = 256
MAX_META_COUNT = 90
MAX_META_TOTAL = 4096  # keys + values, bytes
MAX_GROUP_NAME = 128
MAX_GROUP_MEMBERS = 1024
MAX_LISTING_LIMIT = 10000
MIN_BLOCK_SIZE = 512
MAX_BLOCK_SIZE = 1 << 30
MAX_QUOTA = (1 << 63) - 1  # SQLite's INTEGER

# RFC 9110 token: what may follow X-Object-Meta- in a header name.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Account/user names appear inside sharing lists (`read=a,b;write=acct:grp`) and URLs.
_NAME_FORBIDDEN = re.compile(r"[\x00-\x20\x7f/:,;=]")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# X-Object-UUID as nefeli writes it: a version 4 UUID, lower-case, with dashes.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _utf8(value: object, what: str, exc: type[errors.InvalidArgument]) -> bytes:
    if not isinstance(value, str):
        raise exc(f"{what} must be a string, not {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise exc(f"{what} is not valid UTF-8 (lone surrogate)") from None


def account_name(name: str, what: str = "account name") -> str:
    raw = _utf8(name, what, errors.InvalidName)
    if not raw:
        raise errors.InvalidName(f"{what} is empty")
    if len(raw) > MAX_ACCOUNT_NAME:
        raise errors.InvalidName(f"{what} longer than {MAX_ACCOUNT_NAME} bytes")
    if _NAME_FORBIDDEN.search(name):
        raise errors.InvalidName(f"{what} {name!r} contains whitespace, a control character or one of / : , ; =")
    return name


def user_name(name: str) -> str:
    """A user is named like an account (Pithos users are accounts)."""
    return account_name(name, "user name")


def container_name(name: str) -> str:
    raw = _utf8(name, "container name", errors.InvalidName)
    if not raw:
        raise errors.InvalidName("container name is empty")
    if len(raw) > MAX_CONTAINER_NAME:
        raise errors.InvalidName(f"container name longer than {MAX_CONTAINER_NAME} bytes")
    if "/" in name:
        raise errors.InvalidName("container name contains '/'")
    if "\x00" in name:
        raise errors.InvalidName("container name contains NUL")
    return name


def object_name(name: str) -> str:
    raw = _utf8(name, "object name", errors.InvalidName)
    if not raw:
        raise errors.InvalidName("object name is empty")
    if len(raw) > MAX_OBJECT_NAME:
        raise errors.InvalidName(f"object name longer than {MAX_OBJECT_NAME} bytes")
    if "\x00" in name:
        raise errors.InvalidName("object name contains NUL")
    return name


def listing_string(value: str | None, what: str, *, nul_ok: bool = False) -> str | None:
    """prefix/marker/end_marker/delimiter/path: any UTF-8 without NUL, bounded. A
    marker is only a bound (no name holds NUL), so ``nul_ok`` lets it hold one: Swift
    clients page "up to and including x" with the marker ``x + NUL``."""
    if value is None:
        return None
    raw = _utf8(value, what, errors.InvalidArgument)
    if "\x00" in value and not nul_ok:
        raise errors.InvalidArgument(f"{what} contains NUL")
    if len(raw) > MAX_OBJECT_NAME:
        raise errors.InvalidArgument(f"{what} longer than {MAX_OBJECT_NAME} bytes")
    return value


def limit(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.InvalidArgument("limit must be an integer")
    if not 0 <= value <= MAX_LISTING_LIMIT:
        raise errors.InvalidArgument(f"limit must be between 0 and {MAX_LISTING_LIMIT}")
    return value


def content_type(value: str) -> str:
    """Any UTF-8 text a header can carry, as Swift and Pithos keep it: clients use
    types that are no registered media type (Swift's tests store random words), so
    only what would break the header or the storage is refused."""
    if not isinstance(value, str) or not value.strip(" "):
        raise errors.InvalidContentType("content type is empty")
    if len(value) > MAX_CONTENT_TYPE:
        raise errors.InvalidContentType(f"content type longer than {MAX_CONTENT_TYPE} characters")
    _utf8(value, "content type", errors.InvalidContentType)
    if CONTROL_CHARS.search(value):
        raise errors.InvalidContentType(f"content type {value[:40]!r} holds a control character")
    return value


def meta_key(key: str) -> str:
    """Metadata keys become header names, so: an HTTP token; stored lower-case
    because header names are case-insensitive."""
    if not isinstance(key, str) or not key:
        raise errors.InvalidMetadata("metadata key is empty")
    if len(key) > MAX_META_KEY:
        raise errors.InvalidMetadata(f"metadata key longer than {MAX_META_KEY} characters")
    if not _TOKEN.fullmatch(key):
        raise errors.InvalidMetadata(f"metadata key {key!r} is not an HTTP token")
    return key.lower()


def meta_value(value: str) -> str:
    raw = _utf8(value, "metadata value", errors.InvalidMetadata)
    if len(raw) > MAX_META_VALUE:
        raise errors.InvalidMetadata(f"metadata value longer than {MAX_META_VALUE} bytes")
    if CONTROL_CHARS.search(value):
        raise errors.InvalidMetadata("metadata value contains a control character")
    return value


def meta_update(meta: Mapping[str, str | None] | None) -> dict[str, str | None]:
    """Keys normalised; a None or empty value means 'remove this key' (Swift)."""
    out: dict[str, str | None] = {}
    for k, v in (meta or {}).items():
        out[meta_key(k)] = None if v is None or v == "" else meta_value(v)
    return out


def apply_meta(current: Mapping[str, str], update: Mapping[str, str | None], replace: bool) -> dict[str, str]:
    """Merge (or replace with) an already validated update and enforce the totals."""
    merged = {} if replace else dict(current)
    for k, v in update.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    if len(merged) > MAX_META_COUNT:
        raise errors.InvalidMetadata(f"more than {MAX_META_COUNT} metadata items")
    total = sum(len(k.encode()) + len(v.encode()) for k, v in merged.items())
    if total > MAX_META_TOTAL:
        raise errors.InvalidMetadata(f"metadata larger than {MAX_META_TOTAL} bytes")
    return merged


def group_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_GROUP_NAME or not _TOKEN.fullmatch(name):
        raise errors.InvalidName(f"group name {name!r} is not an HTTP token of at most {MAX_GROUP_NAME} characters")
    return name.lower()


def group_members(members: Iterable[str]) -> tuple[str, ...]:
    out = tuple(sorted({user_name(m) for m in members}))
    if len(out) > MAX_GROUP_MEMBERS:
        raise errors.InvalidArgument(f"a group has at most {MAX_GROUP_MEMBERS} members")
    return out


def quota(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_QUOTA:
        raise errors.InvalidPolicy(f"quota must be an integer number of bytes from 0 to {MAX_QUOTA}, or None")
    return value


def object_uuid(value: str | None) -> str | None:
    """An object UUID given by a caller (a move through the data path keeps its source's)."""
    if value is not None and (not isinstance(value, str) or not _UUID.fullmatch(value)):
        raise errors.InvalidArgument("an object uuid is 36 characters of lower-case hex and dashes")
    return value


def versioning(value: str) -> str:
    if value not in VERSIONING_MODES:
        raise errors.InvalidPolicy(f"versioning must be one of {', '.join(VERSIONING_MODES)}")
    return value


def hash_scheme(value: str) -> str:
    if value not in HASH_SCHEMES:
        raise errors.InvalidPolicy(f"hash scheme must be one of {', '.join(HASH_SCHEMES)}")
    return value


def block_size(value: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_BLOCK_SIZE <= value <= MAX_BLOCK_SIZE
        or value & (value - 1)
    ):
        raise errors.InvalidPolicy(f"block size must be a power of two between {MIN_BLOCK_SIZE} and {MAX_BLOCK_SIZE}")
    return value


def policy(p: ContainerPolicy) -> ContainerPolicy:
    versioning(p.versioning)
    quota(p.quota)
    block_size(p.block_size)
    hash_scheme(p.hash_scheme)
    return p


def sharing_subject(subject: str) -> str:
    """``*``, a user name, or ``account:group`` (group part lower-cased like group names)."""
    if subject == "*":
        return subject
    if ":" in subject:
        acct, _, grp = subject.partition(":")
        return f"{account_name(acct)}:{group_name(grp)}"
    return user_name(subject)


def parse_sharing(header: str) -> Sharing:
    """Parse ``read=u1,acct:grp;write=u2``; an empty value means 'not shared'."""
    if not isinstance(header, str):
        raise errors.InvalidSharing("sharing must be a string")
    read: set[str] = set()
    write: set[str] = set()
    for part in header.split(";"):
        part = part.strip()
        if not part:
            continue
        kind, eq, value = part.partition("=")
        kind = kind.strip().lower()
        if not eq or kind not in ("read", "write"):
            raise errors.InvalidSharing(f"bad sharing clause {part!r}; expected read=... or write=...")
        target = read if kind == "read" else write
        for subject in value.split(","):
            subject = subject.strip()
            if not subject:
                continue
            try:
                target.add(sharing_subject(subject))
            except errors.InvalidArgument as exc:
                raise errors.InvalidSharing(str(exc)) from None
    return Sharing(read=frozenset(read - write), write=frozenset(write))


def sharing(value: Sharing) -> Sharing:
    """Validate a Sharing built in code (not parsed)."""
    try:
        read = frozenset(sharing_subject(s) for s in value.read)
        write = frozenset(sharing_subject(s) for s in value.write)
    except errors.InvalidArgument as exc:
        raise errors.InvalidSharing(str(exc)) from None
    return Sharing(read=read - write, write=write)


def map_ref(ref: MapRef) -> MapRef:
    if not isinstance(ref, MapRef):
        raise errors.InvalidArgument("map must be a MapRef")
    hash_scheme(ref.scheme)
    if isinstance(ref.size, bool) or not isinstance(ref.size, int) or ref.size < 0:
        raise errors.InvalidArgument("map size must be a non-negative integer")
    if not isinstance(ref.top_hash, bytes) or len(ref.top_hash) != 32:
        raise errors.InvalidArgument("top hash must be 32 bytes")
    return ref


def etags(value: str | Iterable[str] | None) -> str | frozenset[str] | None:
    """``*`` or a set of lowercase hex ETags (surrounding quotes removed)."""
    if value is None or value == "*":
        return value
    if isinstance(value, str):
        value = [value]
    return frozenset(e.strip().strip('"').lower() for e in value)


def auth_user(name: str) -> str:
    """Swift v1 ``X-Auth-User`` (often ``account:user``): printable, no whitespace."""
    raw = _utf8(name, "auth user", errors.InvalidName)
    if not raw or len(raw) > MAX_ACCOUNT_NAME or re.search(r"[\x00-\x20\x7f]", name):
        raise errors.InvalidName("auth user must be 1-256 bytes without whitespace or control characters")
    return name


def serial(value: int | None) -> int | None:
    """A version serial (``?version=N``), already converted to int by the caller."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise errors.InvalidArgument("a version serial is a positive integer")
    return value
