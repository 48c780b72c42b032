"""Where published objects are served (GET/HEAD /public/TOKEN)."""

from __future__ import annotations

PUBLIC_PREFIX = "/public/"


def public_path(token: str) -> str:
    """Where a published object is served, relative to the server (listings show this)."""
    return PUBLIC_PREFIX + token
