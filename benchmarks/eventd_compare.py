"""nefeli-eventd: job-file write → consumer latency and sustained updates/s, against a no-spool reference.

Run (as root, with Debian's rabbitmq-server installed):
    .venv/bin/python benchmarks/eventd_compare.py [--rounds 3] [--rate 1000] [--seconds 5]

A private RabbitMQ is started in a temporary directory. Each update is one job file
written as Ganeti writes it (temporary file, rename over job-N), in a state that gives
exactly one new message, so every update must arrive: nothing may be coalesced away.

* latency at --rate updates/s: time from the rename to the message reaching a consumer
  bound like Synnefo's dispatcher (the broker acks persistent messages after they are
  routed; eventd's own spooled → confirmed histogram is printed beside it);
* sustained: updates written as fast as one writer can, time until the last arrives;
* the same two through the SSE feed (no broker), read by an HTTP client;
* beside each, a reference publisher: what the original did (inotify, read, publish with
  confirms, no spool, no de-duplication), so the ratio is the cost of the durable spool.

Figures are medians of --rounds rounds; the goal is p99 < 20 ms at 1000 updates/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for p in (REPO, REPO / "tests", REPO / "tests" / "daemons" / "eventd"):
    sys.path.insert(0, str(p))

import aio_pika  # noqa: E402
import aiohttp  # noqa: E402
from asyncinotify import Inotify, Mask  # noqa: E402

from eventd_harness import Consumer, Eventd, RabbitMQ, ganeti_dir, write_like_ganeti  # noqa: E402
from net.ganeti_events import job_events  # noqa: E402
from net.ganeti_job import job_id_from_name, parse_job  # noqa: E402
from net.sse import SseParser  # noqa: E402

GOAL_P99_MS = 20.0


def job_file(job_id: int, now: float) -> bytes:
    sec, usec = int(now), int((now % 1) * 1e6)
    ts = [sec, usec]
    return json.dumps({
        "id": job_id, "received_timestamp": ts, "start_timestamp": ts, "end_timestamp": ts,
        "ops": [{"input": {"OP_ID": "OP_INSTANCE_STARTUP", "instance_name": f"snf-{job_id}"},
                 "status": "success", "result": None, "log": [], "start_timestamp": ts,
                 "exec_timestamp": ts, "end_timestamp": ts}],
    }).encode() + b"\n"


class Writer:
    def __init__(self, queue: Path) -> None:
        self.queue = queue
        self.next_id = 1
        self.written: dict[int, float] = {}

    def write(self) -> None:
        jid = self.next_id
        self.next_id += 1
        now = time.time()
        write_like_ganeti(self.queue, jid, job_file(jid, now), luxid=False)
        self.written[jid] = time.time()

    async def paced(self, rate: float, seconds: float) -> None:
        start = time.monotonic()
        n = int(rate * seconds)
        for i in range(n):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.write()

    async def burst(self, n: int) -> None:
        for i in range(n):
            self.write()
            if i % 200 == 0:
                await asyncio.sleep(0)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def wait_all(arrived: dict[int, float], n: int, timeout: float = 120.0) -> float:
    deadline = time.monotonic() + timeout
    while len(arrived) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"lost messages: {len(arrived)} of {n} arrived")
        await asyncio.sleep(0.01)
    return time.time()


# -- sinks ---------------------------------------------------------------------


class AmqpSink:
    def __init__(self, url: str, tag: str) -> None:
        self.consumer = Consumer(url, tag)
        self.arrived: dict[int, float] = {}

    async def start(self) -> None:
        await self.consumer.start(("snf",))
        orig = self.consumer.received

        class Rec(list):  # timestamps on arrival, without a second consumer
            def append(inner, r):  # noqa: N805
                self.arrived.setdefault(r.body["jobId"], time.time())
                super().append(r)

        self.consumer.received = Rec(orig)

    async def close(self) -> None:
        await self.consumer.close()


class SseSink:
    def __init__(self, url: str) -> None:
        self.url = url
        self.arrived: dict[int, float] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ready = asyncio.Event()

        async def run() -> None:
            parser = SseParser()
            async with aiohttp.ClientSession() as s, s.get(self.url) as resp:
                ready.set()
                async for chunk in resp.content.iter_any():
                    now = time.time()
                    for ev in parser.feed(chunk):
                        self.arrived.setdefault(json.loads(ev.data)["jobId"], now)

        self.task = asyncio.create_task(run())
        await asyncio.wait_for(ready.wait(), 10)

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


# -- the reference: the original's architecture --------------------------------


async def reference_publisher(queue: Path, url: str, stop: asyncio.Event) -> None:
    conn = await aio_pika.connect(url)
    ch = await conn.channel(publisher_confirms=True)
    ex = await ch.declare_exchange("ganeti", aio_pika.ExchangeType.TOPIC, durable=True)
    pending: set[asyncio.Task] = set()
    with Inotify() as ino:
        ino.add_watch(queue, Mask.MOVED_TO | Mask.CLOSE_WRITE)
        it = ino.__aiter__()
        while not stop.is_set():
            try:
                ev = await asyncio.wait_for(it.__anext__(), 0.2)
            except asyncio.TimeoutError:
                continue
            if ev.name is None or job_id_from_name(str(ev.name)) is None:
                continue
            try:
                data = (queue / ev.name).read_bytes()
            except FileNotFoundError:
                continue
            for e in job_events(parse_job(data), "bench")[0]:
                msg = aio_pika.Message(e.encoded(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                       message_id=e.message_id)
                t = asyncio.create_task(ex.publish(msg, e.routing_key))
                pending.add(t)
                t.add_done_callback(pending.discard)
    await asyncio.gather(*pending, return_exceptions=True)
    await conn.close()


# -- one measurement ----------------------------------------------------------


async def measure(kind: str, broker: RabbitMQ | None, base: Path, rate: float, seconds: float,
                  burst: int) -> dict[str, float]:
    base.mkdir(parents=True)
    g = ganeti_dir(base)
    queue = g / "queue"
    eventd: Eventd | None = None
    stop = asyncio.Event()
    ref: asyncio.Task[None] | None = None
    sink: AmqpSink | SseSink
    if kind == "nefeli-amqp":
        assert broker
        sink = AmqpSink(broker.url, f"bench-{base.name}-")
        await sink.start()
        eventd = Eventd(base, g, "--broker", broker.url, "--log-level", "warning", "--no-access-log").start()
    elif kind == "reference-amqp":
        assert broker
        sink = AmqpSink(broker.url, f"bench-{base.name}-")
        await sink.start()
        ref = asyncio.create_task(reference_publisher(queue, broker.url, stop))
        await asyncio.sleep(0.5)
    else:
        eventd = Eventd(base, g, "--log-level", "warning", "--no-access-log").start()
        sink = SseSink(f"http://127.0.0.1:{eventd.http}/events")
        await sink.start()
    writer = Writer(queue)
    try:
        await writer.paced(rate, seconds)
        await wait_all(sink.arrived, len(writer.written))
        lat = [(sink.arrived[j] - t) * 1000 for j, t in writer.written.items()]
        n0 = len(writer.written)
        t0 = time.time()
        await writer.burst(burst)
        end = await wait_all(sink.arrived, n0 + burst)
        out = {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": max(lat), "rate": burst / (end - t0)}
        if eventd is not None and kind == "nefeli-amqp":
            m = eventd.metrics()
            count = m.get("nefeli_eventd_confirm_latency_seconds_count", 0)
            total = m.get("nefeli_eventd_confirm_latency_seconds_sum", 0)
            out["confirm_mean"] = 1000 * total / count if count else float("nan")
        return out
    finally:
        stop.set()
        if ref:
            await asyncio.gather(ref, return_exceptions=True)
        await sink.close()
        if eventd and eventd.proc and eventd.proc.poll() is None:
            eventd.stop(signal.SIGTERM)


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="nefeli-eventd-bench-"))
    broker = RabbitMQ(tmp / "rabbitmq")
    print("starting RabbitMQ ...", file=sys.stderr)
    broker.start()
    results: dict[str, list[dict[str, float]]] = {}
    try:
        for r in range(args.rounds):
            kinds = ["nefeli-amqp", "reference-amqp", "nefeli-sse"]
            if r % 2:
                kinds.reverse()
            for kind in kinds:
                res = await measure(kind, broker, tmp / f"{kind}-{r}", args.rate, args.seconds, args.burst)
                results.setdefault(kind, []).append(res)
                print(f"round {r + 1} {kind}: " + ", ".join(f"{k}={v:.1f}" for k, v in res.items()), file=sys.stderr)
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(kind: str, key: str) -> float:
        return statistics.median(x[key] for x in results[kind])

    print(f"\nnefeli-eventd, {args.rounds} rounds (medians); {args.rate:.0f} updates/s for {args.seconds:.0f} s, "
          f"then {args.burst} as fast as possible; no loss in any run (else it would have stopped)")
    print(f"{'':28}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'sustained/s':>13}")
    for kind, label in (("nefeli-amqp", "nefeli, spool + RabbitMQ"), ("reference-amqp", "reference (no spool)"),
                        ("nefeli-sse", "nefeli, SSE feed")):
        print(f"{label:28}{med(kind, 'p50'):9.2f}{med(kind, 'p99'):9.2f}{med(kind, 'max'):9.1f}{med(kind, 'rate'):13.0f}")
    print(f"nefeli spooled → confirmed, mean: {med('nefeli-amqp', 'confirm_mean'):.2f} ms")
    ratio = med("nefeli-amqp", "p99") / med("reference-amqp", "p99")
    print(f"p99 nefeli / reference: {ratio:.2f}; sustained nefeli / reference: "
          f"{med('nefeli-amqp', 'rate') / med('reference-amqp', 'rate'):.2f}")
    p99 = med("nefeli-amqp", "p99")
    print(f"goal p99 < {GOAL_P99_MS:.0f} ms at {args.rate:.0f}/s: {'ok' if p99 < GOAL_P99_MS else 'MISSED'} ({p99:.2f} ms)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--burst", type=int, default=5000)
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("rabbitmq-server"):
        print("eventd_compare: skipped, needs root and rabbitmq-server (scripts/install-test-peers)", file=sys.stderr)
        return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
