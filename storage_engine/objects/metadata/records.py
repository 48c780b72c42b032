"""Plain records returned by the metadata API.

Frozen dataclasses, so a record handed to the server cannot drift from the row
it was read from; mapping fields are ordinary dicts the caller must not mutate.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal, NamedTuple
from collections.abc import Mapping

HashScheme = Literal["sha256", "blake3"]
Versioning = Literal["auto", "none"]
VersionState = Literal["normal", "history", "deleted"]

HASH_SCHEMES: tuple[str, ...] = ("sha256", "blake3")
VERSIONING_MODES: tuple[str, ...] = ("auto", "none")
DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024
DIRECTORY_TYPES: frozenset[str] = frozenset({"application/directory", "application/folder"})


class MapRef(NamedTuple):
    """Reference to a block map kept in the map store: what identifies an object's content.

    The sha256 top hash identifies content only together with the size (docs/hash-schemes.md),
    hence the size is part of the reference.  A NamedTuple: immutable, hashable, and
    cheap to build for every entry of a 10 000-entry listing page."""

    scheme: str
    size: int
    top_hash: bytes

    @property
    def hex(self) -> str:
        return self.top_hash.hex()


@dataclass(frozen=True, slots=True)
class ContainerPolicy:
    """Container policies; defaults are the server's usual ones (its config may override)."""

    versioning: str = "auto"
    quota: int | None = None  # bytes; None = unlimited
    block_size: int = DEFAULT_BLOCK_SIZE
    hash_scheme: str = "blake3"


@dataclass(frozen=True, slots=True)
class Usage:
    """Incrementally maintained counters (triggers on the versions table).

    ``bytes_used``/``object_count`` cover current objects (what Swift reports);
    ``history_*`` cover older versions kept by versioning 'auto'.  Quotas compare
    against ``stored_bytes``: every retrievable version occupies the user's space."""

    object_count: int = 0
    bytes_used: int = 0
    history_count: int = 0
    history_bytes: int = 0

    @property
    def stored_bytes(self) -> int:
        return self.bytes_used + self.history_bytes


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    created: float
    mtime: float
    quota: int | None
    meta: Mapping[str, str]
    groups: Mapping[str, tuple[str, ...]]
    container_count: int
    usage: Usage


@dataclass(frozen=True, slots=True)
class Container:
    account: str
    name: str
    created: float
    mtime: float
    policy: ContainerPolicy
    meta: Mapping[str, str]
    usage: Usage


@dataclass(slots=True)
class ObjectVersion:
    """One version of one object; ``map`` is None only for 'deleted' markers.

    ``uuid`` (X-Object-UUID) names the object rather than the version: it is given
    at creation and kept by new versions, metadata updates and moves; a copy, or a
    write after a delete, starts a new object with a new UUID (as in Pithos).

    Not frozen only because listings build thousands per page and a frozen
    dataclass costs three times as much to construct; treat it as read-only."""

    account: str
    container: str
    name: str
    serial: int
    mtime: float
    size: int
    content_type: str
    meta: Mapping[str, str]
    attrs: Mapping[str, str]
    map: MapRef | None
    state: str
    modified_by: str
    uuid: str

    @property
    def etag(self) -> str:
        """ETag / X-Object-Hash: the lowercase hex top hash (docs/hash-schemes.md)."""
        return self.map.hex if self.map is not None else ""

    @property
    def is_directory(self) -> bool:
        return self.content_type.split(";", 1)[0].strip().lower() in DIRECTORY_TYPES


