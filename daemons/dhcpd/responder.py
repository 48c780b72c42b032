"""What to answer: a request from a bound interface in, reply frames and a verdict out.

Pure functions over the codecs in ``net/``: no sockets here, so every rule of the
original (and what nefeli adds) is tested byte for byte. The daemon's shell finds
the binding, calls one of ``answer_*`` and sends what comes back.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address

from daemons.dhcpd.bindings import Binding
from daemons.dhcpd.config import DhcpdConfig, parse_route
from net import dhcpv4, dhcpv6, icmpv6_nd
from net.dhcpv4 import DhcpMessage, MessageType, Opt
from net.dhcpv6 import DhcpV6Message, IaAddress, IaNa, MsgType, Opt6, Status
from net.icmpv6_nd import (
    ALL_NODES,
    Dnssl,
    LinkLayerAddress,
    Mtu,
    NeighborAdvertisement,
    NeighborSolicitation,
    PrefixInfo,
    Rdnss,
    RouterAdvertisement,
    link_local_from_mac,
)
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
from net.nfqueue import NF_ACCEPT, NF_DROP

__all__ = [
    "ROUTER_LIFETIME",
    "INFINITE",
    "Outcome",
    "Reply",
    "answer_dhcpv4",
    "answer_dhcpv6",
    "answer_ns",
    "answer_rs",
    "router_advertisement",
    "server_duid",
]

ROUTER_LIFETIME = 14400
INFINITE = 0xFFFFFFFF
BROADCAST_V4 = IPv4Address("255.255.255.255")
NO_ADDRESS = IPv4Address(0)


@dataclass(frozen=True, slots=True)
class Reply:
    interface: str
    frame: bytes
    what: str


@dataclass(slots=True)
class Outcome:
    """The verdict for the queued packet, the frames to send, and one log line."""

    verdict: int
    replies: list[Reply] = field(default_factory=list)
    note: str = ""
    level: int = logging.DEBUG


def accept(note: str, level: int = logging.DEBUG) -> Outcome:
    return Outcome(NF_ACCEPT, [], note, level)


def drop(note: str, *replies: Reply) -> Outcome:
    return Outcome(NF_DROP, list(replies), note, logging.INFO)


# ------------------------------------------------------------------ DHCPv4


def _domain(cfg: DhcpdConfig, b: Binding) -> str:
    if cfg.dhcp.domain:
        return cfg.dhcp.domain
    _, dot, rest = b.hostname.partition(".")
    return rest if dot else ""


def _server_id(cfg: DhcpdConfig, b: Binding) -> IPv4Address:
    if cfg.dhcp.server_on_link and b.gateway is not None:
        return b.gateway
    return _server_ip(cfg.dhcp.server_ip)


@functools.lru_cache(maxsize=64)
def _server_ip(text: str) -> IPv4Address:
    return IPv4Address(text)


def _classless_routes(cfg: DhcpdConfig, b: Binding) -> list[tuple[IPv4Network, IPv4Address]]:
    routes: list[tuple[IPv4Network, IPv4Address]] = []
    for text in cfg.dhcp.routes:
        net, via = parse_route(text)
        if via == "gateway":
            if b.gateway is None or b.private:
                continue
            routes.append((net, b.gateway))
        else:
            routes.append((net, IPv4Address(via)))
    if routes and b.gateway is not None and not b.private:
        # RFC 3442: a client that gets option 121 ignores option 3, so the
        # default route must be among the classless ones.
        if not any(n.prefixlen == 0 for n, _ in routes):
            routes.append((IPv4Network("0.0.0.0/0"), b.gateway))
    return routes


def _address_options(cfg: DhcpdConfig, b: Binding, lease: bool) -> dict[int, bytes]:
    o: dict[int, bytes] = {}
    assert b.ip is not None
    subnet = b.subnet or IPv4Network((b.ip, 32))
    if lease:
        lifetime = cfg.dhcp.lease_lifetime
        renewal = min(cfg.dhcp.lease_renewal, lifetime)
        rebinding = max(renewal, min(lifetime, lifetime * 7 // 8))
        o[Opt.LEASE_TIME] = dhcpv4.u32(lifetime)
        o[Opt.RENEWAL_TIME] = dhcpv4.u32(renewal)
        o[Opt.REBINDING_TIME] = dhcpv4.u32(rebinding)
    o[Opt.SUBNET_MASK] = subnet.netmask.packed
    o[Opt.BROADCAST] = subnet.broadcast_address.packed
    if b.gateway is not None and not b.private:
        o[Opt.ROUTER] = b.gateway.packed
    return o


def _info_options(cfg: DhcpdConfig, b: Binding) -> dict[int, bytes]:
    o: dict[int, bytes] = {}
    if cfg.dhcp.nameservers:
        o[Opt.DNS] = dhcpv4.ip_list(cfg.dhcp.nameservers)
    o[Opt.HOSTNAME] = b.hostname.encode("utf-8")
    domain = _domain(cfg, b)
    if domain:
        o[Opt.DOMAIN_NAME] = domain.encode("utf-8")
    if b.mtu is not None:
        o[Opt.MTU] = dhcpv4.u16(b.mtu)
    search = list(cfg.dhcp.search) or ([domain] if domain else [])
    if search:
        o[Opt.DOMAIN_SEARCH] = dhcpv4.encode_domain_search(search)
    routes = _classless_routes(cfg, b)
    if routes:
        o[Opt.CLASSLESS_ROUTES] = dhcpv4.encode_classless_routes(routes)
    return o


#: The options of a binding depend on the binding and the config only: built once,
#: not per packet (a reload replaces the config object, so stale entries never match).
#: Keyed by identity (hashing a binding costs more than building a few options);
#: the entry keeps both objects, so a reused id never matches a stale entry.
_OPTIONS_CACHE: dict[tuple[int, int, bool], tuple[DhcpdConfig, Binding, dict[int, bytes]]] = {}
_OPTIONS_CACHE_MAX = 4096


def _binding_options(cfg: DhcpdConfig, b: Binding, lease: bool) -> dict[int, bytes]:
    key = (id(cfg), id(b), lease)
    hit = _OPTIONS_CACHE.get(key)
    if hit is not None and hit[0] is cfg and hit[1] is b:
        return hit[2]
    opts = _address_options(cfg, b, lease)
    opts.update(_info_options(cfg, b))
    if len(_OPTIONS_CACHE) >= _OPTIONS_CACHE_MAX:
        _OPTIONS_CACHE.clear()
    _OPTIONS_CACHE[key] = (cfg, b, opts)
    return opts


def _v4_frame(
    b: Binding, src_mac: bytes, server: IPv4Address, req: DhcpMessage, reply: DhcpMessage, relay_mac: bytes | None
) -> bytes:
    """RFC 2131 §4.1 destination rules, then the whole frame."""
    nak = reply.options.get(Opt.MESSAGE_TYPE) == bytes((MessageType.NAK,))
    if req.giaddr != NO_ADDRESS:
        # A relay on the link: back to it, at the MAC the request came from.
        dst_ip, dport, dst_mac = req.giaddr, 67, relay_mac or b.mac
    elif nak:
        dst_ip, dport, dst_mac = BROADCAST_V4, 68, BROADCAST_MAC
    elif req.ciaddr != NO_ADDRESS:
        dst_ip, dport, dst_mac = req.ciaddr, 68, b.mac
    elif req.broadcast:
        dst_ip, dport, dst_mac = BROADCAST_V4, 68, BROADCAST_MAC
    else:
        dst_ip, dport, dst_mac = reply.yiaddr, 68, b.mac
    payload = dhcpv4.encode(reply, req.max_message_size)
    udp = udp_datagram(67, dport, payload, pseudo_header_v4(server.packed, dst_ip.packed, IPPROTO_UDP, 8 + len(payload)))
    return ethernet(dst_mac, src_mac, ETH_P_IP, ipv4_packet(server.packed, dst_ip.packed, IPPROTO_UDP, udp))


def answer_dhcpv4(cfg: DhcpdConfig, b: Binding, req: DhcpMessage, src_mac: bytes, frame_src: bytes | None = None) -> Outcome:
    """DISCOVER → OFFER, REQUEST → ACK or NAK, INFORM → ACK, RELEASE/DECLINE logged."""
    mtype = req.message_type
    name = MessageType.NAMES.get(mtype or 0, f"type {mtype}")
    who = f"{b.tap} ({b.hostname})"
    if req.op != dhcpv4.BOOTREQUEST:
        return drop(f"BOOTREPLY from {who} dropped")
    if mtype is None:
        return drop(f"BOOTP request without a DHCP message type from {who} dropped")
    if b.ip is None:
        return accept(f"DHCP{name} on {who}: binding has no IP, not answered")
    server = _server_id(cfg, b)
    if mtype in (MessageType.RELEASE, MessageType.DECLINE):
        return drop(f"DHCP{name} from {who} for {req.ciaddr if mtype == MessageType.RELEASE else req.requested_ip}")
    if mtype not in (MessageType.DISCOVER, MessageType.REQUEST, MessageType.INFORM):
        return drop(f"DHCP{name} from {who} dropped (not a client message)")
    reply = DhcpMessage(
        op=dhcpv4.BOOTREPLY,
        xid=req.xid,
        chaddr=req.chaddr,
        htype=req.htype,
        hlen=req.hlen,
        flags=req.flags,
        giaddr=req.giaddr,
    )
    opts: dict[int, bytes] = {}
    if mtype == MessageType.REQUEST:
        sid = req.server_id
        if sid is not None and sid != server:
            return drop(f"DHCPREQUEST from {who} for server {sid}, not this one: not answered")
        requested = req.requested_ip or req.ciaddr
        if requested != b.ip:
            opts[Opt.MESSAGE_TYPE] = bytes((MessageType.NAK,))
            opts[Opt.SERVER_ID] = server.packed
            opts[Opt.MESSAGE] = f"address {requested} is not bound to this interface".encode()
            reply.options = opts
            frame = _v4_frame(b, src_mac, server, req, reply, frame_src)
            return drop(f"DHCPNAK to {who}: requested {requested}, bound {b.ip}", Reply(b.tap, frame, "DHCPNAK"))
        opts[Opt.MESSAGE_TYPE] = bytes((MessageType.ACK,))
        reply.yiaddr = b.ip
        reply.ciaddr = req.ciaddr
        answer = "DHCPACK"
    elif mtype == MessageType.DISCOVER:
        opts[Opt.MESSAGE_TYPE] = bytes((MessageType.OFFER,))
        reply.yiaddr = b.ip
        answer = "DHCPOFFER"
    else:
        opts[Opt.MESSAGE_TYPE] = bytes((MessageType.ACK,))
        reply.ciaddr = req.ciaddr
        answer = "DHCPACK"
    opts[Opt.SERVER_ID] = server.packed
    # RFC 2131 §4.3.5: no lease time in the answer to an INFORM.
    opts.update(_binding_options(cfg, b, lease=mtype != MessageType.INFORM))
    reply.options = opts
    frame = _v4_frame(b, src_mac, server, req, reply, frame_src)
    what = f"{answer} {b.ip if mtype != MessageType.INFORM else 'info'}"
    return drop(f"DHCP{name} from {who}: {what}", Reply(b.tap, frame, what))


# ------------------------------------------------------------ RA, NS and NA


def _ra_flags(cfg: DhcpdConfig) -> tuple[bool, bool]:
    mode = cfg.ipv6.mode
    return mode == "dhcpv6", mode == "slaac+dhcpv6"


def router_advertisement(
    cfg: DhcpdConfig, b: Binding, src_mac: bytes, dst: IPv6Address = ALL_NODES, dst_mac: bytes | None = None
) -> Reply | None:
    """The RA for one binding (None when it has no SUBNET6)."""
    if b.subnet6 is None:
        return None
    managed, other = _ra_flags(cfg)
    life = int(cfg.ipv6.ra_period * 3)
    opts: list[icmpv6_nd.NdOption] = [
        LinkLayerAddress(1, src_mac),
        PrefixInfo(b.subnet6, on_link=True, autonomous=not managed, valid=INFINITE, preferred=INFINITE),
    ]
    if b.mtu is not None:
        opts.append(Mtu(b.mtu))
    if cfg.ipv6.nameservers:
        opts.append(Rdnss(life, tuple(IPv6Address(a) for a in cfg.ipv6.nameservers)))
    if cfg.ipv6.domains:
        opts.append(Dnssl(life, tuple(cfg.ipv6.domains)))
    ra = RouterAdvertisement(0 if b.private else ROUTER_LIFETIME, managed, other, options=tuple(opts))
    src = link_local_from_mac(src_mac)
    body = icmpv6_nd.encode(ra, src, dst)
    mac = dst_mac if dst_mac is not None else ipv6_multicast_mac(dst.packed)
    frame = ethernet(mac, src_mac, ETH_P_IPV6, ipv6_packet(src.packed, dst.packed, IPPROTO_ICMPV6, body))
    return Reply(b.tap, frame, f"RA {b.subnet6}{' (private)' if b.private else ''}")


def answer_rs(cfg: DhcpdConfig, b: Binding, src: IPv6Address, client_mac: bytes, src_mac: bytes) -> Outcome:
    if b.subnet6 is None:
        return accept(f"RS on {b.tap}: binding has no SUBNET6")
    if src.is_unspecified:
        ra = router_advertisement(cfg, b, src_mac)
    else:
        ra = router_advertisement(cfg, b, src_mac, src, client_mac)
    assert ra is not None
    return drop(f"RS from {b.tap} ({b.hostname}): {ra.what}", ra)


def answer_ns(
    cfg: DhcpdConfig, b: Binding, ns: NeighborSolicitation, src: IPv6Address, client_mac: bytes, src_mac: bytes
) -> Outcome:
    """NA for targets in SUBNET6 or the router's link-local; everything else passes."""
    router_ll = link_local_from_mac(src_mac)
    target = ns.target
    in_subnet = b.subnet6 is not None and target in b.subnet6
    if not (in_subnet or target == router_ll):
        return accept(f"NS on {b.tap} for {target}: not ours")
    if src.is_unspecified:
        # Duplicate address detection: answering would make the VM give up its address.
        return accept(f"DAD NS on {b.tap} for {target}: passed")
    if target == b.address6:
        return accept(f"NS on {b.tap} for the VM's own address {target}: passed")
    na = NeighborAdvertisement(target, router=True, solicited=True, override=False, options=(LinkLayerAddress(2, src_mac),))
    # Sent from the target address itself, as its owner would: nfdhcpd used the router's
    # link-local, which clients that match the answer's source to the target (ndisc6) ignore.
    body = icmpv6_nd.encode(na, target, src)
    frame = ethernet(client_mac, src_mac, ETH_P_IPV6, ipv6_packet(target.packed, src.packed, IPPROTO_ICMPV6, body))
    return drop(f"NS from {b.tap} for {target}: NA", Reply(b.tap, frame, f"NA {target}"))


