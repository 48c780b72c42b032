"""Typed errors of the metadata layer.

The classes form a small tree (``NotFound``, ``Conflict``...) so callers may
catch broadly; each branch is also the engine's kind of the same name
(storage_engine.errors), which is what a daemon maps to its protocol's answer.
A MetadataError of no kind (SchemaError ...) is a failure of the store itself.
"""

from __future__ import annotations

from storage_engine import errors as kinds


class MetadataError(kinds.EngineError):
    """Base class of everything this package raises on purpose."""


# -- invalid arguments -------------------------------------------------------


class InvalidArgument(MetadataError, kinds.InvalidArgument):
    """A caller-supplied value is malformed."""


class InvalidName(InvalidArgument):
    """An account, container, object, group or user name is not acceptable."""


class InvalidContentType(InvalidArgument):
    """A content type is not a well-formed ``type/subtype[; params]``."""


class InvalidMetadata(InvalidArgument):
    """A metadata key or value is malformed, or there is too much of it."""


class InvalidPolicy(InvalidArgument):
    """A container policy value (versioning, quota, block size, scheme) is bad."""


class InvalidSharing(InvalidArgument):
    """An ``X-Object-Sharing`` value could not be parsed."""


# -- not found ---------------------------------------------------------------


class NotFound(MetadataError, kinds.NotFound):
    """Something named does not exist."""


class AccountNotFound(NotFound):
    pass


class ContainerNotFound(NotFound):
    pass


class ObjectNotFound(NotFound):
    pass


class VersionNotFound(NotFound):
    """``?version=N`` names no live version of this object."""


# -- conflicts ---------------------------------------------------------------


class Conflict(MetadataError, kinds.Conflict):
    """The request conflicts with the current state."""


class AccountExists(Conflict):
    pass


class ContainerExists(Conflict):
    pass


class AccountNotEmpty(Conflict):
    """An account still has containers."""


class ContainerNotEmpty(Conflict):
    """A container still has current objects."""


class PolicyLocked(Conflict):
    """Hash scheme / block size may change only while the container holds no versions."""


class PolicyMismatch(Conflict):
    """A map cannot be shared between containers of different scheme or block size.

    The object server answers it by copying through the data path (re-hashing)."""


# -- others ------------------------------------------------------------------


class PreconditionFailed(MetadataError, kinds.PreconditionFailed):
    """``If-Match`` / ``If-None-Match`` / expected serial did not hold."""


class QuotaExceeded(MetadataError, kinds.QuotaExceeded):
    """The write would take a container or an account over its quota."""


class Busy(MetadataError, kinds.Busy):
    """Another process held the database write lock for longer than the busy timeout."""


class SchemaError(MetadataError):
    """The database schema cannot be used by this version of the code."""


class SchemaTooNew(SchemaError):
    """The database was written by a newer nefeli; refuse rather than corrupt it."""


class MigrationError(SchemaError):
    """A migration failed; the database was left at its previous version."""