@dataclass(frozen=True, slots=True)
class Subdir:
    """A collapsed common prefix in a delimiter listing (Swift's ``subdir``)."""

    name: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of put/copy/move/update_meta.

    Two views of the map references, for the two ways of counting them in the map store:
    per map (``added_maps`` gained their first referencing version, ``freed_maps`` lost
    their last one) or per version (``version.map`` is one new reference, and
    ``dropped_maps`` holds the map of every version row removed, with repetitions)."""

    version: ObjectVersion
    replaced: ObjectVersion | None
    added_maps: tuple[MapRef, ...] = ()
    freed_maps: tuple[MapRef, ...] = ()
    dropped_maps: tuple[MapRef, ...] = ()


@dataclass(frozen=True, slots=True)
class DeleteResult:
    deleted: ObjectVersion  # the version that stopped being current
    marker: ObjectVersion | None  # the 'deleted' version written under versioning 'auto'
    freed_maps: tuple[MapRef, ...] = ()
    dropped_maps: tuple[MapRef, ...] = ()  # see WriteResult


@dataclass(frozen=True, slots=True)
class BatchDeleteResult:
    """Outcome of deleting one batch of a container's current objects (see WriteResult
    for the maps); ``more`` says current objects were left for another batch."""

    deleted: int
    more: bool
    freed_maps: tuple[MapRef, ...] = ()
    dropped_maps: tuple[MapRef, ...] = ()


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """Outcome of purge_history and container delete (see WriteResult for the maps)."""

    removed: int
    freed_maps: tuple[MapRef, ...] = ()
    dropped_maps: tuple[MapRef, ...] = ()


class Permission(str, enum.Enum):
    """Access a user has to an object; ordered none < read < write."""

    NONE = "none"
    READ = "read"
    WRITE = "write"

    @property
    def can_read(self) -> bool:
        return self is not Permission.NONE

    @property
    def can_write(self) -> bool:
        return self is Permission.WRITE


@dataclass(frozen=True, slots=True)
class Sharing:
    """``X-Object-Sharing``: who may read / write.  Subjects are user names,
    ``account:group`` references, or ``*`` (everyone)."""

    read: frozenset[str] = field(default_factory=frozenset)
    write: frozenset[str] = field(default_factory=frozenset)

    def __bool__(self) -> bool:
        return bool(self.read or self.write)

    def format(self) -> str:
        """The header value, canonical order (write also grants read; not repeated)."""
        parts = []
        if self.read:
            parts.append("read=" + ",".join(sorted(self.read)))
        if self.write:
            parts.append("write=" + ",".join(sorted(self.write)))
        return ";".join(parts)


@dataclass(frozen=True, slots=True)
class ListingExtras:
    """What an owner's Pithos listing shows of an object beside its version: its own
    sharing (not an inherited one) and its public token, each None when unset."""

    sharing: Sharing | None = None
    public_token: str | None = None


@dataclass(frozen=True, slots=True)
class EffectiveSharing:
    """The sharing that governs an object: its own, or its nearest shared directory's."""

    path: str  # the object name carrying the sharing (== name unless inherited)
    sharing: Sharing


@dataclass(frozen=True, slots=True)
class OwnerView:
    """What a GET or HEAD by the owner shows of an object: the version, the sharing
    governing it and its public token, read together in one snapshot."""

    version: ObjectVersion
    sharing: EffectiveSharing | None
    public_token: str | None


@dataclass(frozen=True, slots=True)
class PublicTarget:
    account: str
    container: str
    name: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An auth token as listed; the secret itself is never stored."""

    id: int
    account: str
    created: float
    expires: float | None
    description: str


@dataclass(frozen=True, slots=True)
class NewToken:
    """Returned once by ``tokens.create``: ``token`` is the only copy of the secret."""

    token: str
    info: TokenInfo


@dataclass(frozen=True, slots=True)
class AuthKeyInfo:
    user: str
    account: str
    created: float


@dataclass(frozen=True, slots=True)
class CounterMismatch:
    """Found by ``verify()``: a stored counter that disagrees with a recount."""

    table: str
    name: str
    column: str
    stored: int
    actual: int


@dataclass(frozen=True, slots=True)
class Precondition:
    """Conditions on the destination's current version, checked inside the write
    transaction so they cannot race with another writer (412 when they fail).

    ``if_match``/``if_none_match``: ``"*"`` or a collection of ETags (lowercase hex top
    hashes, without quotes).  ``serial``: the current version must be exactly this one
    (for read-modify-write such as partial updates)."""

    if_match: str | frozenset[str] | None = None
    if_none_match: str | frozenset[str] | None = None
    serial: int | None = None


@dataclass(frozen=True, slots=True)
class PutItem:
    """One object of a bulk ``put_many`` (imports, benchmarks)."""

    name: str
    map: MapRef
    content_type: str = "application/octet-stream"
    meta: Mapping[str, str] = field(default_factory=dict)
    attrs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContainerAt:
    """A container as it was at ``until`` (Pithos ``?until``): today's record and
    policies, the usage of then.  ``last_modified`` is the newest version (or the
    creation) not after ``until``: X-Container-Until-Timestamp."""

    container: Container
    until: float
    usage: Usage
    last_modified: float


@dataclass(frozen=True, slots=True)
class AccountAt:
    """An account as it was at ``until``, over the containers it has now that were
    created by then (container deletions are not recorded)."""

    account: Account
    until: float
    container_count: int
    usage: Usage
    last_modified: float
