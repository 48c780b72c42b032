"""Settings of nefeli-vncauthproxy (flags, TOML file, --print-config)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from daemons.runtime import check_address, setting

SECURITY_NAMES = ("vencrypt", "none", "vnc")


def split_host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT``; raises ValueError with the reason."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _optional_listen(value: str) -> None:
    if value:
        check_address(value)


def parse_port_range(value: str) -> tuple[int, int]:
    low, sep, high = value.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ValueError(f"expected LOW-HIGH, got {value!r}")
    lo, hi = int(low), int(high)
    if not 1 <= lo <= hi <= 65535:
        raise ValueError(f"port range must satisfy 1 <= LOW <= HIGH <= 65535, got {value!r}")
    return lo, hi


def _port_range(value: str) -> None:
    parse_port_range(value)


def _security(value: list[str]) -> None:
    if not value:
        raise ValueError("needs at least one of " + ", ".join(SECURITY_NAMES))
    for v in value:
        if v not in SECURITY_NAMES:
            raise ValueError(f"unknown security type {v!r} (known: {', '.join(SECURITY_NAMES)})")


@dataclass(frozen=True)
class VncAuthProxyConfig:
    control_listen: str = setting(
        "127.0.0.1:24999", help="address of the control socket (systemd socket name: control)",
        validate=check_address,
        reloadable=False, metavar="HOST:PORT",
    )
    port_range: str = setting(
        "25000-30000", help="pool of one-shot ports handed out to consoles", validate=_port_range,
        metavar="LOW-HIGH",
    )
    proxy_address: str = setting(
        "", help="address the one-shot ports listen on and replies name; empty: all addresses, "
        "replies name this host's FQDN", metavar="ADDR",
    )
    users: Path | None = setting(
        None, help="users file (user:<SHA-512 crypt> lines) for control requests; unset: no "
        "authentication (re-read on SIGHUP)", metavar="FILE",
    )
    control_tls_cert: Path | None = setting(None, help="PEM certificate chain: serve the control socket over TLS 1.2+", reloadable=False)
    control_tls_key: Path | None = setting(None, help="PEM private key of control_tls_cert", reloadable=False)
    wss_tls_cert: Path | None = setting(None, help="PEM certificate for vnc-wss ports (default: control_tls_cert)")
    wss_tls_key: Path | None = setting(None, help="PEM private key of wss_tls_cert (default: control_tls_key)")
    metrics_listen: str = setting(
        "127.0.0.1:24998", help="address serving /metrics (systemd socket name: metrics); empty: off", validate=_optional_listen,
        reloadable=False, metavar="HOST:PORT",
    )
    connect_timeout: float = setting(30.0, help="seconds a one-shot port waits for its client", min=0.1, max=3600)
    handshake_timeout: float = setting(15.0, help="seconds a client has to finish the RFB handshake", min=0.1, max=600)
    idle_timeout: float = setting(0.0, help="close a session with no traffic either way for this long (s); 0: never", min=0, max=86400 * 7)
    control_timeout: float = setting(10.0, help="seconds a control connection may take to send a whole request", min=0.1, max=600)
    max_control_connections: int = setting(
        256, help="control connections open at once; one more is answered FAILED and closed", min=1, max=100_000,
    )
    backend_timeout: float = setting(60.0, help="seconds allowed to connect to the backend and finish its handshake", min=0.1, max=600)
    backend_retries: int = setting(3, help="connection attempts to the backend", min=1, max=100)
    backend_retry_delay: float = setting(0.1, help="seconds between connection attempts", min=0, max=60)
    backend_security: list[str] = setting(
        ["vencrypt", "none", "vnc"], help="security types used towards backends, in order of preference",
        validate=_security,
    )
    backend_password: str = setting("", help="VNC password of the backends (when a request has no backend_password)", secret=True)
    backend_tls_ca: Path | None = setting(None, help="CA bundle to verify VeNCrypt X.509 backends; unset: not verified")
    backend_tls_anonymous: bool = setting(True, help="allow VeNCrypt's anonymous TLS subtypes (TLSNone, TLSVnc)")
    drain_timeout: float = setting(8.0, help="on SIGTERM, seconds open sessions may go on (must stay below shutdown_timeout)", min=0, max=3600)
    zero_copy_relay: bool = setting(
        True, help="relay plain-TCP sessions with splice(2), never copying their bytes through the proxy's "
        "memory (TLS and WebSocket sessions are always copied)",
    )
    max_sessions: int = setting(10000, help="sessions (waiting or relaying) at once", min=1, max=1_000_000)
    allowed_origins: list[str] = setting(
        [], help="Origins allowed to open vnc-ws/vnc-wss WebSockets ('*': any); empty: only the port's own origin "
        "(or no Origin header)",
    )
    novnc_dir: Path | None = setting(None, help="noVNC tree (e.g. /usr/share/novnc) served on vnc-ws/vnc-wss ports")
