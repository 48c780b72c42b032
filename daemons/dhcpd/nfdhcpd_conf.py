"""Reading the original daemon's /etc/nfdhcpd/nfdhcpd.conf, unchanged.

nfdhcpd read it with configobj: INI sections, ``#`` comments also after a
value, comma-separated lists, yes/no booleans, optional quotes. This turns such
a file into the nested mapping the TOML loader validates, so every value is
checked (and every error reported) exactly as a TOML value would be.
"""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

from daemons.runtime import ConfigError

__all__ = ["KNOWN", "read_nfdhcpd_conf", "parse_nfdhcpd_conf"]

_BOOL = {"1": True, "yes": True, "true": True, "on": True, "0": False, "no": False, "false": False, "off": False}

#: section -> key -> kind, for every key nfdhcpd knew.
KNOWN: dict[str, dict[str, str]] = {
    "general": {"pidfile": "str", "datapath": "str", "logdir": "str", "user": "str"},
    "dhcp": {
        "enable_dhcp": "bool",
        "lease_lifetime": "int",
        "lease_renewal": "int",
        "server_ip": "str",
        "server_on_link": "bool",
        "dhcp_queue": "int",
        "nameservers": "list",
        "domain": "str",
    },
    "ipv6": {
        "enable_ipv6": "bool",
        "mode": "str",
        "ra_period": "float",
        "rs_queue": "int",
        "ns_queue": "int",
        "dhcpv6_queue": "int",
        "nameservers": "list",
        "domains": "list",
    },
}


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _value(kind: str, raw: str, where: str) -> Any:
    text = _unquote(raw)
    if kind == "list":
        return [_unquote(p) for p in text.split(",") if p.strip()]
    if kind == "bool":
        try:
            return _BOOL[text.lower()]
        except KeyError:
            raise ConfigError(f"{where}: expected yes or no, got {text!r}") from None
    if kind in ("int", "float"):
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {text!r}") from None
    return text


def parse_nfdhcpd_conf(text: str, source: str) -> dict[str, dict[str, Any]]:
    """The file as ``{section: {key: typed value}}``; ConfigError (one line) when it is not valid."""
    parser = configparser.RawConfigParser(
        inline_comment_prefixes=("#",), comment_prefixes=("#", ";"), strict=True, interpolation=None
    )
    try:
        parser.read_string(text, source)
    except configparser.Error as exc:
        raise ConfigError(f"{source}: {str(exc).splitlines()[0]}") from None
    out: dict[str, dict[str, Any]] = {}
    for section in parser.sections():
        known = KNOWN.get(section)
        if known is None:
            raise ConfigError(f"{source}: unknown section [{section}]")
        for key, raw in parser.items(section):
            kind = known.get(key)
            if kind is None:
                raise ConfigError(f"{source}: [{section}] unknown key {key!r}")
            if raw is None:
                raise ConfigError(f"{source}: [{section}] {key} has no value")
            value = _value(kind, raw, f"{source}: [{section}] {key}")
            if section == "general" and key == "datapath":
                value = str(Path(value))
            out.setdefault(section, {})[key] = value
    return out


def read_nfdhcpd_conf(path: Path) -> dict[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid UTF-8") from None
    return parse_nfdhcpd_conf(text, str(path))
