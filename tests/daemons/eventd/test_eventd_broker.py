"""nefeli-eventd against a real RabbitMQ: the fixture jobs replayed as Ganeti wrote them,
broker outages, kill -9, non-master nodes, malformed files, an inotify overflow."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

import aio_pika
import pytest

from eventd_fixtures import live_job, snapshots
from eventd_harness import (
    REPO,
    RabbitMQ,
    archive_like_ganeti,
    expected_new,
    ganeti_dir,
    write_like_ganeti,
)
from free_ports import free_port

pytestmark = pytest.mark.peer("rabbitmq-server")


def renumbered(data: bytes, job_id: int) -> bytes:
    raw = json.loads(data)
    raw["id"] = job_id
    return json.dumps(raw).encode() + b"\n"


def by_job(received: list) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    for r in received:
        out[r.body["jobId"]].append(r.message_id)
    return out


async def wait_until(cond, timeout: float = 30.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_fixture_jobs_replayed_arrive_exactly_once_in_order(rabbitmq: RabbitMQ, tmp_path: Path, eventds, consumers) -> None:
    g = ganeti_dir(tmp_path)
    queue = g / "queue"
    consumer = await consumers("replay-")
    eventd = eventds(tmp_path, g, "--broker", rabbitmq.url)
    seen: set = set()
    expected = []
    for _, where, job_id, data in snapshots():
        if where == "archive":
            if not (queue / f"job-{job_id}").exists():  # job 1 predates the snapshots
                write_like_ganeti(queue, job_id, data, luxid=False)
            archive_like_ganeti(queue, job_id)
        else:
            luxid = not json.loads(data).get("process_id")
            write_like_ganeti(queue, job_id, data, luxid=luxid)
        new = expected_new(seen, data)
        if new:
            expected += new
            # The next version may follow within microseconds, as in Ganeti; waiting
            # here keeps the expectation exact (a version overwritten before anyone
            # read it has no message to lose).
            await consumer.wait_for(len(expected))
    # Bad input on the way: temp files, a truncated job, a job file of another job, noise.
    (queue / "job-900-1-1.tmp").write_bytes(b"{")
    write_like_ganeti(queue, 901, live_job(21)[:100], luxid=True)
    write_like_ganeti(queue, 902, live_job(21), luxid=False)
    (queue / "job-903").write_bytes(b"\x00\xff garbage")
    write_like_ganeti(queue, 904, renumbered(live_job(23), 904), luxid=False)
    last = expected_new(seen, renumbered(live_job(23), 904))
    expected += last
    got = await consumer.wait_for(len(expected))
    await asyncio.sleep(0.3)  # anything extra would be on its way by now
    assert len(consumer.received) == len(expected)  # nothing twice
    assert {r.message_id: r.body for r in got} == {e.message_id: e.body for e in expected}
    assert by_job(got) == by_job_expected(expected)
    assert all(r.persistent for r in got)
    assert {r.queue for r in got} >= {
        "replay-snf-events-op", "replay-inst1.example.test-events-op", "replay-net1-events-network",
        "replay-events-cluster", "replay-heartbeat",
    }
    assert {(r.queue, r.routing_key) for r in got if r.body["type"] == "eventd-heartbeat"} == {
        ("replay-heartbeat", "eventd.heartbeat")}
    await wait_until(lambda: eventd.metric("nefeli_eventd_spool_messages") == 0, what="an empty spool")
    assert eventd.metric("nefeli_eventd_job_files_malformed_total") >= 3
    assert eventd.stop() == 0
    log = eventd.log_text()
    assert "skipping job file" in log and "Traceback" not in log


def by_job_expected(expected: list) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    for e in expected:
        out[e.body["jobId"]].append(e.message_id)
    return out


def final_versions() -> dict[int, bytes]:
    """The last queue version of every fixture job (archiving does not change it)."""
    out: dict[int, bytes] = {}
    for _, where, job_id, data in snapshots():
        if where == "queue":
            out[job_id] = data
    return out


def write_finals(queue: Path, seen: set, offset: int) -> list:
    """Every fixture job once, in its final state, as job id + offset; returns the new messages.

    A version overwritten before eventd read it has nothing to lose, so one version
    per job keeps the expectation exact at full speed.
    """
    out: list = []
    for jid, data in sorted(final_versions().items()):
        data = renumbered(data, jid + offset)
        write_like_ganeti(queue, jid + offset, data, luxid=False)
        out += expected_new(seen, data)
    return out


async def test_broker_outage_and_kill_9_lose_nothing(rabbitmq: RabbitMQ, tmp_path: Path, eventds, consumers) -> None:
    g = ganeti_dir(tmp_path)
    queue = g / "queue"
    consumer = await consumers("outage-")
    eventd = eventds(tmp_path, g, "--broker", rabbitmq.url)
    seen: set = set()
    expected = []

    def write(offset: int) -> None:
        expected.extend(write_finals(queue, seen, offset))

    first = consumer
    write(1000)
    await consumer.wait_for(len(expected))
    await consumer.close()
    rabbitmq.stop()
    write(2000)  # broker down
    await wait_until(lambda: eventd.metric("nefeli_eventd_spool_messages") > 0, what="spooled messages")
    eventd.stop(signal.SIGKILL)  # broker down, messages only in the spool
    write(3000)  # eventd down too
    eventd = eventds(tmp_path, g, "--broker", rabbitmq.url)
    write(4000)  # eventd back, broker still down
    assert eventd.metric("nefeli_eventd_broker_connected") == 0
    rabbitmq.start()
    consumer = await consumers("outage-")

    def unique() -> list:
        ids: set = set()
        out = []
        for r in first.received + consumer.received:
            if r.message_id not in ids:
                ids.add(r.message_id)
                out.append(r)
        return out

    await wait_until(lambda: len(unique()) >= len(expected), timeout=60, what="every message")
    await asyncio.sleep(0.3)
    got = unique()
    # At least once; exactly once after de-duplication by message_id, in order per job.
    assert {r.message_id: r.body for r in got} == {e.message_id: e.body for e in expected}
    assert by_job(got) == by_job_expected(expected)
    await wait_until(lambda: eventd.metric("nefeli_eventd_spool_messages") == 0, what="an empty spool")
    assert eventd.stop() == 0


async def test_kill_9_while_jobs_are_written_loses_nothing(rabbitmq: RabbitMQ, tmp_path: Path, eventds, consumers) -> None:
    g = ganeti_dir(tmp_path)
    queue = g / "queue"
    consumer = await consumers("kill-")
    eventd = eventds(tmp_path, g, "--broker", rabbitmq.url)
    seen: set = set()
    expected = []
    half = threading.Event()

    def writer() -> None:
        for round_ in range(6):
            expected.extend(write_finals(queue, seen, 10000 * (round_ + 1)))
            if round_ == 2:
                half.set()

    t = threading.Thread(target=writer)
    t.start()
    await asyncio.get_running_loop().run_in_executor(None, half.wait)
    eventd.stop(signal.SIGKILL)
    eventd = eventds(tmp_path, g, "--broker", rabbitmq.url)
    await asyncio.get_running_loop().run_in_executor(None, t.join)
    await wait_until(lambda: len({r.message_id for r in consumer.received}) >= len(expected), timeout=60,
                     what="every message")
    await wait_until(lambda: eventd.metric("nefeli_eventd_spool_messages") == 0, what="an empty spool")
    got = consumer.unique()
    assert {r.message_id: r.body for r in got} == {e.message_id: e.body for e in expected}
    assert by_job(got) == by_job_expected(expected)
    # At least once: only what was unconfirmed at the kill can come twice.
    assert len(consumer.received) - len(got) <= 256
    assert eventd.stop() == 0
    t.join()


def progress(data: Path, instance: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "daemons.progress_monitor.main", "--data", str(data), instance],
        input=stdin, capture_output=True, cwd=data.parent, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60,
    )


async def test_non_master_publishes_no_job_events_until_it_becomes_master(rabbitmq: RabbitMQ, tmp_path: Path, eventds, consumers) -> None:
    g = ganeti_dir(tmp_path, master="node2.example.test")
    queue = g / "queue"
    consumer = await consumers("nonmaster-")
    eventd = eventds(tmp_path, g, "--broker", rabbitmq.url)
    expected = write_finals(queue, set(), 0)
    # Progress messages are this node's own (the deploy runs here): they are published.
    r = progress(eventd.data, "snf-7", b'{"type": "image-info", "messages": ["done"]}')
    assert r.returncode == 0, r.stderr
    await consumer.wait_for(1)
    await asyncio.sleep(0.5)
    assert [m.body["type"] for m in consumer.received] == ["image-info"]
    assert consumer.received[0].queue == "nonmaster-snf-events-progress"
    assert eventd.metric("nefeli_eventd_is_master") == 0
    assert eventd.metric("nefeli_eventd_job_files_read_total") == 0
    # Master failover to this node: the queue is scanned and published.
    (g / "ssconf_master_node").write_text("node1.example.test\n")
    await consumer.wait_for(1 + len(expected))
    assert {m.message_id for m in consumer.received[1:]} == {e.message_id for e in expected}
    assert "is not the master (node2.example.test)" in eventd.log_text()
    assert eventd.stop() == 0


async def test_inotify_overflow_is_followed_by_a_rescan_that_misses_nothing(rabbitmq: RabbitMQ, tmp_path: Path, eventds, consumers) -> None:
    g = ganeti_dir(tmp_path)
    queue = g / "queue"
    consumer = await consumers("overflow-")
    eventd = eventds(tmp_path, g, "--broker", rabbitmq.url)
    max_queued = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    assert eventd.proc is not None
    # A flood while eventd cannot read: each Ganeti-style write is 3 events
    # (CLOSE_WRITE of the temp file, MOVED_FROM, MOVED_TO). One job rewritten until the
    # kernel queue is full, then the fixture jobs, whose events the kernel drops:
    # only the rescan after the overflow can find them.
    eventd.proc.send_signal(signal.SIGSTOP)
    seen: set = set()
    noise = renumbered(live_job(20), 99999)
    expected = expected_new(seen, noise)
    for _ in range(max_queued // 3 + 100):
        write_like_ganeti(queue, 99999, noise, luxid=False)
    expected += write_finals(queue, seen, 100000)
    eventd.proc.send_signal(signal.SIGCONT)
    await wait_until(lambda: len(consumer.received) >= len(expected), timeout=120, what="every message")
    assert eventd.metric("nefeli_eventd_inotify_overflows_total") >= 1
    assert eventd.metric("nefeli_eventd_rescans_total") >= 2
    assert {m.message_id for m in consumer.received} == {e.message_id for e in expected}
    assert "inotify queue overflowed" in eventd.log_text()
    assert eventd.stop() == 0


def instance_job(job_id: int, instance: str, status: str, t: int) -> bytes:
    ts = [t, 0]
    return json.dumps({
        "id": job_id, "received_timestamp": [t - 1, 0], "start_timestamp": ts,
        "end_timestamp": ts if status == "success" else None,
        "ops": [{"input": {"OP_ID": "OP_INSTANCE_STARTUP", "instance_name": instance}, "status": status,
                 "result": None, "log": [], "start_timestamp": ts, "exec_timestamp": ts,
                 "end_timestamp": ts if status == "success" else None}],
    }).encode()


async def test_returned_and_nacked_messages_are_retried_in_order(rabbitmq: RabbitMQ, tmp_path: Path, eventds, consumers) -> None:
    g = ganeti_dir(tmp_path)
    queue = g / "queue"
    await consumers("retry-", ("snf",))  # the exchange and the usual queues exist
    # A dead broker URL first: eventd moves on to the next one.
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    eventd = eventds(tmp_path, g, "--broker", dead, "--broker", rabbitmq.url)
    conn = await aio_pika.connect(rabbitmq.url)
    ch = await conn.channel()
    ex = await ch.declare_exchange("ganeti", aio_pika.ExchangeType.TOPIC, durable=True)
    # Nothing bound for prefix "zzz": its messages come back (mandatory) and are retried.
    write_like_ganeti(queue, 1, instance_job(1, "zzz-1", "queued", 100), luxid=True)
    await wait_until(lambda: eventd.metric('nefeli_eventd_publish_retries_total{reason="return"}') >= 1,
                     what="a return")
    write_like_ganeti(queue, 1, instance_job(1, "zzz-1", "success", 101), luxid=False)
    # A full queue that rejects publishes: the broker nacks, eventd retries.
    full = await ch.declare_queue("retry-nak-full", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    await full.bind(ex, "ganeti.nak.event.op")
    write_like_ganeti(queue, 2, instance_job(2, "nak-1", "queued", 200), luxid=False)
    write_like_ganeti(queue, 3, instance_job(3, "nak-2", "queued", 300), luxid=False)
    await wait_until(lambda: eventd.metric('nefeli_eventd_publish_retries_total{reason="nack"}') >= 1,
                     what="a nack")
    assert eventd.metric("nefeli_eventd_spool_messages") >= 3
    # Now bind "zzz" and drain the full queue: everything arrives, job 1 in order.
    zq = await ch.declare_queue("retry-zzz", durable=True)
    await zq.bind(ex, "ganeti.zzz.event.op")
    got_z: list = []
    got_n: list = []

    async def take(q, into):  # noqa: ANN001
        async with q.iterator() as it:
            async for m in it:
                into.append(json.loads(m.body))
                await m.ack()

    tasks = [asyncio.create_task(take(zq, got_z)), asyncio.create_task(take(full, got_n))]
    await wait_until(lambda: len(got_z) == 2 and len(got_n) == 2, what="the retried messages")
    assert [b["status"] for b in got_z] == ["queued", "success"]
    assert sorted(b["jobId"] for b in got_n) == [2, 3]
    await wait_until(lambda: eventd.metric("nefeli_eventd_spool_messages") == 0, what="an empty spool")
    assert f"127.0.0.1:{dead.rsplit(':', 1)[1]}" in eventd.log_text()  # tried, logged, passed over
    for t in tasks:
        t.cancel()
    assert eventd.stop() == 0
    await conn.close()


async def test_sigterm_drains_what_it_spooled(rabbitmq: RabbitMQ, tmp_path: Path, eventds, consumers) -> None:
    g = ganeti_dir(tmp_path)
    queue = g / "queue"
    consumer = await consumers("drain-")
    eventd = eventds(tmp_path, g, "--broker", rabbitmq.url)
    expected = write_finals(queue, set(), 500)
    assert eventd.stop() == 0  # at once: whatever was spooled is confirmed before exit
    db = sqlite3.connect(eventd.data / "spool.db")
    assert db.execute("SELECT COUNT(*) FROM outbox").fetchone() == (0,)
    db.close()
    assert "stopping: received SIGTERM" in eventd.log_text()
    eventd = eventds(tmp_path, g, "--broker", rabbitmq.url)  # the rest, if any, on the next start
    await consumer.wait_for(len(expected))
    await asyncio.sleep(0.3)
    assert sorted(m.message_id for m in consumer.received) == sorted(e.message_id for e in expected)
    assert eventd.stop() == 0


def multi_op_job(job_id: int, ops: int, t: int) -> bytes:
    """A finished job of ``ops`` instance ops: one message each, to be sent in op order."""
    return json.dumps({
        "id": job_id, "received_timestamp": [t, 0], "start_timestamp": [t, 0], "end_timestamp": [t + ops, 0],
        "ops": [{"input": {"OP_ID": "OP_INSTANCE_STARTUP", "instance_name": f"snf-{job_id}"}, "status": "success",
                 "result": None, "log": [], "start_timestamp": [t + i, 0], "exec_timestamp": [t + i, 0],
                 "end_timestamp": [t + i, 1]} for i in range(ops)],
    }).encode() + b"\n"


async def test_a_backlog_larger_than_the_window_keeps_each_jobs_order(rabbitmq: RabbitMQ, tmp_path: Path, eventds, consumers) -> None:
    g = ganeti_dir(tmp_path)
    queue = g / "queue"
    consumer = await consumers("window-", ("snf",))
    # Spooled while no broker answers, then published through a window of 3: 40 jobs wait
    # their turn, and a job's next message goes only once its previous one is confirmed.
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    eventd = eventds(tmp_path, g, "--broker", dead)
    seen: set = set()
    expected = []
    for jid in range(1, 41):
        data = multi_op_job(jid, 3, 1000 * jid)
        write_like_ganeti(queue, jid, data, luxid=False)
        expected += expected_new(seen, data)
    await wait_until(lambda: eventd.metric("nefeli_eventd_spool_messages") == len(expected) == 120,
                     what="everything spooled")
    assert eventd.stop() == 0
    eventd = eventds(tmp_path, g, "--broker", rabbitmq.url, "--confirm-window", "3")
    got = await consumer.wait_for(len(expected))
    await wait_until(lambda: eventd.metric("nefeli_eventd_spool_messages") == 0, what="an empty spool")
    assert len(consumer.received) == len(expected)  # nothing twice
    assert by_job(got) == by_job_expected(expected)  # each job in op order
    assert eventd.stop() == 0
