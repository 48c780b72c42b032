"""Binding files: one per VM interface under the data path, written by Synnefo's
network hooks (``cat >file``) and removed with ``rm``.

The format and the rules are nfdhcpd's: ``KEY=value`` lines (INDEV, IP, MAC,
HOSTNAME, SUBNET, GATEWAY, SUBNET6, GATEWAY6, EUI64, MACSPOOF, MTU, PRIVATE,
TAGS; others ignored), the file name is the interface, and a binding is valid
with MAC and HOSTNAME (IP optional). Dot-files are skipped, as nfdhcpd's glob did.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

from net.icmpv6_nd import link_local_from_mac
from net.ip_frames import mac_bytes, mac_text

__all__ = ["Binding", "BindingError", "BindingTable", "parse_binding", "eui64_address"]

log = logging.getLogger("nefeli-dhcpd.bindings")

KEYS = ("INDEV", "IP", "MAC", "HOSTNAME", "SUBNET", "GATEWAY", "SUBNET6", "GATEWAY6",
        "EUI64", "MACSPOOF", "MTU", "PRIVATE", "TAGS")  # fmt: skip
_TRUE = {"1", "yes", "true", "on", "y"}
MAX_FILE = 64 * 1024


class BindingError(ValueError):
    """A binding file that cannot be used; the text says which key and why."""


@dataclass(frozen=True, slots=True)
class Binding:
    tap: str
    mac: bytes
    hostname: str
    ip: IPv4Address | None = None
    indev: str | None = None
    subnet: IPv4Network | None = None
    gateway: IPv4Address | None = None
    subnet6: IPv6Network | None = None
    gateway6: IPv6Address | None = None
    eui64: IPv6Address | None = None
    macspoof: bool = False
    mtu: int | None = None
    private: bool = False
    tags: tuple[str, ...] = field(default=())

    @property
    def source_interface(self) -> str:
        """The interface whose MAC the replies carry (INDEV, else the tap itself)."""
        return self.indev or self.tap

    @property
    def address6(self) -> IPv6Address | None:
        """The VM's IPv6 address: EUI64 when given, else SUBNET6's prefix + the MAC's EUI-64."""
        if self.eui64 is not None:
            return self.eui64
        if self.subnet6 is not None and self.subnet6.prefixlen <= 64:
            return eui64_address(self.subnet6, self.mac)
        return None

    def summary(self) -> dict[str, object]:
        return {
            "tap": self.tap,
            "mac": mac_text(self.mac),
            "hostname": self.hostname,
            "ip": str(self.ip) if self.ip else None,
            "indev": self.indev,
            "subnet": str(self.subnet) if self.subnet else None,
            "gateway": str(self.gateway) if self.gateway else None,
            "subnet6": str(self.subnet6) if self.subnet6 else None,
            "gateway6": str(self.gateway6) if self.gateway6 else None,
            "eui64": str(self.address6) if self.address6 else None,
            "macspoof": self.macspoof,
            "mtu": self.mtu,
            "private": self.private,
            "tags": list(self.tags),
        }


def eui64_address(prefix: IPv6Network, mac: bytes) -> IPv6Address:
    iid = link_local_from_mac(mac).packed[8:]
    return IPv6Address(prefix.network_address.packed[:8] + iid)


def _parse(key: str, value: str, fn):  # type: ignore[no-untyped-def]
    try:
        return fn(value)
    except ValueError as exc:
        raise BindingError(f"{key}={value!r}: {exc}") from None


