"""Group commit of the async backend: writes queued while one transaction commits
run together as the next one, each in its own savepoint."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from storage_engine.objects.metadata import db
from storage_engine.objects.metadata.migrations import Migration

SCHEMA = (
    Migration(
        1,
        "test tables",
        lambda conn: [
            conn.execute(stmt)
            for stmt in (
                "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
                "CREATE TABLE item (name TEXT PRIMARY KEY, parent INTEGER "
                "REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)",
            )
        ],
    ),
)


class Boom(Exception):
    pass


def insert(conn: sqlite3.Connection, name: str, parent: int | None = None) -> str:
    conn.execute("INSERT INTO item (name, parent) VALUES (?, ?)", (name, parent))
    return name


def insert_then_fail(conn: sqlite3.Connection, name: str) -> None:
    conn.execute("INSERT INTO item (name) VALUES (?)", (name,))
    raise Boom(name)


def names(conn: sqlite3.Connection) -> list[str]:
    return sorted(r[0] for r in conn.execute("SELECT name FROM item"))


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the transactions the backend ran (one entry per commit)."""
    sizes: list[int] = []
    real_one, real_group = db.run_write, db.run_write_group

    def one(conn, fn, args, kwargs):  # type: ignore[no-untyped-def]
        sizes.append(1)
        return real_one(conn, fn, args, kwargs)

    def group(conn, ops):  # type: ignore[no-untyped-def]
        sizes.append(len(ops))
        return real_group(conn, ops)

    monkeypatch.setattr(db, "run_write", one)
    monkeypatch.setattr(db, "run_write_group", group)
    return sizes


async def _open(tmp_path: Path) -> db.AiosqliteBackend:
    return await db.AiosqliteBackend.open(tmp_path / "g.db", db.Options(), SCHEMA)


def test_concurrent_writes_share_commits_and_failures_stay_alone(tmp_path: Path, counted: list[int]) -> None:
    async def main() -> None:
        b = await _open(tmp_path)
        try:
            jobs = [
                b.write(insert_then_fail, f"bad{i}") if i % 7 == 3 else b.write(insert, f"ok{i}") for i in range(60)
            ]
            results = await asyncio.gather(*jobs, return_exceptions=True)
            for i, r in enumerate(results):
                if i % 7 == 3:
                    assert isinstance(r, Boom) and str(r) == f"bad{i}"
                else:
                    assert r == f"ok{i}"
            assert await b.read(names) == sorted(f"ok{i}" for i in range(60) if i % 7 != 3)
            # a duplicate key fails alone too, and the writer stays usable
            dup = await asyncio.gather(b.write(insert, "ok0"), b.write(insert, "fresh"), return_exceptions=True)
            assert isinstance(dup[0], sqlite3.IntegrityError) and dup[1] == "fresh"
            assert "fresh" in await b.read(names)
        finally:
            await b.close()

    asyncio.run(main())
    assert sum(counted) == 62
    assert len(counted) < 62 and max(counted) > 1  # writes were grouped


def test_a_failed_commit_fails_every_write_of_the_group(tmp_path: Path) -> None:
    async def main() -> None:
        b = await _open(tmp_path)
        try:
            await b.write(lambda conn: conn.execute("INSERT INTO parent (id) VALUES (1)"))
            # The deferred foreign key is only checked at COMMIT: the group cannot commit.
            results = await asyncio.gather(
                b.write(insert, "a", 1), b.write(insert, "orphan", 99), b.write(insert, "b", 1), return_exceptions=True
            )
            if all(isinstance(r, str) for r in results[::2]):
                # "a" ran alone (the writer was idle), "orphan" and "b" formed the next group
                assert isinstance(results[1], sqlite3.IntegrityError)
                assert isinstance(results[2], sqlite3.IntegrityError) or results[2] == "b"
            else:
                assert all(isinstance(r, sqlite3.IntegrityError) for r in results)
            kept = await b.read(names)
            assert "orphan" not in kept
            for r, name in zip(results, ["a", "orphan", "b"]):
                assert (name in kept) == (r == name)  # what was acknowledged is there, nothing else
            assert await b.write(insert, "after") == "after"
        finally:
            await b.close()

    asyncio.run(main())


def test_group_outcomes_directly(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "d.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    for m in SCHEMA:
        m.apply(conn)
    out = db.run_write_group(conn, [(insert, ("x",), {}), (insert_then_fail, ("y",), {}), (insert, ("z",), {})])
    assert [o.value for o in out] == ["x", None, "z"]
    assert isinstance(out[1].error, Boom)
    assert names(conn) == ["x", "z"] and not conn.in_transaction
    out = db.run_write_group(conn, [(insert, ("w", 5), {}), (insert, ("v",), {})])
    assert all(isinstance(o.error, sqlite3.IntegrityError) for o in out)
    assert names(conn) == ["x", "z"] and not conn.in_transaction

    def interrupted(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO item (name) VALUES ('k')")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        db.run_write_group(conn, [(insert, ("u",), {}), (interrupted, (), {})])
    assert names(conn) == ["x", "z"] and not conn.in_transaction
    conn.close()


def test_close_waits_for_queued_writes(tmp_path: Path) -> None:
    async def main() -> list[str]:
        b = await _open(tmp_path)
        tasks = [asyncio.ensure_future(b.write(insert, f"n{i}")) for i in range(20)]
        await asyncio.sleep(0)
        await b.close()
        return [t.result() for t in tasks]

    assert asyncio.run(main()) == [f"n{i}" for i in range(20)]
    conn = sqlite3.connect(tmp_path / "g.db")
    assert names(conn) == sorted(f"n{i}" for i in range(20))
    conn.close()
