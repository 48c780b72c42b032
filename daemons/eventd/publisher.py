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
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aio_pika.exceptions import AMQPError, DeliveryError, PublishError

from daemons.eventd.spool import Spool, SpooledMessage
from net.ganeti_events import EXCHANGE

__all__ = ["Publisher", "PublisherSettings"]

log = logging.getLogger("nefeli-eventd")

#: How many spooled messages are held in memory (the rest stays on disk until these go).
LOADED_MAX = 20000


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
        self._loaded = 0
        self._loaded_upto = 0
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._not_before: dict[str, float] = {}
        self._attempts: dict[int, int] = {}
        self._wake = asyncio.Event()
        self._confirmed: list[int] = []
        self._lost: asyncio.Event = asyncio.Event()
        self.connected = False

    # -- what the daemon calls -----------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Connect, publish, reconnect; until cancelled."""
        delay = self.settings.reconnect_min
        urls = list(self.settings.brokers)
        i = 0
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
                exchange = await channel.declare_exchange(
                    EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True, auto_delete=False
                )
                log.info("broker %s: connected, publishing", redact(url))
                delay = self.settings.reconnect_min
                self.connected = True
                self.on_connected(True)
                await self._publish_loop(conn, channel, exchange)
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

    async def _publish_loop(self, conn: AbstractConnection, channel: AbstractChannel, exchange: AbstractExchange) -> None:
        self._lost = asyncio.Event()
        closed = asyncio.get_running_loop().create_future()

        def gone(*args: Any) -> None:
            if not closed.done():
                closed.set_result(None)

        conn.close_callbacks.add(gone)
        channel.close_callbacks.add(gone)
        while True:
            if closed.done() or self._lost.is_set():
                raise ConnectionError("connection or channel closed")
            # Cleared before looking: a wake while refilling (new rows committed after
            # the read) is kept for the wait below, which then returns at once.
            self._wake.clear()
            await self._refill()
            await self._flush_confirmed()
            now = time.monotonic()
            next_retry = None
            for key, dq in list(self._queues.items()):
                if len(self._inflight) >= self.settings.confirm_window:
                    break
                if key in self._inflight or not dq:
                    continue
                nb = self._not_before.get(key, 0.0)
                if nb > now:
                    next_retry = nb if next_retry is None else min(next_retry, nb)
                    continue
                msg = dq[0]
                if msg.expires is not None and msg.expires < time.time():
                    log.info("dropping %s (%s): expired unsent", msg.message_id, msg.routing_key)
                    self._done(key, msg)
                    continue
                self._inflight[key] = asyncio.create_task(self._publish_one(exchange, key, msg))
            timeout = 1.0 if next_retry is None else max(0.0, min(1.0, next_retry - now))
            waiter = asyncio.create_task(self._wake.wait())
            try:
                await asyncio.wait([waiter, closed], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()

    async def _publish_one(self, exchange: AbstractExchange, key: str, msg: SpooledMessage) -> None:
        message = aio_pika.Message(
            msg.body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            message_id=msg.message_id,
        )
        try:
            await exchange.publish(message, msg.routing_key, mandatory=True, timeout=self.settings.confirm_timeout)
        except DeliveryError as exc:
            reason = "return" if isinstance(exc, PublishError) else "nack"
            self._retry_later(key, msg, reason, exc)
        except asyncio.TimeoutError as exc:
            self._retry_later(key, msg, "timeout", exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the connection died under us
            self._inflight.pop(key, None)
            log.debug("publish of %s interrupted: %s", msg.message_id, exc)
            self._lost.set()
        else:
            self._done(key, msg)
            self.on_published(msg, time.time())
        finally:
            self._inflight.pop(key, None)
            self._wake.set()

    def _retry_later(self, key: str, msg: SpooledMessage, reason: str, exc: BaseException) -> None:
        n = self._attempts.get(msg.seq, 0) + 1
        self._attempts[msg.seq] = n
        delay = min(self.settings.retry_min * 2 ** (n - 1), self.settings.retry_max)
        self._not_before[key] = time.monotonic() + delay
        self.on_retry(reason)
        level = logging.WARNING if n in (1, 10) or n % 100 == 0 else logging.DEBUG
        log.log(level, "%s of %s (key %s), attempt %d; again in %.1fs", reason, msg.message_id, msg.routing_key, n, delay)

    def _done(self, key: str, msg: SpooledMessage) -> None:
        dq = self._queues.get(key)
        if dq and dq[0].seq == msg.seq:
            dq.popleft()
            self._loaded -= 1
            if not dq:
                del self._queues[key]
        self._attempts.pop(msg.seq, None)
        self._not_before.pop(key, None)
        self._confirmed.append(msg.seq)

    async def _abandon_inflight(self) -> None:
        tasks = list(self._inflight.values())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()
        await self._flush_confirmed()

    async def _refill(self) -> None:
        if self._loaded >= LOADED_MAX:
            return
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(
            self.read_executor, self.reader.after, self._loaded_upto, LOADED_MAX - self._loaded
        )
        for row in rows:
            self._queues.setdefault(row.order_key, collections.deque()).append(row)
            self._loaded += 1
            self._loaded_upto = row.seq

    async def _flush_confirmed(self) -> None:
        if not self._confirmed:
            return
        done, self._confirmed = self._confirmed, []
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, self.spool.delete, done)
