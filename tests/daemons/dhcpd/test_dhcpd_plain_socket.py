"""Socket mode (no netfilter): UDP 67/547 and a filtered packet socket on named
interfaces answer udhcpc, rdisc6, ndisc6 and dhclient -6 -S; a tap that is not
named is not served."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from dhcpd_lab import Lab, env_script, lab, read_env, udhcpc  # noqa: F401

from peers import require_program

pytestmark = pytest.mark.root

MAC = "02:00:00:00:06:01"


def test_socket_mode(lab: Lab, tmp_path: Path) -> None:
    progs = require_program("busybox", "rdisc6", "dhclient")
    # no NFQUEUE rules in this namespace: the packets reach the sockets directly
    lab.ns_run("iptables", "-t", "mangle", "-F")
    lab.ns_run("ip6tables", "-t", "mangle", "-F")
    lab.bind("tap1", IP="10.0.0.61", MAC=MAC, HOSTNAME="vm61", SUBNET="10.0.0.0/24", GATEWAY="10.0.0.1", SUBNET6="2001:db8:61::/64")
    lab.bind("tap2", IP="10.0.0.62", MAC="02:00:00:00:06:02", HOSTNAME="vm62", SUBNET="10.0.0.0/24")
    vm = lab.add_vm("tap1", MAC)
    other = lab.add_vm("tap2", "02:00:00:00:06:02")
    lab.start(
        'packet_source = "socket"\ninterfaces = ["tap1"]\n'
        '[dhcp]\nnameservers = ["192.0.2.53"]\n[ipv6]\nmode = "slaac+dhcpv6"\nnameservers = ["2001:db8::53"]\n'
    )
    env = udhcpc(vm, tmp_path)
    assert env is not None, lab.log_text()[-2000:]
    assert env["ip"] == "10.0.0.61" and env["dns"] == "192.0.2.53" and env["router"] == "10.0.0.1"
    assert udhcpc(other, tmp_path, tries=1) is None
    r = vm.run(progs["rdisc6"], "-1", "-r", "3", "-w", "1000", "eth0", timeout=20)
    assert r.returncode == 0 and re.search(r"Prefix\s*:\s*2001:db8:61::/64", r.stdout), r.stdout + lab.log_text()[-2000:]
    dump = tmp_path / "dh6"
    script = env_script(tmp_path, dump)
    r = vm.run(
        progs["dhclient"], "-6", "-S", "-1", "-v", "-sf", str(script), "-lf", str(tmp_path / "l6"),
        "-pf", str(tmp_path / "p6"), "eth0", timeout=60,
    )  # fmt: skip
    got = [p for p in tmp_path.glob("dh6.*") if p.suffix in (".BOUND6", ".RENEW6")]
    assert got, r.stderr + lab.log_text()[-2000:]
    assert read_env(got[0])["new_dhcp6_name_servers"] == "2001:db8::53"
    assert lab.stop() == 0


def na_link_layer(out: str) -> str:
    m = re.search(r"^\s*Target link-layer address\s*:\s*(\S+)", out, re.M)
    assert m, out
    return m.group(1).lower()


def test_socket_mode_answers_ns_for_other_hosts_addresses(lab: Lab) -> None:
    """ndisc6 for an address in SUBNET6, which no interface of the host has: its NS
    goes to a solicited-node group nobody joined, so only the packet socket sees it.
    Nothing but RS and NS gets past that socket's filter."""
    ndisc6 = require_program("ndisc6")["ndisc6"]
    lab.ns_run("iptables", "-t", "mangle", "-F")
    lab.ns_run("ip6tables", "-t", "mangle", "-F")
    lab.bind("tap1", MAC=MAC, HOSTNAME="vm61", SUBNET6="2001:db8:61::/64")
    vm = lab.add_vm("tap1", MAC)
    lab.start('packet_source = "socket"\ninterfaces = ["tap1"]\n[ipv6]\nmode = "slaac"\n')
    tap_mac = lab.mac_of("tap1")
    for target in ("2001:db8:61::99", "2001:db8:61::1"):
        r = vm.run(ndisc6, "-1", "-r", "3", "-w", "1000", target, "eth0", timeout=20)
        assert r.returncode == 0, r.stdout + r.stderr + lab.log_text()[-2000:]
        assert na_link_layer(r.stdout) == tap_mac
        lab.wait_log(f"NS from tap1 for {target}: NA")  # logged just after the NA went out
    # outside SUBNET6: seen, passed, and nobody answers
    r = vm.run(ndisc6, "-1", "-r", "1", "-w", "500", "2001:db8:62::1", "eth0", timeout=20)
    assert r.returncode != 0, r.stdout
    lab.wait_log("NS on tap1 for 2001:db8:62::1: not ours")
    # Other IPv6 (UDP, an echo request, an unsolicited NA) to the host on the same
    # link: filtered in the kernel, so the daemon never counts a packet of kind "other".
    host_ll = lab.ns_run("ip", "-6", "-j", "addr", "show", "dev", "tap1", "scope", "link").stdout
    ll = next(a["local"] for a in json.loads(host_ll)[0]["addr_info"])
    code = (
        "import socket,sys\n"
        "u=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);u.sendto(b'x',(sys.argv[1]+'%eth0',9))\n"
        "r=socket.socket(socket.AF_INET6,socket.SOCK_RAW,58)\n"
        "r.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_UNICAST_HOPS,255)\n"
        "for t in (128,136,134): r.sendto(bytes((t,0,0,0))+bytes(20),(sys.argv[1]+'%eth0',0))\n"
    )
    assert vm.python(code, ll).returncode == 0
    # a last NS after those, so the daemon has read everything that got through before it
    mark = len(lab.log_text())
    assert vm.run(ndisc6, "-1", "-r", "3", "-w", "1000", "2001:db8:61::7", "eth0", timeout=20).returncode == 0
    lab.wait_log("NS from tap1 for 2001:db8:61::7: NA", after=mark)
    packets = lab.status()["packets"]
    assert packets.get("ns/drop", 0) >= 3, packets
    assert all(k.split("/")[0] in ("ns", "rs") for k in packets), packets
    assert lab.stop() == 0


def test_socket_mode_on_a_missing_interface_exits_naming_it(lab: Lab) -> None:
    lab.add_vm("tap1", MAC)
    proc = lab.start('packet_source = "socket"\ninterfaces = ["tap1", "tapgone"]\n', ready=False)
    assert proc.wait(20) == 1
    log = lab.log_text()
    assert "cannot open the sockets of socket mode on tapgone: No such device" in log
    assert "Traceback" not in log
    lab.daemon = None
