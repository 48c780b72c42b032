"""Accounts: creation, metadata (X-Account-Meta-*), groups (X-Account-Group-*), quota."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping

from . import errors
from . import validation as v
from .db import Backend
from .keys import upper_bound
from .records import Account
from .rows import ACCOUNT_COLUMNS, account_id, account_record, account_row, dump_json, load_json


def _create(conn: sqlite3.Connection, name: str, quota: int | None, meta: dict[str, str], now: float) -> Account:
    if conn.execute("SELECT 1 FROM accounts WHERE name = ?", (name,)).fetchone():
        raise errors.AccountExists(f"account {name!r} exists")
    conn.execute(
        "INSERT INTO accounts (name, created, mtime, quota, meta) VALUES (?, ?, ?, ?, ?)",
        (name, now, now, quota, dump_json(meta)),
    )
    return account_record(conn, account_row(conn, name))


def _ensure(conn: sqlite3.Connection, name: str, now: float) -> Account:
    row = conn.execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = ?", (name,)).fetchone()
    if row is not None:
        return account_record(conn, row)
    return _create(conn, name, None, {}, now)


def _get(conn: sqlite3.Connection, name: str) -> Account:
    return account_record(conn, account_row(conn, name))


def _list(conn: sqlite3.Connection, prefix: str, marker: str | None, limit: int) -> list[Account]:
    lo, op = (marker, ">") if marker is not None and marker >= prefix else (prefix, ">=")
    hi = upper_bound(prefix)
    sql = f"SELECT {ACCOUNT_COLUMNS} FROM accounts INDEXED BY accounts_by_name WHERE name {op} ?"
    params: list[object] = [lo]
    if hi is not None:
        sql += " AND name < ?"
        params.append(hi)
    sql += " ORDER BY name LIMIT ?"
    params.append(limit)
    return [account_record(conn, row) for row in conn.execute(sql, params).fetchall()]


def _delete(conn: sqlite3.Connection, name: str) -> None:
    row = conn.execute("SELECT id, container_count FROM accounts WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise errors.AccountNotFound(f"account {name!r} not found")
    if row[1]:
        raise errors.AccountNotEmpty(f"account {name!r} still has {row[1]} containers")
    # A later account of the same name must not inherit what was shared with this one.
    conn.execute("DELETE FROM sharing WHERE subject = ?", (name,))
    conn.execute("DELETE FROM sharing WHERE subject >= ? AND subject < ?", (name + ":", name + ";"))
    conn.execute("DELETE FROM groups WHERE member = ?", (name,))
    conn.execute("DELETE FROM accounts WHERE id = ?", (row[0],))  # groups, tokens, keys cascade


def _update_meta(
    conn: sqlite3.Connection, name: str, update: dict[str, str | None], replace: bool, now: float
) -> Account:
    aid = account_id(conn, name)
    (current,) = conn.execute("SELECT meta FROM accounts WHERE id = ?", (aid,)).fetchone()
    merged = v.apply_meta(load_json(current), update, replace)
    conn.execute("UPDATE accounts SET meta = ?, mtime = ? WHERE id = ?", (dump_json(merged), now, aid))
    return _get(conn, name)


def _set_groups(
    conn: sqlite3.Connection, name: str, groups: dict[str, tuple[str, ...]], replace: bool, now: float
) -> Account:
    aid = account_id(conn, name)
    if replace:
        conn.execute("DELETE FROM groups WHERE account_id = ?", (aid,))
    for group, members in groups.items():
        conn.execute("DELETE FROM groups WHERE account_id = ? AND name = ?", (aid, group))
        conn.executemany(
            "INSERT INTO groups (account_id, name, member) VALUES (?, ?, ?)", [(aid, group, m) for m in members]
        )
    conn.execute("UPDATE accounts SET mtime = ? WHERE id = ?", (now, aid))
    return _get(conn, name)


def _set_quota(conn: sqlite3.Connection, name: str, quota: int | None, now: float) -> Account:
    aid = account_id(conn, name)
    conn.execute("UPDATE accounts SET quota = ?, mtime = ? WHERE id = ?", (quota, now, aid))
    return _get(conn, name)


class Accounts:
    """Async API over accounts (``store.accounts``)."""

    def __init__(self, backend: Backend, clock: Callable[[], float]) -> None:
        self._db = backend
        self._clock = clock

    async def create(
        self, name: str, *, quota: int | None = None, meta: Mapping[str, str] | None = None
    ) -> Account:
        """New account; AccountExists if the name is taken."""
        v.account_name(name)
        clean = v.apply_meta({}, v.meta_update(meta), True)
        return await self._db.write(_create, name, v.quota(quota), clean, self._clock())

    async def ensure(self, name: str) -> Account:
        """The account, created on first use (Pithos creates accounts on first login)."""
        v.account_name(name)
        return await self._db.write(_ensure, name, self._clock())

    async def get(self, name: str) -> Account:
        v.account_name(name)
        return await self._db.point_read(_get, name)

    async def list(self, *, prefix: str = "", marker: str | None = None, limit: int = 10000) -> list[Account]:
        """Accounts in name order, paged by marker (admin listing)."""
        v.listing_string(prefix, "prefix")
        v.listing_string(marker, "marker")
        return await self._db.read(_list, prefix, marker, v.limit(limit))

    async def delete(self, name: str) -> None:
        """Only an account without containers; its tokens, keys and groups go with it."""
        v.account_name(name)
        await self._db.write(_delete, name)

    async def update_meta(
        self, name: str, meta: Mapping[str, str | None], *, replace: bool = False
    ) -> Account:
        """Merge X-Account-Meta-* (None/'' removes a key); replace=True drops the others."""
        v.account_name(name)
        return await self._db.write(_update_meta, name, v.meta_update(meta), replace, self._clock())

    async def set_groups(
        self, name: str, groups: Mapping[str, Iterable[str]], *, replace: bool = False
    ) -> Account:
        """Set X-Account-Group-<name> = members; an empty member list removes the group."""
        v.account_name(name)
        clean = {v.group_name(g): v.group_members(m) for g, m in groups.items()}
        return await self._db.write(_set_groups, name, clean, replace, self._clock())

    async def set_quota(self, name: str, quota: int | None) -> Account:
        """Account-wide quota in bytes over all its containers (None = unlimited)."""
        v.account_name(name)
        return await self._db.write(_set_quota, name, v.quota(quota), self._clock())
