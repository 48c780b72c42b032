"""DHCPv6 codec: byte-exact against scapy 2.5's output, IA_NA, DUIDs, and malformed input."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net import dhcpv6
from net.dhcpv6 import DhcpV6Message, IaAddress, IaNa, MsgType, Opt6
from net.packet_errors import MalformedPacket

MAC_VM = bytes.fromhex("020000000005")
MAC_R = bytes.fromhex("020000000001")
# DHCP6_InfoRequest(trid=0xabcdef)/ClientId(DUID_LL 02:00:00:00:00:05)/OptReq([23, 24])/ElapsedTime(0)
SCAPY_INFO_REQUEST = bytes.fromhex("0babcdef0001000a000300010200000000050006000400170018000800020000")
# DHCP6_Reply(trid=0xabcdef)/ClientId/ServerId(DUID_LL 02:00:00:00:00:01)/DNSServers(2001:db8::53)/DNSDomains(example.org.)
SCAPY_REPLY = bytes.fromhex(
    "07abcdef0001000a000300010200000000050002000a000300010200000000010017001020010db800000000"
    "00000000000000530018000d076578616d706c65036f726700"
)
# DHCP6_Solicit(trid=0x010203)/ClientId(DUID_LLT time 1000)/IA_NA(iaid 7)/ElapsedTime
SCAPY_SOLICIT = bytes.fromhex("010102030001000e00010001000003e80200000000050003000c000000070000000000000000000800020000")
# DHCP6_Advertise(trid=0x010203)/IA_NA(iaid 7, T1 302400, T2 483840, IAAddress(2001:db8:1::ff:fe00:5, 604800, 604800))
SCAPY_ADVERTISE = bytes.fromhex(
    "02010203000300280000000700049d40000762000005001820010db800010000000000fffe00000500093a8000093a80"
)


def test_information_request() -> None:
    m = dhcpv6.decode(SCAPY_INFO_REQUEST)
    assert m.msg_type == MsgType.INFORMATION_REQUEST and m.transaction_id == 0xABCDEF
    duid = dhcpv6.decode_duid(m.get(Opt6.CLIENTID) or b"")
    assert duid.duid_type == 3 and duid.link_layer == MAC_VM
    assert dhcpv6.decode_oro(m.get(Opt6.ORO) or b"") == [23, 24]
    assert dhcpv6.encode(m) == SCAPY_INFO_REQUEST


def test_reply_byte_exact() -> None:
    reply = DhcpV6Message(
        MsgType.REPLY,
        0xABCDEF,
        [
            (Opt6.CLIENTID, dhcpv6.duid_ll(MAC_VM)),
            (Opt6.SERVERID, dhcpv6.duid_ll(MAC_R)),
            (Opt6.DNS_SERVERS, dhcpv6.encode_dns_servers(["2001:db8::53"])),
            (Opt6.DOMAIN_LIST, dhcpv6.encode_domain_list(["example.org"])),
        ],
    )
    assert dhcpv6.encode(reply) == SCAPY_REPLY
    back = dhcpv6.decode(SCAPY_REPLY)
    assert dhcpv6.decode_dns_servers(back.get(Opt6.DNS_SERVERS) or b"") == [IPv6Address("2001:db8::53")]
    assert dhcpv6.decode_domain_list(back.get(Opt6.DOMAIN_LIST) or b"") == ["example.org"]


def test_solicit_and_advertise() -> None:
    m = dhcpv6.decode(SCAPY_SOLICIT)
    assert m.msg_type == MsgType.SOLICIT
    duid = dhcpv6.decode_duid(m.get(Opt6.CLIENTID) or b"")
    assert duid.duid_type == 1 and duid.link_layer == MAC_VM
    ia = dhcpv6.decode_ia_na(m.get(Opt6.IA_NA) or b"")
    assert ia == IaNa(7, 0, 0)
    addr = IPv6Address("2001:db8:1::ff:fe00:5")
    adv = DhcpV6Message(
        MsgType.ADVERTISE, 0x010203, [(Opt6.IA_NA, dhcpv6.encode_ia_na(IaNa(7, 302400, 483840, (IaAddress(addr, 604800, 604800),))))]
    )
    assert dhcpv6.encode(adv) == SCAPY_ADVERTISE
    ia = dhcpv6.decode_ia_na(dhcpv6.decode(SCAPY_ADVERTISE).get(Opt6.IA_NA) or b"")
    assert ia.addresses[0].address == addr and ia.t2 == 483840


def test_ia_na_status() -> None:
    ia = IaNa(1, 0, 0, (), (dhcpv6.Status.NO_ADDRS_AVAIL, "none"))
    assert dhcpv6.decode_ia_na(dhcpv6.encode_ia_na(ia)) == ia


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"\x0b\x00", "truncated"),
        (b"\x0c\x00\x00\x00", "relay"),
        (b"\x00\x00\x00\x00", "unknown"),
        (b"\x0b\x00\x00\x01\x00\x01\x00\x10abc", "past the end"),
        (b"\x0b\x00\x00\x01\x00\x01", "truncated"),
    ],
)
def test_malformed(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket, match=reason):
        dhcpv6.decode(raw)


@pytest.mark.parametrize("value", [b"", b"\x00\x03\x00", b"\x00\x01\x00\x01\x00", b"\x00\x04" + b"x" * 5, b"\x00\x02" + b"x" * 200])
def test_bad_duids(value: bytes) -> None:
    with pytest.raises(MalformedPacket):
        dhcpv6.decode_duid(value)


def test_bad_sub_options() -> None:
    with pytest.raises(MalformedPacket):
        dhcpv6.decode_ia_na(b"\x00" * 11)
    with pytest.raises(MalformedPacket):
        dhcpv6.decode_ia_na(b"\x00" * 12 + b"\x00\x05\x00\x04abcd")
    with pytest.raises(MalformedPacket):
        dhcpv6.decode_oro(b"\x00")
    with pytest.raises(MalformedPacket):
        dhcpv6.decode_dns_servers(b"\x00" * 15)
    with pytest.raises(MalformedPacket):
        dhcpv6.decode_domain_list(b"\x03abc\xc0\x00")


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_malformed(data: bytes) -> None:
    try:
        m = dhcpv6.decode(data)
    except MalformedPacket:
        return
    for code, value in m.options:
        decoder = {
            Opt6.CLIENTID: dhcpv6.decode_duid,
            Opt6.IA_NA: dhcpv6.decode_ia_na,
            Opt6.ORO: dhcpv6.decode_oro,
            Opt6.DNS_SERVERS: dhcpv6.decode_dns_servers,
            Opt6.DOMAIN_LIST: dhcpv6.decode_domain_list,
        }.get(code)
        if decoder is not None:
            try:
                decoder(value)
            except MalformedPacket:
                pass


@given(
    st.sampled_from([1, 3, 5, 6, 7, 11]),
    st.integers(0, 0xFFFFFF),
    st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=8),
)
def test_roundtrip(mtype: int, xid: int, options: list[tuple[int, bytes]]) -> None:
    m = DhcpV6Message(mtype, xid, options)
    assert dhcpv6.decode(dhcpv6.encode(m)) == m
