"""``/metrics`` (prometheus_client text format) and ``/status`` (JSON) on one HTTP listener.

The counters live in :class:`~daemons.dhcpd.dispatcher.Stats`; a collector reads
them at scrape time, so the packet path only increments plain integers.
``nefeli-dhcpd status`` reads ``/status``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from daemons.dhcpd.bindings import BindingTable
from daemons.dhcpd.dispatcher import Stats

__all__ = ["make_app", "status_document"]


class _StatsCollector(Collector):
    def __init__(self, stats: Stats, table: BindingTable, extra: Callable[[], dict[str, int]]) -> None:
        self.stats = stats
        self.table = table
        self.extra = extra

    def collect(self) -> Iterator[Any]:
        st = self.stats
        c = CounterMetricFamily("nefeli_dhcpd_packets", "packets handled, by kind and verdict", labels=["kind", "verdict"])
        for (kind, verdict), n in sorted(st.verdicts.items()):
            c.add_metric([kind, verdict], n)
        yield c
        c = CounterMetricFamily("nefeli_dhcpd_replies", "reply frames built, by kind of request", labels=["kind"])
        for kind, n in sorted(st.replies.items()):
            c.add_metric([kind], n)
        yield c
        c = CounterMetricFamily("nefeli_dhcpd_malformed", "packets that did not decode, by kind", labels=["kind"])
        for kind, n in sorted(st.malformed.items()):
            c.add_metric([kind], n)
        yield c
        c = CounterMetricFamily("nefeli_dhcpd_errors", "packets that could not be answered, by kind", labels=["kind"])
        for kind, n in sorted(st.errors.items()):
            c.add_metric([kind], n)
        yield c
        c = CounterMetricFamily("nefeli_dhcpd_queue_packets", "packets read from each NFQUEUE", labels=["queue"])
        for q, counts in sorted(st.by_queue.items()):
            c.add_metric([str(q)], counts.get("received", 0))
        yield c
        yield CounterMetricFamily("nefeli_dhcpd_router_advertisements", "periodic and unsolicited RAs sent", value=st.ras_sent)
        yield CounterMetricFamily("nefeli_dhcpd_queue_overruns", "times the kernel could not deliver queued packets", value=st.overruns)
        for key, n in self.extra().items():
            yield CounterMetricFamily(f"nefeli_dhcpd_{key}", key.replace("_", " "), value=n)
        yield GaugeMetricFamily("nefeli_dhcpd_bindings", "valid binding files", value=len(self.table))
        yield GaugeMetricFamily("nefeli_dhcpd_binding_errors", "binding files ignored as invalid", value=len(self.table.errors))


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
    registry = CollectorRegistry()
    registry.register(_StatsCollector(stats, table, lambda: {k: v for k, v in extra().items() if isinstance(v, int)}))

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def status(_request: web.Request) -> web.Response:
        return web.json_response(status_document(stats, table, extra()))

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/status", status)
    return app
