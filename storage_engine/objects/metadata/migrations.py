"""Schema versioning: an ordered list of migrations and the code that applies them.

``schema_version`` keeps one row per applied step.  Opening a database applies the
missing steps, all in ONE immediate transaction: a crash or an error leaves the
database at its old version, never half-way.  A database newer than the code is
refused (SchemaTooNew) instead of being written by code that does not know it.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from dataclasses import dataclass
from collections.abc import Callable, Sequence

from . import errors, schema


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sqlite3.Connection], None]


def _statements(stmts: Sequence[str]) -> Callable[[sqlite3.Connection], None]:
    def apply(conn: sqlite3.Connection) -> None:
        # execute() one statement at a time: executescript() would COMMIT our transaction.
        for stmt in stmts:
            conn.execute(stmt)

    return apply


_UUID_BATCH = 10_000


def _assign_object_uuids(conn: sqlite3.Connection) -> None:
    """Step 4: give the versions already stored their X-Object-UUID.

    An object keeps one UUID from its creation until it is deleted, so the versions
    of one name share a UUID, and the version after a deleted marker starts a new
    one (the marker keeps the UUID of the object it ended).  Walked in keyset pages
    of the versions_by_name index, so memory stays flat however many rows there are.
    Moves done before this step cannot be told apart from new objects: the moved
    object gets a UUID of its own."""
    _statements(schema.V4_UUID_COLUMN)(conn)
    after: tuple[int, str, int] = (-1, "", -1)
    key: tuple[int, str] | None = None
    current: str | None = None
    while True:
        rows = conn.execute(
            "SELECT container_id, name, serial, state FROM versions INDEXED BY versions_by_name "
            "WHERE (container_id, name, serial) > (?, ?, ?) ORDER BY container_id, name, serial LIMIT ?",
            (*after, _UUID_BATCH),
        ).fetchall()
        if not rows:
            break
        updates: list[tuple[str, int]] = []
        for container_id, name, serial, state in rows:
            if (container_id, name) != key or current is None:
                key, current = (container_id, name), str(uuid.uuid4())
            updates.append((current, serial))
            if state == "deleted":
                current = None
        conn.executemany("UPDATE versions SET uuid = ? WHERE serial = ?", updates)
        last = rows[-1]
        after = (last[0], last[1], last[2])
    _statements(schema.V4_UUID_REQUIRED)(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "accounts, containers, object versions, usage counters", _statements(schema.V1_CORE)),
    Migration(2, "groups, sharing, public URLs", _statements(schema.V2_SHARING)),
    Migration(3, "auth tokens and Swift v1 keys", _statements(schema.V3_AUTH)),
    Migration(4, "object UUIDs (X-Object-UUID)", _assign_object_uuids),
    Migration(5, "index of versions by time (until)", _statements(schema.V5_VERSIONS_AT)),
    Migration(6, "the token /auth/v1.0 gave each Swift user", _statements(schema.V6_AUTH_V1_TOKENS)),
)

LATEST: int = MIGRATIONS[-1].version

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied REAL NOT NULL
)"""


def current_version(conn: sqlite3.Connection) -> int:
    """0 for a database that has never been migrated."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _check_order(migrations: Sequence[Migration]) -> None:
    for i, m in enumerate(migrations, start=1):
        if m.version != i:
            raise errors.SchemaError(f"migrations must be numbered 1, 2, 3...; found {m.version} at position {i}")


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> tuple[int, int]:
    """Bring the database to the last of ``migrations``; returns (from, to).

    ``conn`` must be in autocommit mode (isolation_level=None); foreign keys stay on,
    so a step that rebuilds a table must use PRAGMA defer_foreign_keys."""
    _check_order(migrations)
    latest = migrations[-1].version if migrations else 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_VERSION_TABLE)
        start = current_version(conn)
        if start > latest:
            raise errors.SchemaTooNew(
                f"database schema version {start} is newer than this nefeli's ({latest}); upgrade nefeli"
            )
        for m in migrations[start:]:
            try:
                m.apply(conn)
            except sqlite3.Error as exc:
                raise errors.MigrationError(f"migration {m.version} ({m.description}) failed: {exc}") from exc
            conn.execute(
                "INSERT INTO schema_version (version, description, applied) VALUES (?, ?, ?)",
                (m.version, m.description, time.time()),
            )
        problems = conn.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise errors.MigrationError(f"foreign key violations after migrating: {problems[:5]}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return start, latest
