"""Settings of nefeli-dhcpd: the original nfdhcpd's knobs in the same three
sections (``[general]``, ``[dhcp]``, ``[ipv6]``), plus what nefeli adds.

``--nfdhcpd-conf FILE`` reads an existing /etc/nfdhcpd/nfdhcpd.conf (see
nfdhcpd_conf.py); its values sit between the TOML file and the flags.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from daemons.runtime import check_address, setting

IPV6_MODES = ("auto", "slaac", "slaac+dhcpv6", "dhcpv6")


def _listen(value: str) -> None:
    if value:
        check_address(value)


def _ipv4_list(values: list[str]) -> None:
    for v in values:
        ipaddress.IPv4Address(v)


def _ipv6_list(values: list[str]) -> None:
    for v in values:
        ipaddress.IPv6Address(v)


def _ipv4(value: str) -> None:
    ipaddress.IPv4Address(value)


def parse_route(text: str) -> tuple[ipaddress.IPv4Network, str]:
    """``"NET/LEN via ROUTER"``; ROUTER is an address or ``gateway`` (the binding's GATEWAY)."""
    parts = text.split()
    if len(parts) != 3 or parts[1] != "via":
        raise ValueError(f"route {text!r}: expected 'NET/LEN via ROUTER'")
    net = ipaddress.IPv4Network(parts[0])
    if parts[2] != "gateway":
        ipaddress.IPv4Address(parts[2])
    return net, parts[2]


def _routes(values: list[str]) -> None:
    for v in values:
        parse_route(v)


def _domains(values: list[str]) -> None:
    from net.dns_names import check_name

    for v in values:
        check_name(v)


@dataclass(frozen=True)
class GeneralSettings:
    datapath: Path = setting(
        Path("/var/lib/nfdhcpd"), help="directory of the binding files, one per interface", metavar="DIR"
    )
    pidfile: str = setting("", help="write the process id here (empty: none; systemd does not need it)")
    logdir: str = setting("", help="accepted for nfdhcpd.conf compatibility; logs go to stderr")
    user: str = setting("", help="accepted for nfdhcpd.conf compatibility; the unit runs with two capabilities instead")


@dataclass(frozen=True)
class DhcpSettings:
    enable_dhcp: bool = setting(True, help="answer DHCPv4")
    lease_lifetime: int = setting(604800, help="lease time (s), option 51", min=60, max=0xFFFFFFFF)
    lease_renewal: int = setting(600, help="renewal time T1 (s), option 58", min=1, max=0xFFFFFFFF)
    server_ip: str = setting("1.2.3.4", help="server identifier (option 54) and source address", validate=_ipv4)
    server_on_link: bool = setting(
        False, help="use the binding's GATEWAY as server identifier, so renewals are unicast on the link"
    )
    dhcp_queue: int = setting(42, help="NFQUEUE number of DHCP requests (UDP 67)", min=0, max=65535, reloadable=False)
    nameservers: list[str] = setting([], help="DNS servers, option 6", validate=_ipv4_list)
    domain: str = setting("", help="domain name, option 15 (empty: the part of HOSTNAME after the first dot)")
    search: list[str] = setting(
        [], help="domain search list, option 119 (empty: the domain alone)", validate=_domains
    )
    routes: list[str] = setting(
        [],
        help="classless static routes, option 121, each 'NET/LEN via ROUTER' (ROUTER may be 'gateway'); "
        "the default route via GATEWAY is added to them",
        validate=_routes,
    )


@dataclass(frozen=True)
class Ipv6Settings:
    enable_ipv6: bool = setting(True, help="send RAs, answer RS, NS and DHCPv6")
    mode: Literal["auto", "slaac", "slaac+dhcpv6", "dhcpv6"] = setting(
        "auto",
        help="auto/slaac: SLAAC, no RA flags; slaac+dhcpv6: SLAAC and O flag; dhcpv6: M flag, stateful "
        "DHCPv6 gives each VM its EUI-64 address",
    )
    ra_period: float = setting(600.0, help="seconds between periodic RAs", min=1.0, max=86400.0)
    rs_queue: int = setting(43, help="NFQUEUE number of router solicitations", min=0, max=65535, reloadable=False)
    ns_queue: int = setting(44, help="NFQUEUE number of neighbour solicitations", min=0, max=65535, reloadable=False)
    dhcpv6_queue: int = setting(45, help="NFQUEUE number of DHCPv6 (UDP 547)", min=0, max=65535, reloadable=False)
    nameservers: list[str] = setting([], help="DNS servers for RDNSS and DHCPv6 option 23", validate=_ipv6_list)
    domains: list[str] = setting([], help="search domains for DNSSL and DHCPv6 option 24", validate=_domains)


@dataclass(frozen=True)
class DhcpdConfig:
    general: GeneralSettings = setting(default_factory=GeneralSettings)
    dhcp: DhcpSettings = setting(default_factory=DhcpSettings)
    ipv6: Ipv6Settings = setting(default_factory=Ipv6Settings)
    nfdhcpd_conf: Path | None = setting(
        None, help="read this nfdhcpd.conf (INI, unchanged) on start and on SIGHUP", metavar="FILE"
    )
    packet_source: Literal["nfqueue", "socket"] = setting(
        "nfqueue",
        help="nfqueue: packets from netfilter queues; socket: UDP 67/547 and ICMPv6 sockets on 'interfaces'",
        reloadable=False,
    )
    interfaces: list[str] = setting([], help="interfaces served in socket mode", reloadable=False)
    on_error: Literal["accept", "drop"] = setting(
        "accept", help="verdict for a packet that cannot be read or answered (fail-open by default)"
    )
    queue_maxlen: int = setting(4096, help="packets the kernel holds per queue", min=1, max=1 << 20, reloadable=False)
    metrics_listen: str = setting(
        "127.0.0.1:9134",
        help="address of /metrics and /status (HOST:PORT, [V6]:PORT or unix:PATH; empty: off), "
        "unless systemd passes a socket named 'metrics'",
        validate=_listen,
        reloadable=False,
        metavar="HOST:PORT",
    )
