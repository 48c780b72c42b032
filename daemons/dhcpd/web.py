"""``/metrics`` (the runtime's prometheus_client registry) and ``/status`` (JSON) on
the ``metrics`` listener.

The counters live in :class:`~daemons.dhcpd.dispatcher.Stats`; a collector on the
daemon's registry reads them at scrape time, so the packet path only increments
plain integers. ``nefeli-dhcpd status`` reads ``/status``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from daemons.dhcpd.bindings import BindingTable
from daemons.dhcpd.dispatcher import Stats
from daemons.runtime import DaemonMetrics, metrics_app

__all__ = ["PREFIX", "make_app", "status_document"]

PREFIX = "nefeli_dhcpd"


class _StatsCollector(Collector):
    def __init__(self, stats: Stats, table: BindingTable, extra: Callable[[], dict[str, Any]]) -> None:
        self.stats = stats
        self.table = table
        self.extra = extra

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterator[Metric]:
        st = self.stats
        labelled: tuple[tuple[str, str, list[str], dict[Any, int]], ...] = (
            ("packets", "packets handled, by kind and verdict", ["kind", "verdict"], st.verdicts),
            ("replies", "reply frames built, by kind of request", ["kind"], st.replies),
            ("malformed", "packets that did not decode, by kind", ["kind"], st.malformed),
            ("errors", "packets that could not be answered, by kind", ["kind"], st.errors),
        )
        for name, text, labels, values in labelled:
            c = CounterMetricFamily(f"{PREFIX}_{name}", text, labels=labels)
            for key, n in sorted(values.items()):
                c.add_metric(list(key) if isinstance(key, tuple) else [key], n)
            yield c
        c = CounterMetricFamily(f"{PREFIX}_queue_packets", "packets read from each NFQUEUE", labels=["queue"])
        for q, counts in sorted(st.by_queue.items()):
            c.add_metric([str(q)], counts.get("received", 0))
        yield c
        yield CounterMetricFamily(f"{PREFIX}_router_advertisements", "periodic and unsolicited RAs sent", value=st.ras_sent)
        yield CounterMetricFamily(f"{PREFIX}_queue_overruns", "times the kernel could not deliver queued packets", value=st.overruns)
        for key, n in self.extra().items():
            if isinstance(n, int):
                yield CounterMetricFamily(f"{PREFIX}_{key}", key.replace("_", " "), value=n)
        yield GaugeMetricFamily(f"{PREFIX}_bindings", "valid binding files", value=len(self.table))
        yield GaugeMetricFamily(f"{PREFIX}_binding_errors", "binding files ignored as invalid", value=len(self.table.errors))


def status_document(stats: Stats, table: BindingTable, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "bindings": [b.summary() for b in sorted(table, key=lambda b: b.tap)],
        "binding_errors": dict(sorted(table.errors.items())),
        "queues": {str(q): dict(c) for q, c in sorted(stats.by_queue.items())},
        "packets": {f"{k}/{v}": n for (k, v), n in sorted(stats.verdicts.items())},
        "malformed": dict(stats.malformed),
        "errors": dict(stats.errors),
        "router_advertisements": stats.ras_sent,
        "last_errors": [
            {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)), "error": e} for t, e in stats.last_errors
        ],
        **extra,
    }


def make_app(stats: Stats, table: BindingTable, extra: Callable[[], dict[str, Any]]) -> web.Application:
    metrics = DaemonMetrics(PREFIX)
    metrics.registry.register(_StatsCollector(stats, table, extra))

    async def status(_request: web.Request) -> web.Response:
        return web.json_response(status_document(stats, table, extra()))

    app = metrics_app(metrics, lambda: {"bindings": len(table)})
    app.router.add_get("/status", status)
    return app
