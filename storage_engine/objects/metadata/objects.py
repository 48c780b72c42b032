"""Objects and their versions.

Every write adds a row to ``versions`` with a new global serial.  Under versioning
'auto' the previous current ('normal') version becomes 'history'; under 'none' it is
removed.  A delete writes a 'deleted' marker (auto) or just removes (none).  Block maps
live in the map store: each write reports which maps gained their first referencing
version (``added_maps``) and which lost their last one (``freed_maps``), so the caller
can keep the map store's reference counts in step.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid as uuidlib
from typing import Any
from collections.abc import Callable, Iterable, Mapping, Sequence

from . import errors
from . import validation as v
from .db import Backend
from .keys import upper_bound
from .public import public_token_in
from .records import (
    BatchDeleteResult,
    DeleteResult,
    MapRef,
    ObjectVersion,
    OwnerView,
    Precondition,
    PurgeResult,
    PutItem,
    WriteResult,
)
from .rows import (
    VERSION_COLUMNS,
    ContainerRef,
    container_id,
    container_ref,
    current_version_row,
    dump_json,
    load_json,
    map_referenced,
    unreferenced,
    version_record,
)
from .sharing import effective_sharing_in

#: attrs key of the MD5 (hex) of a version's bytes (what the Swift API calls its ETag)
MD5_ATTR = "md5"

# Column positions in VERSION_COLUMNS.
_SERIAL, _NAME, _MTIME, _SIZE, _CTYPE, _MSCHEME, _MSIZE, _MHASH, _BY, _META, _ATTRS, _STATE, _UUID = range(13)

Row = tuple[Any, ...]


def new_object_uuid() -> str:
    """The X-Object-UUID of a new object (random, so it reveals nothing about the name)."""
    return str(uuidlib.uuid4())


def _map_of(row: Row) -> MapRef | None:
    return MapRef(row[_MSCHEME], row[_MSIZE], bytes(row[_MHASH])) if row[_MHASH] is not None else None


def _check_precondition(cur: Row | None, pre: Precondition | None) -> None:
    if pre is None:
        return
    etag = bytes(cur[_MHASH]).hex() if cur is not None else None
    if pre.if_match is not None and (cur is None or (pre.if_match != "*" and etag not in pre.if_match)):
        raise errors.PreconditionFailed("If-Match failed")
    if pre.if_none_match is not None and cur is not None and (pre.if_none_match == "*" or etag in pre.if_none_match):
        raise errors.PreconditionFailed("If-None-Match failed")
    if pre.serial is not None and (cur is None or cur[_SERIAL] != pre.serial):
        raise errors.PreconditionFailed(f"the current version is not {pre.serial}")


def check_quota(ref: ContainerRef, delta: int, container_credit: int = 0, account_credit: int = 0) -> None:
    """Refuse growth beyond a quota (QuotaExceeded); shrinking is always allowed, even when over it.

    Also usable before a write, with the ref as read then, to refuse a body that
    cannot fit before receiving it; the commit checks again."""
    c = ref.container
    grow = delta - container_credit
    if c.policy.quota is not None and grow > 0 and c.usage.stored_bytes + grow > c.policy.quota:
        raise errors.QuotaExceeded(
            f"container {c.account}/{c.name} quota {c.policy.quota} bytes; {c.usage.stored_bytes} used"
        )
    grow = delta - account_credit
    if ref.account_quota is not None and grow > 0 and ref.account_usage.stored_bytes + grow > ref.account_quota:
        raise errors.QuotaExceeded(
            f"account {c.account} quota {ref.account_quota} bytes; {ref.account_usage.stored_bytes} used"
        )


def _touch(conn: sqlite3.Connection, ref: ContainerRef, now: float) -> None:
    conn.execute("UPDATE containers SET mtime = max(mtime, ?) WHERE id = ?", (now, ref.id))
    conn.execute("UPDATE accounts SET mtime = max(mtime, ?) WHERE id = ?", (now, ref.account_id))


def _insert(
    conn: sqlite3.Connection,
    ref: ContainerRef,
    name: str,
    state: str,
    now: float,
    content_type: str,
    mapref: MapRef | None,
    modified_by: str,
    meta: Mapping[str, str],
    attrs: Mapping[str, str],
    uuid: str,
) -> ObjectVersion:
    size = mapref.size if mapref is not None else 0
    cur = conn.execute(
        "INSERT INTO versions (container_id, name, state, mtime, size, content_type, map_scheme, map_size, "
        "map_hash, modified_by, meta, attrs, uuid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            ref.id,
            name,
            state,
            now,
            size,
            content_type,
            mapref.scheme if mapref else None,
            mapref.size if mapref else None,
            mapref.top_hash if mapref else None,
            modified_by,
            dump_json(meta),
            dump_json(attrs),
            uuid,
        ),
    )
    c = ref.container
    return ObjectVersion(
        account=c.account,
        container=c.name,
        name=name,
        serial=int(cur.lastrowid or 0),
        mtime=now,
        size=size,
        content_type=content_type,
        meta=dict(meta),
        attrs=dict(attrs),
        map=mapref,
        state=state,
        modified_by=modified_by,
        uuid=uuid,
    )


@dataclasses.dataclass(slots=True)
class _Step:
    """A write's effects before map references are settled at the end of the operation."""

    version: ObjectVersion | None = None
    replaced: ObjectVersion | None = None
    added: tuple[MapRef, ...] = ()
    dropped: list[MapRef | None] = dataclasses.field(default_factory=list)


