"""eventd's Prometheus metrics (one registry per process, served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["EventdMetrics"]


class EventdMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.job_files_read = Counter("eventd_job_files_read", "job file versions read", registry=r)
        self.job_files_malformed = Counter(
            "eventd_job_files_malformed", "job files skipped as malformed or truncated", registry=r
        )
        self.spooled = Counter("eventd_messages_spooled", "messages written to the spool", ["type"], registry=r)
        self.published = Counter("eventd_messages_published", "messages confirmed by the broker", registry=r)
        self.retries = Counter(
            "eventd_publish_retries", "publishes to be retried", ["reason"], registry=r
        )
        self.overflows = Counter("eventd_inotify_overflows", "inotify queue overflows (each one rescans)", registry=r)
        self.master_checks = Counter("eventd_master_checks", "reads of ssconf_master_node", registry=r)
        self.rescans = Counter("eventd_rescans", "full scans of the queue directory", registry=r)
        self.spool_messages = Gauge("eventd_spool_messages", "messages in the spool", registry=r)
        self.spool_bytes = Gauge("eventd_spool_bytes", "size of the spool files", registry=r)
        self.spool_over = Gauge(
            "eventd_spool_over_limit", "1 while the spool is larger than spool_warn_bytes", registry=r
        )
        self.is_master = Gauge("eventd_is_master", "1 while this node is the Ganeti master", registry=r)
        self.broker_up = Gauge("eventd_broker_connected", "1 while connected to a broker", registry=r)
        self.feed_clients = Gauge("eventd_feed_clients", "clients of GET /events", registry=r)
