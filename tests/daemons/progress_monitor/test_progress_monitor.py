"""nefeli-progress-monitor as snf-image runs it: a pipe on stdin, the instance as argument."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
STREAM = [
    b'{"type": "image-info", "messages": ["Received image metadata: {\\"OSFAMILY\\": \\"linux\\"}"]}',
    b'{"type": "image-copy-progress", "position": 10485760, "total": 104857600, "progress": 10.0}',
    b'{"type": "image-helper", "subtype": "task-start", "task": "FixPartitionTable"}',
    b'{"type": "image-warning", "messages": ["no swap"]}',
    b'{"type": "image-helper", "subtype": "task-end", "task": "FixPartitionTable"}',
    b'{"type": "image-error", "stderr": "mount: /mnt: wrong fs type"}',
]


def monitor(data: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "daemons.progress_monitor.main", "--data", str(data), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd or data.parent,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )


def spooled(data: Path) -> list[tuple[str, str, dict]]:
    db = sqlite3.connect(data / "spool.db")
    try:
        return [(k, o, json.loads(b)) for k, o, b in
                db.execute("SELECT routing_key, order_key, body FROM outbox ORDER BY seq")]
    finally:
        db.close()


def test_stream_split_anywhere_with_garbage_is_spooled_in_order(tmp_path: Path) -> None:
    data = tmp_path / "spool"
    p = monitor(data, "snf-42")
    assert p.stdin is not None
    raw = b"".join(STREAM[:3]) + b"\ndd: 100+0 records in\n" + b"".join(STREAM[3:]) + b'{"truncated": '
    for i in range(0, len(raw), 37):  # objects cut across writes, as a pipe delivers them
        p.stdin.write(raw[i:i + 37])
        p.stdin.flush()
        time.sleep(0.002)
    p.stdin.close()
    assert p.wait(30) == 0
    err = p.stderr.read().decode() if p.stderr else ""
    rows = spooled(data)
    assert [body["type"] for _, _, body in rows] == [json.loads(s)["type"] for s in STREAM]
    assert {(k, o) for k, o, _ in rows} == {("ganeti.snf.event.progress", "progress-snf-42")}
    for (_, _, body), src in zip(rows, STREAM):
        assert {k: v for k, v in body.items() if k not in ("instance", "event_time")} == json.loads(src)
        assert body["instance"] == "snf-42"
        assert len(body["event_time"]) == 2 and body["event_time"][0] > 1_600_000_000
    assert "skipping garbage" in err and "dd: 100+0 records in" in err and "truncated object" in err
    assert "Traceback" not in err


def count(data: Path) -> int:
    try:
        return len(spooled(data))
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_sigterm_keeps_what_was_read(tmp_path: Path) -> None:
    data = tmp_path / "spool"
    p = monitor(data, "snf-1")
    assert p.stdin is not None
    p.stdin.write(STREAM[0] + STREAM[1])
    p.stdin.flush()
    deadline = time.monotonic() + 20
    while count(data) < 2:
        assert time.monotonic() < deadline, "nothing spooled"
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)  # stdin still open: snf-image killed mid-deploy
    assert p.wait(20) == 0
    assert [b["type"] for _, _, b in spooled(data)] == ["image-info", "image-copy-progress"]


def test_usage_errors(tmp_path: Path) -> None:
    p = monitor(tmp_path / "spool")
    _, err = p.communicate(b"", timeout=30)
    assert p.returncode == 2 and b"no instance name" in err
    p = monitor(tmp_path / "spool", "a", "b")
    _, err = p.communicate(b"", timeout=30)
    assert p.returncode == 2 and len(err.strip().splitlines()) == 1
    blocker = tmp_path / "file"
    blocker.write_text("")
    p = monitor(blocker / "spool", "snf-1", cwd=tmp_path)
    _, err = p.communicate(b"{}", timeout=30)
    assert p.returncode == 1 and b"cannot open the spool" in err
