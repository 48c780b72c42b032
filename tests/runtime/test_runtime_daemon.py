"""The runtime end to end: tests/runtime/sample_daemon.py run as a real process.

Each test binds its own unix datagram socket as $NOTIFY_SOCKET and reads what
the daemon tells "systemd"; stderr goes to a file so its exact lines (and its
dev:inode, for $JOURNAL_STREAM) can be checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from peers import require_program

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SAMPLE = TESTS / "sample_daemon.py"
PROG = "sample-daemon"

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.\-]+: "
)
JOURNAL_LINE = re.compile(r"^<[0-7]>[\w.\-]+: ")


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment: nothing inherited from a systemd-run CI job."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "LC_ALL": "C.UTF-8",
    }
    env.update(extra)
    return env


class Daemon:
    """One sample daemon process plus the notify socket it reports to."""

    def __init__(
        self,
        tmp_path: Path,
        *args: str,
        env: dict[str, str] | None = None,
        notify: bool = True,
        prefix: list[str] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        self.notify: socket.socket | None = None
        extra = dict(env or {})
        if notify:
            path = str(tmp_path / "notify.sock")
            self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.notify.bind(path)
            extra.setdefault("NOTIFY_SOCKET", path)
        self.stderr_path = tmp_path / "stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        cmd = [*(prefix or [sys.executable, str(SAMPLE)]), *args]
        self.proc = subprocess.Popen(
            cmd,
            env=base_env(**extra),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            pass_fds=pass_fds,
        )
        self.seen: list[dict[str, str]] = []

    def message(self, timeout: float = 5.0) -> dict[str, str] | None:
        assert self.notify is not None
        self.notify.settimeout(timeout)
        try:
            data = self.notify.recv(4096).decode()
        except TimeoutError:
            return None
        msg = dict(line.split("=", 1) for line in data.split("\n") if line)
        self.seen.append(msg)
        return msg

    def wait_for(self, key: str, value: str | None = None, timeout: float = 5.0) -> dict[str, str]:
        """The next message that has ``key`` (equal to ``value`` if given)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = self.message(left)
            if msg is None:
                break
            if key in msg and (value is None or msg[key] == value):
                return msg
        raise AssertionError(
            f"no {key}={value} within {timeout}s; seen {self.seen}; stderr:\n{self.stderr()}"
        )

    def kill(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()
        if self.notify is not None:
            self.notify.close()


@pytest.fixture
def spawn(tmp_path: Path):
    started: list[Daemon] = []

    def _spawn(*args: str, **kw) -> Daemon:
        d = Daemon(tmp_path, *args, **kw)
        started.append(d)
        return d

    yield _spawn
    for d in started:
        d.close()


def run_sample(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SAMPLE), *args],
        env=base_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )


# ------------------------------------------------------------ start and stop


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_ready_status_then_signal_is_a_clean_stop(spawn, sig: int) -> None:
    d = spawn()
    ready = d.wait_for("READY", "1")
    assert ready["STATUS"] == "greeting=hello workers=4"
    d.kill(sig)
    stopping = d.wait_for("STOPPING", "1")
    assert signal.Signals(sig).name in stopping["STATUS"]
    assert d.wait() == 0
    err = d.stderr()
    assert f"stopping: received {signal.Signals(sig).name}" in err
    assert "stopped (received" in err and "Traceback" not in err


def test_abstract_notify_socket(spawn, tmp_path: Path) -> None:
    name = f"nefeli-rt-{os.getpid()}-{time.monotonic_ns()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    d = spawn(notify=False, env={"NOTIFY_SOCKET": "@" + name})
    d.notify = s
    assert "READY" in d.wait_for("READY")
    d.kill(signal.SIGTERM)
    d.wait_for("STOPPING")
    assert d.wait() == 0


def test_runs_without_notify_socket(spawn) -> None:
    d = spawn(notify=False)
    deadline = time.monotonic() + 5
    while "ready" not in d.stderr() and time.monotonic() < deadline:
        time.sleep(0.02)
    d.kill(signal.SIGTERM)
    assert d.wait() == 0


def test_watchdog_pings_at_half_the_interval(spawn) -> None:
    d = spawn(env={"WATCHDOG_USEC": "100000"})
    d.wait_for("READY")
    t0 = time.monotonic()
    for _ in range(4):
        d.wait_for("WATCHDOG", "1", timeout=1)
    assert time.monotonic() - t0 < 1.0  # ~50 ms apart
    d.kill(signal.SIGTERM)
    assert d.wait() == 0


