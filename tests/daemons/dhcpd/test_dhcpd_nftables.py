"""docs/dhcpd/nftables.nft, as shipped, in a fresh network namespace.

This kernel has no nft_queue (CONFIG_NFT_QUEUE is not set): nft parses and
evaluates a `queue` statement in userspace, but the kernel knows no expression
of that name and refuses each rule holding one with ENOENT ("Could not process
rule: No such file or directory"), so the rules cannot be loaded here as they are.
(The iptables rules the other tests load use the xtables NFQUEUE target, which
this kernel has.) What can be proved here is proved:

* nft reads the whole file, and with `--check` the kernel is asked about every
  rule: it refuses exactly the `queue` statements (each error's columns are the
  word `queue`) and nothing else. On a kernel with nft_queue the file loads.
* The same file with each `queue num N bypass` replaced by `counter comment
  "queue N"` loads, and frames sent from the VM's side of a veth pair named tap*
  bump exactly the right rule's counter: UDP 67 → 42, RS → 43, NS → 44, UDP 547 →
  45; the same frames from an interface not named tap*, and other UDP ports and
  ICMPv6 types from the tap, bump none.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from ipaddress import IPv6Address
from pathlib import Path

import pytest

from net import icmpv6_nd
from net.ip_frames import (
    BROADCAST_MAC,
    ETH_P_IP,
    ETH_P_IPV6,
    IPPROTO_ICMPV6,
    IPPROTO_UDP,
    ethernet,
    ipv4_packet,
    ipv6_multicast_mac,
    ipv6_packet,
    pseudo_header_v4,
    pseudo_header_v6,
    udp_datagram,
)
from peers import require_program, require_root

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "docs" / "dhcpd" / "nftables.nft"
QUEUE = re.compile(r"queue num (\d+) bypass")
VM_MAC = bytes.fromhex("020000000901")
SEND = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n"
    "for line in sys.stdin:\n"
    "    ifname,frame=line.split()\n"
    "    s.sendto(bytes.fromhex(frame),(ifname,0))\n"
)


def sh(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=30, input=input)


class Namespaces:
    """A host namespace with tap7 and vnet7 (veth ends) whose peers, eth0 and eth1,
    sit in a VM namespace with IPv6 off, so the VM's kernel sends no RS, NS or MLD
    of its own and only the frames the test sends arrive."""

    def __init__(self) -> None:
        tag = f"nft{os.getpid() % 100000}"
        self.host, self.vm = f"{tag}h", f"{tag}v"
        sh("ip", "netns", "add", self.host)
        sh("ip", "netns", "add", self.vm)
        self.vm_run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        self.host_run("ip", "link", "set", "lo", "up")
        for host_end, vm_end in (("tap7", "eth0"), ("vnet7", "eth1")):
            sh("ip", "link", "add", host_end, "netns", self.host, "type", "veth", "peer", "name", vm_end, "netns", self.vm)
            self.vm_run("ip", "link", "set", vm_end, "up")
            self.host_run("ip", "link", "set", host_end, "up")

    def host_run(self, *cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.host, *cmd, check=check, input=input)

    def vm_run(self, *cmd: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.vm, *cmd, input=input)

    def close(self) -> None:
        sh("ip", "netns", "del", self.vm, check=False)
        sh("ip", "netns", "del", self.host, check=False)


@pytest.fixture
def netns() -> Iterator[Namespaces]:
    require_root("network namespaces and nftables")
    require_program("ip", "nft", "sysctl")
    ns = Namespaces()
    try:
        yield ns
    finally:
        ns.close()


def test_the_shipped_file_is_refused_only_for_its_queue_statements(netns: Namespaces) -> None:
    lines = RULES.read_text().splitlines()
    r = netns.host_run("nft", "--check", "-f", str(RULES), check=False)
    if r.returncode == 0:  # a kernel with nft_queue: the file is good as it is
        assert r.stderr == ""
        return
    errors = []
    for line in r.stderr.splitlines():
        m = re.fullmatch(rf"{re.escape(str(RULES))}:(\d+):(\d+)-(\d+): Error: (.*)", line)
        if m is None:
            # nft echoes the rule's line and a caret line under the spot
            assert line.strip() in {ln.strip() for ln in lines} or set(line.strip()) <= {"^"}, line
            continue
        n, first, last, message = int(m[1]), int(m[2]), int(m[3]), m[4]
        errors.append(n)
        assert message == "Could not process rule: No such file or directory", line
        assert lines[n - 1][first - 1 : last] == "queue", line
    assert errors == [i + 1 for i, ln in enumerate(lines) if QUEUE.search(ln)], r.stderr
    assert len(errors) == 4
    # nothing got loaded: the check changed nothing
    assert netns.host_run("nft", "list", "ruleset").stdout == ""


def frames() -> dict[str, bytes]:
    """One of each kind, built with the codecs in net/ (checksums and all)."""
    v4_src, v4_dst = bytes(4), b"\xff" * 4
    ll = IPv6Address("fe80::ff:fe00:901")

    def udp4(dport: int) -> bytes:
        body = b"\x01" + bytes(299)
        udp = udp_datagram(68, dport, body, pseudo_header_v4(v4_src, v4_dst, IPPROTO_UDP, 8 + len(body)))
        return ethernet(BROADCAST_MAC, VM_MAC, ETH_P_IP, ipv4_packet(v4_src, v4_dst, IPPROTO_UDP, udp))

    def v6(dst: IPv6Address, proto: int, payload: bytes, hop_limit: int = 255) -> bytes:
        packet = ipv6_packet(ll.packed, dst.packed, proto, payload, hop_limit)
        return ethernet(ipv6_multicast_mac(dst.packed), VM_MAC, ETH_P_IPV6, packet)

    def udp6(dport: int) -> bytes:
        dst = IPv6Address("ff02::1:2")
        body = b"\x0b\x00\x00\x01"
        return v6(dst, IPPROTO_UDP, udp_datagram(546, dport, body, pseudo_header_v6(ll.packed, dst.packed, IPPROTO_UDP, 8 + len(body))), 1)

    def nd(msg: icmpv6_nd.NdMessage, dst: IPv6Address) -> bytes:
        return v6(dst, IPPROTO_ICMPV6, icmpv6_nd.encode(msg, ll, dst))

    target = IPv6Address("2001:db8:9::1")
    return {
        "dhcp": udp4(67),
        "rs": nd(icmpv6_nd.RouterSolicitation(), IPv6Address("ff02::2")),
        "ns": nd(icmpv6_nd.NeighborSolicitation(target), icmpv6_nd.solicited_node(target)),
        "dhcpv6": udp6(547),
        # none of the four
        "udp68": udp4(68),
        "udp546": udp6(546),
        "ra": nd(icmpv6_nd.RouterAdvertisement(0), IPv6Address("ff02::1")),
        "na": nd(icmpv6_nd.NeighborAdvertisement(target, override=True), IPv6Address("ff02::1")),
    }


def counters(ns: Namespaces) -> dict[int, int]:
    doc = json.loads(ns.host_run("nft", "-j", "list", "chain", "inet", "nefeli_dhcpd", "prerouting").stdout)
    out = {}
    for item in doc["nftables"]:
        rule = item.get("rule")
        if rule is None:
            continue
        (counter,) = [e["counter"] for e in rule["expr"] if "counter" in e]
        out[int(rule["comment"].removeprefix("queue "))] = counter["packets"]
    return out


def test_the_rules_with_counters_for_queues_match_the_right_packets(netns: Namespaces) -> None:
    text = RULES.read_text()
    assert len(QUEUE.findall(text)) == 4
    counted = QUEUE.sub(r'counter comment "queue \1"', text)
    netns.host_run("nft", "-f", "-", input=counted)
    assert counters(netns) == {42: 0, 43: 0, 44: 0, 45: 0}
    # distinct numbers per kind, so a packet counted by the wrong rule shows
    sent = Counter({"dhcp": 3, "rs": 2, "ns": 5, "dhcpv6": 4, "udp68": 2, "udp546": 2, "ra": 2, "na": 3})
    built = frames()
    lines = [f"eth0 {built[kind].hex()}" for kind, n in sent.items() for _ in range(n)]
    lines += [f"eth1 {built[kind].hex()}" for kind in sent for _ in range(2)]  # vnet7: not tap*
    netns.vm_run(sys.executable, "-c", SEND, input="\n".join(lines) + "\n")
    want = {42: sent["dhcp"], 43: sent["rs"], 44: sent["ns"], 45: sent["dhcpv6"]}
    # a veth hands frames to the receiving side's backlog: wait until it has been
    # worked through (the counters stop changing at their final values)
    deadline = time.monotonic() + 10
    while (got := counters(netns)) != want and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got == want
    # the chain as loaded: the mangle priority of prerouting, policy accept
    chain = next(i["chain"] for i in json.loads(netns.host_run("nft", "-j", "list", "ruleset").stdout)["nftables"] if "chain" in i)
    assert (chain["type"], chain["hook"], chain["prio"], chain["policy"]) == ("filter", "prerouting", -150, "accept")
