"""One Prometheus registry per daemon, every name under the daemon's prefix.

Counters, gauges and histograms come from ``prometheus_client`` (its text
exposition is the format every scraper reads). Values a daemon does not count
itself but reads from somewhere at scrape time (the store's block counts, a
spool's depth) are *sampled*: a fetch function runs just before each scrape
and its numbers are exposed as they are, counters included.

The ``_created`` series prometheus_client adds to every counter are turned
off: they double the output and nothing nefeli ships reads them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import prometheus_client
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "LATENCY_BUCKETS",
    "DaemonMetrics",
    "Sampled",
    "metrics_app",
]

prometheus_client.disable_created_metrics()

log = logging.getLogger("nefeli.runtime.metrics")

#: The classic text format (0.0.4): every Prometheus release and most other scrapers read it.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

#: Request-latency buckets (seconds): sub-millisecond answers up to minute-long uploads.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Fetch = Callable[[], Awaitable[Mapping[str, float]] | Mapping[str, float]]


@dataclass(frozen=True)
class Sampled:
    """One value read at scrape time: its name (without prefix), kind and help."""

    name: str
    kind: Literal["counter", "gauge"]
    help: str


class _SampledCollector(Collector):
    """Exposes the values the last fetch returned (nothing when it failed)."""

    def __init__(self, source: str, prefix: str, fields: Sequence[Sampled]) -> None:
        self.source = source
        self.prefix = prefix
        self.fields = tuple(fields)
        self.values: Mapping[str, float] = {}

    def collect(self) -> Iterator[Metric]:
        for f in self.fields:
            value = self.values.get(f.name)
            if value is None:
                continue
            name = f"{self.prefix}_{f.name}"
            family: Metric
            if f.kind == "counter":
                family = CounterMetricFamily(name, f.help, value=float(value))
            else:
                family = GaugeMetricFamily(name, f.help, value=float(value))
            yield family

    def describe(self) -> Iterable[Metric]:
        return ()


class DaemonMetrics:
    """The metrics of one daemon: ``DaemonMetrics("nefeli_blockd")``."""

    def __init__(self, prefix: str) -> None:
        if not prefix.replace("_", "").isalnum():
            raise ValueError(f"bad metric prefix {prefix!r}")
        self.prefix = prefix
        self.registry = CollectorRegistry(auto_describe=True)
        self._samplers: list[tuple[_SampledCollector, Fetch]] = []

    def _name(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        """A counter; ``name`` without the ``_total`` suffix, which the exposition adds."""
        return Counter(self._name(name), help, labelnames=tuple(labels), registry=self.registry)

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(self._name(name), help, labelnames=tuple(labels), registry=self.registry)

    def histogram(
        self, name: str, help: str, labels: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Histogram:
        return Histogram(
            self._name(name), help, labelnames=tuple(labels), buckets=tuple(buckets), registry=self.registry
        )

    def sampled(self, source: str, fields: Sequence[Sampled], fetch: Fetch) -> None:
        """Expose ``fields`` with the values ``fetch()`` (sync or async) returns at each scrape.

        ``source`` names where they come from, for the log line when a fetch fails.
        """
        collector = _SampledCollector(source, self.prefix, fields)
        self.registry.register(collector)
        self._samplers.append((collector, fetch))

    async def render(self) -> bytes:
        """The text exposition, after refreshing every sampled source.

        A source that fails is logged and left out of this scrape (its series
        vanish rather than repeat stale numbers); the others are still shown.
        """
        for collector, fetch in self._samplers:
            try:
                result = fetch()
                values = await result if inspect.isawaitable(result) else result
                collector.values = dict(values)
            except Exception as exc:  # noqa: BLE001 - a scrape must not fail on one source
                log.warning("metrics: reading %s failed: %s", collector.source, exc or type(exc).__name__)
                collector.values = {}
        return prometheus_client.generate_latest(self.registry)

    async def handle(self, request: web.Request) -> web.Response:
        """aiohttp handler for ``GET /metrics``."""
        body = await self.render()
        return web.Response(
            body=body,
            headers={
                "Content-Type": CONTENT_TYPE,
                "X-Content-Type-Options": "nosniff",
            },
        )


def metrics_app(metrics: DaemonMetrics, health: Callable[[], Mapping[str, object]] | None = None) -> web.Application:
    """A small app serving ``/metrics`` (and ``/healthz``) on a listener of its own."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **(health() if health else {})})

    app = web.Application()
    app.router.add_get("/metrics", metrics.handle)
    app.router.add_get("/healthz", healthz)
    return app
