"""Account, container and object names from URL paths, and the two API prefixes.

Names arrive percent-decoded. They become keys in the metadata store and, for tools that
export objects to files, path components, so anything that could traverse (`.` or `..`
segments), truncate (NUL) or not round-trip through UTF-8 is refused here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from net.http_errors import InvalidName, UnknownPath

__all__ = [
    "MAX_ACCOUNT_NAME",
    "MAX_CONTAINER_NAME",
    "MAX_OBJECT_NAME",
    "PITHOS_PREFIX",
    "SWIFT_PREFIX",
    "ObjectPath",
    "parse_object_path",
    "validate_account",
    "validate_container",
    "validate_object",
]

MAX_ACCOUNT_NAME = 256  # bytes of UTF-8, as Swift
MAX_CONTAINER_NAME = 256
MAX_OBJECT_NAME = 1024
PITHOS_PREFIX = "/object-store/v1"
SWIFT_PREFIX = "/v1"
Api = Literal["pithos", "swift"]


def _text(name: str | bytes, what: str) -> str:
    """Decode bytes strictly; refuse a str holding surrogates (undecodable bytes that were
    smuggled through with surrogateescape)."""
    if isinstance(name, bytes):
        try:
            return name.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidName(f"{what} name is not valid UTF-8") from None
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName(f"{what} name is not valid UTF-8") from None
    return name


def _common(name: str | bytes, what: str, limit: int) -> str:
    s = _text(name, what)
    if not s:
        raise InvalidName(f"empty {what} name")
    if "\x00" in s:
        raise InvalidName(f"{what} name contains NUL")
    if len(s.encode("utf-8")) > limit:
        raise InvalidName(f"{what} name longer than {limit} bytes")
    return s


def _single_segment(name: str | bytes, what: str, limit: int) -> str:
    s = _common(name, what, limit)
    if "/" in s:
        raise InvalidName(f"{what} name contains '/'")
    if s in (".", ".."):
        raise InvalidName(f"{what} name cannot be {s!r}")
    return s


def validate_account(name: str | bytes) -> str:
    """An account name: 1-256 bytes of UTF-8, no NUL, no '/', not '.' or '..'."""
    return _single_segment(name, "account", MAX_ACCOUNT_NAME)


def validate_container(name: str | bytes) -> str:
    """A container name: 1-256 bytes of UTF-8, no NUL, no '/', not '.' or '..'."""
    return _single_segment(name, "container", MAX_CONTAINER_NAME)


def validate_object(name: str | bytes) -> str:
    """An object name: 1-1024 bytes of UTF-8, no NUL, no '.' or '..' between slashes.
    Empty segments (`a//b`, a leading or trailing '/') are allowed, as in Swift."""
    s = _common(name, "object", MAX_OBJECT_NAME)
    if any(seg in (".", "..") for seg in s.split("/")):
        raise InvalidName("object name has a '.' or '..' path segment")
    return s


@dataclass(frozen=True, slots=True)
class ObjectPath:
    """What a request URL names; missing levels are None (`/v1/acct` → container None)."""

    api: Api
    account: str | None = None
    container: str | None = None
    object: str | None = None


def parse_object_path(
    path: str, *, prefixes: tuple[tuple[str, Api], ...] = ((PITHOS_PREFIX, "pithos"), (SWIFT_PREFIX, "swift"))
) -> ObjectPath:
    """Split a percent-decoded URL path (no query string) under one of the API prefixes
    into validated names. A trailing '/' after the account or container names that level
    (`/v1/a/c/` is the container). Raises UnknownPath (404) or InvalidName (400)."""
    for prefix, api in prefixes:
        if path == prefix or path.startswith(prefix + "/"):
            rest = path[len(prefix) + 1 :]
            break
    else:
        raise UnknownPath("not an object-store path")
    if not rest:
        return ObjectPath(api)
    account, _, rest = rest.partition("/")
    acct = validate_account(account)
    if not rest:
        return ObjectPath(api, acct)
    container, _, obj = rest.partition("/")
    cont = validate_container(container)
    return ObjectPath(api, acct, cont, validate_object(obj) if obj else None)
