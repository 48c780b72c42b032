"""`nefeli-eventd`: Ganeti job-queue events to AMQP, through a durable spool.

    nefeli-eventd --ganeti-dir DIR --data DIR [--broker URL ...] [--node-name NAME] [--config FILE]

Tasks (all on one event loop; file reads, parsing and SQLite in one worker thread):

* watch: inotify on ``queue/`` (attached before the first scan) and on the spool
  directory's wake file (progress-monitor's commits); an overflow asks for a rescan.
* worker: takes the job ids that changed or left the queue, checks that this node is
  the master, and spools what is new (daemons/eventd/tracker.py).
* publisher: the spool to the broker (daemons/eventd/publisher.py); without a broker,
  the HTTP feed serves it instead (daemons/eventd/http.py).
* housekeeping: master re-check, spool size gauge and warning, feed retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # python daemons/eventd/main.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp import web  # noqa: E402
from asyncinotify import Inotify, Mask  # noqa: E402

from daemons.eventd.config import EventdConfig  # noqa: E402
from daemons.eventd.http import EventFeed, make_app  # noqa: E402
from daemons.eventd.metrics import SPOOL_FIELDS, EventdMetrics  # noqa: E402
from daemons.eventd.publisher import Publisher, PublisherSettings, redact  # noqa: E402
from daemons.eventd.spool import WAKE_FILE, Spool, SpoolError, SpooledMessage  # noqa: E402
from daemons.eventd.tracker import BatchResult, GanetiState, JobTracker  # noqa: E402
from daemons.runtime import App, Context, open_listener, runner_options, start_sites  # noqa: E402
from net.ganeti_job import job_id_from_name  # noqa: E402

QUEUE_MASK = Mask.MOVED_TO | Mask.CLOSE_WRITE | Mask.MOVED_FROM | Mask.DELETE | Mask.ONLYDIR
STATS_INTERVAL = 2.0
PRUNE_INTERVAL = 60.0


@dataclass
class BatchOutcome:
    master: bool
    master_node: str | None
    rescanned: bool = False
    scan_error: OSError | None = None
    result: BatchResult | None = None


class Eventd:
    def __init__(
        self,
        ctx: Context[EventdConfig],
        spool: Spool,
        executor: ThreadPoolExecutor,
        reader: Spool,
        read_executor: ThreadPoolExecutor,
    ) -> None:
        self.ctx = ctx
        self.log = ctx.log
        cfg = ctx.config
        self.spool = spool
        self.executor = executor
        self.reader = reader
        self.read_executor = read_executor
        self.metrics = EventdMetrics()
        self.ganeti = GanetiState(cfg.ganeti_dir, cfg.node())
        self.tracker = JobTracker(spool, self.ganeti, heartbeat_ttl=cfg.heartbeat_ttl)
        self.queue = cfg.ganeti_dir / "queue"
        self.changed: set[int] = set()
        self.left: set[int] = set()
        self.rescan = True
        self.trigger = asyncio.Event()
        self.was_master: bool | None = None
        self.metrics.sampled("spool", SPOOL_FIELDS, self.spool_stats)
        self.over_limit = False
        self.feed = EventFeed(reader, read_executor) if not cfg.broker else None
        self.publisher = (
            Publisher(
                spool,
                executor,
                PublisherSettings(
                    brokers=tuple(cfg.broker),
                    confirm_window=cfg.confirm_window,
                    reconnect_min=cfg.reconnect_min,
                    reconnect_max=cfg.reconnect_max,
                    retry_min=cfg.retry_min,
                    retry_max=cfg.retry_max,
                ),
                reader=reader,
                read_executor=read_executor,
                on_published=self._published,
                on_retry=lambda reason: self.metrics.retries.labels(reason).inc(),
                on_connected=lambda up: self.metrics.broker_up.set(1 if up else 0),
            )
            if cfg.broker
            else None
        )

    async def run_in_worker(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def spool_stats(self) -> dict[str, float]:
        count, size = await asyncio.get_running_loop().run_in_executor(self.read_executor, self.reader.stats)
        return {"spool_messages": count, "spool_bytes": size}

    def _published(self, msg: SpooledMessage, when: float) -> None:
        self.metrics.published.inc()
        self.metrics.confirm_latency.observe(max(0.0, when - msg.created))

    def spooled(self) -> None:
        if self.publisher is not None:
            self.publisher.wake()
        if self.feed is not None:
            self.feed.notify()

    # -- watch -------------------------------------------------------------

    async def watch(self) -> None:
        """inotify on the queue; re-attached (with a rescan) if the directory goes away."""
        warned = False
        while True:
            if not self.queue.is_dir():
                if not warned:
                    self.log.warning("%s does not exist (yet); waiting for Ganeti", self.queue)
                    warned = True
                await asyncio.sleep(2.0)
                continue
            warned = False
            try:
                with Inotify() as ino:
                    qw = ino.add_watch(self.queue, QUEUE_MASK)
                    ino.add_watch(self.ctx.config.data, Mask.CLOSE_WRITE | Mask.ONLYDIR)
                    # Attached before the scan: nothing written from now on is missed.
                    self.rescan = True
                    self.trigger.set()
                    async for ev in ino:
                        if Mask.Q_OVERFLOW in ev.mask:
                            self.log.warning("inotify queue overflowed; rescanning %s", self.queue)
                            self.metrics.overflows.inc()
                            self.rescan = True
                            self.trigger.set()
                            continue
                        if ev.watch is not qw:
                            if ev.name is not None and str(ev.name) == WAKE_FILE:
                                self.spooled()
                            continue
                        if Mask.IGNORED in ev.mask:
                            raise FileNotFoundError(f"{self.queue} was removed")
                        jid = job_id_from_name(str(ev.name)) if ev.name is not None else None
                        if jid is None:
                            continue
                        if ev.mask & (Mask.MOVED_TO | Mask.CLOSE_WRITE):
                            self.changed.add(jid)
                        else:
                            self.left.add(jid)
                        self.trigger.set()
            except OSError as exc:
                self.log.warning("watching %s: %s; re-attaching", self.queue, exc)
                await asyncio.sleep(1.0)

    # -- worker ------------------------------------------------------------

    async def work(self) -> None:
        while True:
            await self.trigger.wait()
            self.trigger.clear()
            try:
                await self.batch()
            except Exception:  # noqa: BLE001 - log, keep the ids, try again: never lose or die
                self.log.exception("processing job files failed; retrying in 1s")
                await asyncio.sleep(1.0)
                self.trigger.set()

    async def batch(self) -> None:
        """One batch: master check, rescan if asked, spool; one trip to the worker thread."""
        changed, left, rescan = self.changed, self.left, self.rescan
        self.changed, self.left, self.rescan = set(), set(), False
        try:
            out = await self.run_in_worker(self._batch_sync, changed, left, rescan or self.was_master is not True)
        except BaseException:
            self.changed |= changed
            self.left |= left
            self.rescan |= rescan
            raise
        self.metrics.is_master.set(1 if out.master else 0)
        self.metrics.master_checks.inc()
        if out.master != self.was_master:
            if out.master:
                self.log.info("this node (%s) is the master: publishing job events", self.ganeti.node_name)
            else:
                self.log.info(
                    "this node (%s) is not the master (%s): job events are not published",
                    self.ganeti.node_name,
                    out.master_node or "unknown",
                )
            self.was_master = out.master
        if out.scan_error is not None:
            if not isinstance(out.scan_error, FileNotFoundError):  # a missing queue: watch() says so
                self.log.warning("cannot scan %s: %s", self.queue, out.scan_error)
            self.changed |= changed
            self.left |= left
            self.rescan = True
            return
        if out.rescanned:
            self.metrics.rescans.inc()
        result = out.result
        if result is None:
            return
        self.metrics.job_files_read.inc(result.read)
        self.metrics.job_files_malformed.inc(result.malformed)
        for kind, n in result.spooled_types.items():
            self.metrics.spooled.labels(kind).inc(n)
        if result.spooled:
            if self.publisher is not None:
                self.publisher.offer(result.rows)
            if self.feed is not None:
                self.feed.notify()

    def _batch_sync(self, changed: set[int], left: set[int], rescan: bool) -> BatchOutcome:
        master_node = self.ganeti.master_node()
        if master_node != self.ganeti.node_name:
            # Not the master: nothing is spooled or recorded (the new master sends it).
            return BatchOutcome(False, master_node)
        if rescan:
            try:
                present, gone = self.tracker.scan_ids()
            except OSError as exc:
                return BatchOutcome(True, master_node, scan_error=exc)
            changed = changed | present
            left = left | gone
        if not changed and not left:
            return BatchOutcome(True, master_node, rescanned=rescan)
        return BatchOutcome(True, master_node, rescanned=rescan, result=self.tracker.process(changed, left))

    # -- housekeeping --------------------------------------------------------

    async def housekeeping(self) -> None:
        last_prune = 0.0
        last_master = 0.0
        while True:
            now = time.monotonic()
            if now - last_master >= self.ctx.config.master_check_interval:
                last_master = now
                self.trigger.set()  # the worker re-reads ssconf_master_node
            count, size = await asyncio.get_running_loop().run_in_executor(self.read_executor, self.reader.stats)
            limit = self.ctx.config.spool_warn_bytes
            over = bool(limit) and size > limit
            if over != self.over_limit:
                self.over_limit = over
                self.metrics.spool_over.set(1 if over else 0)
                if over:
                    self.log.warning(
                        "spool %s holds %d messages in %d bytes, over spool_warn_bytes=%d%s",
                        self.spool.path, count, size, limit,
                        "" if self.feed is not None else " (is the broker reachable?)",
                    )
                else:
                    self.log.info("spool back under spool_warn_bytes (%d bytes)", size)
            if self.feed is not None and now - last_prune >= PRUNE_INTERVAL:
                last_prune = now
                cut = time.time() - self.ctx.config.feed_retention
                pruned = await self.run_in_worker(self.spool.prune_before, cut)
                if pruned:
                    self.log.info("feed retention: dropped %d messages", pruned)
            await asyncio.sleep(STATS_INTERVAL)


async def main(ctx: Context[EventdConfig]) -> int | None:
    cfg = ctx.config
    executor = ThreadPoolExecutor(1, thread_name_prefix="eventd-spool")
    read_executor = ThreadPoolExecutor(1, thread_name_prefix="eventd-read")
    try:
        spool = Spool(cfg.data)
        reader = spool.reader()
    except (SpoolError, OSError) as exc:
        ctx.log.error("cannot open the spool: %s", exc)
        executor.shutdown()
        read_executor.shutdown()
        return 2
    daemon = Eventd(ctx, spool, executor, reader, read_executor)
    publishing: asyncio.Task[None] | None = None
    runner: web.AppRunner | None = None
    try:
        runner = web.AppRunner(
            make_app(daemon.metrics, daemon.feed, lambda: ctx.stopping),
            handle_signals=False,
            **runner_options(ctx.prog, cfg.access_log),
        )
        await runner.setup()
        where = await start_sites(runner, open_listener(ctx.sockets, "http", cfg.listen, default=True))
        ctx.close_unused_sockets()
        ctx.tasks.add("watch", daemon.watch)
        ctx.tasks.add("work", daemon.work)
        ctx.tasks.add("housekeeping", daemon.housekeeping)
        if daemon.publisher is not None:
            # Not a ctx.tasks task: those stop when the stop is requested, and the
            # publisher has to keep going while the spool drains.
            publishing = asyncio.create_task(daemon.publisher.run(), name="publish")

        @ctx.on_reload
        def reloaded(new: EventdConfig) -> None:
            daemon.ganeti.node_name = new.node()
            daemon.tracker.ttl = {"eventd.heartbeat": new.heartbeat_ttl}
            daemon.trigger.set()
            ctx.log.info("configuration reloaded (node name %s)", daemon.ganeti.node_name)

        out = f"broker {', '.join(_hosts(cfg.broker))}" if cfg.broker else f"feed on {', '.join(where) or 'no listener'}"
        ctx.ready(f"watching {daemon.queue} as {daemon.ganeti.node_name}; {out}")
        reason = await ctx.wait_for_stop()  # the watch, work and housekeeping tasks are stopped now
        ctx.log.info("stopping: %s", reason)
        # Spool what was already noticed, then let the broker confirm what is spooled.
        if daemon.changed or daemon.left:
            with contextlib.suppress(Exception):
                await daemon.batch()
        if daemon.publisher is not None:
            left = await daemon.publisher.drain(max(ctx.runtime.shutdown_timeout - 2.0, 0.5))
            if left:
                ctx.log.info("%d messages stay spooled for the next start", left)
    finally:
        if publishing is not None:
            publishing.cancel()
            await asyncio.gather(publishing, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        executor.shutdown(wait=True)
        read_executor.shutdown(wait=True)
        spool.close()
        reader.close()
    return 0


def _hosts(urls: list[str]) -> list[str]:
    return [redact(u) for u in urls]


APP = App(
    "nefeli-eventd",
    EventdConfig,
    main,
    description="Ganeti job events to AMQP (snf-ganeti-eventd's role), nothing lost",
)


def entry() -> None:
    APP.run()


if __name__ == "__main__":
    entry()
