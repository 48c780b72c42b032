"""nefeli-dhcpd against dnsmasq, side by side in one run: DHCPv4 leases/s measured by
perfdhcp (Kea) over a veth pair, then RA and NA answer latency.

    sudo .venv/bin/python benchmarks/dhcpd_compare.py [--rounds 3] [--seconds 5] [--clients 1000]

Set-up per side: a "host" namespace with the tap end of a veth pair, a "client"
namespace with perfdhcp on the other end.

* nefeli-dhcpd: the shipped NFQUEUE rules, one binding for the tap with MACSPOOF
  (perfdhcp sends from --clients random MACs on one interface; a binding is per
  interface, so MACSPOOF is what lets one binding answer them all).
* dnsmasq: no rules, a static ``dhcp-host`` for each of perfdhcp's MACs
  (``-b mac=`` base, ``-R`` count) and ``--leasefile-ro``, so what is measured is
  answering, not dnsmasq rewriting its lease file on every lease.

perfdhcp exits 3 as soon as one exchange drops, so its ``Rate:`` and drop lines are
read instead of its exit code. Each side runs --rounds times at each offered rate;
the medians are printed with the ratio. Latency: 2000 RS and 2000 NS sent one at a
time from the client namespace, p50/p99 of the time to the answer; dnsmasq's RA
(``enable-ra``) and the kernel's own NA for the tap's link-local are the baselines.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "daemons" / "dhcpd")]

from dhcpd_lab import SYSTEM_PYTHON, Lab  # noqa: E402

BASE_MAC = "02:00:00:10:00:00"

LATENCY = r"""
import socket, struct, sys, time
kind, n, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
s.settimeout(1.0)
idx = socket.if_nametoindex("eth0")
want = 134 if kind == "rs" else 136
if kind == "rs":
    msg, dst = bytes((133, 0, 0, 0, 0, 0, 0, 0)), "ff02::2"
else:
    t = socket.inet_pton(socket.AF_INET6, target)
    msg, dst = bytes((135, 0, 0, 0, 0, 0, 0, 0)) + t, "ff02::1:ff%02x:%02x%02x" % (t[13], t[14], t[15])
out = []
lost = 0
for i in range(n):
    t0 = time.perf_counter()
    s.sendto(msg, (dst, 0, 0, idx))
    while True:
        try:
            d, a = s.recvfrom(2000)
        except socket.timeout:
            lost += 1
            break
        if d[0] == want:
            out.append(time.perf_counter() - t0)
            break
