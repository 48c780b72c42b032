"""Run by Debian's python3 (which has python3-scapy) inside a VM namespace:
builds each packet described in the JSON file argv[1] with scapy and sends them
all on eth0. The specs come from hypothesis in test_dhcpd_malformed.py; scapy
does the layering and the checksums, the specs say what to break."""

from __future__ import annotations

import json
import sys

from scapy.all import Ether, IP, IPv6, Raw, UDP, conf, sendp  # type: ignore[import-not-found]
from scapy.layers.dhcp import BOOTP, DHCP  # type: ignore[import-not-found]
from scapy.layers.dhcp6 import DHCP6_InfoRequest, DHCP6_Solicit, DHCP6OptClientId, DUID_LL  # type: ignore[import-not-found]
from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6ND_RS  # type: ignore[import-not-found]

conf.verb = 0


def build(spec: dict, mac: str, ll: str) -> bytes:
    kind = spec["kind"]
    raw = bytes.fromhex(spec.get("raw", ""))
    if kind == "dhcp":
        bootp = BOOTP(op=spec.get("op", 1), chaddr=bytes.fromhex(mac.replace(":", "")), xid=spec.get("xid", 1))
        mtype = spec.get("mtype")
        body = bytes(bootp / DHCP(options=[("message-type", mtype), "end"])) if mtype is not None else bytes(bootp)
        if spec.get("options") is not None:
            body = bytes(bootp)[:236] + b"\x63\x82\x53\x63" + bytes.fromhex(spec["options"])
        if spec.get("cut") is not None:
            body = body[: spec["cut"]]
        pkt = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67) / Raw(body + raw)
    elif kind in ("rs", "ns"):
        icmp = ICMPv6ND_RS() if kind == "rs" else ICMPv6ND_NS(tgt=spec.get("target", "2001:db8:6::1"))
        dst = "ff02::2" if kind == "rs" else "ff02::1:ff00:1"
        layer = IPv6(src=ll, dst=dst, hlim=spec.get("hlim", 255)) / icmp / Raw(raw)
        if spec.get("bad_checksum"):
            layer[icmp.__class__].cksum = 0x1234
        pkt = Ether(src=mac) / layer
    elif kind == "dhcpv6":
        base = DHCP6_Solicit(trid=3) if spec.get("solicit") else DHCP6_InfoRequest(trid=2)
        msg = bytes(base / DHCP6OptClientId(duid=DUID_LL(lladdr=mac))) if spec.get("client_id") else bytes(base)
        if spec.get("cut") is not None:
            msg = msg[: spec["cut"]]
        pkt = Ether(src=mac) / IPv6(src=ll, dst="ff02::1:2") / UDP(sport=546, dport=547) / Raw(msg + raw)
    else:
        raise SystemExit(f"unknown kind {kind}")
    return bytes(pkt)


def main() -> None:
    specs = json.load(open(sys.argv[1]))
    mac, ll = sys.argv[2], sys.argv[3]
    frames = [Ether(build(s, mac, ll)) for s in specs]
    sendp(frames, iface="eth0")
    print(len(frames))


if __name__ == "__main__":
    main()
