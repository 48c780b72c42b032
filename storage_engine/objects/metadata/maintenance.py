"""Checks and repairs for operators, and the mark phase of garbage collection.

These are the only operations that scan whole tables, on purpose: a recount is how
one proves that the incrementally maintained counters are right.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .db import Backend
from .records import CounterMismatch, MapRef
from .rows import map_referenced

_USAGE = ("object_count", "bytes_used", "history_count", "history_bytes")

_ACTUAL_CONTAINERS = """
SELECT c.id, a.name || '/' || c.name, c.object_count, c.bytes_used, c.history_count, c.history_bytes,
       coalesce(sum(v.state = 'normal'), 0),
       coalesce(sum(CASE WHEN v.state = 'normal' THEN v.size END), 0),
       coalesce(sum(v.state = 'history'), 0),
       coalesce(sum(CASE WHEN v.state = 'history' THEN v.size END), 0)
FROM containers c JOIN accounts a ON a.id = c.account_id LEFT JOIN versions v ON v.container_id = c.id
GROUP BY c.id"""

_ACTUAL_ACCOUNTS = """
SELECT a.id, a.name, a.container_count, a.object_count, a.bytes_used, a.history_count, a.history_bytes,
       count(c.id), coalesce(sum(c.object_count), 0), coalesce(sum(c.bytes_used), 0),
       coalesce(sum(c.history_count), 0), coalesce(sum(c.history_bytes), 0)
FROM accounts a LEFT JOIN containers c ON c.account_id = a.id
GROUP BY a.id"""


def _check(conn: sqlite3.Connection, repair: bool) -> list[CounterMismatch]:
    found: list[CounterMismatch] = []

    def compare(table: str, row: tuple[Any, ...], columns: tuple[str, ...]) -> None:
        n = len(columns)
        stored, actual = row[2 : 2 + n], row[2 + n : 2 + 2 * n]
        bad = [(c, s, a) for c, s, a in zip(columns, stored, actual, strict=True) if s != a]
        for c, s, a in bad:
            found.append(CounterMismatch(table, row[1], c, s, a))
        if bad and repair:
            conn.execute(
                f"UPDATE {table} SET {', '.join(f'{c} = ?' for c, _, _ in bad)} WHERE id = ?",
                [a for _, _, a in bad] + [row[0]],
            )

    # Containers first: the account check sums the (repaired) container counters.
    for row in conn.execute(_ACTUAL_CONTAINERS).fetchall():
        compare("containers", row, _USAGE)
    for row in conn.execute(_ACTUAL_ACCOUNTS).fetchall():
        compare("accounts", row, ("container_count", *_USAGE))
    return found


def _map_refs(conn: sqlite3.Connection, after: MapRef | None, limit: int) -> list[MapRef]:
    sql = (
        "SELECT DISTINCT map_hash, map_size, map_scheme FROM versions INDEXED BY versions_by_map "
        "WHERE map_hash IS NOT NULL"
    )
    params: list[Any] = []
    if after is not None:
        sql += " AND (map_hash, map_size, map_scheme) > (?, ?, ?)"
        params += [after.top_hash, after.size, after.scheme]
    sql += " ORDER BY map_hash, map_size, map_scheme LIMIT ?"
    params.append(limit)
    return [MapRef(s, z, bytes(h)) for h, z, s in conn.execute(sql, params)]


def _versions_using(conn: sqlite3.Connection, ref: MapRef, limit: int) -> list[tuple[str, str, str, int, str]]:
    rows = conn.execute(
        "SELECT a.name, c.name, v.name, v.serial, v.state FROM versions v INDEXED BY versions_by_map "
        "JOIN containers c ON c.id = v.container_id JOIN accounts a ON a.id = c.account_id "
        "WHERE v.map_hash = ? AND v.map_size = ? AND v.map_scheme = ? ORDER BY v.serial LIMIT ?",
        (ref.top_hash, ref.size, ref.scheme, limit),
    )
    return [(str(a), str(c), str(n), int(serial), str(state)) for a, c, n, serial, state in rows]


class Maintenance:
    """``store.maintenance``: counter checks and the GC's view of referenced maps."""

    def __init__(self, backend: Backend) -> None:
        self._db = backend

    async def verify(self) -> list[CounterMismatch]:
        """Recount usage from the versions (a full scan) and report disagreements."""
        return await self._db.read(_check, False)

    async def repair(self) -> list[CounterMismatch]:
        """Like verify, and set every wrong counter to the recounted value."""
        return await self._db.write(_check, True)

    async def map_refs(self, *, after: MapRef | None = None, limit: int = 10000) -> list[MapRef]:
        """Every map referenced by some version, in a stable order, paged by ``after``:
        the mark phase of the map store's garbage collection."""
        return await self._db.read(_map_refs, after, limit)

    async def map_referenced(self, ref: MapRef) -> bool:
        return await self._db.read(map_referenced, ref)

    async def versions_using(self, ref: MapRef, limit: int = 100) -> list[tuple[str, str, str, int, str]]:
        """(account, container, object, serial, state) of the versions whose content is
        this map: which objects a damaged map (a quarantined block) affects."""
        return await self._db.read(_versions_using, ref, limit)
