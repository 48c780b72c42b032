"""Prometheus metrics of nefeli-vncauthproxy (served by the runtime's /metrics app)."""

from __future__ import annotations

from daemons.runtime import DaemonMetrics

__all__ = ["ProxyMetrics"]


class ProxyMetrics:
    def __init__(self) -> None:
        self.daemon = DaemonMetrics("nefeli_vncauthproxy")
        m = self.daemon
        self.requests = m.counter("control_requests", "Control requests answered, by status", ["status"])
        self.sessions = m.counter("sessions", "Console sessions ended, by how they ended", ["end"])
        self.active = m.gauge("sessions_active", "Sessions waiting for a client or relaying")
        self.relaying = m.gauge("sessions_relaying", "Sessions past both handshakes")
        self.ports = m.gauge("ports_in_use", "One-shot ports listening or held")
        self.relays = m.counter(
            "relays", "Sessions that started relaying, by how: splice (zero copy) or copy (TLS, WebSocket)", ["mode"]
        )
        self.bytes = m.counter("relayed_bytes", "Bytes relayed by ended sessions", ["direction"])
        self.backend_seconds = m.histogram(
            "backend_handshake_seconds", "Time to connect to a backend and finish its RFB handshake"
        )
