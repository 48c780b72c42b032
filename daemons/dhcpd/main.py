"""`nefeli-dhcpd`: start-up, the packet loop's wiring, reload, shutdown; and `status`.

    nefeli-dhcpd [--config FILE] [--nfdhcpd-conf /etc/nfdhcpd/nfdhcpd.conf] [flags]
    nefeli-dhcpd status [--url http://127.0.0.1:9134] [--json]

Settings: defaults < TOML (--config) < nfdhcpd.conf (--nfdhcpd-conf) < flags.
SIGHUP re-reads both files and every binding file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # python daemons/dhcpd/main.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp import web  # noqa: E402

from daemons.dhcpd.bindings import Binding, BindingTable  # noqa: E402
from daemons.dhcpd.config import DhcpdConfig  # noqa: E402
from daemons.dhcpd.dispatcher import Dispatcher, Stats  # noqa: E402
from daemons.dhcpd.interfaces import InterfaceMacs  # noqa: E402
from daemons.dhcpd.nfdhcpd_conf import read_nfdhcpd_conf  # noqa: E402
from daemons.dhcpd.packet_sender import PacketSender  # noqa: E402
from daemons.dhcpd.plain_sockets import PlainSockets  # noqa: E402
from daemons.dhcpd.queue_reader import QueueError, QueueReader  # noqa: E402
from daemons.dhcpd.responder import Outcome, router_advertisement  # noqa: E402
from daemons.dhcpd.watcher import watch_bindings  # noqa: E402
from daemons.dhcpd.web import make_app  # noqa: E402
from daemons.runtime import App, ConfigError, ConfigLoader, Context, open_listener, package_version, start_sites  # noqa: E402
from net.nfqueue import NF_ACCEPT, NF_DROP, QueuedPacket  # noqa: E402

PROG = "nefeli-dhcpd"


class DhcpdLoader(ConfigLoader[DhcpdConfig]):
    """The runtime's loader, with an nfdhcpd.conf layer between the TOML file and the flags."""

    def extra_layer(
        self, file_values: Mapping[tuple[str, ...], Any], overrides: Mapping[tuple[str, ...], Any]
    ) -> tuple[dict[tuple[str, ...], Any], str] | None:
        ini = overrides.get(("nfdhcpd_conf",), file_values.get(("nfdhcpd_conf",)))
        if ini is None:
            return None
        return self.values_from_mapping(read_nfdhcpd_conf(Path(ini)), str(ini)), str(ini)


class DhcpdApp(App[DhcpdConfig]):
    def loader(self) -> ConfigLoader[DhcpdConfig]:
        version = self.version or package_version()
        return DhcpdLoader(self.config, prog=self.prog, description=self.description, version=version)


