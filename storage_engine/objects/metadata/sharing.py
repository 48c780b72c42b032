"""Sharing (``X-Object-Sharing``) and permission resolution.

Sharing is stored per path (an object name) as (access, subject) rows.  An object
is governed by its own sharing if it has any, else by the nearest ancestor path
that is shared AND is a directory object (``application/directory`` or
``application/folder``), as Pithos does; only that one entry counts (a nearer share
overrides a farther one).  Subjects: a user, ``account:group`` (a group of that
account, X-Account-Group-*), or ``*``.  The owner always has write access; write
implies read.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Iterable, Sequence

from . import errors
from . import validation as v
from .db import Backend
from .records import DIRECTORY_TYPES, EffectiveSharing, Permission, Sharing
from .rows import container_ref, current_version_row

_CHUNK = 500  # bound on SQL parameters per IN (...) list


def share_candidates(name: str) -> list[str]:
    """Paths that may govern ``name``, nearest first: itself, then for each ancestor
    directory ``d`` both ``d/`` and ``d`` (directory objects exist in both spellings)."""
    out = [name]
    for i in range(len(name) - 1, -1, -1):
        if name[i] != "/":
            continue
        base = name[:i]
        for cand in (base + "/", base):
            if cand and cand != name and cand not in out:
                out.append(cand)
    return out


def user_groups(conn: sqlite3.Connection, user: str) -> frozenset[str]:
    """``account:group`` for every group that lists ``user`` as a member."""
    return frozenset(
        f"{acct}:{grp}"
        for acct, grp in conn.execute(
            "SELECT a.name, g.name FROM groups g JOIN accounts a ON a.id = g.account_id WHERE g.member = ?", (user,)
        )
    )


def _subjects(user: str, groups: frozenset[str]) -> list[str]:
    return [user, "*", *sorted(groups)]


def _matches(subjects: frozenset[str], user: str | None, groups: frozenset[str]) -> bool:
    return "*" in subjects or user in subjects or not groups.isdisjoint(subjects)


@dataclass(slots=True)
class ShareIndex:
    """Some or all sharing entries of one container, in memory, so a listing page can
    resolve permissions without one query per object."""

    entries: dict[str, Sharing] = field(default_factory=dict)
    directories: set[str] = field(default_factory=set)  # shared paths that are directory objects

    def governing(self, name: str) -> str | None:
        for cand in share_candidates(name):
            if cand in self.entries and (cand == name or cand in self.directories):
                return cand
        return None

    def permission(self, name: str, user: str, groups: frozenset[str]) -> Permission:
        path = self.governing(name)
        if path is None:
            return Permission.NONE
        s = self.entries[path]
        if _matches(s.write, user, groups):
            return Permission.WRITE
        if _matches(s.read, user, groups):
            return Permission.READ
        return Permission.NONE

    def roots(self, user: str | None, groups: frozenset[str]) -> list[tuple[str, bool]]:
        """(path, is_directory) of the shares naming ``user`` (None: every share)."""
        return [
            (path, path in self.directories)
            for path, s in self.entries.items()
            if user is None or _matches(s.read | s.write, user, groups)
        ]


def chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    """``items`` in slices short enough for one IN (...) list."""
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def load_share_index(conn: sqlite3.Connection, container_id: int, paths: Sequence[str] | None = None) -> ShareIndex:
    """All sharing of a container (``paths`` None), or only that of ``paths``."""
    index = ShareIndex()
    read: dict[str, set[str]] = {}
    write: dict[str, set[str]] = {}
    if paths is None:
        rows: list[Any] = conn.execute(
            "SELECT path, access, subject FROM sharing WHERE container_id = ?", (container_id,)
        ).fetchall()
    else:
        rows = []
        for chunk in chunks(list(paths)):
            rows += conn.execute(
                f"SELECT path, access, subject FROM sharing WHERE container_id = ? "
                f"AND path IN ({','.join('?' * len(chunk))})",
                (container_id, *chunk),
            ).fetchall()
    for path, access, subject in rows:
        (write if access == "write" else read).setdefault(path, set()).add(subject)
        read.setdefault(path, set())
    for path in read:
        index.entries[path] = Sharing(read=frozenset(read[path]), write=frozenset(write.get(path, ())))
    shared = list(index.entries)
    for chunk in chunks(shared):
        for name, ctype in conn.execute(
            f"SELECT name, content_type FROM versions INDEXED BY versions_current "
            f"WHERE container_id = ? AND state = 'normal' AND name IN ({','.join('?' * len(chunk))})",
            (container_id, *chunk),
        ):
            if ctype.split(";", 1)[0].strip().lower() in DIRECTORY_TYPES:
                index.directories.add(name)
    return index


def shared_container_names(
    conn: sqlite3.Connection, account_id_: int, user: str, groups: frozenset[str]
) -> list[str]:
    subjects = _subjects(user, groups)
    return [
        n
        for (n,) in conn.execute(
            f"SELECT DISTINCT c.name FROM sharing s JOIN containers c ON c.id = s.container_id "
            f"WHERE c.account_id = ? AND s.subject IN ({','.join('?' * len(subjects))})",
            (account_id_, *subjects),
        )
    ]


def _container_id(conn: sqlite3.Connection, account: str, container: str) -> int | None:
    row = conn.execute(
        "SELECT c.id FROM containers c JOIN accounts a ON a.id = c.account_id WHERE a.name = ? AND c.name = ?",
        (account, container),
    ).fetchone()
    return row[0] if row else None


def _permission(conn: sqlite3.Connection, account: str, container: str, name: str, user: str) -> Permission:
    cid = _container_id(conn, account, container)
    if cid is None:
        return Permission.NONE
    index = load_share_index(conn, cid, share_candidates(name))
    return index.permission(name, user, user_groups(conn, user))


def effective_sharing(conn: sqlite3.Connection, account: str, container: str, name: str) -> EffectiveSharing | None:
    return effective_sharing_in(conn, container_ref(conn, account, container).id, name)


def effective_sharing_in(conn: sqlite3.Connection, container_id: int, name: str) -> EffectiveSharing | None:
    """effective_sharing in a container already looked up (by its id)."""
    index = load_share_index(conn, container_id, share_candidates(name))
    path = index.governing(name)
    return EffectiveSharing(path, index.entries[path]) if path is not None else None


def _get(conn: sqlite3.Connection, account: str, container: str, name: str) -> Sharing | None:
    ref = container_ref(conn, account, container)
    return load_share_index(conn, ref.id, [name]).entries.get(name)


def _set(conn: sqlite3.Connection, account: str, container: str, name: str, sharing: Sharing | None) -> None:
    ref = container_ref(conn, account, container)
    if current_version_row(conn, ref.id, name) is None:
        raise errors.ObjectNotFound(f"object {account}/{container}/{name} not found")
    conn.execute("DELETE FROM sharing WHERE container_id = ? AND path = ?", (ref.id, name))
    if sharing:
        conn.executemany(
            "INSERT INTO sharing (container_id, path, access, subject) VALUES (?, ?, ?, ?)",
            [(ref.id, name, "read", s) for s in sharing.read] + [(ref.id, name, "write", s) for s in sharing.write],
        )


def _accounts_sharing_with(conn: sqlite3.Connection, user: str, marker: str | None, limit: int) -> list[str]:
    subjects = _subjects(user, user_groups(conn, user))
    return [
        n
        for (n,) in conn.execute(
            f"SELECT DISTINCT a.name FROM sharing s JOIN containers c ON c.id = s.container_id "
            f"JOIN accounts a ON a.id = c.account_id "
            f"WHERE s.subject IN ({','.join('?' * len(subjects))}) AND a.name <> ? AND a.name > ? "
            f"ORDER BY a.name LIMIT ?",
            (*subjects, user, marker or "", limit),
        )
    ]


def _shares_with(conn: sqlite3.Connection, account: str, container: str | None, user: str) -> bool:
    subjects = _subjects(user, user_groups(conn, user))
    sql = (
        "SELECT 1 FROM sharing s JOIN containers c ON c.id = s.container_id JOIN accounts a ON a.id = c.account_id "
        f"WHERE a.name = ? AND s.subject IN ({','.join('?' * len(subjects))})"
    )
    params: list[str] = [account, *subjects]
    if container is not None:
        sql += " AND c.name = ?"
        params.append(container)
    return conn.execute(sql + " LIMIT 1", params).fetchone() is not None


class SharingAPI:
    """Async API for sharing and permissions (``store.sharing``)."""

    def __init__(self, backend: Backend) -> None:
        self._db = backend

    parse: Callable[[str], Sharing] = staticmethod(v.parse_sharing)
    """Parse an X-Object-Sharing value (InvalidSharing on error)."""

    async def set(self, account: str, container: str, name: str, sharing: Sharing | str | None) -> None:
        """Replace the object's own sharing; None, '' or an empty Sharing removes it.
        The object must exist (ObjectNotFound)."""
        v.account_name(account)
        v.container_name(container)
        v.object_name(name)
        clean = v.parse_sharing(sharing) if isinstance(sharing, str) else v.sharing(sharing) if sharing else None
        await self._db.write(_set, account, container, name, clean)

    async def get(self, account: str, container: str, name: str) -> Sharing | None:
        """The object's own sharing (not inherited)."""
        v.account_name(account)
        v.container_name(container)
        v.object_name(name)
        return await self._db.read(_get, account, container, name)

    async def effective(self, account: str, container: str, name: str) -> EffectiveSharing | None:
        """The sharing governing the object and the path it comes from (own or inherited)."""
        v.account_name(account)
        v.container_name(container)
        v.object_name(name)
        return await self._db.read(effective_sharing, account, container, name)

    async def permission(self, account: str, container: str, name: str, user: str) -> Permission:
        """What ``user`` may do to ``account/container/name`` (existing or not yet)."""
        v.account_name(account)
        v.container_name(container)
        v.object_name(name)
        v.user_name(user)
        if user == account:
            return Permission.WRITE
        return await self._db.point_read(_permission, account, container, name, user)

    async def shares_with(self, account: str, user: str, container: str | None = None) -> bool:
        """Whether ``account`` (or its ``container``) shares anything with ``user``,
        directly, through a group or with everyone. Another account's resources that
        share nothing answer 403 whether or not they exist; this is that test."""
        v.account_name(account)
        v.user_name(user)
        if container is not None:
            v.container_name(container)
        if user == account:
            return True
        return await self._db.point_read(_shares_with, account, container, user)

    async def accounts_sharing_with(self, user: str, *, marker: str | None = None, limit: int = 10000) -> list[str]:
        """Accounts (other than ``user``) with an object shared with ``user``, directly,
        through a group, or with everyone: the Pithos "shared with me" account list."""
        v.user_name(user)
        v.listing_string(marker, "marker")
        return await self._db.read(_accounts_sharing_with, user, marker, v.limit(limit))
