"""eventd's Prometheus metrics (the runtime's one registry per daemon, served at /metrics)."""

from __future__ import annotations

from daemons.runtime import DaemonMetrics, Sampled

#: Read from the spool at each scrape (daemons/eventd/main.py registers the fetch).
SPOOL_FIELDS = (
    Sampled("spool_messages", "gauge", "messages in the spool"),
    Sampled("spool_bytes", "gauge", "size of the spool files"),
)

__all__ = ["SPOOL_FIELDS", "EventdMetrics"]


class EventdMetrics(DaemonMetrics):
    def __init__(self) -> None:
        super().__init__("nefeli_eventd")
        self.job_files_read = self.counter("job_files_read", "job file versions read")
        self.job_files_malformed = self.counter(
            "job_files_malformed", "job files skipped as malformed or truncated"
        )
        self.spooled = self.counter("messages_spooled", "messages written to the spool", ["type"])
        self.published = self.counter("messages_published", "messages confirmed by the broker")
        self.confirm_latency = self.histogram(
            "confirm_latency_seconds", "from spooled to confirmed by the broker"
        )
        self.retries = self.counter("publish_retries", "publishes to be retried", ["reason"])
        self.overflows = self.counter("inotify_overflows", "inotify queue overflows (each one rescans)")
        self.master_checks = self.counter("master_checks", "reads of ssconf_master_node")
        self.rescans = self.counter("rescans", "full scans of the queue directory")
        self.spool_over = self.gauge("spool_over_limit", "1 while the spool is larger than spool_warn_bytes")
        self.is_master = self.gauge("is_master", "1 while this node is the Ganeti master")
        self.broker_up = self.gauge("broker_connected", "1 while connected to a broker")
        self.feed_clients = self.gauge("feed_clients", "clients of GET /events")
