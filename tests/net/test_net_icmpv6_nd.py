"""ICMPv6 ND codec: byte-exact against scapy 2.5's output (hex below), checksums,
each option, and malformed input."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net import icmpv6_nd as nd
from net.packet_errors import MalformedPacket

LL_ROUTER = IPv6Address("fe80::1")
LL_VM = IPv6Address("fe80::5")
MAC_R = bytes.fromhex("020000000001")
MAC_VM = bytes.fromhex("020000000005")

# IPv6(src=fe80::1, dst=ff02::1)/ICMPv6ND_RA(chlim=64, O=1, prf=0, routerlifetime=14400)
# / SrcLLAddr / PrefixInfo(2001:db8:1::/64) / MTU(1450) / RDNSS(2001:db8::53, 1800)
# / DNSSL(example.org, b.example; 1800)
SCAPY_RA = bytes.fromhex(
    "8600422a4040384000000000000000000101020000000001030440c0ffffffffffffffff0000000020010db8"
    "00010000000000000000000005010000000005aa190300000000070820010db8000000000000000000000053"
    "1f04000000000708076578616d706c65036f7267000162076578616d706c6500"
)
SCAPY_NS = bytes.fromhex("87007a9100000000fe8000000000000000000000000000010101020000000005")  # fe80::5 -> ff02::1:ff00:1
SCAPY_NA = bytes.fromhex("8800b818c0000000fe8000000000000000000000000000010201020000000001")  # fe80::1 -> fe80::5
SCAPY_RS = bytes.fromhex("85007a24000000000101020000000005")  # fe80::5 -> ff02::2

RA = nd.RouterAdvertisement(
    14400,
    managed=False,
    other=True,
    options=(
        nd.LinkLayerAddress(1, MAC_R),
        nd.PrefixInfo(IPv6Network("2001:db8:1::/64"), valid=0xFFFFFFFF, preferred=0xFFFFFFFF),
        nd.Mtu(1450),
        nd.Rdnss(1800, (IPv6Address("2001:db8::53"),)),
        nd.Dnssl(1800, ("example.org", "b.example")),
    ),
)


def test_ra_encode_is_byte_exact() -> None:
    assert nd.encode(RA, LL_ROUTER, nd.ALL_NODES) == SCAPY_RA


def test_ra_decode() -> None:
    assert nd.decode(SCAPY_RA, LL_ROUTER, nd.ALL_NODES) == RA


def test_ns_na_rs_both_ways() -> None:
    ns = nd.NeighborSolicitation(LL_ROUTER, (nd.LinkLayerAddress(1, MAC_VM),))
    group = nd.solicited_node(LL_ROUTER)
    assert group == IPv6Address("ff02::1:ff00:1")
    assert nd.encode(ns, LL_VM, group) == SCAPY_NS
    assert nd.decode(SCAPY_NS, LL_VM, group) == ns
    assert nd.source_mac(ns) == MAC_VM
    na = nd.NeighborAdvertisement(LL_ROUTER, router=True, solicited=True, override=False, options=(nd.LinkLayerAddress(2, MAC_R),))
    assert nd.encode(na, LL_ROUTER, LL_VM) == SCAPY_NA
    assert nd.decode(SCAPY_NA, LL_ROUTER, LL_VM) == na
    rs = nd.RouterSolicitation((nd.LinkLayerAddress(1, MAC_VM),))
    assert nd.encode(rs, LL_VM, nd.ALL_ROUTERS) == SCAPY_RS
    assert nd.decode(SCAPY_RS, LL_VM, nd.ALL_ROUTERS) == rs


def test_checksum_checked_against_addresses() -> None:
    with pytest.raises(MalformedPacket, match="checksum"):
        nd.decode(SCAPY_RS, LL_ROUTER, nd.ALL_ROUTERS)
    assert nd.decode(SCAPY_RS, LL_ROUTER, nd.ALL_ROUTERS, verify=False)


def test_link_local_from_mac() -> None:
    assert nd.link_local_from_mac(bytes.fromhex("525400123456")) == IPv6Address("fe80::5054:ff:fe12:3456")


def test_unknown_option_kept() -> None:
    rs = nd.RouterSolicitation((nd.UnknownOption(14, b"\x01\x02\x03\x04\x05\x06"),))
    raw = nd.encode(rs, LL_VM, nd.ALL_ROUTERS)
    assert nd.decode(raw, LL_VM, nd.ALL_ROUTERS) == rs


def _with_opts(opts: bytes) -> bytes:
    import struct

    from net.ip_frames import internet_checksum, pseudo_header_v6

    body = bytes((133, 0, 0, 0, 0, 0, 0, 0)) + opts
    c = internet_checksum(pseudo_header_v6(LL_VM.packed, nd.ALL_ROUTERS.packed, 58, len(body)) + body)
    return body[:2] + struct.pack("!H", c) + body[4:]


@pytest.mark.parametrize(
    "opts, reason",
    [
        (b"\x01\x00" + b"\0" * 6, "length 0"),
        (b"\x01\x02" + b"\0" * 6, "past the end"),
        (b"\x03\x01" + b"\0" * 6, "prefix information"),
        (b"\x19\x01" + b"\0" * 6, "RDNSS"),
        (b"\x01", "truncated"),
    ],
)
def test_bad_options(opts: bytes, reason: str) -> None:
    with pytest.raises(MalformedPacket, match=reason):
        nd.decode(_with_opts(opts), LL_VM, nd.ALL_ROUTERS)


def test_other_icmpv6_types_and_codes() -> None:
    with pytest.raises(MalformedPacket, match="not neighbor discovery"):
        nd.decode(b"\x80\x00\x00\x00\x00\x00\x00\x00", LL_VM, LL_ROUTER, verify=False)
    with pytest.raises(MalformedPacket, match="code"):
        nd.decode(b"\x85\x01\x00\x00\x00\x00\x00\x00", LL_VM, LL_ROUTER, verify=False)
    with pytest.raises(MalformedPacket, match="truncated"):
        nd.decode(b"\x87\x00\x00\x00\x00\x00\x00\x00", LL_VM, LL_ROUTER, verify=False)


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_malformed(data: bytes) -> None:
    for verify in (True, False):
        try:
            nd.decode(data, LL_VM, nd.ALL_ROUTERS, verify=verify)
        except MalformedPacket:
            pass


@given(st.sampled_from([133, 134, 135, 136]), st.binary(max_size=120))
def test_random_bodies_raise_only_malformed(mtype: int, body: bytes) -> None:
    try:
        nd.decode(bytes((mtype, 0, 0, 0)) + body, LL_VM, nd.ALL_ROUTERS, verify=False)
    except MalformedPacket:
        pass


addresses = st.binary(min_size=16, max_size=16).map(IPv6Address)
names = st.lists(st.from_regex(r"[a-z]{1,10}(\.[a-z]{1,10}){0,2}", fullmatch=True), min_size=1, max_size=4)


@given(
    st.integers(0, 0xFFFF),
    st.booleans(),
    st.booleans(),
    st.integers(0, 128),
    st.lists(addresses, min_size=1, max_size=3),
    names,
    st.integers(68, 0xFFFFFFFF),
)
def test_ra_roundtrip(life: int, m: bool, o: bool, plen: int, dns: list[IPv6Address], domains: list[str], mtu: int) -> None:
    ra = nd.RouterAdvertisement(
        life,
        m,
        o,
        options=(
            nd.PrefixInfo(IPv6Network((0x20010DB8 << 96, plen), strict=False)),
            nd.Mtu(mtu),
            nd.Rdnss(600, tuple(dns)),
            nd.Dnssl(600, tuple(domains)),
        ),
    )
    raw = nd.encode(ra, LL_ROUTER, LL_VM)
    assert len(raw) % 8 == 0
    assert nd.decode(raw, LL_ROUTER, LL_VM) == ra
