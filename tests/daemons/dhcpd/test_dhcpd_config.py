"""Configuration: the original nfdhcpd.conf read unchanged, its precedence between the
TOML file and the flags, and bad input refused with one line and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemons.dhcpd.main import APP
from daemons.dhcpd.nfdhcpd_conf import parse_nfdhcpd_conf
from daemons.runtime import ConfigError

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO / "tests" / "fixtures" / "dhcpd" / "nfdhcpd.conf"


def load(*argv: str):  # type: ignore[no-untyped-def]
    loader = APP.loader()
    return loader.load(loader.parse_args(list(argv))).config


def test_the_original_file_as_is() -> None:
    cfg = load("--nfdhcpd-conf", str(FIXTURE))
    assert str(cfg.general.datapath) == "/var/lib/nfdhcpd"
    assert cfg.general.pidfile == "/var/run/nfdhcpd/nfdhcpd.pid" and cfg.general.user == "nobody"
    assert cfg.dhcp.enable_dhcp and cfg.dhcp.lease_lifetime == 604800 and cfg.dhcp.lease_renewal == 600
    assert cfg.dhcp.server_ip == "1.2.3.4" and not cfg.dhcp.server_on_link and cfg.dhcp.dhcp_queue == 42
    assert cfg.dhcp.nameservers == ["194.177.210.210", "194.177.210.211"]
    assert cfg.dhcp.domain == "synnefo.example.org"
    assert cfg.ipv6.enable_ipv6 and cfg.ipv6.mode == "auto" and cfg.ipv6.ra_period == 300.0
    assert (cfg.ipv6.rs_queue, cfg.ipv6.ns_queue, cfg.ipv6.dhcpv6_queue) == (43, 44, 45)
    assert cfg.ipv6.nameservers == ["2001:648:2ffc:200::184", "2001:648:2ffc:200::185"]
    assert cfg.ipv6.domains == ["synnefo.example.org", "example.org"]


def test_precedence_toml_then_nfdhcpd_conf_then_flags(tmp_path: Path) -> None:
    toml = tmp_path / "d.toml"
    toml.write_text(f'nfdhcpd_conf = "{FIXTURE}"\n[dhcp]\nlease_renewal = 900\nserver_ip = "9.9.9.9"\n')
    cfg = load("--config", str(toml), "--dhcp.lease-lifetime", "3600")
    assert cfg.dhcp.lease_renewal == 600  # nfdhcpd.conf over TOML
    assert cfg.dhcp.server_ip == "1.2.3.4"
    assert cfg.dhcp.lease_lifetime == 3600  # flags over both


@pytest.mark.parametrize(
    "text, reason",
    [
        ("[dhcp]\nlease_lifetime = a week\n", "expected a number"),
        ("[dhcp]\nenable_dhcp = maybe\n", "expected yes or no"),
        ("[dhcp]\nnameservers = 1.2.3\n", "dhcp.nameservers"),
        ("[ipv6]\nmode = stateful\n", "ipv6.mode"),
        ("[ipv6]\nfrobnicate = 1\n", "unknown key 'frobnicate'"),
        ("[extra]\na = 1\n", "unknown section [extra]"),
        ("dhcp_queue = 42\n", "no section header"),
        ("[dhcp]\ndhcp_queue = 70000\n", "dhcp.dhcp_queue"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, text: str, reason: str) -> None:
    f = tmp_path / "nfdhcpd.conf"
    f.write_text(text)
    with pytest.raises(ConfigError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        load("--nfdhcpd-conf", str(f))


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemons.dhcpd.main", *argv],
        cwd=REPO, capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def test_cli_exit_codes(tmp_path: Path) -> None:
    ok = run("--nfdhcpd-conf", str(FIXTURE), "--check-config")
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "nfdhcpd.conf"
    bad.write_text("[dhcp]\nlease_lifetime = soon\n")
    r = run("--nfdhcpd-conf", str(bad), "--check-config")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert f"{bad}: [dhcp] lease_lifetime: expected a number, got 'soon'" in r.stderr
    missing = run("--general.datapath", str(tmp_path / "nowhere"), "--metrics-listen", "")
    assert missing.returncode == 2 and "is not a directory" in missing.stderr
    printed = run("--nfdhcpd-conf", str(FIXTURE), "--print-config")
    assert 'nameservers = ["194.177.210.210", "194.177.210.211"]' in printed.stdout
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("nefeli-dhcpd ")


def test_status_without_a_daemon() -> None:
    r = run("status", "--url", "http://127.0.0.1:9")
    assert r.returncode == 1 and "cannot reach" in r.stderr


@given(st.text(max_size=400))
def test_any_text_parses_or_is_refused_in_one_line(text: str) -> None:
    try:
        parse_nfdhcpd_conf(text, "f")
    except ConfigError as exc:
        assert "\n" not in str(exc)
