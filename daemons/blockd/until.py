"""The Pithos `until` query parameter of blockd requests: reading the past.

`until` is read on the Pithos path only (Swift has no such parameter and ignores
unknown ones); an empty value counts as absent, as for the listing parameters.
A value that is not a time is 400 (net.pithos_until). As in Pithos, only the
account's owner may look into the past: sharing is about the present, and what
was shared yesterday is not known.
"""

from __future__ import annotations

from net.http_conditional import format_http_date
from net.pithos_until import parse_until

from .http import HTTPError
from .request_context import Req

__all__ = ["until_headers", "until_of"]


def until_of(r: Req) -> float | None:
    """Seconds since the epoch named by the request's `until`, or None."""
    if r.api != "pithos":
        return None
    raw = r.query.get("until")
    if not raw:
        return None
    until = parse_until(raw)
    if not r.owner:
        raise HTTPError(403, "until is for the account owner only")
    return until


def until_headers(
    headers: dict[str, str], kind: str, object_count: int, bytes_used: int, last_modified: float
) -> dict[str, str]:
    """Account or container (``kind``) headers with the usage of a past time and
    X-<Kind>-Until-Timestamp, the last change up to it; Last-Modified stays the
    present one, as Pithos sends it."""
    out = dict(headers)
    out[f"X-{kind}-Object-Count"] = str(object_count)
    out[f"X-{kind}-Bytes-Used"] = str(bytes_used)
    out[f"X-{kind}-Until-Timestamp"] = format_http_date(last_modified)
    return out
