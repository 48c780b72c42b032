"""Authentication secrets: API tokens and Swift v1 user/key pairs, stored hashed.

Tokens are random (256 bits), so a plain SHA-256 is enough to make a stolen
database useless, and lookup is by that digest (no comparison against a secret,
hence no timing leak).  Swift v1 keys may be chosen by an operator and so may be
weak: they get a salted scrypt, computed off the event loop.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Callable

from . import errors
from . import validation as v
from .db import Backend
from .records import AuthKeyInfo, NewToken, TokenInfo
from .rows import account_id

TOKEN_PREFIX = "nfl_"  # recognisable by secret scanners
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_KEY_LENGTH = 16
#: an /auth/v1.0 token with less time left than this is not handed out again
V1_REUSE_MARGIN = 60.0


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def hash_key(key: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    dk = hashlib.scrypt(key.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64s, b64k = base64.b64encode(salt).decode(), base64.b64encode(dk).decode()
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64s}${b64k}"


def check_key(key: str, stored: str) -> bool:
    return key_secret(key, stored) is not None


def key_secret(key: str, stored: str) -> bytes | None:
    """None if ``key`` does not match ``stored``; else 32 bytes only the key's holder
    can compute: the scrypt output past the stored hash. scrypt ends in PBKDF2, whose
    first bytes do not depend on how many are asked for, so one derivation both checks
    the key and gives the secret (the /auth/v1.0 token is derived from it)."""
    try:
        kind, n, r, p, salt, dk = stored.split("$")
        if kind != "scrypt":
            return None
        want = base64.b64decode(dk)
        got = hashlib.scrypt(
            key.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(want) + 32
        )
    except (ValueError, TypeError):
        return None
    return got[len(want) :] if hmac.compare_digest(got[: len(want)], want) else None


def v1_token(secret: bytes, nonce: bytes) -> str:
    """The /auth/v1.0 token of a key's secret and a stored nonce (as long as create's)."""
    mac = hmac.new(secret, b"nefeli auth/v1.0 token\0" + nonce, hashlib.sha256).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


_TOKEN_COLUMNS = "t.id, a.name, t.created, t.expires, t.description"


def _create(
    conn: sqlite3.Connection, account: str, digest: bytes, expires: float | None, description: str, now: float
) -> TokenInfo:
    aid = account_id(conn, account)
    cur = conn.execute(
        "INSERT INTO tokens (account_id, digest, created, expires, description) VALUES (?, ?, ?, ?, ?)",
        (aid, digest, now, expires, description),
    )
    return TokenInfo(int(cur.lastrowid or 0), account, now, expires, description)


def _resolve(conn: sqlite3.Connection, digest: bytes, now: float) -> str | None:
    row = conn.execute(
        "SELECT a.name, t.expires FROM tokens t JOIN accounts a ON a.id = t.account_id WHERE t.digest = ?", (digest,)
    ).fetchone()
    if row is None or (row[1] is not None and row[1] <= now):
        return None
    return str(row[0])


def _revoke(conn: sqlite3.Connection, token_id: int | None, digest: bytes | None) -> bool:
    if token_id is not None:
        return conn.execute("DELETE FROM tokens WHERE id = ?", (token_id,)).rowcount > 0
    return conn.execute("DELETE FROM tokens WHERE digest = ?", (digest,)).rowcount > 0


def _list(conn: sqlite3.Connection, account: str) -> list[TokenInfo]:
    aid = account_id(conn, account)
    return [
        TokenInfo(*row)
        for row in conn.execute(
            f"SELECT {_TOKEN_COLUMNS} FROM tokens t JOIN accounts a ON a.id = t.account_id "
            "WHERE t.account_id = ? ORDER BY t.id",
            (aid,),
        )
    ]


def _purge_expired(conn: sqlite3.Connection, now: float) -> int:
    return conn.execute("DELETE FROM tokens WHERE expires IS NOT NULL AND expires <= ?", (now,)).rowcount


def _v1_current(conn: sqlite3.Connection, user: str) -> tuple[int, bytes, bytes, float, float | None] | None:
    """(token id, nonce, digest, created, expires) of the token /auth/v1.0 last gave ``user``."""
    row = conn.execute(
        "SELECT t.id, v.nonce, t.digest, t.created, t.expires FROM auth_v1_tokens v "
        "JOIN tokens t ON t.id = v.token_id WHERE v.user = ?",
        (user,),
    ).fetchone()
    return None if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]), float(row[3]), row[4])


def _v1_issue(
    conn: sqlite3.Connection, user: str, account: str, digest: bytes, nonce: bytes, expires: float | None,
    description: str, now: float,
) -> TokenInfo:
    info = _create(conn, account, digest, expires, description, now)
    conn.execute(
        "INSERT INTO auth_v1_tokens (user, token_id, nonce) VALUES (?, ?, ?) "
        "ON CONFLICT (user) DO UPDATE SET token_id = excluded.token_id, nonce = excluded.nonce",
        (user, info.id, nonce),
    )
    return info


def _set_key(conn: sqlite3.Connection, user: str, account: str, key_hash: str, now: float) -> None:
    aid = account_id(conn, account)
    # the last /auth/v1.0 token came from the old key: the new one cannot re-derive it
    conn.execute("DELETE FROM auth_v1_tokens WHERE user = ?", (user,))
    conn.execute(
        "INSERT INTO auth_keys (user, account_id, key_hash, created) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (user) DO UPDATE SET account_id = excluded.account_id, key_hash = excluded.key_hash, "
        "created = excluded.created",
        (user, aid, key_hash, now),
    )


def _key_of(conn: sqlite3.Connection, user: str) -> tuple[str, str] | None:
    row = conn.execute(
        "SELECT a.name, k.key_hash FROM auth_keys k JOIN accounts a ON a.id = k.account_id WHERE k.user = ?", (user,)
    ).fetchone()
    return (str(row[0]), str(row[1])) if row else None


def _delete_key(conn: sqlite3.Connection, user: str) -> bool:
    return conn.execute("DELETE FROM auth_keys WHERE user = ?", (user,)).rowcount > 0


def _list_keys(conn: sqlite3.Connection, account: str) -> list[AuthKeyInfo]:
    aid = account_id(conn, account)
    return [
        AuthKeyInfo(user, account, created)
        for user, created in conn.execute(
            "SELECT user, created FROM auth_keys WHERE account_id = ? ORDER BY user", (aid,)
        )
    ]


class Tokens:
    """Async API for tokens and Swift v1 keys (``store.tokens``)."""

    def __init__(self, backend: Backend, clock: Callable[[], float]) -> None:
        self._db = backend
        self._clock = clock

    async def create(self, account: str, *, ttl: float | None = None, description: str = "") -> NewToken:
        """A new token for ``account``; the clear token is in the result and nowhere else.
        ``ttl`` seconds until it expires (None = never)."""
        v.account_name(account)
        if ttl is not None and ttl <= 0:
            raise errors.InvalidArgument("ttl must be positive")
        if not isinstance(description, str) or len(description) > 256 or v.CONTROL_CHARS.search(description):
            raise errors.InvalidArgument("description: at most 256 characters, no control characters")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        expires = now + ttl if ttl is not None else None
        info = await self._db.write(_create, account, token_digest(token), expires, description, now)
        return NewToken(token=token, info=info)

    async def resolve(self, token: str) -> str | None:
        """The account a presented X-Auth-Token belongs to; None if unknown or expired."""
        if not isinstance(token, str) or not token or len(token) > 1024:
            return None
        return await self._db.point_read(_resolve, token_digest(token), self._clock())

    async def revoke(self, token_id: int) -> bool:
        return await self._db.write(_revoke, int(token_id), None)

    async def revoke_token(self, token: str) -> bool:
        """Revoke by the secret itself (logout)."""
        return await self._db.write(_revoke, None, token_digest(token))

    async def list(self, account: str) -> list[TokenInfo]:
        v.account_name(account)
        return await self._db.read(_list, account)

    async def purge_expired(self) -> int:
        return await self._db.write(_purge_expired, self._clock())

    async def set_key(self, user: str, account: str, key: str | None = None) -> str:
        """Create or replace the Swift v1 key of ``user`` (X-Auth-User), acting as
        ``account``.  Returns the key in clear: the given one, or a generated one."""
        v.auth_user(user)
        v.account_name(account)
        if key is None:
            key = secrets.token_urlsafe(24)
        elif not isinstance(key, str) or len(key) < MIN_KEY_LENGTH or len(key) > 1024:
            raise errors.InvalidArgument(f"a key has {MIN_KEY_LENGTH} to 1024 characters")
        hashed = await self._db.offload(hash_key, key)
        await self._db.write(_set_key, user, account, hashed, self._clock())
        return key

    async def verify_key(self, user: str, key: str) -> str | None:
        """The account if ``key`` is ``user``'s key, else None."""
        found = await self._key_secret(user, key)
        return found[0] if found is not None else None

    async def _key_secret(self, user: str, key: str) -> tuple[str, bytes] | None:
        """(account, the key's secret) if ``key`` is ``user``'s key, else None; one
        scrypt either way, so a wrong user costs what a wrong key does."""
        if not isinstance(user, str) or not isinstance(key, str) or not user or len(key) > 1024:
            return None
        found = await self._db.read(_key_of, user)
        if found is None:
            await self._db.offload(hash_key, key)  # same cost whether or not the user exists
            return None
        account, stored = found
        secret = await self._db.offload(key_secret, key, stored)
        return (account, secret) if secret is not None else None

    async def login_v1(
        self, user: str, key: str, *, ttl: float | None, description: str = "auth/v1.0"
    ) -> NewToken | None:
        """``GET /auth/v1.0``: None for a wrong user or key; else the token this user's
        last login got while it has at least ``V1_REUSE_MARGIN`` seconds left (so
        clients that log in per call do not pile up tokens), or a new one."""
        found = await self._key_secret(user, key)
        if found is None:
            return None
        account, secret = found
        now = self._clock()
        cur = await self._db.read(_v1_current, user)
        if cur is not None:
            token_id, nonce, digest, created, expires = cur
            token = v1_token(secret, nonce)
            if (expires is None or expires - now >= V1_REUSE_MARGIN) and hmac.compare_digest(token_digest(token), digest):
                return NewToken(token=token, info=TokenInfo(token_id, account, created, expires, description))
        nonce = secrets.token_bytes(32)
        token = v1_token(secret, nonce)
        expires = now + ttl if ttl is not None else None
        info = await self._db.write(
            _v1_issue, user, account, token_digest(token), nonce, expires, description, now
        )
        return NewToken(token=token, info=info)

    async def delete_key(self, user: str) -> bool:
        return await self._db.write(_delete_key, user)

    async def list_keys(self, account: str) -> builtins.list[AuthKeyInfo]:
        v.account_name(account)
        return await self._db.read(_list_keys, account)
