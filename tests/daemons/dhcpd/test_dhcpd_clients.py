"""Real DHCPv4 clients against nefeli-dhcpd through NFQUEUE: busybox udhcpc, ISC
dhclient and dhcpcd each get the bound address, mask, router, DNS, hostname,
domain, MTU and classless routes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dhcpd_lab import Lab, env_script, lab, read_env, udhcpc  # noqa: F401

from peers import require_program

pytestmark = pytest.mark.root

CONFIG = """
[dhcp]
nameservers = ["192.0.2.53", "192.0.2.54"]
domain = "example.org"
search = ["example.org", "cloud.example"]
routes = ["192.168.50.0/24 via 10.0.0.254"]
"""


def bind_vm(lab: Lab, tap: str, n: int) -> str:
    mac = f"02:00:00:00:01:{n:02x}"
    lab.bind(
        tap,
        IP=f"10.0.0.{n}",
        MAC=mac,
        HOSTNAME=f"vm{n}",
        SUBNET="10.0.0.0/24",
        GATEWAY="10.0.0.1",
        MTU="1450",
    )
    return mac


def test_udhcpc_gets_everything(lab: Lab, tmp_path: Path) -> None:
    require_program("busybox")
    mac = bind_vm(lab, "tap1", 11)
    vm = lab.add_vm("tap1", mac)
    lab.start(CONFIG)
    env = udhcpc(vm, tmp_path)
    assert env is not None, lab.log_text()[-2000:]
    assert env["ip"] == "10.0.0.11"
    assert env["subnet"] == "255.255.255.0"
    assert env["router"] == "10.0.0.1"
    assert env["dns"].split() == ["192.0.2.53", "192.0.2.54"]
    assert env["hostname"] == "vm11"
    assert env["domain"] == "example.org"
    assert env["mtu"] == "1450"
    assert env["search"].split() == ["example.org", "cloud.example"]
    assert env["staticroutes"].split() == ["192.168.50.0/24", "10.0.0.254", "0.0.0.0/0", "10.0.0.1"]
    assert env["serverid"] == "1.2.3.4"
    assert env["lease"] == "604800"
    st = lab.status()
    assert st["queues"]["42"]["drop"] == 2 and st["queues"]["42"]["replies"] == 2
    assert st["bindings"][0]["tap"] == "tap1" and st["bindings"][0]["mtu"] == 1450
    text = lab.status_text()
    assert "tap1           02:00:00:00:01:0b  10.0.0.11       vm11" in text
    assert "42: drop=2  received=2  replies=2" in text
    metrics = lab.metrics()
    assert 'nefeli_dhcpd_packets_total{kind="dhcp",verdict="drop"} 2.0' in metrics
    assert 'nefeli_dhcpd_replies_total{kind="dhcp"} 2.0' in metrics
    assert "nefeli_dhcpd_bindings 1.0" in metrics


DHCLIENT_CONF = """
option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, domain-name-servers, host-name,
        domain-name, domain-search, interface-mtu, rfc3442-classless-static-routes;
"""


def test_dhclient_gets_everything(lab: Lab, tmp_path: Path) -> None:
    dhclient = require_program("dhclient")["dhclient"]
    mac = bind_vm(lab, "tap2", 12)
    vm = lab.add_vm("tap2", mac)
    lab.start(CONFIG)
    conf = tmp_path / "dhclient.conf"
    conf.write_text(DHCLIENT_CONF)
    dump = tmp_path / "dhclient"
    script = env_script(tmp_path, dump)
    r = vm.run(
        dhclient, "-1", "-4", "-v", "-cf", str(conf), "-sf", str(script),
        "-lf", str(tmp_path / "leases"), "-pf", str(tmp_path / "dhclient.pid"), "eth0",
        timeout=60,
    )  # fmt: skip
    bound = tmp_path / "dhclient.BOUND"
    assert r.returncode == 0 and bound.exists(), r.stderr[-2000:] + lab.log_text()[-2000:]
    env = read_env(bound)
    _kill_pidfile(tmp_path / "dhclient.pid")
    assert env["new_ip_address"] == "10.0.0.12"
    assert env["new_subnet_mask"] == "255.255.255.0"
    assert env["new_routers"] == "10.0.0.1"
    assert env["new_domain_name_servers"] == "192.0.2.53 192.0.2.54"
    assert env["new_host_name"] == "vm12"
    assert env["new_domain_name"] == "example.org"
    assert env["new_domain_search"] == "example.org. cloud.example."
    assert env["new_interface_mtu"] == "1450"
    # RFC 3442 bytes as dhclient prints them: width, significant octets, router
    assert env["new_rfc3442_classless_static_routes"] == "24 192 168 50 10 0 0 254 0 10 0 0 1"


def test_dhcpcd_gets_everything(lab: Lab, tmp_path: Path) -> None:
    dhcpcd = require_program("dhcpcd")["dhcpcd"]
    mac = bind_vm(lab, "tap3", 13)
    vm = lab.add_vm("tap3", mac)
    lab.start(CONFIG)
    conf = tmp_path / "dhcpcd.conf"
    conf.write_text("option domain_search, classless_static_routes, interface_mtu\n")
    dump = tmp_path / "dhcpcd"
    script = env_script(tmp_path, dump)
    # -1: exit once bound; -A: no ARP probe of the offered address; -c: our hook script.
    # (-T, test mode, crashes in dhcpcd 9.4.1 after the offer, so a real run it is.)
    # dhcpcd keeps leases in /var/lib/dhcpcd, whatever its options: a private tmpfs on
    # /var/lib (in a mount namespace of its own) keeps the test from reading an earlier
    # lease and from leaving one behind.
    cmd = (
        "mount -t tmpfs nefeli-test /var/lib && mkdir /var/lib/dhcpcd && "
        f"exec {dhcpcd} -B -1 -4 -A -f {conf} -c {script} -t 20 eth0"
    )
    r = vm.run("unshare", "--mount", "--propagation", "private", "sh", "-c", cmd, timeout=60)
    bound = tmp_path / "dhcpcd.BOUND"
    assert bound.exists(), r.stdout + r.stderr + lab.log_text()[-2000:]
    lines = {k: v.strip("'") for k, v in read_env(bound).items()}
    assert lines["new_ip_address"] == "10.0.0.13"
    assert lines["new_subnet_mask"] == "255.255.255.0"
    assert lines["new_domain_name_servers"] == "192.0.2.53 192.0.2.54"
    assert lines["new_host_name"] == "vm13"
    assert lines["new_domain_name"] == "example.org"
    assert lines["new_domain_search"] == "example.org cloud.example"
    assert lines["new_interface_mtu"] == "1450"
    # With option 121, dhcpcd ignores option 3 (RFC 3442) and takes the default route from 121.
    assert lines["new_classless_static_routes"] == "192.168.50.0/24 10.0.0.254 0.0.0.0/0 10.0.0.1"


def _kill_pidfile(path: Path) -> None:
    try:
        os.kill(int(path.read_text().strip()), 9)
    except (OSError, ValueError):
        pass
