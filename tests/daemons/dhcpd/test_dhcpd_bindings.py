"""Binding rules against real clients: foreign MACs, MACSPOOF, taps without a
binding (passed to a dnsmasq behind them), bridged taps, binding files changing
under the running daemon, and the original nfdhcpd.conf read as it is."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from dhcpd_lab import REPO, Lab, lab, udhcpc, wait_for  # noqa: F401

from peers import require_program

pytestmark = pytest.mark.root

FIXTURE = REPO / "tests" / "fixtures" / "dhcpd" / "nfdhcpd.conf"
MAC = "02:00:00:00:02:01"


def binding(n: int, mac: str = MAC, **extra: str) -> dict[str, str]:
    return {"IP": f"10.0.0.{n}", "MAC": mac, "HOSTNAME": f"vm{n}", "SUBNET": "10.0.0.0/24", "GATEWAY": "10.0.0.1", **extra}


def test_foreign_mac_gets_nothing_unless_macspoof(lab: Lab, tmp_path: Path) -> None:
    require_program("busybox")
    lab.bind("tap1", **binding(21, mac="02:00:00:00:02:99"))
    vm = lab.add_vm("tap1", MAC)
    lab.start()
    assert udhcpc(vm, tmp_path, tries=2) is None
    assert "from foreign MAC 02:00:00:00:02:01 (bound 02:00:00:00:02:99): passed" in lab.log_text()
    st = lab.status()
    assert st["packets"]["dhcp/accept"] >= 2 and "dhcp/drop" not in st["packets"]
    mark = len(lab.log_text())
    lab.bind("tap1", **binding(21, mac="02:00:00:00:02:99", MACSPOOF="1"))
    lab.wait_log("binding tap1:", after=mark)
    env = udhcpc(vm, tmp_path)
    assert env is not None and env["ip"] == "10.0.0.21"


def test_unbound_tap_passes_untouched_to_dnsmasq(lab: Lab, tmp_path: Path) -> None:
    peers = require_program("busybox", "dnsmasq", "dhclient")
    dnsmasq, dhclient = peers["dnsmasq"], peers["dhclient"]
    lab.bind("tap1", **binding(22))
    bound = lab.add_vm("tap1", MAC)
    free = lab.add_vm("tap2", "02:00:00:00:02:02")
    lab.ns_run("ip", "addr", "add", "10.9.0.1/24", "dev", "tap2")
    lab.start()
    log = tmp_path / "dnsmasq.log"
    with open(log, "w") as fh:
        peer = subprocess.Popen(
            ["ip", "netns", "exec", lab.host, dnsmasq, "--keep-in-foreground", "--port=0", "--interface=tap2",
             "--bind-interfaces", "--dhcp-range=10.9.0.50,10.9.0.60,1h", "--leasefile-ro", "--dhcp-authoritative",
             "--user=root", f"--pid-file={tmp_path / 'dnsmasq.pid'}", "--log-facility=-", "--log-dhcp"],
            stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    lab.procs.append(peer)
    wait_for(lambda: "DHCP, IP range" in log.read_text(), log)
    # (busybox udhcpc never takes dnsmasq's offers over veth, with or without this
    # daemon and rules, so the free tap's client is dhclient.)
    r = free.run(
        dhclient, "-1", "-4", "-v", "-sf", "/bin/true", "-lf", str(tmp_path / "free.leases"),
        "-pf", str(tmp_path / "free.pid"), "eth0", timeout=30,
    )  # fmt: skip
    assert "DHCPACK of 10.9.0.5" in r.stderr and "from 10.9.0.1" in r.stderr, r.stderr + lab.log_text()[-2000:]
    assert "DHCP on tap2: no binding, passed" in lab.log_text()
    mine = udhcpc(bound, tmp_path)
    assert mine is not None and mine["serverid"] == "1.2.3.4" and mine["ip"] == "10.0.0.22"
    st = lab.status()
    assert st["packets"]["dhcp/accept"] >= 2 and st["packets"]["dhcp/drop"] >= 2


def test_bridged_tap_is_keyed_by_its_bridge_port(lab: Lab, tmp_path: Path) -> None:
    require_program("busybox")
    br = lab.add_bridge("br0")
    lab.bind("tap5", **binding(25, INDEV=br))
    vm = lab.add_vm("tap5", MAC, bridge=br)
    lab.start()
    env = udhcpc(vm, tmp_path)
    assert env is not None, lab.log_text()[-2000:]
    assert env["ip"] == "10.0.0.25"
    # The reply came from the bridge's MAC (INDEV), learnt by the VM's neighbour table
    # only if it unicasts; the server id and the log say the binding of the port answered.
    assert "DHCPREQUEST from tap5 (vm25): DHCPACK 10.0.0.25" in lab.log_text()


def test_bindings_follow_the_files(lab: Lab, tmp_path: Path) -> None:
    require_program("busybox")
    vm = lab.add_vm("tap3", MAC)
    lab.start()
    assert udhcpc(vm, tmp_path, tries=1) is None  # no binding yet: passed, nobody answers

    # cat > file: create, write in two steps (the daemon sees CREATE of a partial file), close
    mark = len(lab.log_text())
    path = lab.datapath / "tap3"
    with open(path, "w") as fh:
        fh.write(f"IP=10.0.0.31\nMAC={MAC}\n")
        fh.flush()
        lab.wait_log("binding tap3 not complete yet", after=mark)
        fh.write("HOSTNAME=vm31\nSUBNET=10.0.0.0/24\nGATEWAY=10.0.0.1\n")
    lab.wait_log("binding tap3: mac", after=mark)
    env = udhcpc(vm, tmp_path)
    assert env is not None and env["ip"] == "10.0.0.31"

    # changed in place
    mark = len(lab.log_text())
    lab.bind("tap3", **binding(32))
    lab.wait_log("binding tap3: mac", after=mark)
    env = udhcpc(vm, tmp_path)
    assert env is not None and env["ip"] == "10.0.0.32" and env["hostname"] == "vm32"

    # renamed into place (moved-to); dot-files are never bindings
    mark = len(lab.log_text())
    tmp = lab.datapath / ".tap3.new"
    tmp.write_text("".join(f"{k}={v}\n" for k, v in binding(33).items()))
    os.rename(tmp, path)
    lab.wait_log("binding tap3: mac", after=mark)
    env = udhcpc(vm, tmp_path)
    assert env is not None and env["ip"] == "10.0.0.33"

    # a broken file: logged, the binding dropped, the daemon carries on
    mark = len(lab.log_text())
    lab.bind("tap3", MAC="zz:00", HOSTNAME="vm34")
    lab.wait_log("ignored: MAC='zz:00'", after=mark)
    assert lab.status()["binding_errors"] == {"tap3": "MAC='zz:00': not a MAC address: 'zz:00'"}
    assert udhcpc(vm, tmp_path, tries=1) is None

    # back, then removed
    mark = len(lab.log_text())
    lab.bind("tap3", **binding(35))
    lab.wait_log("binding tap3: mac", after=mark)
    assert lab.status()["bindings"][0]["ip"] == "10.0.0.35"
    mark = len(lab.log_text())
    path.unlink()
    lab.wait_log("binding tap3 removed", after=mark)
    assert lab.status()["bindings"] == []
    assert udhcpc(vm, tmp_path, tries=1) is None
    assert lab.daemon is not None and lab.daemon.poll() is None


def test_original_config_read_as_is_and_reloaded(lab: Lab, tmp_path: Path) -> None:
    require_program("busybox")
    conf = tmp_path / "nfdhcpd.conf"
    shutil.copy(FIXTURE, conf)
    lab.bind("tap4", **binding(41))
    vm = lab.add_vm("tap4", MAC)
    # The file's datapath is /var/lib/nfdhcpd; a flag points the test's data path instead
    # (flags win over both files).
    lab.start("", "--nfdhcpd-conf", str(conf), "--general.datapath", str(lab.datapath))
    env = udhcpc(vm, tmp_path)
    assert env is not None, lab.log_text()[-2000:]
    assert env["dns"].split() == ["194.177.210.210", "194.177.210.211"]
    assert env["domain"] == "synnefo.example.org"
    assert env["lease"] == "604800" and env["serverid"] == "1.2.3.4"
    assert "user = nobody ignored" in lab.log_text()

    conf.write_text(conf.read_text().replace("194.177.210.210, 194.177.210.211", "192.0.2.1").replace("server_ip = 1.2.3.4", "server_ip = 10.0.0.1"))
    lab.reload()
    env = udhcpc(vm, tmp_path)
    assert env is not None and env["dns"] == "192.0.2.1" and env["serverid"] == "10.0.0.1"

    # a broken edit is refused on SIGHUP and the running configuration kept
    conf.write_text(conf.read_text().replace("lease_lifetime = 604800", "lease_lifetime = a week"))
    mark = len(lab.log_text())
    lab.signal(signal.SIGHUP)
    lab.wait_log("reload failed, keeping the running configuration", after=mark)
    env = udhcpc(vm, tmp_path)
    assert env is not None and env["dns"] == "192.0.2.1"
    assert lab.stop() == 0
