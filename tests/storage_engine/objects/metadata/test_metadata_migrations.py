"""Schema versioning: fresh databases, upgrades from older schemas with data in them,
refusal of newer schemas, all-or-nothing upgrades, and the pragmas every connection gets."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path

import pytest

from storage_engine.objects.metadata import MIGRATIONS, SCHEMA_VERSION, MetadataStore, Migration, SyncMetadataStore, errors
from storage_engine.objects.metadata import migrations
from storage_engine.objects.metadata.migrations import current_version, migrate
from metadata_support import mapref


def _old_db(path: Path, version: int) -> None:
    """A database as an older nefeli left it: schema up to ``version``, with data."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    migrate(conn, MIGRATIONS[:version])
    conn.execute("INSERT INTO accounts (name, created, mtime) VALUES ('alice', 1, 1)")
    conn.execute(
        "INSERT INTO containers (account_id, name, created, mtime, versioning, block_size, hash_scheme) "
        "VALUES (1, 'c', 1, 1, 'auto', 4194304, 'blake3')"
    )
    for state, name in (("history", "doc"), ("normal", "doc"), ("normal", "dir/x")):
        _old_version(conn, version, name, state)
    conn.close()


def _old_version(conn: sqlite3.Connection, schema: int, name: str, state: str) -> None:
    """A version row as schema ``schema`` stores it (UUIDs from step 4 on)."""
    ref = mapref("old")
    deleted = state == "deleted"
    columns = "container_id, name, state, mtime, size, content_type, map_scheme, map_size, map_hash, modified_by"
    values: tuple[object, ...] = (
        1, name, state, 2, 0 if deleted else ref.size, "" if deleted else "text/plain",
        None if deleted else ref.scheme, None if deleted else ref.size, None if deleted else ref.top_hash, "alice",
    )
    if schema >= 4:
        columns += ", uuid"
        values += (str(uuid.uuid4()),)
    conn.execute(f"INSERT INTO versions ({columns}) VALUES ({', '.join('?' * len(values))})", values)


def _uuids(path: Path) -> dict[str, list[tuple[str, str]]]:
    """name -> [(state, uuid)] in serial order."""
    conn = sqlite3.connect(path)
    try:
        out: dict[str, list[tuple[str, str]]] = {}
        for name, state, u in conn.execute("SELECT name, state, uuid FROM versions ORDER BY serial"):
            out.setdefault(name, []).append((state, u))
        return out
    finally:
        conn.close()


@pytest.mark.parametrize("batch", [1, 2, 10_000])  # rows per page of the walk over versions
def test_step_4_gives_each_object_one_uuid_across_its_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(migrations, "_UUID_BATCH", batch)
    path = tmp_path / "m.db"
    _old_db(path, 3)
    conn = sqlite3.connect(path, isolation_level=None)
    # "again": written, overwritten, deleted (history + marker), then written anew.
    for state in ("history", "history", "deleted", "normal"):
        _old_version(conn, 3, "again", state)
    conn.close()
    with SyncMetadataStore(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        doc = s.objects.get("alice", "c", "doc")
        again = s.objects.get("alice", "c", "again")
    found = _uuids(path)
    assert all(u is not None and uuid.UUID(u).version == 4 for rows in found.values() for _, u in rows)
    assert [u for _, u in found["doc"]] == [doc.uuid, doc.uuid]
    first, second, marker, renewed = (u for _, u in found["again"])
    assert first == second == marker != renewed == again.uuid  # a delete ends an object
    assert len({doc.uuid, again.uuid, first, found["dir/x"][0][1]}) == 4


def test_after_step_4_a_version_without_uuid_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    _old_db(path, SCHEMA_VERSION)
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="uuid"):
        conn.execute(
            "INSERT INTO versions (container_id, name, state, mtime, size, content_type, modified_by) "
            "VALUES (1, 'x', 'deleted', 1, 0, '', 'alice')"
        )
    conn.close()


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return current_version(conn)
    finally:
        conn.close()


def test_a_fresh_database_is_at_the_latest_version(tmp_path: Path) -> None:
    with SyncMetadataStore(tmp_path / "m.db") as s:
        assert s.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        rows = s.connection.execute("SELECT version, description FROM schema_version ORDER BY version").fetchall()
        assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1)) and all(r[1] for r in rows)