def parse_binding(text: str, tap: str) -> Binding:
    """A binding from a file's text (last line of a key wins, as in nfdhcpd)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key in KEYS:
            values[key] = value.strip().strip("'\"")
    mac_s = values.get("MAC", "")
    hostname = values.get("HOSTNAME", "")
    if not mac_s or not hostname:
        raise BindingError("needs MAC and HOSTNAME")

    def opt(key: str, fn):  # type: ignore[no-untyped-def]
        v = values.get(key, "")
        return _parse(key, v, fn) if v else None

    mac = _parse("MAC", mac_s, mac_bytes)
    subnet = opt("SUBNET", lambda v: IPv4Network(v, strict=False))
    subnet6 = opt("SUBNET6", lambda v: IPv6Network(v, strict=False))
    mtu = opt("MTU", int)
    if mtu is not None and not 68 <= mtu <= 65535:
        raise BindingError(f"MTU={mtu}: out of range")
    return Binding(
        tap=tap,
        mac=mac,
        hostname=hostname,
        ip=opt("IP", IPv4Address),
        indev=values.get("INDEV") or None,
        subnet=subnet,
        gateway=opt("GATEWAY", IPv4Address),
        subnet6=subnet6,
        gateway6=opt("GATEWAY6", IPv6Address),
        eui64=opt("EUI64", IPv6Address),
        macspoof=values.get("MACSPOOF", "").lower() in _TRUE,
        mtu=mtu,
        private=values.get("PRIVATE", "").lower() in _TRUE,
        tags=tuple(values.get("TAGS", "").split()),
    )


class BindingTable:
    """The bindings read from the data path, by interface name."""

    def __init__(self, datapath: Path) -> None:
        self.datapath = datapath
        self._by_tap: dict[str, Binding] = {}
        self.errors: dict[str, str] = {}
        self.generation = 0

    def __len__(self) -> int:
        return len(self._by_tap)

    def __iter__(self) -> Iterator[Binding]:
        return iter(list(self._by_tap.values()))

    def __contains__(self, tap: object) -> bool:
        return tap in self._by_tap

    def get(self, tap: str) -> Binding | None:
        return self._by_tap.get(tap)

    @staticmethod
    def watched(name: str) -> bool:
        return bool(name) and not name.startswith(".") and "/" not in name

    def load(self, name: str, *, final: bool = True) -> Binding | None:
        """(Re-)read one file. ``final=False`` (a file just created, maybe still being
        written) keeps quiet about an incomplete file and leaves the old binding alone."""
        if not self.watched(name):
            return None
        path = self.datapath / name
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_FILE + 1)
            if len(data) > MAX_FILE:
                raise BindingError(f"over {MAX_FILE} bytes")
            binding = parse_binding(data.decode("utf-8", "replace"), name)
        except FileNotFoundError:
            self.remove(name)
            return None
        except (OSError, BindingError) as exc:
            if not final:
                log.debug("binding %s not complete yet: %s", name, exc)
                return None
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.errors[name] = reason
            if self._by_tap.pop(name, None) is not None:
                self.generation += 1
            log.warning("binding file %s ignored: %s", path, reason)
            return None
        self.errors.pop(name, None)
        if self._by_tap.get(name) != binding:
            self._by_tap[name] = binding
            self.generation += 1
            log.info(
                "binding %s: mac %s ip %s hostname %s%s",
                name,
                mac_text(binding.mac),
                binding.ip or "-",
                binding.hostname,
                f" subnet6 {binding.subnet6}" if binding.subnet6 else "",
            )
        return binding

    def remove(self, name: str) -> None:
        self.errors.pop(name, None)
        if self._by_tap.pop(name, None) is not None:
            self.generation += 1
            log.info("binding %s removed", name)

    def rescan(self) -> None:
        """Read every file again; bindings whose file is gone are dropped."""
        try:
            names = {n for n in os.listdir(self.datapath) if self.watched(n)}
        except OSError as exc:
            log.error("cannot list %s: %s", self.datapath, exc.strerror or exc)
            return
        for gone in set(self._by_tap) - names:
            self.remove(gone)
        for gone in set(self.errors) - names:
            self.errors.pop(gone, None)
        for name in sorted(names):
            if (self.datapath / name).is_file():
                self.load(name)
        log.info("%d bindings from %s", len(self._by_tap), self.datapath)
