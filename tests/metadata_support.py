"""Fixtures and helpers shared by the metadata tests (no tests of its own).

Lives in a test_metadata*.py file because that is the namespace the metadata
tests own; other modules import what they need from here.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from storage_engine.objects.metadata import ContainerPolicy, MapRef, MetadataStore, SyncMetadataStore
from storage_engine.objects.metadata.db import DirectBackend, Options

T0 = 1_700_000_000.0


class Clock:
    """A settable clock, so tests about time (purge, expiry) need no sleeping."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        self.now += 0.001  # every call is a little later, like a real clock
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def mapref(label: str | bytes, size: int | None = None, scheme: str = "blake3") -> MapRef:
    """A map reference whose top hash is derived from ``label`` (distinct labels, distinct maps)."""
    raw = label.encode() if isinstance(label, str) else label
    return MapRef(scheme, len(raw) if size is None else size, hashlib.sha256(raw).digest())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["aiosqlite", "direct"])
async def md(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> AsyncIterator[MetadataStore]:
    """The async API on both backends: aiosqlite (daemons) and direct sqlite3 (CLI)."""
    path = tmp_path / "meta.db"
    if request.param == "aiosqlite":
        store = await MetadataStore.open(path, clock=clock, readers=2)
    else:
        store = MetadataStore(DirectBackend.open_sync(path, Options(readers=0)), clock=clock)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def smd(tmp_path: Path, clock: Clock) -> Iterator[SyncMetadataStore]:
    """The blocking API (synchronous=NORMAL: property tests write a lot)."""
    with SyncMetadataStore(tmp_path / "sync.db", clock=clock, synchronous="NORMAL") as store:
        yield store


async def make_container(
    md: MetadataStore, account: str = "alice", container: str = "c", **policy: object
) -> None:
    await md.accounts.ensure(account)
    await md.containers.create(account, container, policy=ContainerPolicy(**policy))  # type: ignore[arg-type]


def reference_listing(
    names: Iterable[str],
    *,
    prefix: str = "",
    delimiter: str | None = None,
    marker: str | None = None,
    end_marker: str | None = None,
    limit: int = 10000,
    reverse: bool = False,
) -> list[tuple[str, str]]:
    """Brute-force listing: [(key, 'object'|'subdir')], the semantics listing.py promises
    (with ``reverse``: names < marker and > end_marker, in descending order)."""
    entries: dict[str, str] = {}
    for n in names:
        if not n.startswith(prefix):
            continue
        if marker is not None and (n >= marker if reverse else n <= marker):
            continue
        if end_marker is not None and (n <= end_marker if reverse else n >= end_marker):
            continue
        if delimiter:
            i = n.find(delimiter, len(prefix))
            if i >= 0:
                sub = n[: i + len(delimiter)]
                if sub != marker:
                    entries[sub] = "subdir"
                continue
        entries[n] = "object"
    return sorted(entries.items(), reverse=reverse)[:limit]


def keys(page: Iterable[object]) -> list[tuple[str, str]]:
    """A listing page as [(key, kind)], comparable with reference_listing."""
    from storage_engine.objects.metadata import Subdir

    return [(e.name, "subdir" if isinstance(e, Subdir) else "object") for e in page]  # type: ignore[attr-defined]


def query_plan(conn: sqlite3.Connection, sql: str, params: Iterable[object] = ()) -> str:
    """EXPLAIN QUERY PLAN of a statement, its steps joined with " | "."""
    return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, list(params)))


@contextmanager
def selects_on_versions(conn: sqlite3.Connection) -> Iterator[list[str]]:
    """Collect the SELECTs touching ``versions`` that run inside the block."""
    executed: list[str] = []
    conn.set_trace_callback(executed.append)
    try:
        yield executed
    finally:
        conn.set_trace_callback(None)
        executed[:] = [s for s in executed if s.lstrip().upper().startswith("SELECT") and "versions" in s]


def assert_none_scans_versions(conn: sqlite3.Connection, selects: list[str]) -> None:
    for sql in selects:
        plan = query_plan(conn, sql)
        assert "SCAN versions" not in plan, (sql, plan)
