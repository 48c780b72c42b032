"""blockd's metrics: HTTP counters it keeps, and the store's numbers sampled at scrape time.

Names are those blockd has always exposed (``nefeli_blockd_requests_total``,
``..._blocks_deduplicated_total``, ...), now through the runtime's one
prometheus_client registry per daemon.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from daemons.runtime import DaemonMetrics, Sampled

__all__ = ["BlockdMetrics", "STORE_FIELDS"]

#: What the store and the MD5 backfill report (ObjectStore.stats() keys), read at each scrape.
STORE_FIELDS = (
    Sampled("blocks_received", "counter", "data blocks received (PUT, POST ?update, partial updates)"),
    Sampled("blocks_deduplicated", "counter", "blocks received that were already stored (dedup hits)"),
    Sampled("bytes_received", "counter", "object data bytes received"),
    Sampled("bytes_served", "counter", "object data bytes served"),
    Sampled("map_refs_added", "counter", "map references added"),
    Sampled("map_refs_dropped", "counter", "map references dropped"),
    Sampled("blocks", "gauge", "blocks in the store"),
    Sampled("stored_bytes", "gauge", "record bytes of indexed blocks"),
    Sampled("logical_bytes", "gauge", "bytes of referenced content before dedup"),
    Sampled("maps", "gauge", "maps in the map store"),
    Sampled("unreferenced_blocks", "gauge", "blocks no map references (GC candidates)"),
    Sampled("dedup_ratio", "gauge", "logical / referenced raw bytes"),
    Sampled("md5_backfill_pending", "gauge", "contents waiting for their MD5 to be computed"),
    Sampled("md5_backfill_filled", "counter", "contents whose MD5 was computed in the background"),
    Sampled("md5_backfill_failed", "counter", "background MD5 computations that failed (content gone or unreadable)"),
    Sampled("md5_backfill_dropped", "counter", "contents not queued for their MD5 (queue full)"),
)


class BlockdMetrics(DaemonMetrics):
    """The registry with blockd's request metrics declared on it."""

    def __init__(self, store_stats: Callable[[], Awaitable[Mapping[str, float]]]) -> None:
        super().__init__("nefeli_blockd")
        self.requests = self.counter("requests", "HTTP requests by method and status", ["method", "status"])
        self.latency = self.histogram("request_duration_seconds", "request latency by method", ["method"])
        self.bytes_in = self.counter("bytes_in", "request body bytes read")
        self.bytes_out = self.counter("bytes_out", "response bytes sent")
        self.internal_errors = self.counter("internal_errors", "requests answered 500")
        self.sampled("the store", STORE_FIELDS, store_stats)
        # the labelled children by (method, status): labels() costs a lock, a tuple
        # and a dict lookup per call, every request; the set of pairs seen is small
        # (method is cut to 16 characters, statuses are a few dozen)
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, status: int, seconds: float, bytes_in: int, bytes_out: int) -> None:
        key = (method, status)
        child = self._children.get(key)
        if child is None:
            if len(self._children) >= 4096:  # odd methods from a misbehaving client: stay bounded
                self._children.clear()
            child = self._children[key] = (self.requests.labels(method, str(status)), self.latency.labels(method))
        child[0].inc()
        child[1].observe(seconds)
        self.bytes_in.inc(max(0, bytes_in))
        self.bytes_out.inc(max(0, bytes_out))
        if status == 500:
            self.internal_errors.inc()