def test_watchdog_for_another_pid_is_not_ours(spawn) -> None:
    d = spawn(env={"WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"})
    d.wait_for("READY")
    time.sleep(0.3)
    d.kill(signal.SIGTERM)
    d.wait_for("STOPPING")
    assert d.wait() == 0
    assert not any("WATCHDOG" in m for m in d.seen)


def test_second_signal_forces_exit(spawn) -> None:
    d = spawn("--cleanup-delay", "30")
    d.wait_for("READY")
    d.kill(signal.SIGTERM)
    d.wait_for("STOPPING")
    time.sleep(0.1)
    t0 = time.monotonic()
    d.kill(signal.SIGINT)
    assert d.wait(5) == 128 + signal.SIGINT
    assert time.monotonic() - t0 < 3
    assert "received SIGINT again while stopping: exiting now" in d.stderr()


def test_cleanup_is_bounded_by_shutdown_timeout(spawn) -> None:
    d = spawn("--cleanup-delay", "30", "--shutdown-timeout", "0.3")
    d.wait_for("READY")
    t0 = time.monotonic()
    d.kill(signal.SIGTERM)
    assert d.wait(5) == 1
    assert time.monotonic() - t0 < 3
    assert "cleanup did not finish within 0.3s" in d.stderr()


def test_crash_in_main_exits_1_with_one_log_line(spawn) -> None:
    d = spawn("--crash", "--log-format", "journal")
    d.wait_for("READY")
    assert d.wait() == 1
    lines = [ln for ln in d.stderr().splitlines() if "fatal error" in ln]
    assert len(lines) == 1
    assert lines[0].startswith(
        "<2>nefeli.runtime: fatal error: sample crash\\nacross lines\\nTraceback"
    )
    assert lines[0].endswith("RuntimeError: sample crash\\nacross lines")


# ------------------------------------------------------------------- reload


def test_sighup_reload_applies_new_config_and_keeps_flags(spawn, tmp_path: Path) -> None:
    cfg = tmp_path / "sample.toml"
    cfg.write_text('greeting = "one"\nworkers = 2\n')
    d = spawn("--config", str(cfg), "--workers", "7")
    assert d.wait_for("READY")["STATUS"] == "greeting=one workers=7"
    cfg.write_text('greeting = "two"\nworkers = 3\nlog_level = "debug"\n')
    d.kill(signal.SIGHUP)
    reloading = d.wait_for("RELOADING", "1")
    usec = int(reloading["MONOTONIC_USEC"])
    assert abs(usec - time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000) < 5_000_000
    assert d.wait_for("READY", "1")["STATUS"] == "greeting=two workers=7"  # flag still wins
    d.kill(signal.SIGTERM)
    assert d.wait() == 0
    err = d.stderr()
    assert "reloaded: greeting=two" in err
    assert "configuration reloaded" in err


def test_broken_config_on_reload_keeps_running(spawn, tmp_path: Path) -> None:
    cfg = tmp_path / "sample.toml"
    cfg.write_text('greeting = "good"\n')
    d = spawn("--config", str(cfg))
    d.wait_for("READY")
    for broken in ('greeting = "unterminated\n', "workers = 1000\n", "bogus = 1\n"):
        cfg.write_text(broken)
        d.kill(signal.SIGHUP)
        d.wait_for("RELOADING")
        assert "reload failed" in d.wait_for("READY")["STATUS"]
    cfg.unlink()
    d.kill(signal.SIGHUP)
    assert "cannot read" in d.wait_for("READY")["STATUS"]
    cfg.write_text('greeting = "fixed"\n')
    d.kill(signal.SIGHUP)
    assert d.wait_for("READY")["STATUS"] == "greeting=fixed workers=4"
    assert d.proc.poll() is None
    d.kill(signal.SIGTERM)
    assert d.wait() == 0
    err = d.stderr()
    assert err.count("reload failed, keeping the running configuration") == 4
    assert "sample.toml:1:13: invalid TOML" in err or "sample.toml:1:" in err


def test_reload_rejected_by_daemon_restores_old_config(spawn, tmp_path: Path) -> None:
    cfg = tmp_path / "sample.toml"
    cfg.write_text('greeting = "a"\n')
    d = spawn("--config", str(cfg))
    d.wait_for("READY")
    cfg.write_text('greeting = "b"\nreject_reload = true\n')
    d.kill(signal.SIGHUP)
    assert "reload rejected (sample refuses" in d.wait_for("READY")["STATUS"]
    cfg.write_text('greeting = "c"\n[http]\nport = 1\n')
    d.kill(signal.SIGHUP)
    assert d.wait_for("READY")["STATUS"] == "greeting=c workers=4"
    d.kill(signal.SIGTERM)
    assert d.wait() == 0
    assert "http.port changed: it takes effect only after a restart" in d.stderr()


