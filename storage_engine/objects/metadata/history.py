"""Reading the past: objects, listings and usage as they were at a time (Pithos ``until``).

The version of a name current at time T is its newest version (highest serial)
written at or before T; the name existed at T unless that version is a deleted
marker.  T is read to the microsecond, the resolution the API shows times in:
whatever was written within the microsecond T names counts as written by T, so
``until=<x_object_version_timestamp of a version>`` shows that version (stored
times are floats, and their six-decimal rendering may round up or down).  Everything is answered from the rows still kept: under versioning
'auto' that is the whole history (unless purged); under 'none' only current
versions exist, so the past shows the current objects written by T and nothing
of the objects overwritten or deleted since.

Every query runs on the covering index ``versions_at(container_id, name, mtime)``
(+ the rowid, which is the serial): per name, the newest serial up to T is found
without reading the table, and only the chosen version's row is fetched, by
serial.  A listing page streams names in index order through the same
``collapse`` as the current listing (prefix, delimiter, marker, limit, path), so
it costs the versions of the names it passes, not the size of the container;
usage at T (HEAD) walks the container's index entries once.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from typing import Any

from . import errors
from . import validation as v
from .db import Backend
from .listing import CONTAINER_QUERIES, DEFAULT_LIMIT, fetcher, listing_args, collapse
from .objects import versions_of
from .records import AccountAt, Container, ContainerAt, ObjectVersion, Subdir, Usage
from .rows import VERSION_COLUMNS, account_id, account_record, account_row, container_record, container_ref, version_record

Row = tuple[Any, ...]
_STATE = 11  # position of the state in VERSION_COLUMNS
_CREATED = 2  # position of created in CONTAINER_COLUMNS


def _latest_names_sql() -> dict[tuple[bool, bool], str]:
    """(name, newest serial up to T) per name of a key range, in name order, streamed
    (GROUP BY follows the index order: no sorting, nothing materialised)."""
    out = {}
    for incl in (True, False):
        for bounded in (True, False):
            sql = (
                "SELECT name, max(serial) FROM versions INDEXED BY versions_at "
                f"WHERE container_id = ? AND name {'>=' if incl else '>'} ?"
            )
            if bounded:
                sql += " AND name < ?"
            out[(incl, bounded)] = sql + " AND mtime < ? GROUP BY name ORDER BY name"
    return out


LATEST_NAMES = _latest_names_sql()
VERSION_BY_SERIAL = f"SELECT {VERSION_COLUMNS} FROM versions WHERE serial = ?"
LATEST_OF_NAME = (
    "SELECT max(serial) FROM versions INDEXED BY versions_at WHERE container_id = ? AND name = ? AND mtime < ?"
)
# count and bytes of the names alive at T, and the newest change up to T (markers included)
USAGE_AT = (
    "SELECT count(*) FILTER (WHERE v.state <> 'deleted'), "
    "coalesce(sum(v.size) FILTER (WHERE v.state <> 'deleted'), 0), max(latest.changed) "
    "FROM (SELECT max(serial) AS serial, max(mtime) AS changed FROM versions INDEXED BY versions_at "
    "WHERE container_id = ? AND mtime < ? GROUP BY name) AS latest "
    "JOIN versions AS v ON v.serial = latest.serial"
)
CONTAINERS_CREATED_BY = (
    "SELECT id, created FROM containers INDEXED BY containers_by_name WHERE account_id = ? AND created < ?"
)


def _until(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise errors.InvalidArgument("until must be a finite, non-negative number of seconds")
    return float(value)


def _bound(until: float) -> float:
    """The exclusive time bound of "written by ``until``": the end of its microsecond."""
    return until + 1e-6


def _alive_rows(conn: sqlite3.Connection, container_id: int, until: float) -> Any:
    """A listing fetch (see listing.Fetch) over the versions current at ``until``."""

    def fetch(lo: str, incl: bool, hi: str | None, n: int) -> Iterator[Row]:
        params: list[Any] = [container_id, lo, *([hi] if hi is not None else []), _bound(until)]
        names = conn.execute(LATEST_NAMES[(incl, hi is not None)], params)
        got = 0
        try:
            for _, serial in names:
                if got >= n:
                    return
                row = conn.execute(VERSION_BY_SERIAL, (serial,)).fetchone()
                if row[_STATE] != "deleted":
                    got += 1
                    yield tuple(row)
        finally:
            names.close()

    return fetch


def _usage_at(conn: sqlite3.Connection, container_id: int, until: float) -> tuple[Usage, float | None]:
    count, size, changed = conn.execute(USAGE_AT, (container_id, _bound(until))).fetchone()
    return Usage(object_count=count, bytes_used=size), changed


def _container_at(conn: sqlite3.Connection, container: Container, container_id: int, until: float) -> ContainerAt:
    usage, changed = _usage_at(conn, container_id, until)
    return ContainerAt(container, until, usage, max(container.created, changed or 0.0))


def _object(conn: sqlite3.Connection, account: str, container: str, name: str, until: float) -> ObjectVersion:
    ref = container_ref(conn, account, container)
    (serial,) = conn.execute(LATEST_OF_NAME, (ref.id, name, _bound(until))).fetchone()
    row = conn.execute(VERSION_BY_SERIAL, (serial,)).fetchone() if serial is not None else None
    if row is None or row[_STATE] == "deleted":
        raise errors.ObjectNotFound(f"object {account}/{container}/{name} did not exist at {until}")
    return version_record(account, container, tuple(row))


def _objects(
    conn: sqlite3.Connection,
    account: str,
    container: str,
    until: float,
    prefix: str,
    delimiter: str | None,
    marker: str | None,
    end_marker: str | None,
    limit: int,
) -> list[ObjectVersion | Subdir]:
    ref = container_ref(conn, account, container)
    if ref.container.created >= _bound(until):
        raise errors.ContainerNotFound(f"container {account}/{container} did not exist at {until}")
    rows = collapse(
        _alive_rows(conn, ref.id, until),
        prefix=prefix, delimiter=delimiter, marker=marker, end_marker=end_marker, limit=limit,
    )
    return [r if isinstance(r, Subdir) else version_record(account, container, r) for r in rows]


def _container(conn: sqlite3.Connection, account: str, container: str, until: float) -> ContainerAt:
    ref = container_ref(conn, account, container)
    if ref.container.created >= _bound(until):
        raise errors.ContainerNotFound(f"container {account}/{container} did not exist at {until}")
    return _container_at(conn, ref.container, ref.id, until)


def _containers(
    conn: sqlite3.Connection,
    account: str,
    until: float,
    prefix: str,
    delimiter: str | None,
    marker: str | None,
    end_marker: str | None,
    limit: int,
) -> list[ContainerAt | Subdir]:
    aid = account_id(conn, account)
    rows = collapse(
        fetcher(conn, CONTAINER_QUERIES, aid),
        prefix=prefix, delimiter=delimiter, marker=marker, end_marker=end_marker, limit=limit,
        keep=lambda row: row[_CREATED] < _bound(until),
    )
    return [
        r if isinstance(r, Subdir) else _container_at(conn, container_record(account, r), r[0], until) for r in rows
    ]


def _account(conn: sqlite3.Connection, account: str, until: float) -> AccountAt:
    record = account_record(conn, account_row(conn, account))
    aid = account_id(conn, account)
    count = size = containers = 0
    changed = record.created if record.created < _bound(until) else 0.0
    for cid, created in conn.execute(CONTAINERS_CREATED_BY, (aid, _bound(until))).fetchall():
        usage, last = _usage_at(conn, cid, until)
        containers += 1
        count += usage.object_count
        size += usage.bytes_used
        changed = max(changed, created, last or 0.0)
    return AccountAt(record, until, containers, Usage(object_count=count, bytes_used=size), changed)


class History:
    """Async API for reading the past (``store.history``); ``until`` is seconds since
    the epoch, read to the microsecond (what was written within it counts)."""

    def __init__(self, backend: Backend) -> None:
        self._db = backend

    async def object(self, account: str, container: str, name: str, *, until: float) -> ObjectVersion:
        """The version of ``name`` current at ``until``; ObjectNotFound if the object
        did not exist then (never written, or deleted) or that version is no longer kept."""
        v.account_name(account)
        v.container_name(container)
        v.object_name(name)
        return await self._db.read(_object, account, container, name, _until(until))

    async def versions(self, account: str, container: str, name: str, *, until: float) -> list[tuple[int, float]]:
        """``[serial, mtime]`` of the kept versions written by ``until``, oldest first
        (``?version=list&until=``); ObjectNotFound if the name never had a version here."""
        v.account_name(account)
        v.container_name(container)
        v.object_name(name)
        bound = _bound(_until(until))
        return [(s, t) for s, t in await self._db.read(versions_of, account, container, name) if t < bound]

    async def objects(
        self,
        account: str,
        container: str,
        *,
        until: float,
        prefix: str | None = None,
        delimiter: str | None = None,
        marker: str | None = None,
        end_marker: str | None = None,
        limit: int = DEFAULT_LIMIT,
        path: str | None = None,
    ) -> list[ObjectVersion | Subdir]:
        """One page of the container listing as it was at ``until``: the versions then
        current, deleted ones left out, with listing.objects' parameters and semantics.
        ContainerNotFound if the container was created after ``until``."""
        prefix, delimiter = listing_args(prefix, delimiter, marker, end_marker, limit, path)
        v.account_name(account)
        v.container_name(container)
        return await self._db.read(
            _objects, account, container, _until(until), prefix, delimiter, marker, end_marker, limit
        )

    async def container(self, account: str, container: str, *, until: float) -> ContainerAt:
        """Object count and bytes at ``until`` (computed from the kept versions)."""
        v.account_name(account)
        v.container_name(container)
        return await self._db.read(_container, account, container, _until(until))

    async def containers(
        self,
        account: str,
        *,
        until: float,
        prefix: str | None = None,
        delimiter: str | None = None,
        marker: str | None = None,
        end_marker: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[ContainerAt | Subdir]:
        """One page of the account listing at ``until``: today's containers created by
        then, each with its usage at ``until``."""
        prefix, delimiter = listing_args(prefix, delimiter, marker, end_marker, limit, None)
        v.account_name(account)
        return await self._db.read(
            _containers, account, _until(until), prefix, delimiter, marker, end_marker, limit
        )

    async def account(self, account: str, *, until: float) -> AccountAt:
        """Container count, object count and bytes at ``until`` over today's containers."""
        v.account_name(account)
        return await self._db.read(_account, account, _until(until))
