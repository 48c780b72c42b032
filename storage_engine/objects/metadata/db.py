"""Connections, pragmas and transactions.

Every public operation is one plain function ``fn(conn, ...)`` run as ONE transaction:
writes inside ``BEGIN IMMEDIATE`` on the single writer connection, reads inside a
deferred ``BEGIN`` (a consistent WAL snapshot) on a reader connection.  Two backends
run those same functions:

* ``AiosqliteBackend`` (the daemons): aiosqlite connections, one writer and a pool of
  readers.  aiosqlite executes queued calls one at a time on the connection's thread,
  so queueing whole transactions serialises writers without a lock and costs one
  thread hop per operation (a hop is ~0.1-0.2 ms; a hop per statement would make a
  PUT ten times slower).  Writes are group-committed: the writes that queue up
  while one transaction commits run together as the next one, each inside its own
  SAVEPOINT (an operation that fails rolls back alone), so N concurrent PUTs cost
  one fsync of the log instead of N.
  Point reads (a token, a container, one object row: what every GET, HEAD and PUT
  asks first) run inline on the event loop, on a plain sqlite3 connection the loop
  owns: such a read is a few B-tree pages SQLite finds in its page cache, some
  30 µs, where a hop to a reader thread and back costs 0.4 ms and GIL hand-offs
  under load.  A point read that meets a lock (SQLITE_BUSY, e.g. WAL recovery by
  another process) is run again on a reader thread, which may wait for it.
* ``DirectBackend`` (CLI, sync API): one plain sqlite3 connection in the caller's thread.

Pragmas: WAL (readers never block the writer nor each other); synchronous=FULL by
default, because a 201 to a PUT promises the version survives a power cut, like the
block data the engine fsyncs before answering; in WAL mode FULL costs one fsync of
the log per commit.  NORMAL (lose the last commits on power loss, never corruption)
can be chosen for bulk imports and tests.  foreign_keys=ON on every connection.
"""

from __future__ import annotations

import abc
import asyncio
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar
from collections.abc import Callable, Sequence

import aiosqlite

from . import errors
from .migrations import MIGRATIONS, Migration, migrate

P = ParamSpec("P")
T = TypeVar("T")

SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")


