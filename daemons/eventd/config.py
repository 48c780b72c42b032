"""Settings of nefeli-eventd (flags, TOML file, --print-config); progress-monitor reads the same file."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from daemons.runtime import access_log_setting, check_address, setting

MiB = 1 << 20


def _listen(value: str) -> None:
    if value:
        check_address(value)


def _brokers(urls: list[str]) -> None:
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise ValueError(f"expected amqp://[user:password@]host[:port][/vhost], got {url!r}")


@dataclass(frozen=True)
class EventdConfig:
    ganeti_dir: Path = setting(
        Path("/var/lib/ganeti"),
        help="Ganeti's state directory (queue/, ssconf_* files, config.data)",
        reloadable=False,
        metavar="DIR",
    )
    data: Path = setting(
        Path("/var/lib/nefeli/eventd"), help="spool directory (spool.db)", reloadable=False, metavar="DIR"
    )
    broker: list[str] = setting(
        [],
        help="AMQP broker URL, tried in turn on failure; none: serve the spool as the "
        "GET /events feed instead",
        validate=_brokers,
        secret=True,
        reloadable=False,
        metavar="URL",
    )
    node_name: str = setting(
        "", help="this node's name as in ssconf_master_node (empty: this host's FQDN)", metavar="NAME"
    )
    listen: str = setting(
        "127.0.0.1:8187",
        help="HOST:PORT, [IPv6]:PORT or unix:/PATH of the HTTP server (/metrics; /events without a "
        "broker) when systemd passes no 'http' socket; empty: none",
        validate=_listen,
        reloadable=False,
        metavar="HOST:PORT",
    )
    master_check_interval: float = setting(
        5.0, help="seconds between re-reads of ssconf_master_node", min=0.1, max=3600.0
    )
    confirm_window: int = setting(
        256, help="messages published and not yet confirmed, at most (one per job at a time)", min=1, max=65535
    )
    reconnect_min: float = setting(0.2, help="first reconnect delay (s), doubled up to reconnect_max", min=0.01)
    reconnect_max: float = setting(30.0, help="longest reconnect delay (s)", min=0.1)
    retry_min: float = setting(0.5, help="first retry delay (s) of a nacked or returned message", min=0.01)
    retry_max: float = setting(60.0, help="longest retry delay (s) of a nacked or returned message", min=0.1)
    heartbeat_ttl: float = setting(
        60.0, help="seconds an eventd-heartbeat stays worth sending; older ones are dropped", min=1.0
    )
    spool_warn_bytes: int = setting(
        256 * MiB, help="log a warning (and set eventd_spool_over_limit) when the spool grows past this", min=0
    )
    feed_retention: float = setting(
        7 * 86400.0, help="without a broker: seconds the /events feed keeps messages", min=1.0
    )

    access_log: bool = access_log_setting()

    def node(self) -> str:
        return self.node_name or socket.getfqdn()