def _write_version(
    conn: sqlite3.Connection,
    ref: ContainerRef,
    name: str,
    *,
    mapref: MapRef,
    content_type: str,
    meta: Mapping[str, str],
    attrs: Mapping[str, str],
    modified_by: str,
    now: float,
    pre: Precondition | None,
    uuid: str | None = None,
    container_credit: int = 0,
    account_credit: int = 0,
) -> _Step:
    """Make a new current version of ``name``; the heart of put, copy, move, update_meta.

    ``uuid`` None continues the object that is there (its UUID; a new one if there
    is none); a copy passes a new UUID, a move its source's."""
    cur = current_version_row(conn, ref.id, name)
    _check_precondition(cur, pre)
    versioning = ref.container.policy.versioning
    released = cur[_SIZE] if cur is not None and versioning == "none" else 0
    check_quota(ref, mapref.size - released, container_credit, account_credit)
    step = _Step(added=() if map_referenced(conn, mapref) else (mapref,))
    if not step.added and not attrs.get(MD5_ATTR):
        # content stored before: its MD5 may be known already (a re-upload, a copy by hashes)
        known = _known_md5(conn, mapref)
        if known:
            attrs = {**attrs, MD5_ATTR: known}
    if cur is not None:
        old = version_record(ref.container.account, ref.container.name, cur)
        if versioning == "auto":
            conn.execute("UPDATE versions SET state = 'history' WHERE serial = ?", (cur[_SERIAL],))
            step.replaced = dataclasses.replace(old, state="history")
        else:
            conn.execute("DELETE FROM versions WHERE serial = ?", (cur[_SERIAL],))
            step.replaced = old
            step.dropped.append(old.map)
    if uuid is None:
        uuid = cur[_UUID] if cur is not None else new_object_uuid()
    step.version = _insert(conn, ref, name, "normal", now, content_type, mapref, modified_by, meta, attrs, uuid)
    _touch(conn, ref, now)
    return step


def _delete_current(
    conn: sqlite3.Connection, ref: ContainerRef, cur: Row, modified_by: str, now: float
) -> tuple[ObjectVersion, ObjectVersion | None, list[MapRef | None]]:
    c = ref.container
    old = version_record(c.account, c.name, cur)
    marker = None
    dropped: list[MapRef | None] = []
    if c.policy.versioning == "auto":
        conn.execute("UPDATE versions SET state = 'history' WHERE serial = ?", (cur[_SERIAL],))
        old = dataclasses.replace(old, state="history")
        marker = _insert(conn, ref, old.name, "deleted", now, "", None, modified_by, {}, {}, old.uuid)
    else:
        conn.execute("DELETE FROM versions WHERE serial = ?", (cur[_SERIAL],))
        dropped.append(old.map)
    # Sharing and publication belong to the live object (as in Pithos).
    conn.execute("DELETE FROM sharing WHERE container_id = ? AND path = ?", (ref.id, old.name))
    conn.execute("DELETE FROM public_urls WHERE container_id = ? AND name = ?", (ref.id, old.name))
    _touch(conn, ref, now)
    return old, marker, dropped


