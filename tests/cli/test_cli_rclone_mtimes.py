"""`nefeli sync` and rclone agree on mtimes: both keep them in X-Object-Meta-Mtime.

A tree pushed by `nefeli sync` shows rclone the local mtimes (`rclone lsl`), and
`rclone check` and a dry-run `rclone sync` find nothing to do; a file rclone
uploaded comes back from `nefeli download` with rclone's mtime.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from pathlib import Path

import pytest

from peers import require_program
from cli_support import run_cli, server, write_random  # noqa: F401

MiB = 1 << 20

#: (name, size, mtime in ns): a fraction of a second, whole seconds, an old date
TREE = (
    ("a.txt", 100, 1_600_000_000_123_456_789),
    ("sub/b.bin", 2 * MiB + 1, 1_700_000_000_000_000_000),
    ("sub/deeper/c.dat", 0, 946_684_800_500_000_000),
)


def rclone_env(server, tmp: Path) -> dict[str, str]:  # noqa: F811
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RCLONE_", "OS_", "ST_"))}
    env.update(
        RCLONE_CONFIG=str(tmp / "rclone.conf"),
        RCLONE_CONFIG_TOK_TYPE="swift",
        RCLONE_CONFIG_TOK_STORAGE_URL=f"{server.url}/v1/{server.account}",
        RCLONE_CONFIG_TOK_AUTH_TOKEN=server.token,
    )
    return env


def rclone(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    exe = require_program("rclone")["rclone"]
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=300)


def lsl_mtimes(out: str) -> dict[str, int]:
    """`rclone lsl` lines: SIZE DATE TIME NAME, the time with nine decimals (UTC here)."""
    got: dict[str, int] = {}
    for line in out.splitlines():
        size, day, clock, name = line.split(None, 3)
        whole, frac = clock.split(".")
        t = dt.datetime.fromisoformat(f"{day}T{whole}+00:00")
        got[name] = int(t.timestamp()) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])
    return got


@pytest.mark.peer("rclone")
def test_rclone_sees_the_mtimes_nefeli_sync_pushed(server, tmp_path):  # noqa: F811
    src = tmp_path / "src"
    for i, (name, size, mtime) in enumerate(TREE):
        write_random(src / name, size, seed=i)
        os.utime(src / name, ns=(mtime, mtime))
    run_cli(["sync", str(src), "mtimes"], server.env(), check=True)
    env = {**rclone_env(server, tmp_path), "TZ": "UTC"}
    r = rclone(env, "lsl", "tok:mtimes")
    assert r.returncode == 0, r.stderr
    got = lsl_mtimes(r.stdout)
    for name, _size, mtime in TREE:
        # rclone turns the value into a float64 before it prints it: agree to a microsecond
        assert abs(got[name] - mtime) < 1_000, (name, got[name], mtime)
    # the MD5s of a hashmap upload are filled in the background: wait for them
    deadline = time.monotonic() + 60
    while server.metric("nefeli_blockd_md5_backfill_pending") > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    r = rclone(env, "check", str(src), "tok:mtimes")
    assert r.returncode == 0, r.stderr
    # size and mtime agree, so a sync has nothing to copy and no mtime to set
    r = rclone(env, "sync", "--dry-run", "-v", str(src), "tok:mtimes")
    assert r.returncode == 0, r.stderr
    # (a differing mtime would show as "Skipped update modification time as --dry-run is set")
    assert "There was nothing to transfer" in r.stderr and "modification time" not in r.stderr, r.stderr


@pytest.mark.peer("rclone")
def test_nefeli_download_takes_the_mtime_rclone_set(server, tmp_path):  # noqa: F811
    env = rclone_env(server, tmp_path)
    f = tmp_path / "from-rclone.txt"
    f.write_text("uploaded by rclone\n")
    os.utime(f, ns=(0, 1_650_000_000_250_000_000))
    r = rclone(env, "copyto", str(f), "tok:fromrc/from-rclone.txt")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "back.txt"
    run_cli(["download", "fromrc/from-rclone.txt", str(out)], server.env(), check=True)
    assert abs(out.stat().st_mtime_ns - 1_650_000_000_250_000_000) < 1_000
    pulled = tmp_path / "pulled"
    run_cli(["sync", "--pull", str(pulled), "fromrc"], server.env(), check=True)
    assert abs((pulled / "from-rclone.txt").stat().st_mtime_ns - 1_650_000_000_250_000_000) < 1_000
