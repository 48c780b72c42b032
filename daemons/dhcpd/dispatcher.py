"""From a received packet to an :class:`~daemons.dhcpd.responder.Outcome`, whatever happens.

The packet's interface names the binding (nfdhcpd's rule: the bridge port, else
the in-interface), the MAC must match unless MACSPOOF, then the responder
decides. Any failure becomes the configured error verdict and one log line
naming the interface: the caller always has a verdict to give.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv6Address

from daemons.dhcpd import responder
from daemons.dhcpd.bindings import Binding, BindingTable
from daemons.dhcpd.config import DhcpdConfig
from daemons.dhcpd.interfaces import InterfaceMacs, name_of
from daemons.dhcpd.responder import Outcome, accept
from net import dhcpv4, dhcpv6, icmpv6_nd
from net.icmpv6_nd import NeighborSolicitation, RouterSolicitation, source_mac
from net.ip_frames import IPPROTO_ICMPV6, IPPROTO_UDP, mac_text, parse_ip, parse_udp
from net.nfqueue import NF_ACCEPT, NF_DROP
from net.packet_errors import MalformedPacket

__all__ = ["Dispatcher", "Stats"]

log = logging.getLogger("nefeli-dhcpd")

KINDS = ("dhcp", "rs", "ns", "dhcpv6", "other")


@dataclass
class Stats:
    """Counters by kind of packet, and the last errors (for /status and /metrics)."""

    received: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    verdicts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    replies: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    malformed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    by_queue: dict[int, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    last_errors: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=20))
    ras_sent: int = 0
    overruns: int = 0

    def error(self, text: str) -> None:
        self.last_errors.append((time.time(), text))


class Dispatcher:
    def __init__(
        self,
        config: Callable[[], DhcpdConfig],
        table: BindingTable,
        macs: InterfaceMacs,
        stats: Stats,
    ) -> None:
        self._config = config
        self.table = table
        self.macs = macs
        self.stats = stats

    # -- entry points ------------------------------------------------------

    def handle_ip(self, ifindex: int, payload: bytes, hwaddr: bytes, queue: int | None = None) -> Outcome:
        """A packet from NFQUEUE (an IP packet, no link header)."""
        tap = name_of(ifindex)
        return self.ip_packet(tap, payload, hwaddr, queue, tap or f"ifindex {ifindex}")

    def ip_packet(
        self, tap: str | None, payload: bytes, hwaddr: bytes, queue: int | None = None, where: str | None = None
    ) -> Outcome:
        """An IP packet (no link header) that came in on ``tap`` (None: an interface
        that has no name now), from NFQUEUE or from socket mode's packet socket."""
        where = where or tap or "an unnamed interface"
        kind = "other"

        def answer() -> Outcome:
            nonlocal kind
            ip = parse_ip(payload)
            kind = _kind(ip.version, ip.proto, ip.payload)
            if tap is None:
                return accept(f"{kind} from unknown {where}: passed")
            if kind == "dhcp":
                return self._dhcpv4(self._config(), tap, parse_udp(ip.payload).payload, _mac(hwaddr))
            if kind in ("rs", "ns"):
                assert isinstance(ip.src, IPv6Address) and isinstance(ip.dst, IPv6Address)
                return self._nd(self._config(), tap, ip.payload, ip.src, ip.dst, hwaddr, ip.hop_limit)
            if kind == "dhcpv6":
                assert isinstance(ip.src, IPv6Address)
                return self._dhcpv6(self._config(), tap, parse_udp(ip.payload).payload, ip.src, hwaddr)
            return accept(f"packet on {tap} is none of DHCP, RS, NS or DHCPv6: passed")

        out = self._guarded(lambda: kind, where, answer)
        return self._count(kind, queue, out)

    def dhcpv4(self, tap: str, payload: bytes, hwaddr: bytes = b"") -> Outcome:
        """``hwaddr``: the Ethernet source of the request, when known (NFQUEUE gives it)."""
        out = self._guarded(lambda: "dhcp", tap, lambda: self._dhcpv4(self._config(), tap, payload, _mac(hwaddr)))
        return self._count("dhcp", None, out)

    def dhcpv6(self, tap: str, payload: bytes, src: IPv6Address, hwaddr: bytes) -> Outcome:
        out = self._guarded(lambda: "dhcpv6", tap, lambda: self._dhcpv6(self._config(), tap, payload, src, hwaddr))
        return self._count("dhcpv6", None, out)

    def _guarded(self, kind: Callable[[], str], where: str, answer: Callable[[], Outcome]) -> Outcome:
        """``answer()``, or the verdict for a failure: a packet nobody is bound to passes
        untouched even when it does not decode; one from a bound interface gets the
        configured error verdict."""
        try:
            return answer()
        except MalformedPacket as exc:
            if where not in self.table:
                return accept(f"{kind()} on {where}: no binding, passed (malformed: {exc.reason})")
            return self._failed(kind(), where, f"malformed: {exc.reason}", malformed=True)
        except Exception as exc:  # noqa: BLE001 - every packet gets a verdict
            return self._failed(kind(), where, f"{type(exc).__name__}: {exc}", unexpected=exc)

    # -- the rules -----------------------------------------------------------

    def _binding(self, tap: str, mac: bytes | None, what: str) -> tuple[Binding | None, Outcome | None]:
        b = self.table.get(tap)
        if b is None:
            return None, accept(f"{what} on {tap}: no binding, passed")
        if mac is not None and mac != b.mac and not b.macspoof:
            note = f"{what} on {tap} from foreign MAC {mac_text(mac)} (bound {mac_text(b.mac)}): passed"
            return None, accept(note, logging.WARNING)
        return b, None

    def _source_mac(self, b: Binding) -> bytes:
        mac = self.macs.get(b.source_interface)
        if mac is None:
            raise LookupError(f"INDEV interface {b.source_interface} not found")
        return mac

    def _dhcpv4(self, cfg: DhcpdConfig, tap: str, payload: bytes, frame_src: bytes | None) -> Outcome:
        if not cfg.dhcp.enable_dhcp:
            return accept(f"DHCP on {tap}: DHCP is off, passed")
        if tap not in self.table:
            return accept(f"DHCP on {tap}: no binding, passed")
        msg = dhcpv4.decode(payload)
        b, out = self._binding(tap, msg.mac, "DHCP")
        if out is not None:
            return out
        assert b is not None
        return responder.answer_dhcpv4(cfg, b, msg, self._source_mac(b), frame_src)

    def _nd(
        self, cfg: DhcpdConfig, tap: str, icmp: bytes, src: IPv6Address, dst: IPv6Address, hwaddr: bytes, hop_limit: int
    ) -> Outcome:
        if not cfg.ipv6.enable_ipv6:
            return accept(f"ND on {tap}: IPv6 is off, passed")
        if tap not in self.table:
            return accept(f"ND on {tap}: no binding, passed")
        msg = icmpv6_nd.decode(icmp, src, dst)
        if hop_limit != 255:
            raise MalformedPacket(f"ND message with hop limit {hop_limit}")
        client_mac = hwaddr[:6] if len(hwaddr) >= 6 else source_mac(msg)
        b, out = self._binding(tap, client_mac, type(msg).__name__)
        if out is not None:
            return out
        assert b is not None
        mac = client_mac or b.mac
        if isinstance(msg, RouterSolicitation):
            return responder.answer_rs(cfg, b, src, mac, self._source_mac(b))
        if isinstance(msg, NeighborSolicitation):
            return responder.answer_ns(cfg, b, msg, src, mac, self._source_mac(b))
        return accept(f"{type(msg).__name__} on {tap}: passed")

    def _dhcpv6(self, cfg: DhcpdConfig, tap: str, payload: bytes, src: IPv6Address, hwaddr: bytes) -> Outcome:
        if not cfg.ipv6.enable_ipv6:
            return accept(f"DHCPv6 on {tap}: IPv6 is off, passed")
        if tap not in self.table:
            return accept(f"DHCPv6 on {tap}: no binding, passed")
        msg = dhcpv6.decode(payload)
        client_mac = hwaddr[:6] if len(hwaddr) >= 6 else None
        b, out = self._binding(tap, client_mac, "DHCPv6")
        if out is not None:
            return out
        assert b is not None
        return responder.answer_dhcpv6(cfg, b, msg, src, client_mac or b.mac, self._source_mac(b))

    # -- bookkeeping ---------------------------------------------------------

    def _failed(self, kind: str, where: str, reason: str, *, malformed: bool = False, unexpected: BaseException | None = None) -> Outcome:
        verdict = NF_ACCEPT if self._config().on_error == "accept" else NF_DROP
        text = f"{kind} on {where}: {reason}"
        if malformed:
            self.stats.malformed[kind] += 1
        else:
            self.stats.errors[kind] += 1
        self.stats.error(text)
        if unexpected is not None and not isinstance(unexpected, LookupError):
            log.error("%s", text, exc_info=unexpected)
        return Outcome(verdict, [], text + f" ({'accepted' if verdict == NF_ACCEPT else 'dropped'})", logging.WARNING)

    def _count(self, kind: str, queue: int | None, out: Outcome) -> Outcome:
        st = self.stats
        st.received[kind] += 1
        verdict = "accept" if out.verdict == NF_ACCEPT else "drop"
        st.verdicts[(kind, verdict)] += 1
        if queue is not None:
            q = st.by_queue[queue]
            q["received"] += 1
            q[verdict] += 1
            q["replies"] += len(out.replies)
        for _ in out.replies:
            st.replies[kind] += 1
        return out


def _kind(version: int, proto: int, payload: bytes) -> str:
    if proto == IPPROTO_UDP and len(payload) >= 4:
        dport = int.from_bytes(payload[2:4], "big")
        if version == 4 and dport == 67:
            return "dhcp"
        if version == 6 and dport == 547:
            return "dhcpv6"
    if version == 6 and proto == IPPROTO_ICMPV6 and payload:
        return {133: "rs", 135: "ns"}.get(payload[0], "other")
    return "other"


def _mac(hwaddr: bytes) -> bytes | None:
    return hwaddr[:6] if len(hwaddr) >= 6 else None