def _finish(conn: sqlite3.Connection, step: _Step) -> WriteResult:
    assert step.version is not None
    return WriteResult(
        version=step.version,
        replaced=step.replaced,
        added_maps=step.added,
        freed_maps=unreferenced(conn, step.dropped),
        dropped_maps=tuple(m for m in step.dropped if m is not None),
    )


def _put(
    conn: sqlite3.Connection,
    account: str,
    container: str,
    item: PutItem,
    modified_by: str,
    now: float,
    pre: Precondition | None,
    uuid: str | None = None,
) -> WriteResult:
    ref = container_ref(conn, account, container)
    if item.map.scheme != ref.container.policy.hash_scheme:
        raise errors.PolicyMismatch(
            f"map scheme {item.map.scheme} differs from container scheme {ref.container.policy.hash_scheme}"
        )
    step = _write_version(
        conn,
        ref,
        item.name,
        mapref=item.map,
        content_type=item.content_type,
        meta=item.meta,
        attrs=item.attrs,
        modified_by=modified_by,
        now=now,
        pre=pre,
        uuid=uuid,
    )
    return _finish(conn, step)


def _put_many(
    conn: sqlite3.Connection, account: str, container: str, items: Sequence[PutItem], modified_by: str, now: float
) -> list[WriteResult]:
    return [_put(conn, account, container, item, modified_by, now, None) for item in items]


def _delete(
    conn: sqlite3.Connection, account: str, container: str, name: str, modified_by: str, now: float
) -> DeleteResult:
    ref = container_ref(conn, account, container)
    cur = current_version_row(conn, ref.id, name)
    if cur is None:
        raise errors.ObjectNotFound(f"object {account}/{container}/{name} not found")
    old, marker, dropped = _delete_current(conn, ref, cur, modified_by, now)
    return DeleteResult(
        deleted=old,
        marker=marker,
        freed_maps=unreferenced(conn, dropped),
        dropped_maps=tuple(m for m in dropped if m is not None),
    )


def _delete_batch(
    conn: sqlite3.Connection, account: str, container: str, modified_by: str, now: float, limit: int
) -> BatchDeleteResult:
    ref = container_ref(conn, account, container)
    rows = conn.execute(
        f"SELECT {VERSION_COLUMNS} FROM versions INDEXED BY versions_current "
        "WHERE container_id = ? AND state = 'normal' ORDER BY name LIMIT ?",
        (ref.id, limit + 1),
    ).fetchall()
    dropped: list[MapRef | None] = []
    for cur in rows[:limit]:
        dropped += _delete_current(conn, ref, tuple(cur), modified_by, now)[2]
    return BatchDeleteResult(
        deleted=min(len(rows), limit),
        more=len(rows) > limit,
        freed_maps=unreferenced(conn, dropped),
        dropped_maps=tuple(m for m in dropped if m is not None),
    )


def _delete_tree(
    conn: sqlite3.Connection, account: str, container: str, name: str, delimiter: str, modified_by: str, now: float
) -> BatchDeleteResult:
    ref = container_ref(conn, account, container)
    below = name + delimiter
    hi = upper_bound(below)
    rows = conn.execute(
        f"SELECT {VERSION_COLUMNS} FROM versions INDEXED BY versions_current "
        "WHERE container_id = ? AND state = 'normal' AND (name = ? OR (name >= ? AND (? IS NULL OR name < ?))) "
        "ORDER BY name",
        (ref.id, name, below, hi, hi),
    ).fetchall()
    if not rows:
        raise errors.ObjectNotFound(f"object {account}/{container}/{name} not found")
    dropped: list[MapRef | None] = []
    for cur in rows:
        dropped += _delete_current(conn, ref, tuple(cur), modified_by, now)[2]
    return BatchDeleteResult(
        deleted=len(rows),
        more=False,
        freed_maps=unreferenced(conn, dropped),
        dropped_maps=tuple(m for m in dropped if m is not None),
    )


