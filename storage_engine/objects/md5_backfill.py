"""Fill in the MD5 of versions stored without one, in the background.

A plain PUT computes the MD5 while the body streams in. A version made from block
hashes (hashmap PUT), by a partial update, or by a copy of such a version has
none: the bytes never passed through the server in order. Swift clients compare
the ETag with the MD5 of what they download, so the store computes it later, by
reading the content once, and records it on every version with that content
(``Objects.record_md5``).

One worker, one object at a time, so the reads stay a small share of the disk
and CPU. The queue is bounded and deduplicated by content (MapRef): a listing of
ten thousand such objects queues each content once and drops what does not fit
(the next request that meets such a version schedules it again). Nothing is kept
on disk: after a restart versions without an MD5 are scheduled when they are
next met.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass

from storage_engine.blocks.errors import StoreError

from .metadata import errors as merr
from .metadata.objects import MD5_ATTR
from .metadata.records import MapRef, ObjectVersion
from .store import ObjectStore

log = logging.getLogger(__name__)

#: contents waiting at most; more are dropped until the queue drains
DEFAULT_MAX_PENDING = 10_000


@dataclass(slots=True)
class BackfillCounters:
    """For /metrics: contents filled, failed (unreadable or gone), dropped (queue full)."""

    filled: int = 0
    failed: int = 0
    dropped: int = 0


class Md5Backfill:
    """Computes and records missing MD5s, one content at a time, off the request path."""

    def __init__(self, store: ObjectStore, *, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self.store = store
        self.max_pending = max(1, max_pending)
        self.counters = BackfillCounters()
        self._pending: OrderedDict[MapRef, ObjectVersion] = OrderedDict()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._current: MapRef | None = None

    @property
    def pending(self) -> int:
        """Contents queued or being read now."""
        return len(self._pending) + (self._current is not None)

    def start(self) -> None:
        """Run the worker in a task of its own (embedders without a supervisor; blockd
        gives :meth:`run` to the runtime's background tasks instead)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="nefeli-md5-backfill")

    async def close(self) -> None:
        """Stop at once; a content half read is simply not recorded."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def schedule(self, version: ObjectVersion) -> bool:
        """Queue a version whose MD5 is not known; False if it needs none, is already
        queued, or the queue is full."""
        m = version.map
        if m is None or version.attrs.get(MD5_ATTR) or m in self._pending or m == self._current:
            return False
        if len(self._pending) >= self.max_pending:
            self.counters.dropped += 1
            return False
        self._pending[m] = version
        self._idle.clear()
        self._wake.set()
        return True

    async def wait_idle(self) -> None:
        """Until nothing is queued or being read (tests, benchmarks)."""
        await self._idle.wait()

    async def run(self) -> None:
        """The worker: computes queued MD5s until cancelled."""
        while True:
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            m, version = self._pending.popitem(last=False)
            self._current = m
            try:
                md5 = await self.store.fill_md5(version)
                self.counters.filled += 1
                log.debug("md5 of %s/%s/%s (%d bytes): %s", version.account, version.container,
                          version.name, version.size, md5)
            except asyncio.CancelledError:
                raise
            except (StoreError, merr.MetadataError) as exc:
                # deleted and collected meanwhile, or unreadable (scrub reports that)
                self.counters.failed += 1
                log.warning("md5 of %s/%s/%s not computed: %s", version.account, version.container, version.name, exc)
            except Exception:  # noqa: BLE001 - a bad record must not stop the worker
                self.counters.failed += 1
                log.exception("md5 of %s/%s/%s failed", version.account, version.container, version.name)
            finally:
                self._current = None