# ----------------------------------------------------------- bad configs


BAD_FILES = [
    ("workres = 3\n", "sample.toml:1: unknown key 'workres' (did you mean 'workers'?)"),
    ('workers = "3"\n', "sample.toml:1: workers: expected an integer, got a string ('3')"),
    ("\n\nworkers = 100\n", "sample.toml:3: workers: must be <= 64, got 100"),
    ("[http]\nport = -5\n", "sample.toml:2: http.port: must be >= 0, got -5"),
    ("block_size = 3\n", "sample.toml:1: block_size: must be even, got 3"),
    ('greeting = "x\n', "sample.toml:1:14: invalid TOML: illegal character"),
    ("[http\n", "sample.toml:1:6: invalid TOML"),
    ("http = 3\n", "sample.toml:1: http: expected a table, got an integer"),
    (b"greeting = '\xff'\n", "sample.toml:1: not valid UTF-8"),
]


@pytest.mark.parametrize(("content", "reason"), BAD_FILES)
def test_bad_config_file_exits_2_with_one_line(
    tmp_path: Path, content: str | bytes, reason: str
) -> None:
    cfg = tmp_path / "sample.toml"
    cfg.write_bytes(content if isinstance(content, bytes) else content.encode())
    res = run_sample("--config", str(cfg))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and res.stderr.endswith("\n")
    assert res.stderr.startswith(f"{PROG}: {cfg.parent}/{reason}")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (
            ["--config", "/nonexistent/x.toml"],
            "/nonexistent/x.toml: cannot read: No such file or directory",
        ),
        (["--config", "/"], "/: cannot read: Is a directory"),
        (["--workers", "many"], "--workers: expected an integer, got 'many'"),
        (["--ratio", "2"], "--ratio: must be <= 1, got 2.0"),
        (
            ["--log-format", "xml"],
            "--log-format: must be one of 'auto', 'journal', 'text', got 'xml'",
        ),
        (["--frobnicate"], "unrecognized arguments: --frobnicate (see --help)"),
        (["--workers"], "argument --workers: expected one argument (see --help)"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args: list[str], reason: str) -> None:
    res = run_sample(*args)
    assert (res.returncode, res.stderr) == (2, f"{PROG}: {reason}\n")


def test_config_error_line_gets_err_priority_in_the_journal(tmp_path: Path) -> None:
    err = tmp_path / "err"
    with open(err, "wb") as fh:
        st = os.fstat(fh.fileno())
        res = subprocess.run(
            [sys.executable, str(SAMPLE), "--workers", "0"],
            stderr=fh,
            stdout=subprocess.DEVNULL,
            env=base_env(JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}"),
            timeout=20,
        )
    assert res.returncode == 2
    assert err.read_text() == f"<3>{PROG}: --workers: must be >= 1, got 0\n"


def test_check_and_print_config(tmp_path: Path) -> None:
    cfg = tmp_path / "sample.toml"
    cfg.write_text('greeting = "file"\nworkers = 2\ntoken = "hunter2"\n[http]\nbanner = "b"\n')
    res = run_sample("--config", str(cfg), "--check-config")
    assert res.returncode == 0 and "configuration OK" in res.stdout and res.stderr == ""
    res = run_sample("--config", str(cfg), "--print-config", "--workers", "5")
    assert res.returncode == 0, res.stderr
    doc = tomllib.loads(res.stdout)
    assert doc["greeting"] == "file" and doc["workers"] == 5 and doc["http"]["banner"] == "b"
    assert doc["token"] == "***"
    res = run_sample("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"{PROG} 0.0-test"
    res = run_sample("--help")
    assert res.returncode == 0 and "--http.port" in res.stdout and "--log-format" in res.stdout


# ------------------------------------------------------- socket activation


def _ask(addr: tuple[str, int] | str, family: int = socket.AF_INET) -> dict:
    with socket.socket(family, socket.SOCK_STREAM) as c:
        c.settimeout(5)
        c.connect(addr)
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def test_socket_activation_with_inherited_sockets(spawn, tmp_path: Path) -> None:
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    port = tcp.getsockname()[1]
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(tmp_path / "extra.sock"))
    unix.listen(1)
    fds = (tcp.fileno(), unix.fileno())
    d = spawn(
        "--http.banner",
        "activated",
        prefix=[
            sys.executable,
            str(SAMPLE),
            "--x-activate",
            f"{fds[0]},{fds[1]}",
            "control:extra",
            "--",
        ],
        pass_fds=fds,
    )
    tcp.close()  # the daemon owns it now
    unix.close()
    d.wait_for("READY")
    reply = _ask(("127.0.0.1", port))
    assert reply["banner"] == "activated"
    assert reply["env"] == {
        k: None
        for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC")
    }
    assert reply["unused_sockets"] == ["extra"]
    assert "sockets control, extra" in d.stderr()
    d.kill(signal.SIGTERM)
    assert d.wait() == 0


