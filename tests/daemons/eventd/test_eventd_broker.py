"""nefeli-eventd against a real RabbitMQ: the fixture jobs replayed as Ganeti wrote them,
broker outages, kill -9, non-master nodes, malformed files, an inotify overflow."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

import pytest

from eventd_fixtures import live_job, snapshots
from eventd_harness import (
    REPO,
    Consumer,
    Eventd,
    RabbitMQ,
    archive_like_ganeti,
    expected_new,
    ganeti_dir,
    write_like_ganeti,
)

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


async def test_fixture_jobs_replayed_arrive_exactly_once_in_order(rabbitmq: RabbitMQ, tmp_path: Path) -> None:
    g = ganeti_dir(tmp_path)
    queue = g / "queue"
    consumer = await Consumer(rabbitmq.url, "replay-").start()
    eventd = Eventd(tmp_path, g, "--broker", rabbitmq.url).start()
    try:
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
        await wait_until(lambda: eventd.metric("eventd_spool_messages") == 0, what="an empty spool")
        assert eventd.metric("eventd_job_files_malformed_total") >= 3
        assert eventd.stop() == 0
        log = eventd.log_text()
        assert "skipping job file" in log and "Traceback" not in log
    finally:
        if eventd.proc and eventd.proc.poll() is None:
            eventd.stop(signal.SIGKILL)
        await consumer.close()


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


async def test_broker_outage_and_kill_9_lose_nothing(rabbitmq: RabbitMQ, tmp_path: Path) -> None:
    g = ganeti_dir(tmp_path)
    queue = g / "queue"
    consumer = await Consumer(rabbitmq.url, "outage-").start()
    eventd = Eventd(tmp_path, g, "--broker", rabbitmq.url).start()
    # Each job written once, in its final state: a version overwritten before eventd
    # read it has nothing to lose, so the expectation stays exact at full speed.
    finals = sorted(final_versions().items())
    seen: set = set()
    expected = []

    def write(offset: int) -> None:
        for jid, data in finals:
            data = renumbered(data, jid + offset)
            write_like_ganeti(queue, jid + offset, data, luxid=False)
            expected.extend(expected_new(seen, data))

    first = consumer
    try:
        write(1000)
        await consumer.wait_for(len(expected))
        await consumer.close()
        rabbitmq.stop()
        write(2000)  # broker down
        await wait_until(lambda: eventd.metric("eventd_spool_messages") > 0, what="spooled messages")
        eventd.stop(signal.SIGKILL)  # broker down, messages only in the spool
        write(3000)  # eventd down too
        eventd = Eventd(tmp_path, g, "--broker", rabbitmq.url).start()
        write(4000)  # eventd back, broker still down
        assert eventd.metric("eventd_broker_connected") == 0
        rabbitmq.start()
        consumer = await Consumer(rabbitmq.url, "outage-").start()

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
        await wait_until(lambda: eventd.metric("eventd_spool_messages") == 0, what="an empty spool")
        assert eventd.stop() == 0
    finally:
        if eventd.proc and eventd.proc.poll() is None:
            eventd.stop(signal.SIGKILL)
        await consumer.close()
