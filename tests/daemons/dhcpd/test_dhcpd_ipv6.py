"""IPv6 against real clients: rdisc6 (RA with prefix, RDNSS, DNSSL, MTU; lifetime 0
when PRIVATE), ndisc6 (NA for the router and for SUBNET6 addresses), periodic RAs,
dhclient -6 -S (stateless DHCPv6) and dhclient -6 (stateful, mode dhcpv6)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
from dhcpd_lab import Lab, Vm, env_script, lab, read_env  # noqa: F401

from peers import require_program

pytestmark = pytest.mark.root

MAC = "02:00:00:00:03:01"
V6 = """
[ipv6]
mode = "{mode}"
ra_period = {period}
nameservers = ["2001:db8::53", "2001:db8::54"]
domains = ["example.org", "cloud.example"]
"""


def bind6(lab: Lab, tap: str, **extra: str) -> None:
    lab.bind(tap, MAC=MAC, HOSTNAME="vm6", SUBNET6="2001:db8:6::/64", GATEWAY6="fe80::1", MTU="1400", **extra)


def eui64(prefix: str, mac: str) -> str:
    """Modified EUI-64 (RFC 4291 appendix A), computed here independently of the daemon."""
    b = bytes.fromhex(mac.replace(":", ""))
    iid = bytes((b[0] ^ 2,)) + b[1:3] + b"\xff\xfe" + b[3:]
    return str(ipaddress.IPv6Address(ipaddress.IPv6Address(prefix).packed[:8] + iid))


def link_local(mac: str) -> str:
    return eui64("fe80::", mac)


def rdisc6(vm: Vm) -> str:
    r = vm.run(require_program("rdisc6")["rdisc6"], "-1", "-r", "3", "-w", "1000", "eth0", timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr + vm.lab.log_text()[-2000:]
    return r.stdout


def field(text: str, name: str) -> str:
    m = re.search(rf"^\s*{re.escape(name)}\s*:\s*(.+?)\s*$", text, re.M)
    assert m, f"{name!r} not in:\n{text}"
    return m.group(1)


def test_rdisc6_gets_the_ra(lab: Lab) -> None:
    bind6(lab, "tap1")
    vm = lab.add_vm("tap1", MAC)
    lab.start(V6.format(mode="slaac+dhcpv6", period=600))
    out = rdisc6(vm)
    tap_mac = lab.mac_of("tap1")
    assert field(out, "Prefix") == "2001:db8:6::/64"
    assert field(out, "Router lifetime").startswith("14400")
    assert field(out, "Stateful address conf.") == "No"
    assert field(out, "Stateful other conf.") == "Yes"  # O flag in slaac+dhcpv6
    assert field(out, "MTU").startswith("1400")
    assert re.findall(r"Recursive DNS server\s*:\s*(\S+)", out) == ["2001:db8::53", "2001:db8::54"]
    assert field(out, "DNS servers lifetime").startswith("1800")  # 3 x ra_period
    assert field(out, "DNS search list").split() == ["example.org", "cloud.example"]
    assert field(out, "Source link-layer address").lower() == tap_mac
    assert f"from {link_local(tap_mac)}" in out


def test_private_network_gets_router_lifetime_0_and_slaac_no_o_flag(lab: Lab) -> None:
    bind6(lab, "tap1", PRIVATE="1")
    vm = lab.add_vm("tap1", MAC)
    lab.start(V6.format(mode="slaac", period=600))
    out = rdisc6(vm)
    assert field(out, "Router lifetime").startswith("0 ")
    assert field(out, "Stateful other conf.") == "No"
    assert field(out, "Prefix") == "2001:db8:6::/64"


def test_ndisc6_gets_na_for_router_and_subnet(lab: Lab) -> None:
    ndisc6 = require_program("ndisc6")["ndisc6"]
    bind6(lab, "tap1")
    vm = lab.add_vm("tap1", MAC)
    lab.start(V6.format(mode="slaac", period=600))
    tap_mac = lab.mac_of("tap1")
    for target in (link_local(tap_mac), "2001:db8:6::99"):
        r = vm.run(ndisc6, "-1", "-r", "3", "-w", "1000", target, "eth0", timeout=20)
        assert r.returncode == 0, r.stdout + r.stderr + lab.log_text()[-2000:]
        assert field(r.stdout, "Target link-layer address").lower() == tap_mac
    assert "NS from tap1 for 2001:db8:6::99: NA" in lab.log_text()
    # outside SUBNET6: passed to the host, which has no such address, so no answer
    r = vm.run(ndisc6, "-1", "-r", "1", "-w", "500", "2001:db8:7::1", "eth0", timeout=20)
    assert r.returncode != 0
    assert "NS on tap1 for 2001:db8:7::1: not ours" in lab.log_text()


def test_bridged_ra_comes_from_the_indev_mac_and_periodic_ras(lab: Lab) -> None:
    br = lab.add_bridge("br6")
    bind6(lab, "tap2", INDEV=br)
    vm = lab.add_vm("tap2", MAC, bridge=br)
    # a periodic RA reaches a VM that never solicits
    listener = vm.popen(
        "/usr/bin/python3", "-c",
        "import socket;s=socket.socket(socket.AF_INET6,socket.SOCK_RAW,58);s.settimeout(10)\n"
        "while True:\n d,a=s.recvfrom(2000)\n if d[0]==134: print(a[0]); break",
        stdout=-1,
    )  # fmt: skip
    lab.procs.append(listener)
    lab.start(V6.format(mode="slaac", period=1))
    src, _ = listener.communicate(timeout=20)
    br_mac = lab.mac_of(br)
    assert src.strip().split("%")[0] == link_local(br_mac)
    out = rdisc6(vm)
    assert field(out, "Source link-layer address").lower() == br_mac
    assert lab.status()["router_advertisements"] >= 1


def dhclient6(vm: Vm, tmp: Path, *flags: str) -> dict[str, str]:
    dhclient = require_program("dhclient")["dhclient"]
    dump = tmp / "dhclient6"
    script = env_script(tmp, dump)
    r = vm.run(
        dhclient, "-6", *flags, "-1", "-v", "-sf", str(script), "-lf", str(tmp / "leases6"),
        "-pf", str(tmp / "dhclient6.pid"), "eth0", timeout=60,
    )  # fmt: skip
    got = [p for p in tmp.glob("dhclient6.*") if p.suffix in (".BOUND6", ".RENEW6", ".REBIND6")]
    assert r.returncode == 0 and got, r.stdout + r.stderr + vm.lab.log_text()[-3000:]
    return read_env(got[0])


def test_dhclient_stateless_gets_dns_and_domains(lab: Lab, tmp_path: Path) -> None:
    bind6(lab, "tap1")
    vm = lab.add_vm("tap1", MAC)
    lab.start(V6.format(mode="slaac+dhcpv6", period=600))
    env = dhclient6(vm, tmp_path, "-S")
    assert env["new_dhcp6_name_servers"] == "2001:db8::53 2001:db8::54"
    assert env["new_dhcp6_domain_search"] == "example.org. cloud.example."
    # the server DUID is DUID-LL of the INDEV (here the tap) MAC: the same on every start
    assert env["new_dhcp6_server_id"] == "0:3:0:1:" + ":".join(f"{int(x, 16):x}" for x in lab.mac_of("tap1").split(":"))


def test_dhclient_stateful_gets_its_eui64_address(lab: Lab, tmp_path: Path) -> None:
    bind6(lab, "tap1")
    vm = lab.add_vm("tap1", MAC)
    lab.start(V6.format(mode="dhcpv6", period=600))
    out = rdisc6(vm)
    assert field(out, "Stateful address conf.") == "Yes"  # M flag
    assert field(out, "Autonomous address conf.") == "No"
    env = dhclient6(vm, tmp_path)
    assert env["new_ip6_address"] == eui64("2001:db8:6::", MAC) == "2001:db8:6::ff:fe00:301"
    assert env["new_dhcp6_name_servers"] == "2001:db8::53 2001:db8::54"
    log = lab.log_text()
    assert "DHCPv6 SOLICIT from tap1 (vm6): ADVERTISE" in log and "DHCPv6 REQUEST from tap1 (vm6): REPLY" in log