out.sort()
print(len(out), lost, out[len(out) // 2] * 1e6 if out else 0, out[int(len(out) * 0.99) - 1] * 1e6 if out else 0)
"""


def perfdhcp(lab: Lab, vm, rate: int, seconds: int, clients: int) -> tuple[float, int, int]:  # type: ignore[no-untyped-def]
    r = vm.run(
        "perfdhcp", "-4", "-l", "eth0", "-r", str(rate), "-R", str(clients), "-b", f"mac={BASE_MAC}",
        "-p", str(seconds), "-W", "500000", timeout=seconds + 60,
    )  # fmt: skip
    rate_m = re.search(r"^Rate:\s*([\d.]+)", r.stdout, re.M)
    drops = [int(x) for x in re.findall(r"^drops:\s*(\d+)", r.stdout, re.M)]
    sent = [int(x) for x in re.findall(r"^sent packets:\s*(\d+)", r.stdout, re.M)]
    if rate_m is None:
        raise SystemExit(f"perfdhcp printed no Rate line:\n{r.stdout}\n{r.stderr}")
    return float(rate_m.group(1)), sum(drops), sum(sent)


def mac(i: int) -> str:
    n = int(BASE_MAC.replace(":", ""), 16) + i
    return ":".join(f"{(n >> s) & 0xFF:02x}" for s in range(40, -8, -8))


def setup(tmp: Path, side: str) -> tuple[Lab, object]:
    lab = Lab(tmp / side)
    vm = lab.add_vm("tap0", "02:00:00:0f:00:01")
    vm.run("ip", "addr", "add", "10.0.0.2/16", "dev", "eth0", check=True)
    lab.ns_run("ip", "addr", "add", "10.0.0.1/16", "dev", "tap0")
    lab.ns_run("ip", "-6", "addr", "add", "2001:db8:9::1/64", "dev", "tap0")
    return lab, vm


def nefeli_side(tmp: Path) -> tuple[Lab, object]:
    lab, vm = setup(tmp, "nefeli")
    lab.load_rules()
    lab.bind("tap0", IP="10.0.0.10", MAC=BASE_MAC, HOSTNAME="bench", SUBNET="10.0.0.0/16", GATEWAY="10.0.0.1",
             SUBNET6="2001:db8:9::/64", MACSPOOF="1")  # fmt: skip
    # warnings only: the per-packet info lines would be what is measured
    lab.start('[ipv6]\nnameservers = ["2001:db8::53"]\n', log_level="warning")
    return lab, vm


def dnsmasq_side(tmp: Path, clients: int) -> tuple[Lab, object]:
    lab, vm = setup(tmp, "dnsmasq")
    hosts = tmp / "dnsmasq" / "hosts"
    hosts.write_text("".join(f"{mac(i)},10.0.{1 + i // 250}.{1 + i % 250}\n" for i in range(clients)))
    p = subprocess.Popen(
        ["ip", "netns", "exec", lab.host, "dnsmasq", "--keep-in-foreground", "--port=0", "--interface=tap0",
         "--bind-interfaces", "--dhcp-range=10.0.0.0,static,255.255.0.0,1h", f"--dhcp-hostsfile={hosts}",
         "--leasefile-ro", "--dhcp-authoritative", "--user=root", "--enable-ra", "--no-ping", "--quiet-dhcp", "--quiet-ra",
         "--dhcp-range=::,constructor:tap0,ra-only", f"--pid-file={tmp / 'dnsmasq' / 'pid'}", "--log-facility=/dev/null"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    lab.procs.append(p)
    time.sleep(1.5)
    return lab, vm


def latency(vm, kind: str, target: str, n: int) -> tuple[int, int, float, float]:  # type: ignore[no-untyped-def]
    r = vm.run(SYSTEM_PYTHON, "-c", LATENCY, kind, str(n), target, timeout=120)
    got, lost, p50, p99 = r.stdout.split()
    return int(got), int(lost), float(p50), float(p99)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--rates", default="5000,20000", help="offered exchanges/s, comma-separated")
    ap.add_argument("--probes", type=int, default=2000)
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("perfdhcp") or not shutil.which("dnsmasq"):
        print("dhcpd_compare: needs root, perfdhcp (kea-admin) and dnsmasq; skipped")
        return 0
    rates = [int(x) for x in args.rates.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="dhcpd-bench-"))
    results: dict[tuple[str, int], list[tuple[float, int, int]]] = {}
    lat: dict[str, list[tuple[int, int, float, float]]] = {}
    try:
        for rnd in range(args.rounds):
            for side in ("nefeli-dhcpd", "dnsmasq"):
                lab, vm = nefeli_side(tmp / f"r{rnd}") if side == "nefeli-dhcpd" else dnsmasq_side(tmp / f"r{rnd}", args.clients)
                try:
                    for rate in rates:
                        results.setdefault((side, rate), []).append(perfdhcp(lab, vm, rate, args.seconds, args.clients))
                    tap_ll = [a for a in lab.ns_run("ip", "-6", "-o", "addr", "show", "dev", "tap0").stdout.split() if a.startswith("fe80::")][0].split("/")[0]
                    lat.setdefault(f"{side} RA", []).append(latency(vm, "rs", "", args.probes))
                    target = "2001:db8:9::99" if side == "nefeli-dhcpd" else tap_ll
                    lat.setdefault(f"{'nefeli-dhcpd' if side == 'nefeli-dhcpd' else 'kernel'} NA", []).append(
                        latency(vm, "ns", target, args.probes)
                    )
                finally:
                    lab.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    print(f"\nDHCPv4 DORA, perfdhcp -R {args.clients}, {args.seconds}s per run, median of {args.rounds} rounds")
    print(f"{'offered/s':>10} {'nefeli-dhcpd leases/s':>22} {'drops':>7} {'dnsmasq leases/s':>17} {'drops':>7} {'ratio':>6}")
    for rate in rates:
        n = results[("nefeli-dhcpd", rate)]
        d = results[("dnsmasq", rate)]
        nr, dr = med(x[0] for x in n), med(x[0] for x in d)
        print(f"{rate:>10} {nr:>22.0f} {med(x[1] for x in n):>7.0f} {dr:>17.0f} {med(x[1] for x in d):>7.0f} {nr / dr if dr else 0:>6.2f}")
    print(f"\nanswer latency, {args.probes} probes one at a time, median of {args.rounds} rounds (µs)")
    print(f"{'':<18} {'p50':>8} {'p99':>8} {'lost':>6}")
    for key, vals in lat.items():
        print(f"{key:<18} {med(v[2] for v in vals):>8.0f} {med(v[3] for v in vals):>8.0f} {med(v[1] for v in vals):>6.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
