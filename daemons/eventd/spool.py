"""The durable spool of eventd and progress-monitor: SQLite, fsynced before anything is published.

One file, ``<data>/spool.db`` (format in docs/eventd.md, "Spool"). ``outbox`` holds
every message not yet confirmed by the broker (or, without a broker, the feed's
history), in the order it was spooled; ``seen`` holds the de-duplication keys
(job id, op index, status, event time) of job events already spooled, so a restart
or a rescan spools each op status once. Both change in one transaction, committed
with ``synchronous=FULL`` in WAL mode: when :meth:`Spool.add` returns, the messages
survive a crash or a power cut. eventd and progress-monitor may write at the same
time (separate processes); SQLite's locking orders them.

The class is synchronous: eventd calls it from one worker thread, progress-monitor
directly.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from net.ganeti_events import EXCHANGE, Event

__all__ = ["SCHEMA_VERSION", "SPOOL_FILE", "WAKE_FILE", "Spool", "SpoolError", "SpooledMessage"]

SCHEMA_VERSION = 1
SPOOL_FILE = "spool.db"
#: Touched (closed after writing) by progress-monitor after each commit; eventd watches it.
WAKE_FILE = "wake"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  TEXT    NOT NULL,
    exchange    TEXT    NOT NULL,
    routing_key TEXT    NOT NULL,
    order_key   TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    created     REAL    NOT NULL,
    expires     REAL
);
CREATE TABLE IF NOT EXISTS seen (
    job_id     INTEGER NOT NULL,
    op_index   INTEGER NOT NULL,
    status     TEXT    NOT NULL,
    event_sec  INTEGER NOT NULL,
    event_usec INTEGER NOT NULL,
    PRIMARY KEY (job_id, op_index, status, event_sec, event_usec)
) WITHOUT ROWID;
"""


class SpoolError(RuntimeError):
    """The spool file is unusable (another format version, not a database)."""


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    seq: int
    message_id: str
    exchange: str
    routing_key: str
    order_key: str
    body: bytes
    created: float
    expires: float | None


class Spool:
    def __init__(self, directory: Path, *, busy_timeout: float = 30.0) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / SPOOL_FILE
        self.wake_path = directory / WAKE_FILE
        new = not self.path.exists()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.DatabaseError as exc:
            raise SpoolError(f"{self.path}: {exc}") from None
        if new:
            _fsync_dir(directory)

    def _check_version(self) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            (value,) = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if value != str(SCHEMA_VERSION):
            raise SpoolError(f"{self.path}: spool format {value}, this nefeli reads {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    # -- writing ---------------------------------------------------------------

    def add(
        self, events: Sequence[Event], *, now: float | None = None, ttl: dict[str, float] | None = None
    ) -> list[Event]:
        """Spool the events whose de-duplication key is new; returns those.

        ``ttl`` maps a routing key to a lifetime in seconds (heartbeats are useless late).
        """
        return [ev for ev, _ in self.add_rows(events, now=now, ttl=ttl)]

    def add_rows(
        self, events: Sequence[Event], *, now: float | None = None, ttl: dict[str, float] | None = None
    ) -> list[tuple[Event, SpooledMessage]]:
        """:meth:`add`, also giving each new event's row as committed (so eventd's publisher
        can take it without reading it back)."""
        if not events:
            return []
        now = time.time() if now is None else now
        added: list[tuple[Event, SpooledMessage]] = []
        with self._tx():
            for ev in events:
                if ev.dedup_key is not None:
                    cur = self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?, ?)", ev.dedup_key)
                    if cur.rowcount == 0:
                        continue
                life = (ttl or {}).get(ev.routing_key)
                expires = now + life if life is not None else None
                body = ev.encoded()
                cur = self._db.execute(
                    "INSERT INTO outbox (message_id, exchange, routing_key, order_key, body, created, expires)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (ev.message_id, EXCHANGE, ev.routing_key, ev.order_key, body, now, expires),
                )
                row = SpooledMessage(cur.lastrowid or 0, ev.message_id, EXCHANGE, ev.routing_key, ev.order_key,
                                     body, now, expires)
                added.append((ev, row))
        return added

    def forget_jobs(self, job_ids: Iterable[int]) -> None:
        """Drop the de-duplication keys of jobs that left the queue for good (archived, deleted)."""
        ids = [(j,) for j in job_ids]
        if ids:
            with self._tx():
                self._db.executemany("DELETE FROM seen WHERE job_id = ?", ids)

    def delete(self, seqs: Iterable[int]) -> None:
        """Remove messages the broker confirmed (or that expired).

        Not fsynced: a delete lost to a power cut only sends a message once more
        (at least once), and the next spooling commit syncs it anyway.
        """
        rows = [(s,) for s in seqs]
        if rows:
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                with self._tx():
                    self._db.executemany("DELETE FROM outbox WHERE seq = ?", rows)
            finally:
                self._db.execute("PRAGMA synchronous=FULL")

    def prune_before(self, created: float) -> int:
        """Feed mode: drop history older than the retention."""
        with self._tx():
            return self._db.execute("DELETE FROM outbox WHERE created < ?", (created,)).rowcount

    def wake(self) -> None:
        """Tell a running eventd that new messages are spooled (it watches this file)."""
        fd = os.open(self.wake_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)

    # -- reading ---------------------------------------------------------------

    def reader(self) -> Spool:
        """Another connection to the same spool, for reading from another thread.

        WAL lets it read while this one commits, so publishing and the feed never
        queue behind an fsync.
        """
        return Spool(self.path.parent)

    def after(self, seq: int, limit: int = 1000) -> list[SpooledMessage]:
        """Messages with a sequence number above ``seq``, oldest first."""
        cur = self._db.execute(
            "SELECT seq, message_id, exchange, routing_key, order_key, body, created, expires"
            " FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        return [SpooledMessage(*row) for row in cur]

    def seen_jobs(self) -> set[int]:
        return {row[0] for row in self._db.execute("SELECT DISTINCT job_id FROM seen")}

    def stats(self) -> tuple[int, int]:
        """(messages spooled, bytes the file takes including its WAL)."""
        (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        size = 0
        for p in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                size += p.stat().st_size
            except FileNotFoundError:
                pass
        return count, size

    def last_seq(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return int(row[0]) if row else 0

    # -- internals -------------------------------------------------------------

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
