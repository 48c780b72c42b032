"""The kinds of error the engine raises on purpose, shared by every layer.

Each layer's own errors (storage_engine.blocks.errors, objects.metadata.errors,
objects.store) subclass one of these, so a caller can act on the kind without
knowing the layer: a daemon maps kinds to its protocol's answers in one table
(nefeli-blockd: daemons/blockd/errors.py). No kind carries a protocol status.
An EngineError of no kind is a failure of the engine itself.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class of everything the storage engine raises on purpose."""


class InvalidArgument(EngineError, ValueError):
    """A value the caller gave is malformed or out of range."""


class NotFound(EngineError, LookupError):
    """What the caller named does not exist."""


class PermissionDenied(EngineError):
    """The user the call is made for may not do this."""


class Conflict(EngineError):
    """The call conflicts with the current state (exists, not empty, missing blocks ...)."""


class PreconditionFailed(EngineError):
    """A condition the caller set on the current state did not hold."""


class QuotaExceeded(EngineError):
    """The write would take a container or an account over its quota."""


class TooLarge(EngineError):
    """The result would be larger than the engine makes (a joined copy, a manifest)."""


class ChecksumMismatch(EngineError):
    """Data does not match the checksum the caller announced for it."""


class ClientGone(EngineError):
    """The byte source ended before the length announced (its client went away or lied)."""


class Busy(EngineError):
    """Another process held a lock longer than the engine waits; try again."""


class StorageFull(EngineError):
    """No space left: the operation did nothing and the store stays usable."""


__all__ = [
    "Busy",
    "ChecksumMismatch",
    "ClientGone",
    "Conflict",
    "EngineError",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "PreconditionFailed",
    "QuotaExceeded",
    "StorageFull",
    "TooLarge",
]