def test_socket_activation_single_unnamed_socket(spawn, tmp_path: Path) -> None:
    """One socket named 'control'; nothing left over."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    port = tcp.getsockname()[1]
    d = spawn(
        prefix=[sys.executable, str(SAMPLE), "--x-activate", str(tcp.fileno()), "control", "--"],
        pass_fds=(tcp.fileno(),),
    )
    tcp.close()
    d.wait_for("READY")
    reply = _ask(("127.0.0.1", port))
    assert reply["banner"] == "hi" and reply["unused_sockets"] == []
    assert reply["env"]["LISTEN_FDS"] is None
    d.kill(signal.SIGTERM)
    assert d.wait() == 0


def test_socket_activation_by_systemd_socket_activate(spawn, tmp_path: Path) -> None:
    require_program("systemd-socket-activate")
    path = str(tmp_path / "ctl.sock")
    d = spawn(
        "--http.banner",
        "sd",
        prefix=[
            "systemd-socket-activate",
            "-l",
            path,
            "--fdname=control",
            "-E",
            "PYTHONPATH",
            "-E",
            "NOTIFY_SOCKET",
            sys.executable,
            str(SAMPLE),
        ],
    )
    deadline = time.monotonic() + 5
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    reply = _ask(path, socket.AF_UNIX)  # the first connection starts the daemon
    assert reply["banner"] == "sd" and reply["env"]["LISTEN_FDNAMES"] is None
    d.wait_for("READY")
    d.kill(signal.SIGTERM)
    assert d.wait() == 0


# ------------------------------------------------------------- log formats


def test_text_log_format_outside_the_journal(spawn) -> None:
    d = spawn("--log-level", "debug")
    d.wait_for("READY")
    d.kill(signal.SIGTERM)
    assert d.wait() == 0
    lines = d.stderr().splitlines()
    assert lines and all(TEXT_LINE.match(ln) for ln in lines), lines
    assert any(ln.endswith("DEBUG sample-daemon: debug line\\nwith a second line") for ln in lines)


def test_journal_log_format_when_stderr_is_the_journal(tmp_path: Path) -> None:
    # A file plays journald: JOURNAL_STREAM names its dev:inode, as systemd does.
    path = tmp_path / "journal.log"
    path.touch()
    st = os.stat(path)
    with open(path, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, str(SAMPLE), "--log-level", "debug", "--greeting", "j"],
            stderr=fh,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=base_env(JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}"),
        )
        try:
            deadline = time.monotonic() + 5
            while "ready" not in path.read_text() and time.monotonic() < deadline:
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    lines = path.read_text().splitlines()
    assert lines and all(JOURNAL_LINE.match(ln) for ln in lines), lines
    assert "<6>sample-daemon: ready: greeting=j workers=4" in lines
    assert "<7>sample-daemon: debug line\\nwith a second line" in lines
    assert not any(re.search(r"\d\d:\d\d:\d\d", ln) for ln in lines)


def test_journal_stream_of_another_file_means_text(spawn) -> None:
    d = spawn("--greeting", "t", env={"JOURNAL_STREAM": "1:1"})
    d.wait_for("READY")
    d.kill(signal.SIGTERM)
    assert d.wait() == 0
    assert all(TEXT_LINE.match(ln) for ln in d.stderr().splitlines())


def test_forced_journal_format(spawn) -> None:
    d = spawn("--log-format", "journal")
    d.wait_for("READY")
    d.kill(signal.SIGTERM)
    assert d.wait() == 0
    lines = d.stderr().splitlines()
    assert lines and all(JOURNAL_LINE.match(ln) for ln in lines), lines