class Daemon:
    """The running pieces, so reload and shutdown see the same objects."""

    def __init__(self, ctx: Context[DhcpdConfig]) -> None:
        self.ctx = ctx
        cfg = ctx.config
        self.table = BindingTable(cfg.general.datapath)
        self.stats = Stats()
        self.macs = InterfaceMacs()
        self.sender = PacketSender()
        self.dispatcher = Dispatcher(lambda: self.ctx.config, self.table, self.macs, self.stats)
        self.reader: QueueReader | None = None
        self.plain: PlainSockets | None = None
        self.watch_task: asyncio.Task[None] | None = None
        self.ra_wakeup = asyncio.Event()

    # -- packets ---------------------------------------------------------------

    def deliver(self, out: Outcome) -> None:
        for r in out.replies:
            self.sender.send(r.interface, r.frame)
        if out.note:
            self.ctx.log.log(out.level, "%s", out.note)

    def on_packet(self, pkt: QueuedPacket) -> int:
        if pkt.truncated:
            # Copied shorter than it is (copy range): not a packet to answer from.
            self.stats.malformed["truncated"] += 1
            self.stats.error(f"packet {pkt.packet_id} of queue {pkt.queue} captured truncated")
            return self.error_verdict()
        out = self.dispatcher.handle_ip(pkt.in_ifindex, pkt.payload, pkt.hwaddr, pkt.queue)
        self.deliver(out)
        return out.verdict

    def error_verdict(self) -> int:
        return NF_ACCEPT if self.ctx.config.on_error == "accept" else NF_DROP

    def overrun(self) -> None:
        self.stats.overruns += 1
        self.stats.error("NFQUEUE overrun: the kernel could not deliver some packets")

    # -- router advertisements -------------------------------------------------

    def send_ra(self, b: Binding) -> None:
        cfg = self.ctx.config
        if not cfg.ipv6.enable_ipv6 or b.subnet6 is None:
            return
        try:
            mac = self.macs.get(b.source_interface)
            if mac is None:
                self.ctx.log.debug("no RA for %s: interface %s not found", b.tap, b.source_interface)
                return
            ra = router_advertisement(cfg, b, mac)
            if ra is not None and self.sender.send(ra.interface, ra.frame):
                self.stats.ras_sent += 1
        except Exception as exc:  # noqa: BLE001 - one bad binding must not stop the others' RAs
            self.stats.error(f"RA for {b.tap}: {exc}")
            self.ctx.log.warning("RA for %s failed: %s", b.tap, exc)

    async def periodic_ras(self) -> None:
        while True:
            for b in self.table:
                self.send_ra(b)
            try:
                await asyncio.wait_for(self.ra_wakeup.wait(), self.ctx.config.ipv6.ra_period)
            except TimeoutError:
                pass
            self.ra_wakeup.clear()

    def binding_changed(self, b: Binding) -> None:
        self.macs.forget()
        self.send_ra(b)

    # -- status ----------------------------------------------------------------

    def extra_status(self) -> dict[str, Any]:
        cfg = self.ctx.config
        out: dict[str, Any] = {
            "packet_source": cfg.packet_source,
            "datapath": str(self.table.datapath),
            "frames_sent": self.sender.sent,
            "send_failures": self.sender.failed,
        }
        if self.reader is not None:
            out["verdicts_sent"] = self.reader.verdicts_sent
            out["batch_verdicts_sent"] = self.reader.batches_sent
            out["undecodable_messages"] = self.reader.undecodable
        return out

    # -- life cycle --------------------------------------------------------------

    def start_watch(self) -> asyncio.Event:
        if self.watch_task is not None:
            self.watch_task.cancel()
        ready = asyncio.Event()
        self.watch_task = asyncio.get_running_loop().create_task(
            watch_bindings(self.table, self.binding_changed, ready), name="bindings"
        )
        return ready

    async def reload(self, new: DhcpdConfig) -> None:
        if not new.general.datapath.is_dir():
            raise ConfigError(f"datapath {new.general.datapath} is not a directory")
        if new.general.datapath != self.table.datapath:
            self.table.datapath = new.general.datapath
            await self.start_watch().wait()
        else:
            self.table.rescan()
        self.macs.forget()
        self.ra_wakeup.set()

    def close(self) -> None:
        if self.watch_task is not None:
            self.watch_task.cancel()
        if self.reader is not None:
            self.reader.close()
        if self.plain is not None:
            self.plain.close()
        self.sender.close()
        self.macs.close()


def queues_of(cfg: DhcpdConfig) -> list[int]:
    qs = [cfg.dhcp.dhcp_queue, cfg.ipv6.rs_queue, cfg.ipv6.ns_queue, cfg.ipv6.dhcpv6_queue]
    return list(dict.fromkeys(qs))


