"""Network namespaces for the nefeli-dhcpd integration tests.

One "host" namespace holds the taps (veth ends named tap*), the NFQUEUE rules
shipped in docs/dhcpd/ and the daemon; each VM is a namespace holding the other
end as eth0. Everything is torn down by :meth:`Lab.close`, which the fixtures
call whatever the test did.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from peers import require_program, require_root

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "docs" / "dhcpd"
DAEMON = [sys.executable, "-m", "daemons.dhcpd.main"]
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which has python3-scapy
_ids = itertools.count()


def sh(*args: str, check: bool = True, timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=timeout, input=input)


@dataclass
class Vm:
    ns: str
    tap: str
    mac: str
    lab: Lab

    def run(self, *cmd: str, check: bool = False, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns, *cmd, check=check, timeout=timeout)

    def popen(self, *cmd: str, **kw: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(["ip", "netns", "exec", self.ns, *cmd], text=True, **kw)

    def python(self, code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run(SYSTEM_PYTHON, "-c", code, *args, timeout=timeout)


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.id = f"nd{os.getpid() % 100000}x{next(_ids)}"
        self.tmp = tmp
        self.host = f"{self.id}h"
        self.datapath = tmp / "bindings"
        self.datapath.mkdir(parents=True, exist_ok=True)
        self.vms: list[Vm] = []
        self.procs: list[subprocess.Popen[str]] = []
        self.daemon: subprocess.Popen[str] | None = None
        self.log = tmp / "dhcpd.log"
        self.port = 9134
        sh("ip", "netns", "add", self.host)
        self.ns_run("ip", "link", "set", "lo", "up")
        for key in ("all", "default"):
            self.ns_run("sysctl", "-qw", f"net.ipv6.conf.{key}.accept_dad=0")

    # -- plumbing ------------------------------------------------------------

    def ns_run(self, *cmd: str, check: bool = True, timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.host, *cmd, check=check, timeout=timeout, input=input)

    def load_rules(self) -> None:
        """The rule files shipped for operators, loaded as they are."""
        self.ns_run("iptables-restore", "--noflush", input=(RULES / "iptables.rules").read_text())
        self.ns_run("ip6tables-restore", "--noflush", input=(RULES / "ip6tables.rules").read_text())

    def add_vm(self, tap: str, mac: str, *, bridge: str | None = None) -> Vm:
        ns = f"{self.id}v{len(self.vms)}"
        sh("ip", "netns", "add", ns)
        vm = Vm(ns, tap, mac, self)
        self.vms.append(vm)
        for key in ("all", "default"):
            vm.run("sysctl", "-qw", f"net.ipv6.conf.{key}.accept_dad=0", check=True)
        sh("ip", "link", "add", tap, "netns", self.host, "type", "veth", "peer", "name", "eth0", "netns", ns)
        vm.run("ip", "link", "set", "lo", "up", check=True)
        vm.run("ip", "link", "set", "eth0", "address", mac, "up", check=True)
        if bridge is not None:
            self.ns_run("ip", "link", "set", tap, "master", bridge)
        self.ns_run("ip", "link", "set", tap, "up")
        return vm

    def add_bridge(self, name: str) -> str:
        self.ns_run("ip", "link", "add", name, "type", "bridge")
        self.ns_run("ip", "link", "set", name, "up")
        self.ns_run("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1", "net.bridge.bridge-nf-call-ip6tables=1")
        return name

    def mac_of(self, ifname: str) -> str:
        out = self.ns_run("ip", "-j", "link", "show", ifname).stdout
        return json.loads(out)[0]["address"]

    def bind(self, tap: str, **keys: str) -> Path:
        """Write a binding file as the hooks do (cat > file: create, write, close)."""
        path = self.datapath / tap
        path.write_text("".join(f"{k}={v}\n" for k, v in keys.items()))
        return path

    # -- the daemon ------------------------------------------------------------

    def start(self, toml: str = "", *args: str, ready: bool = True, log_level: str = "debug") -> subprocess.Popen[str]:
        conf = self.tmp / "dhcpd.toml"
        conf.write_text(
            f'metrics_listen = "127.0.0.1:{self.port}"\nlog_level = "{log_level}"\nlog_format = "text"\n'
            + toml
            + ("" if "[general]" in toml else f'\n[general]\ndatapath = "{self.datapath}"\n')
        )
        fh = open(self.log, "a")
        self.daemon = subprocess.Popen(
            ["ip", "netns", "exec", self.host, *DAEMON, "--config", str(conf), *args],
            cwd=REPO,
            stdout=fh,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        fh.close()
        if ready:
            self.wait_for_ready()
        return self.daemon

    def wait_for_ready(self, timeout: float = 20) -> None:
        """Until /status answers (the daemon serves it once its queues are bound)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.daemon is not None and self.daemon.poll() is not None:
                raise AssertionError(f"daemon exited ({self.daemon.returncode}):\n{self.log_text()[-3000:]}")
            try:
                self.status()
                return
            except (subprocess.CalledProcessError, ValueError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"daemon not ready after {timeout}s:\n{self.log_text()[-3000:]}") from None
                time.sleep(0.1)

    def wait_log(self, text: str, timeout: float = 10, after: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.log.read_text() if self.log.exists() else ""
            if text in data[after:]:
                return data
            if self.daemon is not None and self.daemon.poll() is not None:
                raise AssertionError(f"daemon exited ({self.daemon.returncode}) before {text!r}:\n{data[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the daemon's log after {timeout}s:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def status(self) -> dict[str, Any]:
        return json.loads(self.status_text("--json"))

    def status_text(self, *flags: str) -> str:
        """What ``nefeli-dhcpd status`` prints, run where the daemon runs."""
        return self.ns_run(*DAEMON, "status", *flags, "--url", f"http://127.0.0.1:{self.port}").stdout

    def metrics(self) -> str:
        code = f"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{self.port}/metrics').read().decode())"
        return self.ns_run(sys.executable, "-c", code).stdout

    def signal(self, sig: int) -> None:
        """Signal the daemon itself (ip netns exec execs it, so the pid is the daemon's)."""
        assert self.daemon is not None
        os.kill(self.daemon.pid, sig)

    def reload(self) -> None:
        mark = len(self.log_text())
        self.signal(signal.SIGHUP)
        self.wait_log("configuration reloaded", after=mark)

    def pending_in_kernel(self) -> dict[int, int]:
        """Packets each queue holds without a verdict (/proc/net/netfilter/nfnetlink_queue)."""
        text = self.ns_run("cat", "/proc/net/netfilter/nfnetlink_queue").stdout
        return {int(f[0]): int(f[2]) for f in (line.split() for line in text.splitlines()) if f}

    def id_sequences(self) -> dict[int, int]:
        """The last packet id each queue handed out: how many packets it has queued."""
        text = self.ns_run("cat", "/proc/net/netfilter/nfnetlink_queue").stdout
        return {int(f[0]): int(f[7]) for f in (line.split() for line in text.splitlines()) if f}

    def stop(self) -> int:
        if self.daemon is None:
            return 0
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(15)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        rc = self.daemon.returncode
        self.daemon = None
        return rc

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.stop()
        for vm in self.vms:
            # Clients that fork (dhcpcd's privilege separation, dhclient) may outlive the test.
            for pid in sh("ip", "netns", "pids", vm.ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            sh("ip", "netns", "del", vm.ns, check=False)
        sh("ip", "netns", "del", self.host, check=False)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A lab with the shipped rules loaded; torn down however the test ends."""
    require_root("network namespaces, NFQUEUE and packet sockets")
    require_program("ip", "iptables-restore", "ip6tables-restore")
    lab = Lab(tmp_path)
    try:
        lab.load_rules()
        yield lab
    finally:
        lab.close()


# -- clients ---------------------------------------------------------------------

def env_script(tmp: Path, dump: Path) -> Path:
    """A client hook that saves its environment in ``dump.<event>`` (udhcpc passes the
    event as $1, dhclient and dhcpcd as $reason) and succeeds."""
    script = tmp / f"dump-env-{dump.name}.sh"
    script.write_text(f'#!/bin/sh\nenv | sort > "{dump}.$1$reason"\nexit 0\n')
    script.chmod(0o755)
    return script


def read_env(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


def udhcpc(vm: Vm, tmp: Path, *extra: str, tries: int = 3) -> dict[str, str] | None:
    """busybox udhcpc once; the environment its script saw on 'bound', or None."""
    dump = tmp / f"udhcpc-{vm.tap}"
    script = env_script(tmp, dump)
    for f in tmp.glob(f"udhcpc-{vm.tap}.*"):
        f.unlink()
    r = sh(
        "ip", "netns", "exec", vm.ns, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
        "-t", str(tries), "-T", "1", "-A", "1", "-s", str(script),
        "-O", "search", "-O", "staticroutes", "-O", "mtu", *extra,
        check=False, timeout=30,
    )  # fmt: skip
    bound = Path(f"{dump}.bound")
    return read_env(bound) if r.returncode == 0 and bound.exists() else None


def wait_for(check: Callable[[], bool], log: Path | None = None, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out" + (f":\n{log.read_text()[-2000:]}" if log else ""))
        time.sleep(0.05)


def kill_all(procs: Sequence[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
