"""Backends: the aiosqlite thread hand-off, the sync driver, closing."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import aiosqlite
import pytest

from storage_engine.objects.metadata import MetadataStore, SyncMetadataStore, errors
from storage_engine.objects.metadata.sync import _drive


def test_aiosqlite_still_offers_what_we_use() -> None:
    """db._in_thread relies on aiosqlite's (private) queue of callables; fail loudly
    here, not in production, if an upgrade removes it."""
    assert callable(getattr(aiosqlite.Connection, "_execute", None))
    assert isinstance(getattr(aiosqlite.Connection, "_conn", None), property)


async def test_operations_run_on_the_connection_thread(tmp_path: Path) -> None:
    async with await MetadataStore.open(tmp_path / "m.db", readers=2) as md:
        loop_thread = threading.get_ident()

        def where(conn: sqlite3.Connection) -> tuple[int, bool]:
            return threading.get_ident(), conn.in_transaction

        w_thread, w_tx = await md.backend.write(where)
        r_threads = {(await md.backend.read(where))[0] for _ in range(6)}
        assert w_thread != loop_thread and w_tx
        assert loop_thread not in r_threads and w_thread not in r_threads


async def test_a_failed_operation_rolls_back(tmp_path: Path) -> None:
    async with await MetadataStore.open(tmp_path / "m.db") as md:
        def half(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO accounts (name, created, mtime) VALUES ('x', 0, 0)")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await md.backend.write(half)
        assert await md.accounts.list() == []


async def test_closed_store_refuses_work(tmp_path: Path) -> None:
    md = await MetadataStore.open(tmp_path / "m.db")
    await md.close()
    await md.close()  # idempotent
    with pytest.raises(errors.MetadataError):
        await md.accounts.list()
    s = SyncMetadataStore(tmp_path / "m.db")
    s.close()
    with pytest.raises(errors.MetadataError):
        s.accounts.list()


async def test_memory_database_reads_through_the_writer() -> None:
    async with await MetadataStore.open(":memory:") as md:
        await md.accounts.create("alice")
        assert [a.name for a in await md.accounts.list()] == ["alice"]


def test_drive_refuses_coroutines_that_suspend() -> None:
    async def suspends() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="suspend"):
        _drive(suspends())

    async def returns() -> int:
        return 7

    assert _drive(returns()) == 7
