"""Prometheus metrics of nefeli-vncauthproxy, and the /metrics listener.

One registry per daemon process (not the global default one), served by a
small aiohttp app on its own address so that it is never reachable through
the control socket or a console port.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["ProxyMetrics", "metrics_app"]


class ProxyMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "vncauthproxy_control_requests", "Control requests answered, by status", ["status"], registry=r
        )
        self.sessions = Counter(
            "vncauthproxy_sessions", "Console sessions ended, by how they ended", ["end"], registry=r
        )
        self.active = Gauge("vncauthproxy_sessions_active", "Sessions waiting for a client or relaying", registry=r)
        self.relaying = Gauge("vncauthproxy_sessions_relaying", "Sessions past both handshakes", registry=r)
        self.ports = Gauge("vncauthproxy_ports_in_use", "One-shot ports listening or held", registry=r)
        self.bytes = Counter(
            "vncauthproxy_relayed_bytes", "Bytes relayed by ended sessions", ["direction"], registry=r
        )
        self.backend_seconds = Histogram(
            "vncauthproxy_backend_handshake_seconds",
            "Time to connect to a backend and finish its RFB handshake",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )


def metrics_app(metrics: ProxyMetrics) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handler)
    return app
