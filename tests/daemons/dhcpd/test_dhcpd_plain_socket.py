"""Socket mode (no netfilter): UDP 67/547 and ICMPv6 on named interfaces answer
udhcpc, rdisc6 and dhclient -6 -S; a tap that is not named is not served."""

from __future__ import annotations

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
