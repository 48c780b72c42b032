"""The spool: de-duplication that survives reopening, order, confirm-delete, format checks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemons.eventd.spool import SCHEMA_VERSION, Spool, SpoolError
from eventd_fixtures import live_job
from net.ganeti_events import Event, job_events
from net.ganeti_job import parse_job


def ev(job: int, op: int, status: str, sec: int, key: str = "ganeti.snf.event.op") -> Event:
    return Event(key, {"jobId": job, "status": status}, f"job-{job}", f"m-{job}-{op}-{status}-{sec}",
                 (job, op, status, sec, 0))


def test_dedup_survives_reopen_and_forget(tmp_path: Path) -> None:
    s = Spool(tmp_path)
    assert len(s.add([ev(1, 0, "queued", 10), ev(1, 0, "running", 11)], now=100.0)) == 2
    assert s.add([ev(1, 0, "queued", 10)]) == []
    s.close()
    s = Spool(tmp_path)
    assert s.add([ev(1, 0, "queued", 10), ev(1, 0, "success", 12)]) == [ev(1, 0, "success", 12)]
    rows = s.after(0)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].body == b'{"jobId":1,"status":"queued"}' and rows[0].exchange == "ganeti"
    assert rows[0].created == 100.0 and rows[0].expires is None
    assert s.seen_jobs() == {1}
    s.delete([1, 2])
    assert [r.seq for r in s.after(0)] == [3]
    s.forget_jobs([1])
    assert s.seen_jobs() == set()
    s.delete([3])
    assert s.stats()[0] == 0
    assert s.add([ev(2, 0, "queued", 1)])[0].message_id == "m-2-0-queued-1"
    assert s.after(0)[0].seq == 4  # never reused, so Last-Event-ID stays meaningful
    s.close()


def test_add_rows_gives_the_rows_as_a_read_would(tmp_path: Path) -> None:
    s = Spool(tmp_path)
    s.add([ev(1, 0, "queued", 10)], now=1.0)
    s.delete([1])
    added = s.add_rows([ev(1, 0, "queued", 10), ev(2, 0, "queued", 5), ev(1, 0, "success", 12)], now=2.0,
                       ttl={"ganeti.snf.event.op": 3.0})
    assert [e for e, _ in added] == [ev(2, 0, "queued", 5), ev(1, 0, "success", 12)]  # the known key left out
    assert [r for _, r in added] == s.after(0)
    assert [r.seq for _, r in added] == [2, 3] and added[0][1].expires == 5.0
    s.close()


def test_ttl_and_real_job(tmp_path: Path) -> None:
    s = Spool(tmp_path)
    evs, _ = job_events(parse_job(live_job(13)), "c")
    s.add(evs, now=50.0, ttl={"eventd.heartbeat": 60.0})
    (row,) = s.after(0)
    assert row.routing_key == "eventd.heartbeat" and row.expires == 110.0
    assert row.body == evs[0].encoded()
    s.close()


def test_columns_are_as_documented(tmp_path: Path) -> None:
    Spool(tmp_path).close()
    db = sqlite3.connect(tmp_path / "spool.db")
    cols = {t: [(c[1], c[2], c[3], c[5]) for c in db.execute(f"PRAGMA table_info({t})")]
            for t in ("meta", "outbox", "seen")}
    assert cols["outbox"] == [
        ("seq", "INTEGER", 0, 1), ("message_id", "TEXT", 1, 0), ("exchange", "TEXT", 1, 0),
        ("routing_key", "TEXT", 1, 0), ("order_key", "TEXT", 1, 0), ("body", "BLOB", 1, 0),
        ("created", "REAL", 1, 0), ("expires", "REAL", 0, 0),
    ]
    assert cols["seen"] == [
        ("job_id", "INTEGER", 1, 1), ("op_index", "INTEGER", 1, 2), ("status", "TEXT", 1, 3),
        ("event_sec", "INTEGER", 1, 4), ("event_usec", "INTEGER", 1, 5),
    ]
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_other_format_or_garbage_is_refused(tmp_path: Path) -> None:
    Spool(tmp_path).close()
    db = sqlite3.connect(tmp_path / "spool.db")
    db.execute("UPDATE meta SET value='99'")
    db.commit()
    db.close()
    with pytest.raises(SpoolError, match="format 99"):
        Spool(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "spool.db").write_bytes(b"not a database" * 100)
    with pytest.raises(SpoolError):
        Spool(other)


@settings(max_examples=30)
@given(st.lists(st.tuples(st.integers(1, 3), st.integers(0, 2), st.sampled_from(["queued", "running", "success"]),
                          st.integers(0, 3)), max_size=30), st.integers(1, 5))
def test_each_key_spooled_once_in_first_seen_order(tmp_path_factory, keys: list, reopen_every: int) -> None:
    path = tmp_path_factory.mktemp("spool")
    s = Spool(path)
    first: list = []
    for i, k in enumerate(keys):
        s.add([ev(*k)])
        if k not in first:
            first.append(k)
        if i % reopen_every == 0:
            s.close()
            s = Spool(path)
    assert [r.message_id for r in s.after(0, 1000)] == [ev(*k).message_id for k in first]
    s.close()
