"""DaemonMetrics: prefixed names, sampled values, the exposition a scraper parses."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from daemons.runtime.metrics import DaemonMetrics, Sampled, metrics_app


def parsed(text: bytes) -> dict[str, float]:
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


async def test_counters_gauges_histograms_carry_the_prefix() -> None:
    m = DaemonMetrics("nefeli_test")
    req = m.counter("requests", "requests", ["method"])
    req.labels("GET").inc(3)
    m.gauge("open_sessions", "sessions").set(2)
    m.histogram("latency_seconds", "latency").observe(0.002)
    got = parsed(await m.render())
    assert got["nefeli_test_requests_total{method=GET}"] == 3
    assert got["nefeli_test_open_sessions"] == 2
    assert got["nefeli_test_latency_seconds_count"] == 1
    assert got["nefeli_test_latency_seconds_bucket{le=0.0025}"] == 1
    assert got["nefeli_test_latency_seconds_bucket{le=0.001}"] == 0
    assert not any(k.endswith("_created") for k in got)


async def test_two_daemons_registries_do_not_mix() -> None:
    a, b = DaemonMetrics("nefeli_a"), DaemonMetrics("nefeli_b")
    a.counter("x", "x").inc()
    b.counter("x", "x")
    assert "nefeli_a_x_total" in parsed(await a.render())
    assert parsed(await b.render())["nefeli_b_x_total"] == 0


async def test_sampled_values_are_read_at_each_scrape_and_a_failing_source_drops_out() -> None:
    m = DaemonMetrics("nefeli_s")
    state = {"blocks": 5.0, "received": 7.0}
    calls = []

    async def fetch() -> dict[str, float]:
        calls.append(1)
        await asyncio.sleep(0)
        if state.get("fail"):
            raise RuntimeError("store closed")
        return state

    m.sampled(
        "store",
        [Sampled("blocks", "gauge", "blocks"), Sampled("received", "counter", "received"),
         Sampled("absent", "gauge", "never returned")],
        fetch,
    )
    m.sampled("spool", [Sampled("depth", "gauge", "depth")], lambda: {"depth": 1})
    got = parsed(await m.render())
    assert got["nefeli_s_blocks"] == 5 and got["nefeli_s_received_total"] == 7
    assert "nefeli_s_absent" not in got and got["nefeli_s_depth"] == 1
    state["blocks"] = 6
    assert parsed(await m.render())["nefeli_s_blocks"] == 6
    state["fail"] = True
    got = parsed(await m.render())
    assert "nefeli_s_blocks" not in got and got["nefeli_s_depth"] == 1
    assert len(calls) == 3


async def test_metrics_app_serves_the_exposition_with_its_content_type() -> None:
    m = DaemonMetrics("nefeli_app")
    m.counter("hits", "hits").inc(2)
    async with TestClient(TestServer(metrics_app(m, lambda: {"sessions": 0}))) as client:
        r = await client.get("/metrics")
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert parsed(await r.read())["nefeli_app_hits_total"] == 2
        h = await client.get("/healthz")
        assert await h.json() == {"status": "ok", "sessions": 0}
