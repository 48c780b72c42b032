"""Publishing the spool to the broker: confirms, mandatory, retries, order per job, reconnects.

Every spooled message goes to the durable topic exchange ``ganeti`` as a persistent
message with its ``message_id``, ``mandatory`` set, on a channel with publisher
confirms. It leaves the spool only after the broker's ack. A nack or a return
(no queue bound for the key) keeps it, and it is published again after a growing
delay. At most one message per order key (a job, or one instance's progress) is
unconfirmed at a time, so a retry can never overtake a later status of the same job;
different jobs are published concurrently, up to ``confirm_window``.

A lost connection makes every unconfirmed message pending again and the next broker
URL is tried, with exponential back-off. The consumer may thus see a message twice
(at least once); its ``message_id`` is the same both times.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import aiormq
import aiormq.abc
from aio_pika.abc import AbstractChannel, AbstractConnection
from aio_pika.exceptions import AMQPError, DeliveryError, PublishError

from daemons.eventd.spool import Spool, SpooledMessage
from net.ganeti_events import EXCHANGE

__all__ = ["Publisher", "PublisherSettings"]

log = logging.getLogger("nefeli-eventd")

#: How many spooled messages are held in memory (the rest stays on disk until these go).
LOADED_MAX = 20000
PERSISTENT = 2  # delivery_mode


@dataclass(frozen=True)
class PublisherSettings:
    brokers: tuple[str, ...]
    confirm_window: int = 256
    reconnect_min: float = 0.2
    reconnect_max: float = 30.0
    retry_min: float = 0.5
    retry_max: float = 60.0
    confirm_timeout: float = 30.0


def redact(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}:{parts.port or 5672}{parts.path or '/'}"


class Publisher:
    """The spool's unconfirmed messages, per order key, and the publishes in flight.

    Bookkeeping is O(1) per message: ``_ready`` holds the order keys whose oldest
    message may be published now (none in flight, no retry pending), ``_delayed`` the
    keys waiting for a retry, as a heap. A confirm starts the key's next message, or
    another ready key's, at once, in the confirm's callback; the loop only loads from
    the spool (when something was spooled), schedules retries and notices a lost
    connection. Confirmed rows are deleted in batches by a task of their own.
    """

    def __init__(
        self,
        spool: Spool,
        executor: Executor,
        settings: PublisherSettings,
        *,
        reader: Spool | None = None,
        read_executor: Executor | None = None,
        on_published: Callable[[SpooledMessage, float], None] = lambda m, t: None,
        on_retry: Callable[[str], None] = lambda reason: None,
        on_connected: Callable[[bool], None] = lambda up: None,
    ) -> None:
        self.spool = spool
        self.executor = executor
        # Loading reads on their own connection and thread, beside the commits.
        self.reader = reader or spool
        self.read_executor = read_executor or executor
        self.settings = settings
        self.on_published = on_published
        self.on_retry = on_retry
        self.on_connected = on_connected
        self._queues: dict[str, collections.deque[SpooledMessage]] = {}
        self._ready: collections.deque[str] = collections.deque()
        self._delayed: list[tuple[float, str]] = []
        self._not_before: dict[str, float] = {}
        self._loaded = 0
        self._loaded_upto = 0
        # Rows may be on disk past _loaded_upto: set by wake(), and when a load stopped at LOADED_MAX.
        self._more_spooled = True
        self._capped = False
        self._refilling = False
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._attempts: dict[int, int] = {}
        self._wake = asyncio.Event()
        self._confirmed: list[int] = []
        self._confirmed_event = asyncio.Event()
        self._lost: asyncio.Event = asyncio.Event()
        self._channel: aiormq.abc.AbstractChannel | None = None
        self.connected = False

    # -- what the daemon calls -----------------------------------------------

    def wake(self) -> None:
        """New messages were spooled."""
        self._more_spooled = True
        self._wake.set()

    def offer(self, rows: list[SpooledMessage]) -> None:
        """Rows this process just committed: taken as they are when they directly follow
        what is loaded (one read of the spool and one thread hop less per batch); else,
        e.g. after progress-monitor's rows or while a load is under way, read from the spool."""
        if (
            not rows
            or self._more_spooled
            or self._refilling
            or rows[0].seq != self._loaded_upto + 1
            or self._loaded + len(rows) > LOADED_MAX
        ):
            self.wake()
            return
        self._take(rows)
        self._fill()

    async def run(self) -> None:
        """Connect, publish, reconnect; until cancelled."""
        delay = self.settings.reconnect_min
        urls = list(self.settings.brokers)
        i = 0
        deleting = asyncio.create_task(self._delete_confirmed(), name="delete-confirmed")
        try:
            while True:
                url = urls[i % len(urls)]
                i += 1
                try:
                    conn = await aio_pika.connect(url, timeout=10)
                except (AMQPError, OSError, asyncio.TimeoutError, ConnectionError) as exc:
                    log.warning("broker %s: cannot connect: %s; next try in %.1fs", redact(url), exc or type(exc).__name__, delay)
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, self.settings.reconnect_max)
                    continue
                try:
                    channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
                    await channel.declare_exchange(
                        EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True, auto_delete=False
                    )
                    log.info("broker %s: connected, publishing", redact(url))
                    delay = self.settings.reconnect_min
                    self.connected = True
                    self.on_connected(True)
                    await self._publish_loop(conn, channel)
                except (AMQPError, OSError, ConnectionError, asyncio.TimeoutError) as exc:
                    log.warning("broker %s: connection lost: %s", redact(url), exc or type(exc).__name__)
                finally:
                    self.connected = False
                    self.on_connected(False)
                    await self._abandon_inflight()
                    try:
                        await asyncio.wait_for(conn.close(), 2)
                    except BaseException:  # noqa: BLE001 - a dead connection may fail to close in any way
                        pass
        finally:
            deleting.cancel()
            await asyncio.gather(deleting, return_exceptions=True)
            await self._flush_confirmed()

    async def drain(self, timeout: float) -> int:
        """Wait (at most ``timeout``) until everything spooled is confirmed; returns what is left.

        The publish loop keeps running meanwhile (it alone loads from the spool).
        """
        start = time.monotonic()
        deadline = start + timeout
        while time.monotonic() < deadline:
            if not self.connected and time.monotonic() - start > 1.0:
                break  # no broker to confirm anything: it all stays spooled
            self.wake()
            if self.connected and self._loaded == 0 and not self._confirmed:
                loop = asyncio.get_running_loop()
                rest = await loop.run_in_executor(self.read_executor, self.reader.after, self._loaded_upto, 1)
                if not rest:
                    return 0
            await asyncio.sleep(0.05)
        await self._flush_confirmed()
        count, _ = await asyncio.get_running_loop().run_in_executor(self.read_executor, self.reader.stats)
        return count

    # -- internals -------------------------------------------------------------

    async def _publish_loop(self, conn: AbstractConnection, channel: AbstractChannel) -> None:
        self._lost = asyncio.Event()
        closed = asyncio.get_running_loop().create_future()

        def gone(*args: Any) -> None:
            if not closed.done():
                closed.set_result(None)

        conn.close_callbacks.add(gone)
        channel.close_callbacks.add(gone)
        # aiormq's channel: one publish there is what aio-pika's Exchange.publish does, without
        # building an aio_pika.Message first.
        self._channel = await channel.get_underlay_channel()
        # Everything loaded and not waiting for a retry may go (again) on this connection.
        delayed = set(self._not_before)
        self._ready = collections.deque(k for k in self._queues if k not in delayed)
        try:
            while True:
                if closed.done() or self._lost.is_set():
                    raise ConnectionError("connection or channel closed")
                # Cleared before looking: a wake while loading (new rows committed after
                # the read) is kept for the wait below, which then returns at once.
                self._wake.clear()
                if self._more_spooled and self._loaded < LOADED_MAX:
                    await self._refill()
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    _, key = heapq.heappop(self._delayed)
                    if key in self._not_before and self._not_before[key] <= now:  # else superseded
                        del self._not_before[key]
                        if key in self._queues and key not in self._inflight:
                            self._ready.append(key)
                self._fill()
                timeout = 1.0 if not self._delayed else max(0.0, min(1.0, self._delayed[0][0] - now))
                waiter = asyncio.create_task(self._wake.wait())
                try:
                    await asyncio.wait([waiter, closed], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
        finally:
            self._channel = None

    def _fill(self) -> None:
        """Start publishing ready keys' oldest messages, up to the window."""
        channel = self._channel
        if channel is None or self._lost.is_set():
            return
        window = self.settings.confirm_window
        while self._ready and len(self._inflight) < window:
            key = self._ready.popleft()
            dq = self._queues.get(key)
            if not dq or key in self._inflight:
                continue
            msg = dq[0]
            if msg.expires is not None and msg.expires < time.time():
                log.info("dropping %s (%s): expired unsent", msg.message_id, msg.routing_key)
                self._done(key, msg)
                continue
            task = asyncio.create_task(self._publish_one(channel, key, msg))
            self._inflight[key] = task

    async def _publish_one(self, channel: aiormq.abc.AbstractChannel, key: str, msg: SpooledMessage) -> None:
        properties = aiormq.spec.Basic.Properties(
            delivery_mode=PERSISTENT, content_type="application/json", message_id=msg.message_id
        )
        try:
            await channel.basic_publish(
                msg.body, exchange=msg.exchange, routing_key=msg.routing_key, properties=properties,
                mandatory=True, timeout=self.settings.confirm_timeout,
            )
        except DeliveryError as exc:
            self._inflight.pop(key, None)
            reason = "return" if isinstance(exc, PublishError) else "nack"
            self._retry_later(key, msg, reason)
        except asyncio.TimeoutError:
            self._inflight.pop(key, None)
            self._retry_later(key, msg, "timeout")
        except asyncio.CancelledError:
            self._inflight.pop(key, None)
            raise
        except Exception as exc:  # noqa: BLE001 - the connection died under us
            self._inflight.pop(key, None)
            log.debug("publish of %s interrupted: %s", msg.message_id, exc)
            self._lost.set()
            self._wake.set()
        else:
            self._inflight.pop(key, None)
            self._done(key, msg)
            self.on_published(msg, time.time())
        self._fill()

    def _retry_later(self, key: str, msg: SpooledMessage, reason: str) -> None:
        n = self._attempts.get(msg.seq, 0) + 1
        self._attempts[msg.seq] = n
        delay = min(self.settings.retry_min * 2 ** (n - 1), self.settings.retry_max)
        due = time.monotonic() + delay
        self._not_before[key] = due
        heapq.heappush(self._delayed, (due, key))
        self._wake.set()  # the loop's timeout has to cover the new retry
        self.on_retry(reason)
        level = logging.WARNING if n in (1, 10) or n % 100 == 0 else logging.DEBUG
        log.log(level, "%s of %s (key %s), attempt %d; again in %.1fs", reason, msg.message_id, msg.routing_key, n, delay)

    def _done(self, key: str, msg: SpooledMessage) -> None:
        """``msg`` (the oldest of ``key``) is confirmed or dropped: the key's next one is ready."""
        dq = self._queues.get(key)
        if dq and dq[0].seq == msg.seq:
            dq.popleft()
            self._loaded -= 1
            if dq:
                self._ready.append(key)
            else:
                del self._queues[key]
        self._attempts.pop(msg.seq, None)
        self._confirmed.append(msg.seq)
        self._confirmed_event.set()
        if self._capped and self._loaded < LOADED_MAX // 2:
            self._capped = False
            self.wake()  # room to load what waits on disk

    async def _abandon_inflight(self) -> None:
        tasks = list(self._inflight.values())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()
        await self._flush_confirmed()

    async def _refill(self) -> None:
        self._more_spooled = False
        self._refilling = True
        loop = asyncio.get_running_loop()
        want = LOADED_MAX - self._loaded
        try:
            rows = await loop.run_in_executor(self.read_executor, self.reader.after, self._loaded_upto, want)
        finally:
            self._refilling = False
        self._capped = len(rows) == want  # stopped at the limit: the rest is loaded as these go
        self._take(rows)

    def _take(self, rows: list[SpooledMessage]) -> None:
        for row in rows:
            if row.seq <= self._loaded_upto:
                continue  # already loaded
            dq = self._queues.get(row.order_key)
            if dq is None:
                self._queues[row.order_key] = dq = collections.deque()
                if row.order_key not in self._not_before:
                    self._ready.append(row.order_key)
            dq.append(row)
            self._loaded += 1
            self._loaded_upto = row.seq

    async def _delete_confirmed(self) -> None:
        """Delete confirmed rows, in one transaction per batch (what came in during the last one)."""
        while True:
            await self._confirmed_event.wait()
            self._confirmed_event.clear()
            await self._flush_confirmed()

    async def _flush_confirmed(self) -> None:
        if not self._confirmed:
            return
        done, self._confirmed = self._confirmed, []
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.executor, self.spool.delete, done)
        except BaseException:
            self._confirmed[:0] = done  # deleted with the next batch (or sent once more after a restart)
            raise
