"""`nefeli-vncauthproxy`: the daemon, and its `passwd` and `request` subcommands.

    nefeli-vncauthproxy [--control-listen HOST:PORT] [--port-range LOW-HIGH]
                        [--proxy-address ADDR] [--users FILE] [--config FILE] ...
    nefeli-vncauthproxy passwd [-d] USER --users FILE
    nefeli-vncauthproxy request --server HOST:PORT --dest HOST:PORT --password PW ...

SIGTERM: the control socket closes, ports still waiting for a client close,
relaying sessions get ``drain_timeout`` seconds. SIGHUP: the config file and
the users file are read again.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # python daemons/vncauthproxy/main.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp import web  # noqa: E402

from daemons.runtime import App, ConfigError, Context, metrics_app, open_listener, start_sites  # noqa: E402
from daemons.vncauthproxy.config import VncAuthProxyConfig, parse_port_range, split_host_port  # noqa: E402
from daemons.vncauthproxy.control import ControlServer, server_tls_context  # noqa: E402
from daemons.vncauthproxy.metrics import ProxyMetrics  # noqa: E402
from daemons.vncauthproxy.proxy import Proxy  # noqa: E402
from daemons.vncauthproxy.users import Users, UsersError, delete_user, load_users, write_user  # noqa: E402

PROG = "nefeli-vncauthproxy"


def _users(cfg: VncAuthProxyConfig) -> Users:
    try:
        return load_users(cfg.users)
    except UsersError as exc:
        raise ConfigError(str(exc)) from None


def _tls(cert: Path | None, key: Path | None, what: str):  # noqa: ANN202 - ssl.SSLContext | None
    if cert is None:
        if key is not None:
            raise ConfigError(f"{what}: a key without a certificate")
        return None
    try:
        return server_tls_context(cert, key)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{what}: cannot load {cert}: {exc}") from None


def _check(ctx: Context[VncAuthProxyConfig]) -> None:
    cfg = ctx.config
    if cfg.drain_timeout >= ctx.runtime.shutdown_timeout:
        raise ConfigError(
            f"drain_timeout ({cfg.drain_timeout:g}s) must be below shutdown_timeout ({ctx.runtime.shutdown_timeout:g}s)"
        )
    if cfg.novnc_dir is not None and not (cfg.novnc_dir / "vnc.html").is_file():
        raise ConfigError(f"novnc_dir {cfg.novnc_dir} has no vnc.html")
    parse_port_range(cfg.port_range)


async def main(ctx: Context[VncAuthProxyConfig]) -> int:
    cfg = ctx.config
    _check(ctx)
    users = _users(cfg)
    control_tls = _tls(cfg.control_tls_cert, cfg.control_tls_key, "control_tls_cert")
    wss_tls = _tls(cfg.wss_tls_cert or cfg.control_tls_cert, cfg.wss_tls_key or cfg.control_tls_key, "wss_tls_cert")
    if not users.enabled:
        ctx.log.warning("no users file: control requests are not authenticated")
    metrics = ProxyMetrics()
    proxy = Proxy(cfg, users, metrics)
    proxy.wss_context = wss_tls
    control = ControlServer(proxy)
    runner: web.AppRunner | None = None
    try:
        where = await control.start(open_listener(ctx.sockets, "control", cfg.control_listen, default=True), control_tls)
        status = f"control on {where}, ports {cfg.port_range}"
        metrics_socks = open_listener(ctx.sockets, "metrics", cfg.metrics_listen)
        if metrics_socks:
            runner = web.AppRunner(metrics_app(metrics.daemon), access_log=None, handle_signals=False)
            await runner.setup()
            await start_sites(runner, metrics_socks)
            status += f", metrics on {cfg.metrics_listen or 'systemd socket'}"

        @ctx.on_reload
        def reloaded(new: VncAuthProxyConfig) -> None:
            # Everything is read before anything changes: a bad file rejects the whole reload.
            new_users = _users(new)
            new_wss = _tls(new.wss_tls_cert or new.control_tls_cert,
                           new.wss_tls_key or new.control_tls_key, "wss_tls_cert")
            proxy.reconfigure(new, new_users)
            proxy.wss_context = new_wss
            ctx.log.info("users file %s: %d user(s)", new.users or "(none)", len(new_users.hashes))

        ctx.ready(status)
        await ctx.wait_for_stop()
        control.close()
        proxy.stop_accepting()
        await proxy.drain(ctx.config.drain_timeout)
    finally:
        control.close()
        if runner is not None:
            await runner.cleanup()
    return 0


APP = App(PROG, VncAuthProxyConfig, main,
          description="nefeli VNC console proxy: one-shot ports guarded by one-time passwords")


# ----------------------------------------------------------------------- subcommands


def _read_password(prompt: str) -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass(prompt)
    if getpass.getpass("Again: ") != first:
        raise SystemExit(f"{PROG} passwd: passwords do not match")
    return first


def passwd(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog=f"{PROG} passwd", description="add, change or delete a control user")
    p.add_argument("-d", "--delete", action="store_true", help="delete the user")
    p.add_argument("--users", required=True, type=Path, metavar="FILE", help="users file to change")
    p.add_argument("user")
    args = p.parse_args(argv)
    try:
        if args.delete:
            if not delete_user(args.users, args.user):
                print(f"{PROG} passwd: no user {args.user!r} in {args.users}", file=sys.stderr)
                return 1
            print(f"deleted {args.user}")
            return 0
        password = _read_password(f"Password for {args.user}: ")
        if not password:
            print(f"{PROG} passwd: empty password refused", file=sys.stderr)
            return 2
        new = write_user(args.users, args.user, password)
    except (UsersError, OSError) as exc:
        print(f"{PROG} passwd: {exc}", file=sys.stderr)
        return 2
    print(f"{'added' if new else 'changed'} {args.user}; send SIGHUP to a running proxy to pick it up")
    return 0


def request(argv: Sequence[str]) -> int:
    from daemons.vncauthproxy.client import request_forwarding

    p = argparse.ArgumentParser(prog=f"{PROG} request", description="ask a proxy for a console port")
    p.add_argument("--server", default="127.0.0.1:24999", metavar="HOST:PORT")
    p.add_argument("--dest", required=True, metavar="HOST:PORT", help="the VM's VNC server")
    p.add_argument("--password", required=True, help="one-time password for the client")
    p.add_argument("--source-port", type=int, default=0)
    p.add_argument("--type", default="vnc", choices=("vnc", "vnc-ws", "vnc-wss"))
    p.add_argument("--auth-user")
    p.add_argument("--auth-password")
    p.add_argument("--backend-password")
    p.add_argument("--tls", action="store_true", help="control connection over TLS")
    p.add_argument("--ca-cert")
    p.add_argument("--strict", action="store_true", help="check the server's certificate and name")
    args = p.parse_args(argv)
    try:
        shost, sport = split_host_port(args.server)
        dhost, dport = split_host_port(args.dest)
        reply = request_forwarding(
            args.source_port, dhost, dport, args.password, args.auth_user, args.auth_password,
            server_address=shost, server_port=sport, enable_ssl=args.tls, ca_cert=args.ca_cert,
            strict=args.strict, console_type=args.type, backend_password=args.backend_password,
        )
    except (ValueError, OSError) as exc:
        print(f"{PROG} request: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(reply))
    return 0 if reply.get("status") == "OK" else 1


def entry(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "passwd":
        sys.exit(passwd(args[1:]))
    if args and args[0] == "request":
        sys.exit(request(args[1:]))
    APP.run(args)


if __name__ == "__main__":
    entry()
