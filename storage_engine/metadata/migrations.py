"""Schema versioning: an ordered list of migrations and the code that applies them.

``schema_version`` keeps one row per applied step.  Opening a database applies the
missing steps, all in ONE immediate transaction: a crash or an error leaves the
database at its old version, never half-way.  A database newer than the code is
refused (SchemaTooNew) instead of being written by code that does not know it.
"""

from __future__ import annotations

import sqlite3
import time
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


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "accounts, containers, object versions, usage counters", _statements(schema.V1_CORE)),
    Migration(2, "groups, sharing, public URLs", _statements(schema.V2_SHARING)),
    Migration(3, "auth tokens and Swift v1 keys", _statements(schema.V3_AUTH)),
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
