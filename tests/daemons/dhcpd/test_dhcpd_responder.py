"""The answering rules, without sockets: requests in, frames and verdicts out.

Bindings use INDEV=lo, so the real interface lookup runs (lo exists everywhere and
its MAC is 00:00:00:00:00:00)."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemons.dhcpd.bindings import Binding, BindingTable, parse_binding
from daemons.dhcpd.config import DhcpdConfig, DhcpSettings, Ipv6Settings
from daemons.dhcpd.dispatcher import Dispatcher, Stats
from daemons.dhcpd.interfaces import InterfaceMacs
from daemons.dhcpd.responder import router_advertisement, server_duid
from net import dhcpv4, dhcpv6, icmpv6_nd
from net.dhcpv4 import DhcpMessage, MessageType, Opt
from net.dhcpv6 import DhcpV6Message, MsgType, Opt6
from net.ip_frames import (
    IPPROTO_ICMPV6,
    IPPROTO_UDP,
    ipv4_packet,
    internet_checksum,
    ipv6_packet,
    mac_bytes,
    parse_ip,
    parse_udp,
    pseudo_header_v4,
    pseudo_header_v6,
    udp_datagram,
)
from net.nfqueue import NF_ACCEPT, NF_DROP

MAC = mac_bytes("02:00:00:00:05:01")
LO_MAC = bytes(6)
BINDING = "\n".join(
    ["IP=10.0.0.51", "MAC=02:00:00:00:05:01", "HOSTNAME=vm51.example.org", "INDEV=lo", "SUBNET=10.0.0.0/24",
     "GATEWAY=10.0.0.1", "SUBNET6=2001:db8:5::/64", "GATEWAY6=fe80::1", "MTU=1450", "TAGS=a b"]
)  # fmt: skip
CFG = DhcpdConfig(
    dhcp=DhcpSettings(nameservers=["192.0.2.53"], routes=["192.168.5.0/24 via 10.0.0.254"]),
    ipv6=Ipv6Settings(nameservers=["2001:db8::53"], domains=["example.org"], mode="dhcpv6"),
)


def make(tmp_path: Path, text: str = BINDING, cfg: DhcpdConfig = CFG) -> tuple[Dispatcher, list[DhcpdConfig]]:
    (tmp_path / "tap1").write_text(text)
    table = BindingTable(tmp_path)
    table.rescan()
    holder = [cfg]
    return Dispatcher(lambda: holder[0], table, InterfaceMacs(), Stats()), holder


def request(mtype: int, **kw: object) -> bytes:
    opts = {Opt.MESSAGE_TYPE: bytes((mtype,))}
    opts.update(kw.pop("options", {}))  # type: ignore[arg-type]
    return dhcpv4.encode(DhcpMessage(op=1, xid=0xABCD, chaddr=kw.pop("chaddr", MAC), options=opts, **kw))  # type: ignore[arg-type]


def reply_of(frame: bytes) -> tuple[bytes, IPv4Address, IPv4Address, int, DhcpMessage]:
    ip = parse_ip(frame[14:])
    udp = parse_udp(ip.payload)
    assert udp.sport == 67
    return frame[:6], ip.src, ip.dst, udp.dport, dhcpv4.decode(udp.payload)  # type: ignore[return-value]


def test_discover_gets_an_offer_with_every_option(tmp_path: Path) -> None:
    d, _ = make(tmp_path)
    out = d.dhcpv4("tap1", request(MessageType.DISCOVER))
    assert out.verdict == NF_DROP and len(out.replies) == 1
    dst_mac, src, dst, dport, m = reply_of(out.replies[0].frame)
    assert out.replies[0].frame[6:12] == LO_MAC  # the INDEV's MAC
    assert (dst_mac, str(src), str(dst), dport) == (MAC, "1.2.3.4", "10.0.0.51", 68)
    assert m.op == 2 and m.xid == 0xABCD and m.yiaddr == IPv4Address("10.0.0.51")
    o = m.options
    assert list(o)[:2] == [Opt.MESSAGE_TYPE, Opt.SERVER_ID] and o[53] == b"\x02" and o[54] == bytes([1, 2, 3, 4])
    assert o[51] == dhcpv4.u32(604800) and o[58] == dhcpv4.u32(600) and o[59] == dhcpv4.u32(529200)
    assert o[1] == bytes([255, 255, 255, 0]) and o[28] == bytes([10, 0, 0, 255]) and o[3] == bytes([10, 0, 0, 1])
    assert o[6] == bytes([192, 0, 2, 53]) and o[12] == b"vm51.example.org" and o[15] == b"example.org"
    assert o[26] == dhcpv4.u16(1450)
    assert dhcpv4.decode_domain_search(o[119]) == ["example.org"]
    assert dhcpv4.decode_classless_routes(o[121]) == [
        (IPv4Network("192.168.5.0/24"), IPv4Address("10.0.0.254")),
        (IPv4Network("0.0.0.0/0"), IPv4Address("10.0.0.1")),
    ]


def test_broadcast_flag_and_renewal_destinations(tmp_path: Path) -> None:
    d, _ = make(tmp_path)
    out = d.dhcpv4("tap1", request(MessageType.DISCOVER, flags=dhcpv4.FLAG_BROADCAST))
    dst_mac, _, dst, _, _ = reply_of(out.replies[0].frame)
    assert dst_mac == b"\xff" * 6 and str(dst) == "255.255.255.255"
    out = d.dhcpv4("tap1", request(MessageType.REQUEST, ciaddr=IPv4Address("10.0.0.51")))
    dst_mac, _, dst, _, m = reply_of(out.replies[0].frame)
    assert (dst_mac, str(dst), m.options[53]) == (MAC, "10.0.0.51", b"\x05")
    relay = mac_bytes("02:00:00:00:05:77")
    out = d.dhcpv4("tap1", request(MessageType.DISCOVER, giaddr=IPv4Address("10.0.0.9")), relay)
    dst_mac, _, dst, dport, _ = reply_of(out.replies[0].frame)
    assert (dst_mac, str(dst), dport) == (relay, "10.0.0.9", 67)


def test_request_for_another_address_gets_a_nak(tmp_path: Path) -> None:
    d, _ = make(tmp_path)
    out = d.dhcpv4("tap1", request(MessageType.REQUEST, options={50: bytes([10, 0, 0, 99])}))
    assert out.verdict == NF_DROP
    dst_mac, _, dst, _, m = reply_of(out.replies[0].frame)
    assert m.options[53] == b"\x06" and dst_mac == b"\xff" * 6 and str(dst) == "255.255.255.255"
    assert m.yiaddr == IPv4Address(0) and 51 not in m.options
    assert "requested 10.0.0.99, bound 10.0.0.51" in out.note


def test_request_to_another_server_is_not_answered(tmp_path: Path) -> None:
    d, _ = make(tmp_path)
    out = d.dhcpv4("tap1", request(MessageType.REQUEST, options={50: bytes([10, 0, 0, 51]), 54: bytes([9, 9, 9, 9])}))
    assert out.verdict == NF_DROP and out.replies == []


def test_inform_gets_no_lease_time(tmp_path: Path) -> None:
    d, _ = make(tmp_path)
    out = d.dhcpv4("tap1", request(MessageType.INFORM, ciaddr=IPv4Address("10.0.0.51")))
    _, _, dst, _, m = reply_of(out.replies[0].frame)
    assert str(dst) == "10.0.0.51" and m.options[53] == b"\x05" and m.yiaddr == IPv4Address(0)
    assert not {51, 58, 59} & set(m.options) and m.options[6] == bytes([192, 0, 2, 53])


def test_release_decline_and_typeless(tmp_path: Path) -> None:
    d, _ = make(tmp_path)
    for mtype in (MessageType.RELEASE, MessageType.DECLINE):
        out = d.dhcpv4("tap1", request(mtype))
        assert out.verdict == NF_DROP and out.replies == []
    bootp = dhcpv4.encode(DhcpMessage(op=1, xid=1, chaddr=MAC))
    out = d.dhcpv4("tap1", bootp)
    assert out.verdict == NF_DROP and "without a DHCP message type" in out.note


def test_private_gets_no_router(tmp_path: Path) -> None:
    d, _ = make(tmp_path, BINDING + "\nPRIVATE=1\n")
    out = d.dhcpv4("tap1", request(MessageType.DISCOVER))
    m = reply_of(out.replies[0].frame)[4]
    assert 3 not in m.options
    assert dhcpv4.decode_classless_routes(m.options[121]) == [(IPv4Network("192.168.5.0/24"), IPv4Address("10.0.0.254"))]
    b = d.table.get("tap1")
    assert b is not None
    ra = router_advertisement(CFG, b, LO_MAC)
    assert ra is not None
    ip = parse_ip(ra.frame[14:])
    msg = icmpv6_nd.decode(ip.payload, ip.src, ip.dst)  # type: ignore[arg-type]
    assert isinstance(msg, icmpv6_nd.RouterAdvertisement) and msg.router_lifetime == 0


def test_server_on_link_uses_the_gateway(tmp_path: Path) -> None:
    cfg = dataclasses.replace(CFG, dhcp=dataclasses.replace(CFG.dhcp, server_on_link=True))
    d, _ = make(tmp_path, cfg=cfg)
    out = d.dhcpv4("tap1", request(MessageType.DISCOVER))
    _, src, _, _, m = reply_of(out.replies[0].frame)
    assert str(src) == "10.0.0.1" and m.options[54] == bytes([10, 0, 0, 1])


def test_who_gets_answered(tmp_path: Path) -> None:
    d, holder = make(tmp_path)
    foreign = request(MessageType.DISCOVER, chaddr=mac_bytes("02:00:00:00:05:99"))
    out = d.dhcpv4("tap1", foreign)
    assert out.verdict == NF_ACCEPT and not out.replies and "foreign MAC" in out.note
    assert d.dhcpv4("tap9", request(MessageType.DISCOVER)).verdict == NF_ACCEPT
    no_ip = BINDING.replace("IP=10.0.0.51\n", "")
    (tmp_path / "noip").mkdir()
    d2, _ = make(tmp_path / "noip", no_ip)
    assert d2.dhcpv4("tap1", request(MessageType.DISCOVER)).verdict == NF_ACCEPT
    (tmp_path / "tap1").write_text(BINDING + "\nMACSPOOF=1\n")
    d.table.rescan()
    assert d.dhcpv4("tap1", foreign).replies
    holder[0] = dataclasses.replace(CFG, dhcp=dataclasses.replace(CFG.dhcp, enable_dhcp=False))
    assert d.dhcpv4("tap1", request(MessageType.DISCOVER)).verdict == NF_ACCEPT


def test_errors_get_the_configured_verdict(tmp_path: Path) -> None:
    d, holder = make(tmp_path)
    assert d.dhcpv4("tap1", b"\x01" * 50).verdict == NF_ACCEPT
    holder[0] = dataclasses.replace(CFG, on_error="drop")
    out = d.dhcpv4("tap1", b"\x01" * 50)
    assert out.verdict == NF_DROP and "malformed" in out.note
    # an INDEV that does not exist: the packet still gets a verdict
    (tmp_path / "tap1").write_text(BINDING.replace("INDEV=lo", "INDEV=nosuchif0"))
    d.table.rescan()
    out = d.dhcpv4("tap1", request(MessageType.DISCOVER))
    assert out.verdict == NF_DROP and "nosuchif0 not found" in out.note
    assert d.stats.malformed["dhcp"] == 2 and d.stats.errors["dhcp"] == 1 and len(d.stats.last_errors) == 3


def test_ip_packets_from_an_unknown_ifindex_pass(tmp_path: Path) -> None:
    d, holder = make(tmp_path)
    payload = request(MessageType.DISCOVER)
    src, dst = bytes(4), b"\xff" * 4
    pkt = ipv4_packet(src, dst, IPPROTO_UDP, udp_datagram(68, 67, payload, pseudo_header_v4(src, dst, 17, 8 + len(payload))))
    assert d.handle_ip(999999, pkt, b"", 42).verdict == NF_ACCEPT
    assert d.stats.by_queue[42]["accept"] == 1
    # 1 is lo, which has no binding here: garbage from it passes untouched, even when
    # bound interfaces' bad packets are dropped
    holder[0] = dataclasses.replace(CFG, on_error="drop")
    out = d.handle_ip(1, b"\x45garbage", b"", 42)
    assert out.verdict == NF_ACCEPT and "lo: no binding, passed (malformed" in out.note
    assert d.dhcpv4("tap1", b"garbage").verdict == NF_DROP


@given(st.binary(max_size=400))
def test_any_payload_gets_a_verdict(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        d, _ = make(Path(tmp))
        for out in (
            d.dhcpv4("tap1", data, MAC),
            d.dhcpv6("tap1", data, IPv6Address("fe80::5"), MAC),
            d.ip_packet("tap1", icmp6_packet(data, IPv6Address("fe80::5"), IPv6Address("ff02::2")), MAC),
            d.handle_ip(1, data, MAC, 42),
        ):
            assert out.verdict in (NF_ACCEPT, NF_DROP)


# ---------------------------------------------------------------------- ND


def icmp6_packet(body: bytes, src: IPv6Address, dst: IPv6Address, hop_limit: int = 255) -> bytes:
    """``body`` in an IPv6 packet, its ICMPv6 checksum made right when it has room for
    one, so whatever the body holds reaches the ND decoder."""
    if len(body) >= 4:
        blank = body[:2] + b"\0\0" + body[4:]
        csum = internet_checksum(pseudo_header_v6(src.packed, dst.packed, IPPROTO_ICMPV6, len(body)) + blank)
        body = blank[:2] + csum.to_bytes(2, "big") + blank[4:]
    return ipv6_packet(src.packed, dst.packed, IPPROTO_ICMPV6, body, hop_limit)


def nd_in(d: Dispatcher, msg: icmpv6_nd.NdMessage, src: str, dst: str, mac: bytes = MAC):  # type: ignore[no-untyped-def]
    s, t = IPv6Address(src), IPv6Address(dst)
    return d.ip_packet("tap1", icmp6_packet(icmpv6_nd.encode(msg, s, t), s, t), mac)


def test_rs_gets_a_unicast_ra_with_the_mode_flags(tmp_path: Path) -> None:
    d, _ = make(tmp_path)
    out = nd_in(d, icmpv6_nd.RouterSolicitation(), "fe80::5", "ff02::2")
    (r,) = out.replies
    ip = parse_ip(r.frame[14:])
    assert r.frame[:6] == MAC and str(ip.dst) == "fe80::5" and ip.hop_limit == 255
    assert ip.src == icmpv6_nd.link_local_from_mac(LO_MAC)
    ra = icmpv6_nd.decode(ip.payload, ip.src, ip.dst)  # type: ignore[arg-type]
    assert isinstance(ra, icmpv6_nd.RouterAdvertisement)
    assert (ra.managed, ra.other, ra.router_lifetime) == (True, False, 14400)
    pi = next(o for o in ra.options if isinstance(o, icmpv6_nd.PrefixInfo))
    assert str(pi.prefix) == "2001:db8:5::/64" and not pi.autonomous and pi.on_link
    assert icmpv6_nd.Mtu(1450) in ra.options
    assert icmpv6_nd.Rdnss(1800, (IPv6Address("2001:db8::53"),)) in ra.options
    assert icmpv6_nd.Dnssl(1800, ("example.org",)) in ra.options
    out = nd_in(d, icmpv6_nd.RouterSolicitation(), "::", "ff02::2")
    ip = parse_ip(out.replies[0].frame[14:])
    assert str(ip.dst) == "ff02::1" and out.replies[0].frame[:6] == bytes.fromhex("333300000001")


def test_ns_rules(tmp_path: Path) -> None:
    d, _ = make(tmp_path)
    router = icmpv6_nd.link_local_from_mac(LO_MAC)
    out = nd_in(d, icmpv6_nd.NeighborSolicitation(router), "fe80::5", str(icmpv6_nd.solicited_node(router)))
    (r,) = out.replies
    ip = parse_ip(r.frame[14:])
    na = icmpv6_nd.decode(ip.payload, ip.src, ip.dst)  # type: ignore[arg-type]
    assert isinstance(na, icmpv6_nd.NeighborAdvertisement)
    assert (na.target, na.router, na.solicited, na.override) == (router, True, True, False)
    assert na.options == (icmpv6_nd.LinkLayerAddress(2, LO_MAC),) and ip.src == router
    other = IPv6Address("2001:db8:5::99")
    assert nd_in(d, icmpv6_nd.NeighborSolicitation(other), "fe80::5", "ff02::1:ff00:99").replies
    for target, src in (("2001:db8:6::1", "fe80::5"), ("2001:db8:5::99", "::"), ("2001:db8:5::ff:fe00:501", "fe80::5")):
        out = nd_in(d, icmpv6_nd.NeighborSolicitation(IPv6Address(target)), src, "ff02::1:ff00:1")
        assert out.verdict == NF_ACCEPT and not out.replies, target  # not ours, DAD, the VM's own


def test_nd_with_a_bad_hop_limit_or_checksum(tmp_path: Path) -> None:
    d, _ = make(tmp_path)
    s, t = IPv6Address("fe80::5"), IPv6Address("ff02::2")
    raw = icmpv6_nd.encode(icmpv6_nd.RouterSolicitation(), s, t)
    assert d.ip_packet("tap1", icmp6_packet(raw, s, t), MAC).replies
    assert not d.ip_packet("tap1", icmp6_packet(raw, s, t, hop_limit=64), MAC).replies
    assert not d.ip_packet("tap1", ipv6_packet(s.packed, t.packed, IPPROTO_ICMPV6, raw[:2] + b"\0\0" + raw[4:]), MAC).replies
    assert d.stats.malformed["rs"] == 2


# ------------------------------------------------------------------ DHCPv6


def v6(d: Dispatcher, mtype: int, *opts: tuple[int, bytes]):  # type: ignore[no-untyped-def]
    out = d.dhcpv6("tap1", dhcpv6.encode(DhcpV6Message(mtype, 0x42, list(opts))), IPv6Address("fe80::5"), MAC)
    if not out.replies:
        return out, None
    ip = parse_ip(out.replies[0].frame[14:])
    udp = parse_udp(ip.payload)
    assert (udp.sport, udp.dport, str(ip.dst)) == (547, 546, "fe80::5")
    return out, dhcpv6.decode(udp.payload)


CID = (Opt6.CLIENTID, dhcpv6.duid_ll(MAC))


def test_information_request(tmp_path: Path) -> None:
    d, _ = make(tmp_path)
    _, m = v6(d, MsgType.INFORMATION_REQUEST, CID)
    assert m is not None and m.msg_type == MsgType.REPLY and m.transaction_id == 0x42
    assert m.get(Opt6.CLIENTID) == CID[1] and m.get(Opt6.SERVERID) == server_duid(LO_MAC)
    assert dhcpv6.decode_dns_servers(m.get(Opt6.DNS_SERVERS) or b"") == [IPv6Address("2001:db8::53")]
    assert dhcpv6.decode_domain_list(m.get(Opt6.DOMAIN_LIST) or b"") == ["example.org"]


def test_stateful_exchange(tmp_path: Path) -> None:
    d, holder = make(tmp_path)
    ia = (Opt6.IA_NA, dhcpv6.encode_ia_na(dhcpv6.IaNa(7, 0, 0)))
    _, adv = v6(d, MsgType.SOLICIT, CID, ia)
    assert adv is not None and adv.msg_type == MsgType.ADVERTISE
    got = dhcpv6.decode_ia_na(adv.get(Opt6.IA_NA) or b"")
    assert got.iaid == 7 and got.addresses[0].address == IPv6Address("2001:db8:5::ff:fe00:501")
    assert (got.t1, got.t2, got.addresses[0].valid) == (302400, 483840, 604800)
    sid = (Opt6.SERVERID, adv.get(Opt6.SERVERID) or b"")
    _, rep = v6(d, MsgType.REQUEST, CID, sid, ia)
    assert rep is not None and rep.msg_type == MsgType.REPLY and rep.get(Opt6.IA_NA) == adv.get(Opt6.IA_NA)
    _, rapid = v6(d, MsgType.SOLICIT, CID, ia, (Opt6.RAPID_COMMIT, b""))
    assert rapid is not None and rapid.msg_type == MsgType.REPLY and rapid.get(Opt6.RAPID_COMMIT) == b""
    out, none = v6(d, MsgType.REQUEST, CID, (Opt6.SERVERID, dhcpv6.duid_ll(b"\x02" * 6)), ia)
    assert none is None and out.verdict == NF_DROP
    confirm = (Opt6.IA_NA, dhcpv6.encode_ia_na(dhcpv6.IaNa(7, 0, 0, (dhcpv6.IaAddress(IPv6Address("2001:db8:9::1"), 0, 0),))))
    _, c = v6(d, MsgType.CONFIRM, CID, confirm)
    assert c is not None and dhcpv6.decode_status(c.get(Opt6.STATUS_CODE) or b"")[0] == dhcpv6.Status.NOT_ON_LINK
    _, rel = v6(d, MsgType.RELEASE, CID, sid, ia)
    assert rel is not None and dhcpv6.decode_status(rel.get(Opt6.STATUS_CODE) or b"")[0] == dhcpv6.Status.SUCCESS
    holder[0] = dataclasses.replace(CFG, ipv6=dataclasses.replace(CFG.ipv6, mode="slaac+dhcpv6"))
    out, none = v6(d, MsgType.SOLICIT, CID, ia)
    assert none is None and "stateful DHCPv6 is off" in out.note


# ----------------------------------------------------------------- bindings


def test_binding_file_rules() -> None:
    b = parse_binding(BINDING, "tap1")
    assert (b.mac, b.hostname, str(b.ip), b.indev, str(b.subnet), str(b.gateway)) == (
        MAC, "vm51.example.org", "10.0.0.51", "lo", "10.0.0.0/24", "10.0.0.1"
    )  # fmt: skip
    assert b.mtu == 1450 and b.tags == ("a", "b") and not b.private and not b.macspoof
    assert str(b.address6) == "2001:db8:5::ff:fe00:501" and b.source_interface == "lo"
    minimal = parse_binding("MAC=02:00:00:00:00:01\nHOSTNAME=x\n", "tap2")
    assert minimal.ip is None and minimal.source_interface == "tap2"
    assert parse_binding("MAC=02:00:00:00:00:01\nHOSTNAME=x\nIP=\nGATEWAY=\nEUI64=2001:db8::1\n", "t").eui64 == IPv6Address("2001:db8::1")
    assert parse_binding("MAC=02:00:00:00:00:01\nHOSTNAME=a\nHOSTNAME=b\nUNKNOWN=1\n# c\n", "t").hostname == "b"
    assert parse_binding("MAC=02:00:00:00:00:01\nHOSTNAME=a\nMACSPOOF=1\nPRIVATE=yes\n", "t").macspoof


@pytest.mark.parametrize(
    "text, reason",
    [
        ("HOSTNAME=x\n", "needs MAC and HOSTNAME"),
        ("MAC=02:00:00:00:00:01\n", "needs MAC and HOSTNAME"),
        ("MAC=nope\nHOSTNAME=x\n", "MAC='nope'"),
        ("MAC=02:00:00:00:00:01\nHOSTNAME=x\nIP=10.0.0.300\n", "IP="),
        ("MAC=02:00:00:00:00:01\nHOSTNAME=x\nSUBNET6=zz\n", "SUBNET6="),
        ("MAC=02:00:00:00:00:01\nHOSTNAME=x\nMTU=9\n", "MTU=9"),
    ],
)
def test_bad_binding_files(text: str, reason: str) -> None:
    from daemons.dhcpd.bindings import BindingError

    with pytest.raises(BindingError, match=reason):
        parse_binding(text, "tap1")


def test_table_skips_dotfiles_and_reports_errors(tmp_path: Path) -> None:
    (tmp_path / ".tap1.tmp").write_text(BINDING)
    (tmp_path / "tap2").write_text("MAC=x\nHOSTNAME=y\n")
    (tmp_path / "tap3").write_text(BINDING)
    t = BindingTable(tmp_path)
    t.rescan()
    assert [b.tap for b in t] == ["tap3"] and list(t.errors) == ["tap2"]
    (tmp_path / "tap3").unlink()
    t.rescan()
    assert len(t) == 0


@given(st.text(max_size=300))
def test_any_binding_text_parses_or_is_refused(text: str) -> None:
    from daemons.dhcpd.bindings import BindingError

    try:
        b = parse_binding(text, "tap1")
    except BindingError:
        return
    assert isinstance(b, Binding) and len(b.mac) == 6 and b.hostname


# ------------------------------------------------ socket mode's packet socket


def ns_packet(target: IPv6Address, src: IPv6Address, hop_limit: int = 255) -> bytes:
    dst = icmpv6_nd.solicited_node(target)
    body = icmpv6_nd.encode(icmpv6_nd.NeighborSolicitation(target), src, dst)
    return ipv6_packet(src.packed, dst.packed, IPPROTO_ICMPV6, body, hop_limit)


@given(
    iid=st.integers(1, 2**64 - 1),
    in_subnet=st.booleans(),
    hop_limit=st.sampled_from([255, 254, 64, 1]),
    flip=st.none() | st.integers(0, 63),  # 40 bytes of IPv6 header, 24 of NS
)
def test_ns_off_the_packet_socket(iid: int, in_subnet: bool, hop_limit: int, flip: int | None) -> None:
    """An IPv6 packet as socket mode's packet socket hands it over (no link header,
    the frame's source MAC beside it): an NA exactly when the packet is a sound NS
    for a SUBNET6 address other than the VM's own; one byte changed anywhere in the
    IPv6 header or the NS makes it unsound, unless it is a bit of the traffic class
    or flow label (the low bit of byte 0, bytes 1 to 3)."""
    import tempfile

    prefix = IPv6Address("2001:db8:5::" if in_subnet else "2001:db8:6::").packed[:8]
    target = IPv6Address(prefix + iid.to_bytes(8, "big"))
    pkt = bytearray(ns_packet(target, IPv6Address("fe80::5"), hop_limit))
    if flip is not None:
        pkt[flip] ^= 0x01
    with tempfile.TemporaryDirectory() as tmp:
        d, _ = make(Path(tmp))
        out = d.ip_packet("tap1", bytes(pkt), MAC)
    own = target == IPv6Address("2001:db8:5::ff:fe00:501")
    sound = hop_limit == 255 and (flip is None or flip <= 3)
    assert len(out.replies) == (1 if sound and in_subnet and not own else 0), out.note
    if out.replies:
        (r,) = out.replies
        assert r.frame[:6] == MAC and r.interface == "tap1"
        ip = parse_ip(r.frame[14:])
        na = icmpv6_nd.decode(ip.payload, ip.src, ip.dst)  # type: ignore[arg-type]
        assert isinstance(na, icmpv6_nd.NeighborAdvertisement) and na.target == target == ip.src
    assert d.stats.received["ns"] + d.stats.received["other"] == 1


@given(st.binary(max_size=200), st.binary(max_size=8))
def test_any_bytes_off_the_packet_socket(data: bytes, hwaddr: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        d, _ = make(Path(tmp))
        out = d.ip_packet("tap1", data, hwaddr)
        assert out.verdict in (NF_ACCEPT, NF_DROP) and out.note
        assert sum(d.stats.received.values()) == 1