@dataclass(frozen=True, slots=True)
class Options:
    synchronous: str = "FULL"
    busy_timeout: float = 5.0  # seconds to wait for another process's write lock
    readers: int = 4  # reader connections of the async backend; 0 = read through the writer

    def __post_init__(self) -> None:
        if self.synchronous.upper() not in SYNCHRONOUS_MODES:
            raise errors.InvalidArgument(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        if self.readers < 0 or self.busy_timeout < 0:
            raise errors.InvalidArgument("readers and busy_timeout must be >= 0")


def _is_memory(path: str) -> bool:
    return path == ":memory:" or path.startswith("file::memory:") or "mode=memory" in path


def configure(conn: sqlite3.Connection, options: Options, *, writer: bool) -> None:
    """Per-connection pragmas (journal_mode is persistent, the rest is not)."""
    conn.execute(f"PRAGMA busy_timeout = {int(options.busy_timeout * 1000)}")
    if writer:
        mode = _switch_to_wal(conn, options.busy_timeout)
        if mode not in ("wal", "memory"):
            raise errors.MetadataError(f"could not switch the database to WAL (journal_mode={mode})")
    conn.execute(f"PRAGMA synchronous = {options.synchronous.upper()}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA temp_store = MEMORY")
    if not writer:
        conn.execute("PRAGMA query_only = ON")


def _switch_to_wal(conn: sqlite3.Connection, timeout: float) -> str:
    """PRAGMA journal_mode=WAL, retried while another opener holds the lock.

    SQLite answers "database is locked" to a journal-mode change (and to WAL
    recovery) without calling the busy handler, so several processes opening
    a new database at once would fail where any other statement would wait.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """Take the write lock; Busy when another process holds it past busy_timeout."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if _busy(exc):
            raise errors.Busy("the metadata database is locked by another writer") from exc
        raise


def _as_busy(exc: BaseException) -> BaseException:
    """SQLite's busy/locked errors inside a transaction as Busy; anything else as it is."""
    if isinstance(exc, sqlite3.OperationalError) and _busy(exc):
        err = errors.Busy("the metadata database is busy")
        err.__cause__ = exc
        return err
    return exc


def run_write(conn: sqlite3.Connection, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    """Run ``fn`` as one write transaction; roll back on any exception."""
    _begin_immediate(conn)
    try:
        result = fn(conn, *args, **kwargs)
        conn.execute("COMMIT")
        return result
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        err = _as_busy(exc)
        if err is exc:
            raise
        raise err from exc


@dataclass(slots=True)
class Outcome:
    """What one operation of a group commit gave: its result, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None


def run_write_group(
    conn: sqlite3.Connection, ops: Sequence[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]
) -> list[Outcome]:
    """Run several write operations as ONE transaction (one commit, one fsync).

    Each runs in its own savepoint: one that raises is rolled back alone and gets
    its exception; the others are committed together.  If the commit itself fails
    (or SQLite abandons the whole transaction, as it does on a full disk), every
    operation that had succeeded gets that error, since none of it was kept.
    """
    try:
        _begin_immediate(conn)
    except (errors.Busy, sqlite3.OperationalError) as exc:
        return [Outcome(error=exc) for _ in ops]
    try:
        return _run_ops_and_commit(conn, ops)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _run_ops_and_commit(
    conn: sqlite3.Connection, ops: Sequence[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]
) -> list[Outcome]:
    out: list[Outcome] = []
    lost: BaseException | None = None
    for fn, args, kwargs in ops:
        if lost is not None:
            out.append(Outcome(error=lost))
            continue
        conn.execute("SAVEPOINT nefeli_op")
        try:
            value = fn(conn, *args, **kwargs)
        except Exception as raised:
            exc = _as_busy(raised)
            if conn.in_transaction:
                conn.execute("ROLLBACK TO nefeli_op")
                conn.execute("RELEASE nefeli_op")
            else:  # SQLite rolled back the whole transaction: the earlier operations are gone too
                lost = exc
                for o in out:
                    if o.error is None:
                        o.value, o.error = None, exc
            out.append(Outcome(error=exc))
            continue
        conn.execute("RELEASE nefeli_op")
        out.append(Outcome(value=value))
    if lost is not None:
        return out
    try:
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        for o in out:
            if o.error is None:
                o.value, o.error = None, exc
    return out


def run_read(conn: sqlite3.Connection, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    """Run ``fn`` inside a read transaction, so all its queries see one snapshot."""
    conn.execute("BEGIN")
    try:
        return fn(conn, *args, **kwargs)
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def _open_sqlite(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, uri=path.startswith("file:"))


def _setup_writer(conn: sqlite3.Connection, options: Options, migrations: Sequence[Migration]) -> int:
    configure(conn, options, writer=True)
    _, version = migrate(conn, migrations)
    return version


class Backend(abc.ABC):
    """Where operations run.  Methods are coroutines so one façade serves both backends."""

    schema_version: int

    @abc.abstractmethod
    async def read(self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(conn, ...)`` in a read transaction."""

    async def point_read(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``read`` for a read of a few rows by key (no scans): the backend may run it
        without leaving the caller's thread."""
        return await self.read(fn, *args, **kwargs)

    @abc.abstractmethod
    async def write(self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(conn, ...)`` in a write transaction, serialised with all other writes."""

    @abc.abstractmethod
    async def offload(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run CPU-heavy work (key hashing) without blocking the event loop."""

    @abc.abstractmethod
    async def close(self) -> None: ...


async def _in_thread(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    # aiosqlite 0.21 has no public "run this callable on the connection thread";
    # _execute is what all its public methods use.  The version is pinned in
    # pyproject.toml and tests/storage_engine/objects/metadata/test_metadata_db.py guards this use.
    result: T = await conn._execute(fn, conn._conn, *args, **kwargs)  # type: ignore[no-untyped-call]
    return result


class AiosqliteBackend(Backend):
    """One aiosqlite writer, N aiosqlite readers (WAL lets them read while it writes)."""

    def __init__(
        self,
        writer: aiosqlite.Connection,
        readers: list[aiosqlite.Connection],
        version: int,
        inline: sqlite3.Connection | None = None,
    ) -> None:
        self._writer = writer
        self._readers = readers
        # The loop's own read connection (point_read); None for an in-memory database.
        self._inline = inline
        self._free: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for r in readers:
            self._free.put_nowait(r)
        self.schema_version = version
        self._closed = False
        # Writes waiting for the next group commit, and the task running them.
        self._queued: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], options: Options = Options(), migrations: Sequence[Migration] = MIGRATIONS
    ) -> AiosqliteBackend:
        path = os.fspath(path)
        writer = await aiosqlite.connect(path, isolation_level=None, uri=path.startswith("file:"))
        readers: list[aiosqlite.Connection] = []
        inline: sqlite3.Connection | None = None
        try:
            version = await _in_thread(writer, _setup_writer, options, migrations)
            if not _is_memory(path):
                for _ in range(options.readers):
                    r = await aiosqlite.connect(path, isolation_level=None, uri=path.startswith("file:"))
                    readers.append(r)
                    await _in_thread(r, configure, options, writer=False)
                # used from the loop's thread only; opened here, so never by another
                inline = sqlite3.connect(path, isolation_level=None, uri=path.startswith("file:"), check_same_thread=False)
                # No mmap_size here: every commit of the writer makes this connection
                # drop its cache and, with a mapping, unmap and map the file again at
                # its next read (some 50 µs against 10 µs of pread, measured on a PUT
                # after PUT; reads with no write between cost the same either way).
                configure(inline, Options(options.synchronous, busy_timeout=0, readers=0), writer=False)
        except BaseException:
            if inline is not None:
                inline.close()
            for c in [*readers, writer]:
                await c.close()
            raise
        return cls(writer, readers, version, inline)

    async def read(self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        self._check_open()
        if not self._readers:
            return await _in_thread(self._writer, run_read, fn, args, kwargs)
        conn = await self._free.get()
        try:
            return await _in_thread(conn, run_read, fn, args, kwargs)
        finally:
            self._free.put_nowait(conn)

    async def point_read(
        self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        self._check_open()
        if self._inline is not None:
            try:
                return run_read(self._inline, fn, args, kwargs)
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                if self._inline.in_transaction:
                    self._inline.execute("ROLLBACK")
        return await self.read(fn, *args, **kwargs)

    async def write(self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        self._check_open()
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queued.append((fn, args, kwargs, fut))
        if self._committer is None:
            self._committer = asyncio.get_running_loop().create_task(self._commit_queued())
        return await fut

    async def _commit_queued(self) -> None:
        """Run what is queued as one transaction; repeat while more arrived meanwhile."""
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    if len(batch) == 1:
                        fn, args, kwargs, _ = batch[0]
                        outcomes = [Outcome(value=await _in_thread(self._writer, run_write, fn, args, kwargs))]
                    else:
                        ops = [(fn, args, kwargs) for fn, args, kwargs, _ in batch]
                        outcomes = await _in_thread(self._writer, run_write_group, ops)
                except Exception as exc:
                    outcomes = [Outcome(error=exc)] * len(batch)
                for (*_, fut), o in zip(batch, outcomes):
                    if fut.done():
                        continue  # the caller gave up waiting; the write happened anyway
                    if o.error is not None:
                        fut.set_exception(o.error)
                    else:
                        fut.set_result(o.value)
        finally:
            self._committer = None

    async def offload(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _check_open(self) -> None:
        if self._closed:
            raise errors.MetadataError("metadata store is closed")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._committer is not None:
            await asyncio.shield(self._committer)
        if self._inline is not None:
            self._inline.close()
        for r in self._readers:
            await r.close()
        await self._writer.close()


class DirectBackend(Backend):
    """A plain sqlite3 connection used from the calling thread; its coroutines never
    suspend, so the sync API can drive them without an event loop."""

    def __init__(self, conn: sqlite3.Connection, version: int) -> None:
        self._conn: sqlite3.Connection | None = conn
        self.schema_version = version

    @classmethod
    def open_sync(
        cls, path: str | os.PathLike[str], options: Options = Options(), migrations: Sequence[Migration] = MIGRATIONS
    ) -> DirectBackend:
        conn = _open_sqlite(os.fspath(path))
        try:
            version = _setup_writer(conn, options, migrations)
        except BaseException:
            conn.close()
            raise
        return cls(conn, version)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise errors.MetadataError("metadata store is closed")
        return self._conn

    async def read(self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        return run_read(self.conn, fn, args, kwargs)

    async def write(self, fn: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        return run_write(self.conn, fn, args, kwargs)

    async def offload(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return fn(*args, **kwargs)

    def close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        self.close_sync()