# ------------------------------------------------------------------ DHCPv6


def server_duid(src_mac: bytes) -> bytes:
    """DUID-LL of the INDEV interface: the same on every start, per link."""
    return dhcpv6.duid_ll(src_mac)


def _v6_info(cfg: DhcpdConfig) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    if cfg.ipv6.nameservers:
        out.append((Opt6.DNS_SERVERS, dhcpv6.encode_dns_servers(cfg.ipv6.nameservers)))
    if cfg.ipv6.domains:
        out.append((Opt6.DOMAIN_LIST, dhcpv6.encode_domain_list(cfg.ipv6.domains)))
    return out


def _ia_for(cfg: DhcpdConfig, b: Binding, ia: IaNa, addr: IPv6Address | None) -> bytes:
    valid = cfg.dhcp.lease_lifetime
    if addr is None:
        return dhcpv6.encode_ia_na(IaNa(ia.iaid, 0, 0, (), (Status.NO_ADDRS_AVAIL, "no address for this interface")))
    t1, t2 = valid // 2, valid * 4 // 5
    return dhcpv6.encode_ia_na(IaNa(ia.iaid, t1, t2, (IaAddress(addr, valid, valid),)))


def answer_dhcpv6(
    cfg: DhcpdConfig, b: Binding, msg: DhcpV6Message, src: IPv6Address, client_mac: bytes, src_mac: bytes
) -> Outcome:
    """Information-Request always; Solicit/Request/Renew/Rebind/Confirm/Release in mode dhcpv6."""
    name = MsgType.NAMES.get(msg.msg_type, str(msg.msg_type))
    who = f"{b.tap} ({b.hostname})"
    duid = server_duid(src_mac)
    client_id = msg.get(Opt6.CLIENTID)
    server_id = msg.get(Opt6.SERVERID)
    if client_id is not None:
        dhcpv6.decode_duid(client_id)
    if server_id is not None and server_id != duid:
        return drop(f"DHCPv6 {name} from {who} for another server: not answered")
    reply_opts: list[tuple[int, bytes]] = []
    if client_id is not None:
        reply_opts.append((Opt6.CLIENTID, client_id))
    reply_opts.append((Opt6.SERVERID, duid))
    stateful = cfg.ipv6.mode == "dhcpv6"
    addr = b.address6
    reply_type = MsgType.REPLY
    if msg.msg_type == MsgType.INFORMATION_REQUEST:
        reply_opts += _v6_info(cfg)
        what = "Reply (information)"
    elif not stateful:
        return drop(f"DHCPv6 {name} from {who}: stateful DHCPv6 is off (mode {cfg.ipv6.mode})")
    elif client_id is None:
        return drop(f"DHCPv6 {name} from {who} without a client id dropped")
    elif msg.msg_type in (MsgType.SOLICIT, MsgType.REQUEST, MsgType.RENEW, MsgType.REBIND):
        if msg.msg_type == MsgType.SOLICIT and server_id is not None:
            return drop(f"DHCPv6 SOLICIT from {who} with a server id dropped")
        if msg.msg_type in (MsgType.REQUEST, MsgType.RENEW) and server_id is None:
            return drop(f"DHCPv6 {name} from {who} without a server id dropped")
        rapid = msg.msg_type == MsgType.SOLICIT and msg.get(Opt6.RAPID_COMMIT) is not None
        if msg.msg_type == MsgType.SOLICIT and not rapid:
            reply_type = MsgType.ADVERTISE
        if rapid:
            reply_opts.append((Opt6.RAPID_COMMIT, b""))
        for raw in msg.all(Opt6.IA_NA):
            reply_opts.append((Opt6.IA_NA, _ia_for(cfg, b, dhcpv6.decode_ia_na(raw), addr)))
        reply_opts += _v6_info(cfg)
        what = f"{MsgType.NAMES[reply_type]} {addr}"
    elif msg.msg_type == MsgType.CONFIRM:
        on_link = all(
            a.address == addr for raw in msg.all(Opt6.IA_NA) for a in dhcpv6.decode_ia_na(raw).addresses
        )
        code = Status.SUCCESS if on_link else Status.NOT_ON_LINK
        reply_opts.append((Opt6.STATUS_CODE, dhcpv6.encode_status(code, "confirmed" if on_link else "not on link")))
        what = f"Reply (confirm: {'success' if on_link else 'not on link'})"
    elif msg.msg_type in (MsgType.RELEASE, MsgType.DECLINE):
        reply_opts.append((Opt6.STATUS_CODE, dhcpv6.encode_status(Status.SUCCESS, "released")))
        what = f"Reply ({name.lower()})"
    else:
        return drop(f"DHCPv6 {name} from {who} dropped (not a client message)")
    reply = dhcpv6.encode(DhcpV6Message(reply_type, msg.transaction_id, reply_opts))
    ll = link_local_from_mac(src_mac)
    udp = udp_datagram(547, 546, reply, pseudo_header_v6(ll.packed, src.packed, IPPROTO_UDP, 8 + len(reply)))
    frame = ethernet(client_mac, src_mac, ETH_P_IPV6, ipv6_packet(ll.packed, src.packed, IPPROTO_UDP, udp, 64))
    return drop(f"DHCPv6 {name} from {who}: {what}", Reply(b.tap, frame, what))

