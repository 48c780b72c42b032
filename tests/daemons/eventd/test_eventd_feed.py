"""nefeli-eventd without a broker: the spool served as GET /events, and `nefeli events tail`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from eventd_fixtures import live_job
from eventd_harness import REPO, Eventd, expected_new, ganeti_dir, write_like_ganeti
from net.sse import SseParser


def tail(eventd: Eventd, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "events", "tail", "--url", f"http://127.0.0.1:{eventd.http}", *args],
        capture_output=True, text=True, timeout=60, cwd=eventd.base, env=dict(os.environ, PYTHONPATH=str(REPO)),
    )


async def read_events(session: aiohttp.ClientSession, url: str, n: int, **headers: str) -> list:
    parser, out = SseParser(), []
    async with session.get(url, headers=headers) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
        async for chunk in resp.content.iter_any():
            out += parser.feed(chunk)
            if len(out) >= n:
                return out
    return out


async def test_feed_serves_the_spool_resumably(tmp_path: Path, eventds) -> None:
    g = ganeti_dir(tmp_path)
    queue = g / "queue"
    seen: set = set()
    expected = []
    for jid in (20, 21, 22, 23):
        write_like_ganeti(queue, jid, live_job(jid), luxid=False)
        expected += expected_new(seen, live_job(jid))
    eventd = eventds(tmp_path, g)  # the jobs were there before: the first scan finds them
    url = f"http://127.0.0.1:{eventd.http}/events"
    async with aiohttp.ClientSession() as s:
        evs = await read_events(s, url, len(expected))
        assert [json.loads(e.data) for e in evs] == [e.body for e in expected]
        assert [e.event for e in evs] == [e.routing_key for e in expected]
        assert [e.id for e in evs] == [str(i) for i in range(1, len(expected) + 1)]
        # Resume after the second: the rest, then what is written later (live).
        live = asyncio.ensure_future(read_events(s, url, len(expected) - 2 + 1, **{"Last-Event-ID": "2"}))
        await asyncio.sleep(0.2)
        write_like_ganeti(queue, 24, live_job(24), luxid=True)
        more = expected_new(seen, live_job(24))
        resumed = await asyncio.wait_for(live, 20)
        assert [e.id for e in resumed] == [str(i) for i in range(3, len(expected) + 2)]
        assert json.loads(resumed[-1].data) == more[0].body
        async with s.get(url, headers={"Last-Event-ID": "x1"}) as bad:
            assert bad.status == 400
    r = tail(eventd, "--no-follow", "--json")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line) for line in r.stdout.splitlines()] == [e.body for e in expected + more]
    r = tail(eventd, "--no-follow", "--after", "1", "--key", "ganeti.*.event.op")
    lines = r.stdout.splitlines()
    assert [ln.split(" ", 2)[:2] for ln in lines] == [
        ["2", "ganeti.snf.event.op"], ["3", "ganeti.snf.event.op"], ["5", "ganeti.nosuch.example.test.event.op"]]
    # Restart (settings from a TOML file this time): the feed keeps its history and
    # its numbering, nothing is spooled twice; a spool over the limit says so.
    assert eventd.stop() == 0
    cfg = tmp_path / "eventd.toml"
    cfg.write_text("spool_warn_bytes = 1\nfeed_retention = 3600.0\n")
    eventd = eventds(tmp_path, g, "--config", str(cfg))
    r = tail(eventd, "--no-follow")
    assert len(r.stdout.splitlines()) == len(expected) + 1
    assert eventd.metric("nefeli_eventd_spool_messages") == len(expected) + 1
    deadline = asyncio.get_running_loop().time() + 20
    while eventd.metric("nefeli_eventd_spool_over_limit") != 1:
        assert asyncio.get_running_loop().time() < deadline, "no spool warning"
        await asyncio.sleep(0.1)
    assert "over spool_warn_bytes=1" in eventd.log_text()  # the limit came from the file


def test_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for args in (["--broker", "http://example.test/"], ["--listen", "nowhere"], ["--confirm-window", "0"]):
        r = subprocess.run([sys.executable, "-m", "daemons.eventd.main", "--data", str(tmp_path), *args],
                           capture_output=True, text=True, timeout=30, cwd=tmp_path, env=env)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    cfg = tmp_path / "eventd.toml"
    cfg.write_text('broker = ["amqp://a/"]\nno_such_setting = 1\n')
    r = subprocess.run([sys.executable, "-m", "daemons.eventd.main", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=30, cwd=tmp_path, env=env)
    assert r.returncode == 2 and "no_such_setting" in r.stderr


async def test_sighup_rereads_the_node_name(tmp_path: Path, eventds) -> None:
    g = ganeti_dir(tmp_path)
    write_like_ganeti(g / "queue", 21, live_job(21), luxid=False)
    cfg = tmp_path / "eventd.toml"
    cfg.write_text('node_name = "node2.example.test"\n')
    eventd = eventds(tmp_path, g, "--config", str(cfg), node=None)
    assert eventd.metric("nefeli_eventd_is_master") == 0
    cfg.write_text('node_name = "node1.example.test"\n')
    assert eventd.proc is not None
    eventd.proc.send_signal(signal.SIGHUP)
    deadline = asyncio.get_running_loop().time() + 20
    while eventd.metric("nefeli_eventd_spool_messages") < 1:
        assert asyncio.get_running_loop().time() < deadline, eventd.log_text()
        await asyncio.sleep(0.1)
    assert eventd.metric("nefeli_eventd_is_master") == 1
    assert "configuration reloaded (node name node1.example.test)" in eventd.log_text()
    assert eventd.stop() == 0
