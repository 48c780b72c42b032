"""Public URLs: ``X-Object-Public: true`` gives an object a stable ``/public/<token>``.

The token is random (not derived from the name, so URLs cannot be guessed) and
stable: publishing again returns the same one.  It is stored in clear because it is
a URL meant to be handed out, not a credential.  It follows the object path: kept
across new versions, removed when the object is deleted.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable

from . import errors
from . import validation as v
from .db import Backend
from .records import PublicTarget
from .rows import container_ref, current_version_row

TOKEN_BYTES = 16


def _publish(conn: sqlite3.Connection, account: str, container: str, name: str, now: float) -> str:
    ref = container_ref(conn, account, container)
    if current_version_row(conn, ref.id, name) is None:
        raise errors.ObjectNotFound(f"object {account}/{container}/{name} not found")
    row = conn.execute("SELECT token FROM public_urls WHERE container_id = ? AND name = ?", (ref.id, name)).fetchone()
    if row is not None:
        return str(row[0])
    while True:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        if conn.execute("SELECT 1 FROM public_urls WHERE token = ?", (token,)).fetchone() is None:
            break
    conn.execute(
        "INSERT INTO public_urls (token, container_id, name, created) VALUES (?, ?, ?, ?)",
        (token, ref.id, name, now),
    )
    return token


def _unpublish(conn: sqlite3.Connection, account: str, container: str, name: str) -> bool:
    ref = container_ref(conn, account, container)
    return conn.execute("DELETE FROM public_urls WHERE container_id = ? AND name = ?", (ref.id, name)).rowcount > 0


def public_token(conn: sqlite3.Connection, account: str, container: str, name: str) -> str | None:
    return public_token_in(conn, container_ref(conn, account, container).id, name)


def public_token_in(conn: sqlite3.Connection, container_id: int, name: str) -> str | None:
    """public_token in a container already looked up (by its id)."""
    row = conn.execute("SELECT token FROM public_urls WHERE container_id = ? AND name = ?", (container_id, name)).fetchone()
    return str(row[0]) if row else None


def _resolve(conn: sqlite3.Connection, token: str) -> PublicTarget | None:
    row = conn.execute(
        "SELECT a.name, c.name, p.name FROM public_urls p JOIN containers c ON c.id = p.container_id "
        "JOIN accounts a ON a.id = c.account_id WHERE p.token = ?",
        (token,),
    ).fetchone()
    return PublicTarget(*row) if row else None


class Public:
    """Async API for public URLs (``store.public``)."""

    def __init__(self, backend: Backend, clock: Callable[[], float]) -> None:
        self._db = backend
        self._clock = clock

    async def publish(self, account: str, container: str, name: str) -> str:
        """The object's public token (created on first call); ObjectNotFound if absent."""
        v.account_name(account)
        v.container_name(container)
        v.object_name(name)
        return await self._db.write(_publish, account, container, name, self._clock())

    async def unpublish(self, account: str, container: str, name: str) -> bool:
        """True if the object was public."""
        v.account_name(account)
        v.container_name(container)
        v.object_name(name)
        return await self._db.write(_unpublish, account, container, name)

    async def token(self, account: str, container: str, name: str) -> str | None:
        """The token if the object is public (for X-Object-Public on HEAD)."""
        v.account_name(account)
        v.container_name(container)
        v.object_name(name)
        return await self._db.read(public_token, account, container, name)

    async def resolve(self, token: str) -> PublicTarget | None:
        """``/public/<token>`` → (account, container, name), or None."""
        if not isinstance(token, str) or not token or len(token) > 256:
            return None
        return await self._db.read(_resolve, token)