def _version_row(
    conn: sqlite3.Connection, cid: int, account: str, container: str, name: str, serial: int | None
) -> Row:
    """The current version, or version ``serial`` of this object (in container ``cid``,
    named ``account/container``) if it is still live."""
    if serial is None:
        row = current_version_row(conn, cid, name)
        if row is None:
            raise errors.ObjectNotFound(f"object {account}/{container}/{name} not found")
        return row
    row = conn.execute(
        f"SELECT {VERSION_COLUMNS}, container_id FROM versions WHERE serial = ?", (serial,)
    ).fetchone()
    if row is None or row[-1] != cid or row[_NAME] != name or row[_STATE] == "deleted":
        raise errors.VersionNotFound(f"object {account}/{container}/{name} has no version {serial}")
    return tuple(row[:-1])


def _get(conn: sqlite3.Connection, account: str, container: str, name: str, serial: int | None) -> ObjectVersion:
    cid = container_id(conn, account, container)
    return version_record(account, container, _version_row(conn, cid, account, container, name, serial))


def _get_for_owner(conn: sqlite3.Connection, account: str, container: str, name: str, serial: int | None) -> OwnerView:
    cid = container_id(conn, account, container)  # once for the three lookups
    version = version_record(account, container, _version_row(conn, cid, account, container, name, serial))
    return OwnerView(version, effective_sharing_in(conn, cid, name), public_token_in(conn, cid, name))


#: versions of one content looked at for a known MD5: record_md5 fills them all at
#: once, so a content that has one shows it early; this bounds the cost of a write
#: of content shared by very many versions that have none
_KNOWN_MD5_SCAN = 64


def _known_md5(conn: sqlite3.Connection, mapref: MapRef) -> str | None:
    """The MD5 some version with this content has recorded, if any (of the first
    _KNOWN_MD5_SCAN versions with it)."""
    for (raw,) in conn.execute(
        "SELECT attrs FROM versions INDEXED BY versions_by_map "
        "WHERE map_hash = ? AND map_size = ? AND map_scheme = ? LIMIT ?",
        (mapref.top_hash, mapref.size, mapref.scheme, _KNOWN_MD5_SCAN),
    ):
        md5 = load_json(raw).get(MD5_ATTR)
        if md5:
            return str(md5)
    return None


def _record_md5(conn: sqlite3.Connection, mapref: MapRef, md5: str) -> int:
    rows = conn.execute(
        "SELECT serial, attrs FROM versions INDEXED BY versions_by_map "
        "WHERE map_hash = ? AND map_size = ? AND map_scheme = ?",
        (mapref.top_hash, mapref.size, mapref.scheme),
    ).fetchall()
    n = 0
    for serial, raw in rows:
        attrs = load_json(raw)
        if attrs.get(MD5_ATTR):
            continue
        attrs[MD5_ATTR] = md5
        conn.execute("UPDATE versions SET attrs = ? WHERE serial = ?", (dump_json(attrs), serial))
        n += 1
    return n


def versions_of(conn: sqlite3.Connection, account: str, container: str, name: str) -> list[tuple[int, float]]:
    ref = container_ref(conn, account, container)
    rows = conn.execute(
        "SELECT serial, mtime, state FROM versions INDEXED BY versions_by_name "
        "WHERE container_id = ? AND name = ? ORDER BY serial",
        (ref.id, name),
    ).fetchall()
    if not rows:
        raise errors.ObjectNotFound(f"object {account}/{container}/{name} not found")
    return [(serial, mtime) for serial, mtime, state in rows if state != "deleted"]


def _purge(
    conn: sqlite3.Connection, account: str, container: str, before: float, name: str | None
) -> PurgeResult:
    ref = container_ref(conn, account, container)
    where = "container_id = ? AND state <> 'normal' AND mtime < ?"
    params: list[Any] = [ref.id, before]
    if name is not None:
        where += " AND name = ?"
        params.append(name)
    dropped = tuple(
        MapRef(s, z, bytes(h))
        for s, z, h in conn.execute(
            f"SELECT map_scheme, map_size, map_hash FROM versions WHERE {where} AND map_hash IS NOT NULL",
            params,
        )
    )
    removed = conn.execute(f"DELETE FROM versions WHERE {where}", params).rowcount
    return PurgeResult(removed=removed, freed_maps=unreferenced(conn, dropped), dropped_maps=dropped)


