"""Containers: policies (versioning, quota, block size, hash scheme) and metadata."""

from __future__ import annotations

import sqlite3
from typing import Any
from collections.abc import Callable, Mapping

from . import errors
from . import validation as v
from .db import Backend
from .records import Container, ContainerPolicy, MapRef, PurgeResult
from .rows import ContainerRef, account_id, container_ref, dump_json, unreferenced

KEEP: Any = object()
"""Sentinel for ``update``: leave this policy as it is (None means 'unlimited' for quota)."""


def _get(conn: sqlite3.Connection, account: str, name: str) -> Container:
    return container_ref(conn, account, name).container


def _create(
    conn: sqlite3.Connection, account: str, name: str, policy: ContainerPolicy, meta: dict[str, str], now: float
) -> Container:
    aid = account_id(conn, account)
    if conn.execute("SELECT 1 FROM containers WHERE account_id = ? AND name = ?", (aid, name)).fetchone():
        raise errors.ContainerExists(f"container {account}/{name} exists")
    conn.execute(
        "INSERT INTO containers (account_id, name, created, mtime, versioning, quota, block_size, hash_scheme, meta) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (aid, name, now, now, policy.versioning, policy.quota, policy.block_size, policy.hash_scheme, dump_json(meta)),
    )
    conn.execute("UPDATE accounts SET mtime = ? WHERE id = ?", (now, aid))
    return _get(conn, account, name)


def has_versions(conn: sqlite3.Connection, container_id: int) -> bool:
    """Any version at all, current, history or deleted marker (an index probe, not a count)."""
    return (
        conn.execute(
            "SELECT 1 FROM versions INDEXED BY versions_by_name WHERE container_id = ? LIMIT 1", (container_id,)
        ).fetchone()
        is not None
    )


def _update(
    conn: sqlite3.Connection,
    account: str,
    name: str,
    changes: dict[str, Any],
    meta: dict[str, str | None] | None,
    replace_meta: bool,
    now: float,
) -> Container:
    ref = container_ref(conn, account, name)
    old = ref.container.policy
    layout = {k for k in ("block_size", "hash_scheme") if k in changes and changes[k] != getattr(old, k)}
    if layout and has_versions(conn, ref.id):
        # Every version's map is in the container's scheme and block size; changing them
        # under existing versions would make hashmap GET/PUT disagree with stored maps.
        raise errors.PolicyLocked(
            f"{' and '.join(sorted(layout))} of {account}/{name} can change only while it holds no "
            "versions (delete the objects and purge their history first)"
        )
    sets = [f"{k} = ?" for k in changes]
    params: list[Any] = list(changes.values())
    if meta is not None:
        merged = v.apply_meta(ref.container.meta, meta, replace_meta)
        sets.append("meta = ?")
        params.append(dump_json(merged))
    sets.append("mtime = ?")
    params += [now, ref.id]
    conn.execute(f"UPDATE containers SET {', '.join(sets)} WHERE id = ?", params)
    return _get(conn, account, name)


def _delete(conn: sqlite3.Connection, account: str, name: str, now: float) -> PurgeResult:
    ref = container_ref(conn, account, name)
    if ref.container.usage.object_count:
        raise errors.ContainerNotEmpty(f"container {account}/{name} has {ref.container.usage.object_count} objects")
    # History and deleted markers go with the container (as in Pithos).
    dropped = tuple(
        MapRef(s, z, bytes(h))
        for s, z, h in conn.execute(
            "SELECT map_scheme, map_size, map_hash FROM versions WHERE container_id = ? AND map_hash IS NOT NULL",
            (ref.id,),
        )
    )
    removed = conn.execute("DELETE FROM versions WHERE container_id = ?", (ref.id,)).rowcount
    conn.execute("DELETE FROM containers WHERE id = ?", (ref.id,))  # sharing, public URLs cascade
    conn.execute("UPDATE accounts SET mtime = ? WHERE id = ?", (now, ref.account_id))
    return PurgeResult(removed=removed, freed_maps=unreferenced(conn, dropped), dropped_maps=dropped)


class Containers:
    """Async API over containers (``store.containers``)."""

    def __init__(self, backend: Backend, clock: Callable[[], float]) -> None:
        self._db = backend
        self._clock = clock

    async def create(
        self,
        account: str,
        name: str,
        *,
        policy: ContainerPolicy | None = None,
        meta: Mapping[str, str] | None = None,
    ) -> Container:
        """New container; ContainerExists if taken, AccountNotFound if no such account."""
        v.account_name(account)
        v.container_name(name)
        p = v.policy(policy or ContainerPolicy())
        clean = v.apply_meta({}, v.meta_update(meta), True)
        return await self._db.write(_create, account, name, p, clean, self._clock())

    async def get(self, account: str, name: str) -> Container:
        v.account_name(account)
        v.container_name(name)
        return await self._db.point_read(_get, account, name)

    async def ref(self, account: str, name: str) -> ContainerRef:
        """The container together with its account's quota and usage (one read)."""
        v.account_name(account)
        v.container_name(name)
        return await self._db.point_read(container_ref, account, name)

    async def update(
        self,
        account: str,
        name: str,
        *,
        versioning: str = KEEP,
        quota: int | None = KEEP,
        block_size: int = KEEP,
        hash_scheme: str = KEEP,
        meta: Mapping[str, str | None] | None = None,
        replace_meta: bool = False,
    ) -> Container:
        """Change policies and/or X-Container-Meta-* (container POST, or PUT on an existing one).

        block_size/hash_scheme may change only while the container has no versions
        (PolicyLocked otherwise); versioning and quota may change any time."""
        v.account_name(account)
        v.container_name(name)
        changes: dict[str, Any] = {}
        if versioning is not KEEP:
            changes["versioning"] = v.versioning(versioning)
        if quota is not KEEP:
            changes["quota"] = v.quota(quota)
        if block_size is not KEEP:
            changes["block_size"] = v.block_size(block_size)
        if hash_scheme is not KEEP:
            changes["hash_scheme"] = v.hash_scheme(hash_scheme)
        clean = v.meta_update(meta) if meta is not None else None
        return await self._db.write(_update, account, name, changes, clean, replace_meta, self._clock())

    async def delete(self, account: str, name: str) -> PurgeResult:
        """Delete a container without current objects (ContainerNotEmpty otherwise).

        Its history versions and deleted markers are removed with it; the result says
        which maps lost references (``freed_maps``/``dropped_maps``, as for a purge)."""
        v.account_name(account)
        v.container_name(name)
        return await self._db.write(_delete, account, name, self._clock())