@pytest.mark.parametrize("start", range(1, SCHEMA_VERSION))
async def test_upgrade_keeps_data_and_enables_new_features(tmp_path: Path, start: int) -> None:
    path = tmp_path / "m.db"
    _old_db(path, start)
    assert _version(path) == start
    async with await MetadataStore.open(path) as md:
        assert md.schema_version == SCHEMA_VERSION
        assert [e.name for e in await md.listing.objects("alice", "c")] == ["dir/x", "doc"]
        assert len(await md.objects.versions("alice", "c", "doc")) == 2
        assert [e.name for e in await md.history.objects("alice", "c", until=2)] == ["dir/x", "doc"]  # step 5
        c = await md.containers.get("alice", "c")
        assert (c.usage.object_count, c.usage.history_count) == (2, 1)  # triggers counted the old rows
        await md.sharing.set("alice", "c", "doc", "read=*")
        assert (await md.tokens.resolve((await md.tokens.create("alice")).token)) == "alice"
        assert await md.maintenance.verify() == []
    assert _version(path) == SCHEMA_VERSION


async def test_a_newer_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    SyncMetadataStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (99, 'from the future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(errors.SchemaTooNew, match="99"):
        await MetadataStore.open(path)
    with pytest.raises(errors.SchemaTooNew):
        SyncMetadataStore(path)
    assert _version(path) == 99


def _failing(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE half_done (x)")
    conn.execute("THIS IS NOT SQL")


def test_a_failed_upgrade_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    _old_db(path, 1)
    broken = (*MIGRATIONS, Migration(SCHEMA_VERSION + 1, "broken", _failing))
    with pytest.raises(errors.MigrationError, match="broken"):
        SyncMetadataStore(path, migrations=broken)
    assert _version(path) == 1  # not even the good steps 2..N were kept: one transaction
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    conn.close()
    assert "half_done" not in tables and "sharing" not in tables
    with SyncMetadataStore(path) as s:
        assert s.schema_version == SCHEMA_VERSION


def test_a_data_migration(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    _old_db(path, SCHEMA_VERSION)

    def add_etag_column(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE versions ADD COLUMN etag TEXT")
        conn.execute("UPDATE versions SET etag = hex(map_hash)")

    with SyncMetadataStore(path, migrations=(*MIGRATIONS, Migration(SCHEMA_VERSION + 1, "etag", add_etag_column))) as s:
        assert s.schema_version == SCHEMA_VERSION + 1
        assert {r[0] for r in s.connection.execute("SELECT etag FROM versions")} == {mapref("old").hex.upper()}
        assert s.objects.get("alice", "c", "doc").map == mapref("old")


def test_migrations_must_be_numbered_in_order(tmp_path: Path) -> None:
    with pytest.raises(errors.SchemaError):
        SyncMetadataStore(tmp_path / "m.db", migrations=(MIGRATIONS[1], MIGRATIONS[0]))


def test_concurrent_first_opens_migrate_once(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    failures: list[BaseException] = []

    def open_it() -> None:
        try:
            SyncMetadataStore(path, busy_timeout=10).close()
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    conn = sqlite3.connect(path)
    assert [r[0] for r in conn.execute("SELECT version FROM schema_version")] == list(range(1, SCHEMA_VERSION + 1))
    conn.close()


def _pragmas(conn: sqlite3.Connection) -> dict[str, object]:
    return {p: conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("journal_mode", "synchronous", "foreign_keys",
                                                                     "query_only")}


async def test_connection_pragmas(tmp_path: Path) -> None:
    async with await MetadataStore.open(tmp_path / "m.db", readers=1) as md:
        w = await md.backend.write(_pragmas)
        r = await md.backend.read(_pragmas)
        assert w == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "query_only": 0}  # 2 = FULL
        assert r == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "query_only": 1}
        with pytest.raises(sqlite3.OperationalError):
            await md.backend.read(lambda conn: conn.execute("DELETE FROM accounts"))
    async with await MetadataStore.open(tmp_path / "m.db", synchronous="normal") as md:
        assert (await md.backend.write(_pragmas))["synchronous"] == 1
    with pytest.raises(errors.InvalidArgument):
        await MetadataStore.open(tmp_path / "m.db", synchronous="sometimes")
