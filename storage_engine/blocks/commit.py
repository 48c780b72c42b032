"""Group commit: puts that become durable together, and the thread that commits them.

A put reserves space for its records in the open Batch (under the append
lock), writes them outside the lock and then waits on the batch.  Whoever
commits (the committer thread in "group" mode, the putting thread itself in
"each" mode) swaps in a fresh Batch, waits for the writes begun in the old one
to finish, fdatasyncs the segments written since the
last commit, applies every entry of the batch in ONE LMDB write transaction and
only then wakes the batch's waiters — so a put never returns before its data
and its index entry are both durable, and a batch failure reaches every put in
it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PendingRecord:
    """A record appended to a segment, waiting for its index entry."""

    key: bytes
    segment: int
    offset: int
    stored_len: int
    raw_len: int
    codec: int


@dataclass(slots=True)
class BatchOp:
    """An index operation committed with a batch, after its records.

    ``fn`` raises the ``isolated`` errors only before it changes anything: such an
    error is the op's own outcome and the batch commits.  ``applied`` is set once
    the transaction that ran it has committed; an op whose batch failed as a
    whole is not applied and may be run again on its own."""

    fn: Callable[[Any], Any]
    isolated: tuple[type[BaseException], ...] = ()
    applied: bool = False
    value: Any = None
    error: BaseException | None = None


@dataclass
class Batch:
    """Everything that will be made durable by one commit."""

    seq: int
    records: list[PendingRecord] = field(default_factory=list)
    zero: dict[bytes, int] = field(default_factory=dict)  # key -> raw_len of zero blocks to note
    ops: list[BatchOp] = field(default_factory=list)  # run after the records, same transaction
    bytes: int = 0
    error: BaseException | None = None
    _done: threading.Event = field(default_factory=threading.Event)
    _callbacks: list[Callable[[], None]] = field(default_factory=list)
    _callbacks_lock: threading.Lock = field(default_factory=threading.Lock)
    # Record writes reserved in this batch and not yet finished: the commit waits for
    # them, so it never fsyncs or indexes (or moves a segment's end over) an unwritten record.
    _writes: int = 0
    _writes_cond: threading.Condition = field(default_factory=threading.Condition)

    def begin_write(self) -> None:
        """A record of this batch has been given space (called under the append lock)."""
        with self._writes_cond:
            self._writes += 1

    def end_write(self, record: PendingRecord | None) -> None:
        """That record's write finished: `record` to index it, None if the write failed."""
        with self._writes_cond:
            if record is not None:
                self.records.append(record)
            self._writes -= 1
            if self._writes == 0:
                self._writes_cond.notify_all()

    def wait_writes(self) -> None:
        """Block until every write begun in this batch has finished."""
        with self._writes_cond:
            while self._writes:
                self._writes_cond.wait()

    @property
    def empty(self) -> bool:
        return not self.records and not self.zero and not self.ops

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def finish(self, error: BaseException | None = None) -> None:
        self.error = error
        with self._callbacks_lock:
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            try:
                cb()
            except Exception:  # a waiter's bug must not stop the others' wake-up
                log.exception("batch completion callback failed")

    def add_done_callback(self, cb: Callable[[], None]) -> None:
        """Call ``cb()`` (on the committing thread) once the batch is done; at once if it is."""
        with self._callbacks_lock:
            if not self._done.is_set():
                self._callbacks.append(cb)
                return
        cb()

    def wait(self, timeout: float | None = None) -> None:
        """Block until committed; re-raise the commit's error if it failed."""
        if not self._done.wait(timeout):
            raise TimeoutError("batch commit did not finish")
        if self.error is not None:
            raise self.error


class GroupCommitter:
    """A thread that runs `commit` after the first kick of a quiet period plus `window` seconds.

    Puts that arrive while a commit is running are taken by the next commit at
    once (their window has already passed), so load raises batch size instead
    of latency.
    """

    def __init__(self, commit: Callable[[], None], window: float, name: str = "nefeli-commit") -> None:
        self._commit = commit
        self._window = window
        self._cond = threading.Condition()
        self._first_kick: float | None = None
        self._urgent = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def kick(self, urgent: bool = False) -> None:
        with self._cond:
            if self._first_kick is None:
                self._first_kick = time.monotonic()
            if urgent:
                self._urgent = True
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._first_kick is None and not self._stop:
                    self._cond.wait()
                if self._first_kick is None and self._stop:
                    return
                deadline = self._first_kick + self._window  # type: ignore[operator]
                while not self._urgent and not self._stop:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                self._first_kick = None
                self._urgent = False
            try:
                self._commit()
            except BaseException:  # the commit reports to its waiters; keep serving
                log.exception("group commit failed")
