"""Typed errors of the metadata layer.

Every error carries ``status``, the HTTP status the object server should answer
with, so nefeli-blockd can map them without a table of its own.  The classes
form a small tree (``NotFound``, ``Conflict``...) so callers may catch broadly.
"""

from __future__ import annotations


class MetadataError(Exception):
    """Base class of everything this package raises on purpose."""

    status: int = 500


# -- 400 ---------------------------------------------------------------------


class InvalidArgument(MetadataError, ValueError):
    """A caller-supplied value is malformed (maps to 400)."""

    status = 400


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


# -- 404 ---------------------------------------------------------------------


class NotFound(MetadataError, LookupError):
    """Something named does not exist (maps to 404)."""

    status = 404


class AccountNotFound(NotFound):
    pass


class ContainerNotFound(NotFound):
    pass


class ObjectNotFound(NotFound):
    pass


class VersionNotFound(NotFound):
    """``?version=N`` names no live version of this object."""


# -- 409 ---------------------------------------------------------------------


class Conflict(MetadataError):
    """The request conflicts with the current state (maps to 409)."""

    status = 409


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


class PreconditionFailed(MetadataError):
    """``If-Match`` / ``If-None-Match`` / expected serial did not hold (412)."""

    status = 412


class QuotaExceeded(MetadataError):
    """The write would take a container or an account over its quota (413)."""

    status = 413


class Busy(MetadataError):
    """Another process held the database write lock for longer than the busy timeout (503)."""

    status = 503


class SchemaError(MetadataError):
    """The database schema cannot be used by this version of the code."""


class SchemaTooNew(SchemaError):
    """The database was written by a newer nefeli; refuse rather than corrupt it."""


class MigrationError(SchemaError):
    """A migration failed; the database was left at its previous version."""