async def main(ctx: Context[DhcpdConfig]) -> int:
    cfg = ctx.config
    if not cfg.general.datapath.is_dir():
        raise ConfigError(f"datapath {cfg.general.datapath} is not a directory")
    if cfg.packet_source == "socket" and not cfg.interfaces:
        raise ConfigError("packet_source = 'socket' needs at least one entry in interfaces")
    d = Daemon(ctx)
    loop = asyncio.get_running_loop()
    runner: web.AppRunner | None = None
    pidfile = Path(cfg.general.pidfile) if cfg.general.pidfile else None
    try:
        await d.start_watch().wait()
        if cfg.packet_source == "nfqueue":
            d.reader = QueueReader(
                queues_of(cfg), d.on_packet, error_verdict=d.error_verdict, maxlen=cfg.queue_maxlen, on_overrun=d.overrun
            )
            try:
                d.reader.open(loop)
            except (QueueError, OSError) as exc:
                ctx.log.error("cannot set up NFQUEUE: %s", exc)
                return 1
        else:
            d.plain = PlainSockets(list(cfg.interfaces), d.dispatcher, d.deliver)
            try:
                d.plain.open(loop)
            except OSError as exc:
                ctx.log.error("cannot open the sockets of socket mode on %s", exc.strerror or exc)
                return 1
        ctx.tasks.add("router-advertisements", d.periodic_ras)
        where = ""
        socks = open_listener(ctx.sockets, "metrics", cfg.metrics_listen, default=True)
        if socks:
            runner = web.AppRunner(make_app(d.stats, d.table, d.extra_status), access_log=None, handle_signals=False)
            await runner.setup()
            names = await start_sites(runner, socks)
            where = f", /metrics on {', '.join(names)}"
        ctx.close_unused_sockets()
        if pidfile is not None:
            try:
                pidfile.write_text(f"{os.getpid()}\n")
            except OSError as exc:
                ctx.log.warning("cannot write pidfile %s: %s", pidfile, exc.strerror or exc)
                pidfile = None
        if cfg.general.user:
            ctx.log.info("user = %s ignored: the unit runs with CAP_NET_ADMIN and CAP_NET_RAW only", cfg.general.user)
        ctx.on_reload(d.reload)
        source = "NFQUEUE " + ",".join(map(str, queues_of(cfg))) if d.reader else "sockets on " + ",".join(cfg.interfaces)
        ctx.ready(f"{len(d.table)} bindings from {d.table.datapath}; {source}{where}")
        await ctx.wait_for_stop()
    finally:
        d.close()
        if runner is not None:
            await runner.cleanup()
        if pidfile is not None:
            try:
                pidfile.unlink()
            except OSError:
                pass
    return 0


APP = DhcpdApp(
    PROG,
    DhcpdConfig,
    main,
    description="DHCPv4, DHCPv6, router and neighbour advertisements for VM interfaces (nfdhcpd's role)",
)


def status(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog=f"{PROG} status", description="show the running daemon's bindings and counters")
    p.add_argument("--url", default="http://127.0.0.1:9134", help="the daemon's metrics_listen, as a URL")
    p.add_argument("--json", action="store_true", help="print the whole status document as JSON")
    args = p.parse_args(list(argv))
    try:
        with urllib.request.urlopen(args.url.rstrip("/") + "/status", timeout=5) as resp:
            doc = json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"{PROG} status: cannot reach {args.url}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        print()
        return 0
    print(f"source: {doc.get('packet_source')}   datapath: {doc.get('datapath')}")
    print(f"bindings: {len(doc['bindings'])}")
    for b in doc["bindings"]:
        extra = " ".join(x for x in (b.get("subnet6") and f"subnet6={b['subnet6']}", b["private"] and "private",
                                     b["macspoof"] and "macspoof") if x)
        print(f"  {b['tap']:<14} {b['mac']}  {b['ip'] or '-':<15} {b['hostname']} {extra}".rstrip())
    for tap, why in doc.get("binding_errors", {}).items():
        print(f"  {tap:<14} ignored: {why}")
    print("queues:")
    for q, c in doc.get("queues", {}).items():
        print(f"  {q:>5}: " + "  ".join(f"{k}={v}" for k, v in sorted(c.items())))
    print(f"frames sent: {doc.get('frames_sent')}  send failures: {doc.get('send_failures')}  RAs: {doc.get('router_advertisements')}")
    if doc.get("last_errors"):
        print("last errors:")
        for e in doc["last_errors"]:
            print(f"  {e['time']}  {e['error']}")
    return 0


def entry(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["status"]:
        sys.exit(status(args[1:]))
    APP.run(args)


if __name__ == "__main__":
    entry()