def _copy(
    conn: sqlite3.Connection,
    src: tuple[str, str, str],
    dst: tuple[str, str, str],
    serial: int | None,
    move: bool,
    keep_uuid: bool,
    content_type: str | None,
    meta: dict[str, str | None] | None,
    replace_meta: bool,
    attrs: Mapping[str, str] | None,
    modified_by: str,
    now: float,
    pre: Precondition | None,
) -> WriteResult:
    sref = container_ref(conn, src[0], src[1])
    srow = _version_row(conn, sref.id, sref.container.account, sref.container.name, src[2], serial)
    same_container = (src[0], src[1]) == (dst[0], dst[1])
    dref = sref if same_container else container_ref(conn, dst[0], dst[1])
    same_object = same_container and src[2] == dst[2]
    if move and not same_object and srow[_STATE] != "normal":
        raise errors.InvalidArgument("only the current version of an object can be moved")
    sp, dp = sref.container.policy, dref.container.policy
    if (sp.hash_scheme, sp.block_size) != (dp.hash_scheme, dp.block_size):
        raise errors.PolicyMismatch(
            f"{src[0]}/{src[1]} ({sp.hash_scheme}, {sp.block_size}) and {dst[0]}/{dst[1]} "
            f"({dp.hash_scheme}, {dp.block_size}) cannot share block maps"
        )
    mapref = _map_of(srow)
    assert mapref is not None
    new_meta = load_json(srow[_META])
    if meta is not None:
        new_meta = v.apply_meta(new_meta, meta, replace_meta)
    # A move within one container/account under versioning 'none' frees what it writes.
    releases = move and not same_object and sp.versioning == "none"
    step = _write_version(
        conn,
        dref,
        dst[2],
        mapref=mapref,
        content_type=content_type or srow[_CTYPE],
        meta=new_meta,
        attrs=load_json(srow[_ATTRS]) if attrs is None else attrs,
        modified_by=modified_by,
        now=now,
        pre=pre,
        uuid=srow[_UUID] if keep_uuid else new_object_uuid(),
        container_credit=srow[_SIZE] if releases and same_container else 0,
        account_credit=srow[_SIZE] if releases and src[0] == dst[0] else 0,
    )
    if move and not same_object:
        cur = current_version_row(conn, sref.id, src[2])
        assert cur is not None
        _, _, dropped = _delete_current(conn, sref, cur, modified_by, now)
        step.dropped.extend(dropped)
    return _finish(conn, step)


