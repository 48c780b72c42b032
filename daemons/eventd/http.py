"""eventd's HTTP side: ``GET /events`` (the spool as Server-Sent Events) and ``GET /metrics``.

Without a broker the spool is the feed: each message is one SSE event whose ``id`` is
its spool sequence number, ``event`` its routing key and ``data`` its JSON body.
A client that reconnects with ``Last-Event-ID: N`` (EventSource does this by itself)
or ``?after=N`` gets everything after N that the retention kept, then live events;
``?follow=0`` ends the response once the backlog is sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor

from aiohttp import web

from daemons.eventd.metrics import EventdMetrics
from daemons.eventd.spool import Spool, SpooledMessage
from net.sse import encode_event

__all__ = ["EventFeed", "make_app"]

BATCH = 500
KEEPALIVE = 15.0
POLL = 1.0


class EventFeed:
    """Wakes the open /events streams when the spool grows."""

    def __init__(self, spool: Spool, executor: Executor) -> None:
        self.spool = spool
        self.executor = executor
        self._new = asyncio.Event()

    def notify(self) -> None:
        self._new.set()
        self._new = asyncio.Event()

    def next_change(self) -> asyncio.Event:
        """Set by the next :meth:`notify`: take it *before* reading, so no commit slips between."""
        return self._new

    @staticmethod
    async def wait(change: asyncio.Event, timeout: float) -> None:
        try:
            await asyncio.wait_for(change.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def after(self, seq: int) -> list[SpooledMessage]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.spool.after, seq, BATCH)


def _start_seq(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID", request.query.get("after", "0")).strip() or "0"
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise web.HTTPBadRequest(text=f"Last-Event-ID / after must be a sequence number, got {raw[:40]!r}\n")
    return int(raw)


def sse_event(msg: SpooledMessage) -> bytes:
    # The body is ASCII JSON on one line (net/ganeti_events.encode_body): one data: line.
    return encode_event(msg.body.decode("utf-8", "replace"), event=msg.routing_key, id=str(msg.seq))


def make_app(
    metrics: EventdMetrics, feed: EventFeed | None, stopping: Callable[[], bool]
) -> web.Application:
    app = web.Application()

    async def get_events(request: web.Request) -> web.StreamResponse:
        if feed is None:
            raise web.HTTPNotFound(text="a broker is configured: events are published there, not served here\n")
        seq = _start_seq(request)
        follow = request.query.get("follow", "1") not in ("0", "false", "no")
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        await resp.prepare(request)
        metrics.feed_clients.inc()
        try:
            await resp.write(b"retry: 1000\n\n")
            last_write = time.monotonic()
            while not stopping():
                change = feed.next_change()
                rows = await feed.after(seq)
                if rows:
                    await resp.write(b"".join(sse_event(m) for m in rows))
                    seq = rows[-1].seq
                    last_write = time.monotonic()
                    continue
                if not follow:
                    break
                # Woken by eventd's own spooling; the timeout also catches progress-monitor's.
                await feed.wait(change, POLL)
                if time.monotonic() - last_write >= KEEPALIVE:
                    await resp.write(b": keep-alive\n\n")
                    last_write = time.monotonic()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            metrics.feed_clients.dec()
        return resp

    app.router.add_get("/metrics", metrics.handle)
    app.router.add_get("/events", get_events)
    return app

