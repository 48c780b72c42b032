"""nefeli metadata: accounts, containers, object versions, sharing, public URLs and
auth tokens in SQLite (WAL) through aiosqlite.  See docs/metadata-schema.md.

Async API: ``await MetadataStore.open(path)``; blocking API: ``SyncMetadataStore(path)``.
"""

from __future__ import annotations

from . import errors
from .containers import KEEP
from .errors import MetadataError
from .listing import DEFAULT_LIMIT
from .migrations import LATEST as SCHEMA_VERSION
from .migrations import MIGRATIONS, Migration
from .objects import check_quota
from .records import (
    Account,
    AccountAt,
    AuthKeyInfo,
    BatchDeleteResult,
    Container,
    ContainerAt,
    ContainerPolicy,
    CounterMismatch,
    DeleteResult,
    EffectiveSharing,
    OwnerView,
    ListingExtras,
    MapRef,
    NewToken,
    ObjectVersion,
    Permission,
    Precondition,
    PublicTarget,
    PurgeResult,
    PutItem,
    Sharing,
    Subdir,
    TokenInfo,
    Usage,
    WriteResult,
)
from .rows import ContainerRef
from .store import MetadataStore
from .sync import SyncMetadataStore
from .validation import MAX_LISTING_LIMIT, parse_sharing

__all__ = [
    "DEFAULT_LIMIT",
    "KEEP",
    "MAX_LISTING_LIMIT",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Account",
    "AccountAt",
    "AuthKeyInfo",
    "BatchDeleteResult",
    "Container",
    "ContainerAt",
    "ContainerPolicy",
    "ContainerRef",
    "CounterMismatch",
    "DeleteResult",
    "EffectiveSharing",
    "OwnerView",
    "ListingExtras",
    "MapRef",
    "MetadataError",
    "MetadataStore",
    "Migration",
    "NewToken",
    "ObjectVersion",
    "Permission",
    "Precondition",
    "PublicTarget",
    "PurgeResult",
    "PutItem",
    "Sharing",
    "Subdir",
    "SyncMetadataStore",
    "TokenInfo",
    "Usage",
    "WriteResult",
    "check_quota",
    "errors",
    "parse_sharing",
]
