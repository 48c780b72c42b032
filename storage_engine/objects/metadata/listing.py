"""Listings with prefix / delimiter / marker / end_marker / limit / path, Swift-style.

A page is computed inside one read transaction by index range queries only:
``(container_id, name)`` of current versions for objects (the partial index
``versions_current``), ``(account_id, name)`` for containers.  With a delimiter, a
collapsed subdirectory costs one index seek past it (to the upper bound of its
prefix), never a walk through its contents, so a page costs O(limit + subdirs)
index steps however large the container is.  ``INDEXED BY`` makes SQLite fail the
query rather than silently fall back to a scan if the index ever stops applying.

Semantics (shared with the brute-force reference in the tests): take the names
with the prefix, > marker and < end_marker; with a delimiter, a name whose
remainder after the prefix contains it collapses to ``Subdir(name up to and
including the first delimiter)``; entries are unique and in name order; a subdir
equal to the marker is left out (it was the last entry of the previous page); the
first ``limit`` entries are returned.  Paging with marker = last entry's name
therefore never repeats nor skips an entry.

Pithos' and Swift's ``path=p`` is prefix ``p/`` and delimiter ``/`` without subdir
entries: the objects directly under ``p/`` (a name ending in the delimiter, a
directory marker such as ``p/sub/``, is one of them; ``p/`` itself is not), and
nothing deeper — each deeper subtree still costs one seek.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from . import validation as v
from .db import Backend
from .keys import exact_upper, upper_bound
from .records import Container, ListingExtras, ObjectVersion, Subdir
from .rows import CONTAINER_COLUMNS, VERSION_COLUMNS, account_id, container_record, container_ref, version_record
from .sharing import chunks, load_share_index, shared_container_names, user_groups

Row = tuple[Any, ...]
# fetch(lo, lo_inclusive, hi_exclusive_or_None, n) -> up to n rows in name order, read
# lazily: a delimiter listing abandons the rows after the first one of each subdir, and
# SQLite must not have stepped through them (that would cost O(limit) per subdir).
Fetch = Callable[[str, bool, "str | None", int], Iterator[Row]]

DEFAULT_LIMIT = 10000
_NAME = 1  # position of the name in both VERSION_COLUMNS and CONTAINER_COLUMNS


@dataclass(frozen=True, slots=True)
class KeyRange:
    lo: str  # inclusive
    hi: str | None  # exclusive; None = unbounded


def _range_sql(base: str, order: str) -> dict[tuple[bool, bool], str]:
    """The four shapes of a range query: (lower bound inclusive?, upper bound present?)."""
    out = {}
    for incl in (True, False):
        for bounded in (True, False):
            sql = f"{base} AND {order} {'>=' if incl else '>'} ?"
            if bounded:
                sql += f" AND {order} < ?"
            out[(incl, bounded)] = sql + f" ORDER BY {order} LIMIT ?"
    return out


def _range_sql_desc(base: str, order: str) -> dict[tuple[bool, bool], str]:
    """The four shapes of a descending range query (``reverse=``): (upper bound present
    — always exclusive?, lower bound inclusive?)."""
    out = {}
    for bounded in (True, False):
        for incl in (True, False):
            sql = f"{base} AND {order} {'>=' if incl else '>'} ?"
            if bounded:
                sql += f" AND {order} < ?"
            out[(bounded, incl)] = sql + f" ORDER BY {order} DESC LIMIT ?"
    return out


_OBJECT_BASE = (
    f"SELECT {VERSION_COLUMNS} FROM versions INDEXED BY versions_current "
    "WHERE container_id = ? AND state = 'normal'"
)
_CONTAINER_BASE = f"SELECT {CONTAINER_COLUMNS} FROM containers AS c INDEXED BY containers_by_name WHERE c.account_id = ?"
OBJECT_QUERIES = _range_sql(_OBJECT_BASE, "name")
CONTAINER_QUERIES = _range_sql(_CONTAINER_BASE, "c.name")
OBJECT_QUERIES_DESC = _range_sql_desc(_OBJECT_BASE, "name")
CONTAINER_QUERIES_DESC = _range_sql_desc(_CONTAINER_BASE, "c.name")


def fetcher(conn: sqlite3.Connection, queries: dict[tuple[bool, bool], str], owner_id: int) -> Fetch:
    """A Fetch over one of the keyed listing queries (also used by history's listings of the past)."""

    def fetch(lo: str, incl: bool, hi: str | None, n: int) -> Iterator[Row]:
        params: list[Any] = [owner_id, lo]
        if hi is not None:
            params.append(hi)
        params.append(n)
        return conn.execute(queries[(incl, hi is not None)], params)  # a cursor steps on demand

    return fetch


# fetch_desc(hi_exclusive_or_None, lo, lo_inclusive, n) -> up to n rows in descending
# name order, read lazily (as Fetch).
FetchDesc = Callable[["str | None", str, bool, int], Iterator[Row]]


def fetcher_desc(conn: sqlite3.Connection, queries: dict[tuple[bool, bool], str], owner_id: int) -> FetchDesc:
    """A FetchDesc over one of the descending listing queries."""

    def fetch(hi: str | None, lo: str, incl: bool, n: int) -> Iterator[Row]:
        params: list[Any] = [owner_id, lo]
        if hi is not None:
            params.append(hi)
        params.append(n)
        return conn.execute(queries[(hi is not None, incl)], params)

    return fetch


def merge_ranges(ranges: Iterable[KeyRange]) -> list[KeyRange]:
    """Sorted, disjoint union of ranges."""
    out: list[KeyRange] = []
    for r in sorted(ranges, key=lambda r: r.lo):
        if out and (out[-1].hi is None or r.lo <= out[-1].hi):
            last = out[-1]
            hi = None if last.hi is None or r.hi is None else max(last.hi, r.hi)
            out[-1] = KeyRange(last.lo, hi)
        else:
            out.append(r)
    return out


def restricted(fetch: Fetch, ranges: Sequence[KeyRange]) -> Fetch:
    """A fetch that sees only names inside ``ranges`` (sorted, disjoint): one index
    range query per range it touches."""

    def fetch_in(lo: str, incl: bool, hi: str | None, n: int) -> Iterator[Row]:
        got = 0
        for r in ranges:
            if r.hi is not None and r.hi <= lo:
                continue
            if hi is not None and r.lo >= hi:
                break
            a, a_incl = (r.lo, True) if r.lo > lo else (lo, incl)
            b = hi if r.hi is None else r.hi if hi is None else min(r.hi, hi)
            if b is not None and a >= b:
                continue
            with _closing(fetch(a, a_incl, b, n - got)) as rows:
                for row in rows:
                    got += 1
                    yield row
            if got >= n:
                break

    return fetch_in


def restricted_desc(fetch: FetchDesc, ranges: Sequence[KeyRange]) -> FetchDesc:
    """``restricted`` for descending fetches: the ranges walked from the top."""

    def fetch_in(hi: str | None, lo: str, incl: bool, n: int) -> Iterator[Row]:
        got = 0
        for r in reversed(ranges):
            if hi is not None and r.lo >= hi:
                continue
            if r.hi is not None and r.hi <= lo:
                break  # this range and all below it lie under the lower bound
            b = hi if r.hi is None else r.hi if hi is None else min(r.hi, hi)
            a, a_incl = (r.lo, True) if r.lo > lo else (lo, incl)
            if b is not None and a >= b:
                continue
            with _closing(fetch(b, a, a_incl, n - got)) as rows:
                for row in rows:
                    got += 1
                    yield row
            if got >= n:
                break

    return fetch_in


def collapse_reverse(
    fetch: FetchDesc,
    *,
    prefix: str,
    delimiter: str | None,
    marker: str | None,
    end_marker: str | None,
    limit: int,
    keep: Callable[[Row], bool] | None = None,
    path_mode: bool = False,
) -> list[Row | Subdir]:
    """One page of a ``reverse=`` listing: as ``collapse`` with the order turned
    round — names with the prefix, < marker and > end_marker, in descending order; a
    subdir costs one seek below it (every name under it sorts after it)."""
    out: list[Row | Subdir] = []
    hi = upper_bound(prefix)
    if marker is not None and (hi is None or marker < hi):
        hi = marker
    lo, incl = prefix, True
    if end_marker is not None and end_marker >= prefix:
        lo, incl = end_marker, False
    plen = len(prefix)
    while len(out) < limit:
        if hi is not None and hi <= lo:
            break
        want = limit - len(out)
        seen = 0
        jumped = False
        with _closing(fetch(hi, lo, incl, want)) as rows:
            for row in rows:
                seen += 1
                name: str = row[_NAME]
                if path_mode and name == prefix:
                    hi = name
                    continue
                if delimiter:
                    i = name.find(delimiter, plen)
                    if i >= 0 and path_mode and i + len(delimiter) == len(name):
                        i = -1  # a name ending in the delimiter is listed as itself
                    if i >= 0:
                        if keep is not None and not keep(row):
                            hi = name
                            continue
                        sub = name[: i + len(delimiter)]
                        if sub != marker and not path_mode:
                            out.append(Subdir(sub))
                        hi, jumped = sub, True
                        break  # seek below the subdir
                hi = name
                if keep is None or keep(row):
                    out.append(row)
                    if len(out) >= limit:
                        break
        if not jumped and seen < want:
            break
    return out


def collapse(
    fetch: Fetch,
    *,
    prefix: str,
    delimiter: str | None,
    marker: str | None,
    end_marker: str | None,
    limit: int,
    keep: Callable[[Row], bool] | None = None,
    path_mode: bool = False,
) -> list[Row | Subdir]:
    """One listing page (see the module docstring for the semantics; ``path_mode``:
    ``path=``, no subdir entries)."""
    out: list[Row | Subdir] = []
    lo, incl = prefix, True
    if marker is not None and marker >= prefix:
        lo, incl = marker, False
    hi = upper_bound(prefix)
    if end_marker is not None and (hi is None or end_marker < hi):
        hi = end_marker
    plen = len(prefix)
    while len(out) < limit:
        if hi is not None and lo >= hi:
            break
        want = limit - len(out)
        seen = 0
        jumped = False
        with _closing(fetch(lo, incl, hi, want)) as rows:
            for row in rows:
                seen += 1
                name: str = row[_NAME]
                if path_mode and name == prefix:
                    lo, incl = name, False
                    continue
                if delimiter:
                    i = name.find(delimiter, plen)
                    if i >= 0 and path_mode and i + len(delimiter) == len(name):
                        i = -1  # a name ending in the delimiter is listed as itself
                    if i >= 0:
                        if keep is not None and not keep(row):
                            lo, incl = name, False
                            continue
                        sub = name[: i + len(delimiter)]
                        if sub != marker and not path_mode:
                            out.append(Subdir(sub))
                        nxt = upper_bound(sub)
                        if nxt is None:
                            return out
                        lo, incl, jumped = nxt, True, True
                        break  # seek past the subdir: the rows after this one are never read
                lo, incl = name, False
                if keep is None or keep(row):
                    out.append(row)
                    if len(out) >= limit:
                        break
        if not jumped and seen < want:
            break
    return out


def _closing(rows: Iterator[Row]) -> closing[Any]:
    """Release a half-read cursor (or generator of cursors) at once."""
    return closing(rows)


def _path_to_prefix(path: str) -> tuple[str, str]:
    """Pithos ``path=p``: the entries directly under p/, i.e. prefix=p/ delimiter=/."""
    p = path.rstrip("/")
    return (p + "/" if p else ""), "/"


def _list_objects(
    conn: sqlite3.Connection,
    account: str,
    container: str,
    prefix: str,
    delimiter: str | None,
    marker: str | None,
    end_marker: str | None,
    limit: int,
    as_user: str | None,
    shared: bool,
    public: bool,
    path_mode: bool = False,
    reverse: bool = False,
) -> list[ObjectVersion | Subdir]:
    ref = container_ref(conn, account, container)
    ranges: list[KeyRange] | None = None
    keep: Callable[[Row], bool] | None = None
    if as_user is not None and as_user != account:
        # Another user sees what is shared with them, directly, by group or with '*'.
        index = load_share_index(conn, ref.id)
        groups = user_groups(conn, as_user)
        ranges = _root_ranges(index.roots(as_user, groups))
        keep = lambda row: index.permission(row[_NAME], as_user, groups).can_read  # noqa: E731
    elif shared or public:
        # The owner asking for only the shared and/or only the published objects.
        roots = []
        pub: set[str] = set()
        owner_index = load_share_index(conn, ref.id) if shared else None
        if owner_index is not None:
            roots += owner_index.roots(None, frozenset())
        if public:
            pub = {n for (n,) in conn.execute("SELECT name FROM public_urls WHERE container_id = ?", (ref.id,))}
            roots += [(n, False) for n in pub]
        ranges = _root_ranges(roots)
        keep = lambda row: (row[_NAME] in pub) or (  # noqa: E731
            owner_index is not None and owner_index.governing(row[_NAME]) is not None
        )
    rows = _page(
        conn, OBJECT_QUERIES, OBJECT_QUERIES_DESC, ref.id, ranges, reverse,
        prefix=prefix, delimiter=delimiter, marker=marker, end_marker=end_marker, limit=limit, keep=keep,
        path_mode=path_mode,
    )
    return [r if isinstance(r, Subdir) else version_record(account, container, r) for r in rows]


def _page(
    conn: sqlite3.Connection,
    queries: dict[tuple[bool, bool], str],
    queries_desc: dict[tuple[bool, bool], str],
    owner_id: int,
    ranges: Sequence[KeyRange] | None,
    reverse: bool,
    **page: Any,
) -> list[Row | Subdir]:
    """One page in either direction, over all names or only those in ``ranges``."""
    if reverse:
        fetch_desc = fetcher_desc(conn, queries_desc, owner_id)
        if ranges is not None:
            fetch_desc = restricted_desc(fetch_desc, ranges)
        return collapse_reverse(fetch_desc, **page)
    fetch = fetcher(conn, queries, owner_id)
    if ranges is not None:
        fetch = restricted(fetch, ranges)
    return collapse(fetch, **page)


def _list_objects_with_extras(
    conn: sqlite3.Connection, account: str, container: str, *args: Any
) -> tuple[list[ObjectVersion | Subdir], dict[str, ListingExtras]]:
    page = _list_objects(conn, account, container, *args)
    cid = container_ref(conn, account, container).id
    names = [e.name for e in page if isinstance(e, ObjectVersion)]
    # Probes by name (IN lists), not a scan of the page's name range: under a
    # delimiter that range may hold far more shared objects than the page lists.
    sharing = load_share_index(conn, cid, names).entries
    public: dict[str, str] = {}
    for chunk in chunks(names):
        public.update(
            conn.execute(
                f"SELECT name, token FROM public_urls INDEXED BY public_urls_by_name "
                f"WHERE container_id = ? AND name IN ({','.join('?' * len(chunk))})",
                (cid, *chunk),
            ).fetchall()
        )
    return page, {
        n: ListingExtras(sharing.get(n), public.get(n)) for n in names if n in sharing or n in public
    }


def _root_ranges(roots: Iterable[tuple[str, bool]]) -> list[KeyRange]:
    """A shared object covers itself; a shared directory also covers everything below it."""
    ranges = []
    for path, is_dir in roots:
        ranges.append(KeyRange(path, exact_upper(path)))
        if is_dir:
            below = path if path.endswith("/") else path + "/"
            ranges.append(KeyRange(below, upper_bound(below)))
    return merge_ranges(ranges)


def _list_containers(
    conn: sqlite3.Connection,
    account: str,
    prefix: str,
    delimiter: str | None,
    marker: str | None,
    end_marker: str | None,
    limit: int,
    as_user: str | None,
    reverse: bool = False,
) -> list[Container | Subdir]:
    aid = account_id(conn, account)
    ranges = None
    if as_user is not None and as_user != account:
        names = shared_container_names(conn, aid, as_user, user_groups(conn, as_user))
        ranges = merge_ranges(KeyRange(n, exact_upper(n)) for n in names)
    rows = _page(
        conn, CONTAINER_QUERIES, CONTAINER_QUERIES_DESC, aid, ranges, reverse,
        prefix=prefix, delimiter=delimiter, marker=marker, end_marker=end_marker, limit=limit,
    )
    return [r if isinstance(r, Subdir) else container_record(account, r) for r in rows]


class Listing:
    """Async API for account and container listings (``store.listing``)."""

    def __init__(self, backend: Backend) -> None:
        self._db = backend

    async def objects(
        self,
        account: str,
        container: str,
        *,
        prefix: str | None = None,
        delimiter: str | None = None,
        marker: str | None = None,
        end_marker: str | None = None,
        limit: int = DEFAULT_LIMIT,
        path: str | None = None,
        as_user: str | None = None,
        shared: bool = False,
        public: bool = False,
        reverse: bool = False,
    ) -> list[ObjectVersion | Subdir]:
        """One page of a container listing: current versions and ``Subdir`` entries.

        ``path`` (Pithos, Swift) overrides prefix/delimiter with ``path/`` and ``/``
        and lists no subdir entries.
        ``as_user`` other than the owner restricts the listing to what that user may
        read; ``shared``/``public`` (owner) to objects shared / published.
        ``reverse`` (Swift): descending order, marker an upper bound and end_marker a lower one."""
        prefix, delimiter = listing_args(prefix, delimiter, marker, end_marker, limit, path)
        v.account_name(account)
        v.container_name(container)
        if as_user is not None:
            v.user_name(as_user)
        return await self._db.read(
            _list_objects, account, container, prefix, delimiter, marker, end_marker, limit, as_user, shared, public,
            path is not None, reverse,
        )

    async def objects_with_extras(
        self,
        account: str,
        container: str,
        *,
        prefix: str | None = None,
        delimiter: str | None = None,
        marker: str | None = None,
        end_marker: str | None = None,
        limit: int = DEFAULT_LIMIT,
        path: str | None = None,
        shared: bool = False,
        public: bool = False,
        reverse: bool = False,
    ) -> tuple[list[ObjectVersion | Subdir], dict[str, ListingExtras]]:
        """The owner's page of ``objects`` and, in the same snapshot, the own sharing
        and public token of the objects on it that have any (Pithos lists them)."""
        prefix, delimiter = listing_args(prefix, delimiter, marker, end_marker, limit, path)
        v.account_name(account)
        v.container_name(container)
        return await self._db.read(
            _list_objects_with_extras, account, container, prefix, delimiter, marker, end_marker, limit, None,
            shared, public, path is not None, reverse,
        )

    async def containers(
        self,
        account: str,
        *,
        prefix: str | None = None,
        delimiter: str | None = None,
        marker: str | None = None,
        end_marker: str | None = None,
        limit: int = DEFAULT_LIMIT,
        as_user: str | None = None,
        reverse: bool = False,
    ) -> list[Container | Subdir]:
        """One page of an account listing (containers with their usage); ``as_user``
        other than the owner sees the containers holding something shared with them."""
        prefix, delimiter = listing_args(prefix, delimiter, marker, end_marker, limit, None)
        v.account_name(account)
        if as_user is not None:
            v.user_name(as_user)
        return await self._db.read(
            _list_containers, account, prefix, delimiter, marker, end_marker, limit, as_user, reverse
        )


def listing_args(
    prefix: str | None,
    delimiter: str | None,
    marker: str | None,
    end_marker: str | None,
    limit: int,
    path: str | None,
) -> tuple[str, str | None]:
    """Validate listing parameters; (prefix, delimiter) with Pithos's ``path`` applied."""
    for value, what in ((prefix, "prefix"), (delimiter, "delimiter"), (path, "path")):
        v.listing_string(value, what)
    for value, what in ((marker, "marker"), (end_marker, "end_marker")):
        v.listing_string(value, what, nul_ok=True)  # bounds only
    v.limit(limit)
    if path is not None:
        return _path_to_prefix(path)
    return prefix or "", delimiter or None