class Objects:
    """Async API over objects and versions (``store.objects``)."""

    def __init__(self, backend: Backend, clock: Callable[[], float]) -> None:
        self._db = backend
        self._clock = clock

    @staticmethod
    def _item(
        name: str,
        mapref: MapRef,
        content_type: str,
        meta: Mapping[str, str] | None,
        attrs: Mapping[str, str] | None,
    ) -> PutItem:
        return PutItem(
            name=v.object_name(name),
            map=v.map_ref(mapref),
            content_type=v.content_type(content_type),
            meta=v.apply_meta({}, v.meta_update(meta), True),
            attrs=v.apply_meta({}, v.meta_update(attrs), True),
        )

    async def put(
        self,
        account: str,
        container: str,
        name: str,
        *,
        map: MapRef,
        modified_by: str,
        content_type: str = "application/octet-stream",
        meta: Mapping[str, str] | None = None,
        attrs: Mapping[str, str] | None = None,
        precondition: Precondition | None = None,
        uuid: str | None = None,
    ) -> WriteResult:
        """Write a new current version pointing at ``map`` (whose size is the object's).

        ``meta`` is the complete user metadata (X-Object-Meta-*); ``attrs`` other stored
        headers (e.g. manifest, content-encoding, content-disposition).  ``uuid``: the
        object's X-Object-UUID when the caller decides it (a copy or move through the
        data path); None keeps the current version's, or makes a new one.  Raises
        QuotaExceeded, PreconditionFailed, PolicyMismatch (map not in the container's scheme)."""
        v.account_name(account)
        v.container_name(container)
        v.user_name(modified_by)
        item = self._item(name, map, content_type, meta, attrs)
        return await self._db.write(
            _put, account, container, item, modified_by, self._clock(), precondition, v.object_uuid(uuid)
        )

    async def put_many(
        self, account: str, container: str, items: Iterable[PutItem], *, modified_by: str
    ) -> list[WriteResult]:
        """Several puts in ONE transaction (one commit, one fsync): imports, benchmarks."""
        v.account_name(account)
        v.container_name(container)
        v.user_name(modified_by)
        clean = [self._item(i.name, i.map, i.content_type, i.meta, i.attrs) for i in items]
        return await self._db.write(_put_many, account, container, clean, modified_by, self._clock())

    async def get(self, account: str, container: str, name: str, *, serial: int | None = None) -> ObjectVersion:
        """The current version, or version ``serial`` (``?version=N``) if it is still kept."""
        v.account_name(account)
        v.container_name(container)
        v.object_name(name)
        return await self._db.point_read(_get, account, container, name, v.serial(serial))

    async def get_for_owner(
        self, account: str, container: str, name: str, *, serial: int | None = None
    ) -> OwnerView:
        """get() with the object's sharing and public token, in one read (one thread
        hop instead of three: what every GET and HEAD by the owner needs)."""
        v.account_name(account)
        v.container_name(container)
        v.object_name(name)
        return await self._db.point_read(_get_for_owner, account, container, name, v.serial(serial))

    async def known_md5(self, map: MapRef) -> str | None:
        """The MD5 of ``map``'s content if any version pointing at it has one."""
        return await self._db.read(_known_md5, v.map_ref(map))

    async def record_md5(self, map: MapRef, md5: str) -> int:
        """Record the MD5 of ``map``'s content on every version pointing at it that has
        none yet (made by a hashmap PUT, a partial update, or a copy of one); the number
        of versions changed.

        The MD5 is derived from the content, which a version never changes, so it is
        filled in place rather than by a new version; one already recorded is kept."""
        clean = v.map_ref(map)
        if len(md5) != 32 or any(ch not in "0123456789abcdef" for ch in md5):
            raise errors.InvalidArgument("md5 must be 32 lowercase hex digits")
        return await self._db.write(_record_md5, clean, md5)

    async def versions(self, account: str, container: str, name: str) -> list[tuple[int, float]]:
        """``[serial, mtime]`` of the kept versions (history and current), oldest first;
        ObjectNotFound if the name never had a version here."""
        v.account_name(account)
        v.container_name(container)
        v.object_name(name)
        return await self._db.read(versions_of, account, container, name)

    async def delete(self, account: str, container: str, name: str, *, modified_by: str) -> DeleteResult:
        """Delete the current version: a 'deleted' marker under 'auto', removal under 'none'.
        Clears the object's own sharing and public URL."""
        v.account_name(account)
        v.container_name(container)
        v.object_name(name)
        v.user_name(modified_by)
        return await self._db.write(_delete, account, container, name, modified_by, self._clock())

    async def delete_tree(
        self, account: str, container: str, name: str, *, delimiter: str, modified_by: str
    ) -> BatchDeleteResult:
        """Pithos' object DELETE with ``delimiter``: the object ``name`` (a directory
        marker, say) and every current object under ``name + delimiter``, each as
        ``delete`` does, in one transaction: a crash leaves all of them or none.
        ObjectNotFound when there is nothing at or under the name."""
        v.account_name(account)
        v.container_name(container)
        v.object_name(name)
        v.user_name(modified_by)
        v.listing_string(delimiter, "delimiter")
        if not delimiter:
            raise errors.InvalidArgument("delimiter must not be empty")
        return await self._db.write(_delete_tree, account, container, name, delimiter, modified_by, self._clock())

    async def delete_batch(
        self, account: str, container: str, *, modified_by: str, limit: int = 1000
    ) -> BatchDeleteResult:
        """Delete up to ``limit`` current objects of the container (first names first),
        each as ``delete`` does.  Batches, so that emptying a large container never
        holds the single writer for long; call again while ``more``."""
        v.account_name(account)
        v.container_name(container)
        v.user_name(modified_by)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise errors.InvalidArgument("limit must be a positive integer")
        return await self._db.write(_delete_batch, account, container, modified_by, self._clock(), limit)

    async def purge_history(
        self, account: str, container: str, *, before: float, name: str | None = None
    ) -> PurgeResult:
        """Remove history versions and deleted markers older than ``before`` (whole
        container, or one object); current versions are never touched."""
        v.account_name(account)
        v.container_name(container)
        if name is not None:
            v.object_name(name)
        return await self._db.write(_purge, account, container, float(before), name)

    async def copy(
        self,
        src: tuple[str, str, str],
        dst: tuple[str, str, str],
        *,
        modified_by: str,
        serial: int | None = None,
        content_type: str | None = None,
        meta: Mapping[str, str | None] | None = None,
        replace_meta: bool = False,
        attrs: Mapping[str, str] | None = None,
        precondition: Precondition | None = None,
    ) -> WriteResult:
        """New version of ``dst`` = (account, container, name) pointing at the map of
        ``src`` (its current version or ``serial``): no data moves.

        Metadata is the source's, updated by ``meta`` (or replaced by it when
        ``replace_meta``).  Containers must agree on hash scheme and block size
        (PolicyMismatch: the server then copies through the data path).  The copy is
        a new object with a new X-Object-UUID, even onto itself (as in Pithos)."""
        return await self._copy(
            src, dst, False, False, modified_by, serial, content_type, meta, replace_meta, attrs, precondition
        )

    async def move(
        self,
        src: tuple[str, str, str],
        dst: tuple[str, str, str],
        *,
        modified_by: str,
        content_type: str | None = None,
        meta: Mapping[str, str | None] | None = None,
        replace_meta: bool = False,
        attrs: Mapping[str, str] | None = None,
        precondition: Precondition | None = None,
    ) -> WriteResult:
        """Copy, then delete the source's current version, in one transaction; the
        object keeps its X-Object-UUID."""
        return await self._copy(
            src, dst, True, True, modified_by, None, content_type, meta, replace_meta, attrs, precondition
        )

    async def update_meta(
        self,
        account: str,
        container: str,
        name: str,
        *,
        modified_by: str,
        meta: Mapping[str, str | None] | None = None,
        replace_meta: bool = False,
        content_type: str | None = None,
        attrs: Mapping[str, str] | None = None,
        precondition: Precondition | None = None,
    ) -> WriteResult:
        """Object POST: a new version with changed metadata and/or content type (Pithos),
        pointing at the same map and keeping the X-Object-UUID; ``attrs``, if given,
        replace the version's attributes whole (Swift's POST sets X-Object-Manifest and
        the like afresh)."""
        key = (account, container, name)
        return await self._copy(
            key, key, False, True, modified_by, None, content_type, meta, replace_meta, attrs, precondition
        )

    async def _copy(
        self,
        src: tuple[str, str, str],
        dst: tuple[str, str, str],
        move: bool,
        keep_uuid: bool,
        modified_by: str,
        serial: int | None,
        content_type: str | None,
        meta: Mapping[str, str | None] | None,
        replace_meta: bool,
        attrs: Mapping[str, str] | None,
        precondition: Precondition | None,
    ) -> WriteResult:
        for acct, cont, name in (src, dst):
            v.account_name(acct)
            v.container_name(cont)
            v.object_name(name)
        v.user_name(modified_by)
        v.serial(serial)
        if content_type is not None:
            v.content_type(content_type)
        clean_meta = v.meta_update(meta) if meta is not None else None
        clean_attrs = v.apply_meta({}, v.meta_update(attrs), True) if attrs is not None else None
        return await self._db.write(
            _copy,
            (src[0], src[1], src[2]),
            (dst[0], dst[1], dst[2]),
            serial,
            move,
            keep_uuid,
            content_type,
            clean_meta,
            replace_meta,
            clean_attrs,
            modified_by,
            self._clock(),
            precondition,
        )
