"""Rows to records, and the name → row lookups every operation starts with.

These run inside a transaction on the connection's own thread; nothing here opens
or ends one.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable, Mapping

from . import errors
from .records import Account, Container, ContainerPolicy, MapRef, ObjectVersion, Usage


def dump_json(d: Mapping[str, str]) -> str:
    if not d:
        return "{}"
    return json.dumps(dict(d), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def load_json(s: str) -> dict[str, str]:
    return json.loads(s) if s != "{}" else {}


# -- accounts ------------------------------------------------------------------

ACCOUNT_COLUMNS = (
    "id, name, created, mtime, quota, meta, container_count, object_count, bytes_used, history_count, history_bytes"
)


def account_record(conn: sqlite3.Connection, row: tuple[Any, ...]) -> Account:
    groups: dict[str, list[str]] = {}
    for name, member in conn.execute(
        "SELECT name, member FROM groups WHERE account_id = ? ORDER BY name, member", (row[0],)
    ):
        groups.setdefault(name, []).append(member)
    return Account(
        name=row[1],
        created=row[2],
        mtime=row[3],
        quota=row[4],
        meta=load_json(row[5]),
        groups={k: tuple(v) for k, v in groups.items()},
        container_count=row[6],
        usage=Usage(row[7], row[8], row[9], row[10]),
    )


def account_row(conn: sqlite3.Connection, name: str) -> tuple[Any, ...]:
    row = conn.execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise errors.AccountNotFound(f"account {name!r} not found")
    return tuple(row)


def account_id(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM accounts WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise errors.AccountNotFound(f"account {name!r} not found")
    return int(row[0])


# -- containers ----------------------------------------------------------------

CONTAINER_COLUMNS = (
    "c.id, c.name, c.created, c.mtime, c.versioning, c.quota, c.block_size, c.hash_scheme, c.meta, "
    "c.object_count, c.bytes_used, c.history_count, c.history_bytes"
)


def container_record(account: str, row: Iterable[Any]) -> Container:
    (_, name, created, mtime, versioning, quota, block_size, scheme, meta, oc, bu, hc, hb) = tuple(row)[:13]
    return Container(
        account=account,
        name=name,
        created=created,
        mtime=mtime,
        policy=ContainerPolicy(versioning=versioning, quota=quota, block_size=block_size, hash_scheme=scheme),
        meta=load_json(meta),
        usage=Usage(oc, bu, hc, hb),
    )


@dataclass(frozen=True, slots=True)
class ContainerRef:
    """What a write needs about its container: ids, policies, and both quotas' state."""

    id: int
    account_id: int
    container: Container
    account_quota: int | None
    account_usage: Usage


def _container_row(conn: sqlite3.Connection, columns: str, account: str, name: str) -> tuple[Any, ...]:
    """``columns`` of a container joined with its account; AccountNotFound or
    ContainerNotFound when there is none."""
    row: tuple[Any, ...] | None = conn.execute(
        f"SELECT {columns} FROM accounts a JOIN containers c ON c.account_id = a.id WHERE a.name = ? AND c.name = ?",
        (account, name),
    ).fetchone()
    if row is None:
        account_id(conn, account)  # raises AccountNotFound when that is the reason
        raise errors.ContainerNotFound(f"container {account}/{name} not found")
    return row


def container_ref(conn: sqlite3.Connection, account: str, name: str) -> ContainerRef:
    row = _container_row(
        conn,
        f"{CONTAINER_COLUMNS}, a.id, a.quota, a.object_count, a.bytes_used, a.history_count, a.history_bytes",
        account,
        name,
    )
    return ContainerRef(
        id=row[0],
        account_id=row[13],
        container=container_record(account, row),
        account_quota=row[14],
        account_usage=Usage(row[15], row[16], row[17], row[18]),
    )


def container_id(conn: sqlite3.Connection, account: str, name: str) -> int:
    """container_ref's id alone (what a read by key needs), with the same errors:
    one indexed lookup and no records built."""
    return int(_container_row(conn, "c.id", account, name)[0])


# -- versions ------------------------------------------------------------------

VERSION_COLUMNS = (
    "serial, name, mtime, size, content_type, map_scheme, map_size, map_hash, modified_by, meta, attrs, state, uuid"
)


def version_record(account: str, container: str, row: tuple[Any, ...]) -> ObjectVersion:
    serial, name, mtime, size, ctype, scheme, msize, mhash, modified_by, meta, attrs, state, uuid = row
    return ObjectVersion(
        account=account,
        container=container,
        name=name,
        serial=serial,
        mtime=mtime,
        size=size,
        content_type=ctype,
        meta=load_json(meta),
        attrs=load_json(attrs),
        map=MapRef(scheme, msize, bytes(mhash)) if mhash is not None else None,
        state=state,
        modified_by=modified_by,
        uuid=uuid,
    )


def current_version_row(conn: sqlite3.Connection, container_id: int, name: str) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = conn.execute(
        f"SELECT {VERSION_COLUMNS} FROM versions INDEXED BY versions_current "
        "WHERE container_id = ? AND name = ? AND state = 'normal'",
        (container_id, name),
    ).fetchone()
    return row


# -- map references ------------------------------------------------------------


def map_referenced(conn: sqlite3.Connection, ref: MapRef) -> bool:
    """Does any version (any container, any state) still point at this map?"""
    return (
        conn.execute(
            "SELECT 1 FROM versions INDEXED BY versions_by_map "
            "WHERE map_hash = ? AND map_size = ? AND map_scheme = ? LIMIT 1",
            (ref.top_hash, ref.size, ref.scheme),
        ).fetchone()
        is not None
    )


def unreferenced(conn: sqlite3.Connection, candidates: Iterable[MapRef | None]) -> tuple[MapRef, ...]:
    """The candidates (maps of removed versions) that no version references any more."""
    seen: dict[MapRef, None] = {}
    for ref in candidates:
        if ref is not None and ref not in seen:
            seen[ref] = None
    return tuple(ref for ref in seen if not map_referenced(conn, ref))
