"""Typed errors of the HTTP/Pithos codecs: each carries the status the object server answers.

The codecs never raise anything else on bad input, so the server can map
`except ProtocolError as e: reply(e.status, e.reason)` in one place. The name is
`http_errors` (not `errors`) because `net/` also holds non-HTTP codecs.
"""

from __future__ import annotations

from typing import ClassVar


class ProtocolError(ValueError):
    """Bad input from a peer; `status` is the HTTP status to answer, `reason` a short text."""

    status: ClassVar[int] = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(ProtocolError):
    """400: the request is malformed."""

    status: ClassVar[int] = 400


class NotFound(ProtocolError):
    """404: the URL names nothing this server serves."""

    status: ClassVar[int] = 404


class PreconditionFailed(ProtocolError):
    """412: a precondition (or a Swift-style parameter limit) does not hold."""

    status: ClassVar[int] = 412


class PayloadTooLarge(ProtocolError):
    """413: the body or the object it describes is over a limit."""

    status: ClassVar[int] = 413


class RangeNotSatisfiable(ProtocolError):
    """416: no requested range overlaps the object; answer with `content_range`."""

    status: ClassVar[int] = 416

    def __init__(self, reason: str, size: int | None = None) -> None:
        super().__init__(reason)
        self.size = size

    @property
    def content_range(self) -> str | None:
        """The `Content-Range: bytes */size` value RFC 9110 §15.5.17 asks a 416 to carry."""
        return None if self.size is None else f"bytes */{self.size}"


# --- per-codec subclasses: catch narrowly in tests, broadly in the server -----------------


class InvalidRange(BadRequest):
    """A `Range` header that does not parse. RFC 9110 §14.2 lets a server ignore it (send 200)."""


class UnsupportedRangeUnit(InvalidRange):
    """A `Range` unit other than bytes: RFC 9110 §14.2 says the server MUST ignore the header."""


class InvalidContentRange(BadRequest):
    """A request `Content-Range` (Pithos partial update) that does not parse or fit the body."""


class InvalidETag(BadRequest):
    """An entity-tag or entity-tag list that does not parse."""


class InvalidHTTPDate(BadRequest):
    """Not an HTTP-date; conditional requests ignore such a field (RFC 9110 §13.1.3)."""


class InvalidSharing(BadRequest):
    """A malformed `X-Object-Sharing` value."""


class InvalidGroup(BadRequest):
    """A malformed `X-Account-Group-*` header name or value."""


class InvalidPolicy(BadRequest):
    """A malformed or unknown `X-Account-Policy-*` header."""


class InvalidHashmap(BadRequest):
    """A hashmap body (PUT ?hashmap) that is not JSON of the right shape, or is inconsistent."""


class HashmapTooLarge(PayloadTooLarge):
    """A hashmap body, or the object it describes, over the configured limit."""


class InvalidManifest(BadRequest):
    """A Swift SLO manifest (PUT ?multipart-manifest=put) that is not JSON of the right shape."""


class ManifestTooLarge(PayloadTooLarge):
    """An SLO manifest body over Swift's size limit."""


class InvalidListingQuery(BadRequest):
    """A bad listing parameter (limit, delimiter, format...)."""


class ListingLimitTooLarge(InvalidListingQuery):
    """`limit` over the maximum: Swift answers 412 for this one."""

    status: ClassVar[int] = 412


class InvalidName(BadRequest):
    """An account, container or object name that is not acceptable."""


class UnknownPath(NotFound):
    """A URL path under neither API prefix."""


class InvalidPartNumber(BadRequest):
    """400: `?part-number=` is not a positive integer."""
