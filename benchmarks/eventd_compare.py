"""nefeli-eventd: job-file write → consumer latency and sustained updates/s, against a no-spool reference.

Run (as root, with Debian's rabbitmq-server installed):
    .venv/bin/python benchmarks/eventd_compare.py [--rounds 3] [--rate 1000] [--seconds 5]
        [--window 256] [--prefetch 5] [--kinds nefeli-amqp raw-amqp ...]

A private RabbitMQ is started in a temporary directory. Each update is one job file
written as Ganeti writes it (temporary file, rename over job-N), in a state that gives
exactly one new message, so every update must arrive: nothing may be coalesced away.

* latency at --rate updates/s: time from the rename to the message reaching a consumer
  bound like Synnefo's dispatcher (queues, dead-letter queues, prefetch 5 by default), in
  a process of its own; the broker confirms persistent messages once they are on disk or
  acked by that consumer. eventd's own spooled → confirmed mean is printed beside it;
* sustained: updates written as fast as one writer can, time until the last arrives;
  the writer is a process of its own (as Ganeti is), so is the consumer;
* the same two through the SSE feed (no broker), read by an HTTP client;
* beside each, a reference publisher: what the original did (inotify, read, publish with
  confirms, no spool, no de-duplication), so the ratio is the cost of the durable spool;
* and the floor: a raw pipelined publisher (aiormq, confirms, mandatory, persistent, the
  same bodies, --window unconfirmed at most) with no files at all, i.e. what this broker
  and consumer take on this machine; its publish → confirm percentiles are printed too.

Each round's queues are deleted after it (a durable queue left bound would get a copy of
every later message). Figures are medians of --rounds rounds, with the load average;
"offered" is the rate the writer reached. The goal is p99 < 20 ms at 1000 updates/s.
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
import aiormq  # noqa: E402
import aiormq.abc  # noqa: E402
import aiohttp  # noqa: E402
import uvloop  # noqa: E402
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


class JobWriter:
    """Ganeti's side, in a process of its own (``--writer QUEUE``) as Ganeti is: in the
    benchmark's process it would share the GIL with the reference publisher and the sink's
    reader, and fall behind the rate it is asked for."""

    def __init__(self, queue: Path) -> None:
        self.queue = queue
        self.next_id = 1

    def write(self, written: dict[int, float]) -> None:
        jid = self.next_id
        self.next_id += 1
        write_like_ganeti(self.queue, jid, job_file(jid, time.time()), luxid=False)
        written[jid] = time.time()

    def paced(self, rate: float, seconds: float) -> tuple[dict[int, float], float]:
        written: dict[int, float] = {}
        start = time.monotonic()
        n = int(rate * seconds)
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.write(written)
        return written, n / (time.monotonic() - start)

    def burst(self, n: int) -> dict[int, float]:
        written: dict[int, float] = {}
        for _ in range(n):
            self.write(written)
        return written


def writer_main(queue: str) -> None:
    """``--writer QUEUE``: one command a line on stdin (``paced RATE SECONDS``, ``burst N``),
    one JSON line back with the write times (and the rate reached)."""
    w = JobWriter(Path(queue))
    for line in sys.stdin:
        cmd, *nums = line.split()
        if cmd == "paced":
            written, offered = w.paced(float(nums[0]), float(nums[1]))
        else:
            written, offered = w.burst(int(nums[0])), 0.0
        print(json.dumps({"written": written, "offered": offered}), flush=True)


class Writer:
    """The benchmark's handle on the writer process; ``written`` maps job id → rename time."""

    def __init__(self, queue: Path) -> None:
        self.queue = queue
        self.written: dict[int, float] = {}
        self.proc: asyncio.subprocess.Process | None = None

    async def _run(self, command: str) -> float:
        if self.proc is None:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--writer", str(self.queue),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 26,  # one long line
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        answer = json.loads(await self.proc.stdout.readline())
        self.written.update((int(k), v) for k, v in answer["written"].items())
        return float(answer["offered"])

    async def paced(self, rate: float, seconds: float) -> float:
        """Write ``rate`` updates a second; returns the rate reached (a loaded machine may lag)."""
        return await self._run(f"paced {rate} {seconds}")

    async def burst(self, n: int) -> None:
        await self._run(f"burst {n}")

    async def close(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()
            await asyncio.wait_for(self.proc.wait(), 30)


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
#
# A sink runs as a process of its own (this script with --sink), as the dispatcher does:
# in the benchmark's process it would share the event loop and the GIL with the
# reference publisher, so arrivals would be stamped late. It prints
# "<job id> <arrival time>" per message; time.time() is the same clock in both processes.


class AmqpSink:
    def __init__(self, url: str, tag: str, prefetch: int) -> None:
        self.consumer = Consumer(url, tag, prefetch)
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
        await self.consumer.close(delete_queues=True)


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


class ArrivalLog(dict):  # type: ignore[type-arg]
    """The sink process's ``arrived``: each new job id is also written to stdout."""

    def setdefault(self, key: int, value: float) -> float:  # type: ignore[override]
        if key not in self:
            sys.stdout.write(f"{key} {value:.6f}\n")
        return super().setdefault(key, value)


async def sink_main(argv: list[str]) -> None:
    """``--sink amqp URL TAG PREFETCH`` or ``--sink sse URL``: until stdin closes."""
    sink: AmqpSink | SseSink = AmqpSink(argv[1], argv[2], int(argv[3])) if argv[0] == "amqp" else SseSink(argv[1])
    sink.arrived = ArrivalLog()
    await sink.start()
    print("ready", flush=True)

    async def flush() -> None:
        while True:
            await asyncio.sleep(0.002)
            sys.stdout.flush()

    flusher = asyncio.create_task(flush())
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    flusher.cancel()
    await sink.close()
    sys.stdout.flush()


class SinkProcess:
    """A sink in its own process; ``arrived`` fills as it reports."""

    def __init__(self, *argv: str) -> None:
        self.argv = argv
        self.arrived: dict[int, float] = {}
        self.proc: asyncio.subprocess.Process | None = None
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--sink", *self.argv,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"sink {self.argv[0]} did not start: {line!r}")
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            jid, when = line.split()
            self.arrived.setdefault(int(jid), float(when))

    async def close(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        await asyncio.wait_for(self.proc.wait(), 30)
        if self.reader is not None:
            await self.reader


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


# -- the floor: the broker alone ----------------------------------------------


class RawPublisher:
    """What the broker and the consumer take without eventd: no files, no spool, no inotify.

    Pipelined publishes on one aiormq channel with confirms, ``mandatory``, persistent,
    the bodies and routing keys eventd would send, at most ``window`` unconfirmed. An
    update's clock starts when it is due, so waiting for the window counts. Same
    interface as :class:`Writer` (``written``, ``paced``, ``burst``); ``confirmed``
    holds the confirm times.
    """

    def __init__(self, url: str, window: int) -> None:
        self.url = url
        self.window = asyncio.Semaphore(window)
        self.next_id = 1
        self.written: dict[int, float] = {}
        self.confirmed: dict[int, float] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.conn: aiormq.abc.AbstractConnection | None = None
        self.channel: aiormq.abc.AbstractChannel | None = None

    async def start(self) -> None:
        self.conn = await aiormq.connect(self.url)
        self.channel = await self.conn.channel(publisher_confirms=True, on_return_raises=True)
        await self.channel.exchange_declare("ganeti", exchange_type="topic", durable=True)

    async def close(self) -> None:
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.conn is not None:
            await self.conn.close()

    def write(self) -> None:
        jid = self.next_id
        self.next_id += 1
        now = time.time()
        (ev,), _ = job_events(parse_job(job_file(jid, now)), "bench")
        self.written[jid] = now
        t = asyncio.create_task(self._publish(jid, ev.encoded(), ev.routing_key, ev.message_id))
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def _publish(self, jid: int, body: bytes, key: str, message_id: str) -> None:
        assert self.channel is not None
        props = aiormq.spec.Basic.Properties(delivery_mode=2, content_type="application/json", message_id=message_id)
        async with self.window:
            await self.channel.basic_publish(body, exchange="ganeti", routing_key=key, properties=props,
                                             mandatory=True, timeout=30)
        self.confirmed[jid] = time.time()

    async def paced(self, rate: float, seconds: float) -> float:
        start = time.monotonic()
        n = int(rate * seconds)
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            await asyncio.sleep(max(delay, 0))  # yields even when late: the confirms need the loop
            self.write()
        return n / (time.monotonic() - start)

    async def burst(self, n: int) -> None:
        for i in range(n):
            self.write()
            if i % 100 == 0:
                await asyncio.sleep(0)


# -- one measurement ----------------------------------------------------------


async def measure(kind: str, broker: RabbitMQ | None, base: Path, args: argparse.Namespace) -> dict[str, float]:
    base.mkdir(parents=True)
    g = ganeti_dir(base)
    queue = g / "queue"
    eventd: Eventd | None = None
    stop = asyncio.Event()
    ref: asyncio.Task[None] | None = None
    sink: SinkProcess
    writer: Writer | RawPublisher = Writer(queue)
    if kind == "nefeli-amqp":
        assert broker
        sink = SinkProcess("amqp", broker.url, f"bench-{base.name}-", str(args.prefetch))
        await sink.start()
        eventd = Eventd(base, g, "--broker", broker.url, "--confirm-window", str(args.window),
                        "--log-level", "warning", "--no-access-log").start()
    elif kind == "reference-amqp":
        assert broker
        sink = SinkProcess("amqp", broker.url, f"bench-{base.name}-", str(args.prefetch))
        await sink.start()
        ref = asyncio.create_task(reference_publisher(queue, broker.url, stop))
        await asyncio.sleep(0.5)
    elif kind == "raw-amqp":
        assert broker
        sink = SinkProcess("amqp", broker.url, f"bench-{base.name}-", str(args.prefetch))
        await sink.start()
        writer = RawPublisher(broker.url, args.window)
        await writer.start()
    else:
        eventd = Eventd(base, g, "--log-level", "warning", "--no-access-log").start()
        sink = SinkProcess("sse", f"http://127.0.0.1:{eventd.http}/events")
        await sink.start()
    try:
        offered = await writer.paced(args.rate, args.seconds)
        await wait_all(sink.arrived, len(writer.written))
        lat = [(sink.arrived[j] - t) * 1000 for j, t in writer.written.items()]
        out = {"offered": offered, "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": max(lat)}
        if isinstance(writer, RawPublisher):
            await asyncio.gather(*writer.tasks)
            conf = [(writer.confirmed[j] - t) * 1000 for j, t in writer.written.items()]
            out.update(confirm_p50=pct(conf, 0.5), confirm_p99=pct(conf, 0.99))
        n0 = len(writer.written)
        t0 = time.time()
        await writer.burst(args.burst)
        end = await wait_all(sink.arrived, n0 + args.burst)
        out["rate"] = args.burst / (end - t0)
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
        await writer.close()
        await sink.close()
        if eventd and eventd.proc and eventd.proc.poll() is None:
            eventd.stop(signal.SIGTERM)


KINDS = {
    "nefeli-amqp": "nefeli, spool + RabbitMQ",
    "reference-amqp": "reference (no spool)",
    "raw-amqp": "raw publisher (broker only)",
    "nefeli-sse": "nefeli, SSE feed",
}


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="nefeli-eventd-bench-"))
    broker = RabbitMQ(tmp / "rabbitmq")
    print("starting RabbitMQ ...", file=sys.stderr)
    broker.start()
    results: dict[str, list[dict[str, float]]] = {}
    loads = [load()]
    try:
        for r in range(args.rounds):
            kinds = list(args.kinds)
            if r % 2:
                kinds.reverse()
            for kind in kinds:
                res = await measure(kind, broker, tmp / f"{kind}-{r}", args)
                results.setdefault(kind, []).append(res)
                print(f"round {r + 1} {kind}: " + ", ".join(f"{k}={v:.1f}" for k, v in res.items()) + f"; {load()}",
                      file=sys.stderr)
            loads.append(load())
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def med(kind: str, key: str) -> float:
        return statistics.median(x[key] for x in results[kind])

    print(f"\nnefeli-eventd, {args.rounds} rounds (medians); {args.rate:.0f} updates/s for {args.seconds:.0f} s, "
          f"then {args.burst} as fast as possible; no loss in any run (else it would have stopped)")
    print(f"confirm window {args.window}; consumer prefetch {args.prefetch}; {loads[0]} at the start, {loads[-1]} at the end")
    print(f"{'':30}{'offered/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'sustained/s':>13}{'confirm p50/p99 ms':>21}")
    for kind in args.kinds:
        row = f"{KINDS[kind]:30}{med(kind, 'offered'):10.0f}{med(kind, 'p50'):9.2f}{med(kind, 'p99'):9.2f}{med(kind, 'max'):9.1f}{med(kind, 'rate'):13.0f}"
        if kind == "raw-amqp":
            row += f"{med(kind, 'confirm_p50'):12.2f}/{med(kind, 'confirm_p99'):.2f}"
        elif kind == "nefeli-amqp":
            row += f"{'mean ' + format(med(kind, 'confirm_mean'), '.2f'):>21}"
        print(row)
    print("(latency: job-file rename, or for the raw publisher the publish, to the consumer; "
          "nefeli's confirm: spooled → confirmed, mean)")
    if "nefeli-amqp" in results and "reference-amqp" in results:
        print(f"p99 nefeli / reference: {med('nefeli-amqp', 'p99') / med('reference-amqp', 'p99'):.2f}; "
              f"sustained nefeli / reference: {med('nefeli-amqp', 'rate') / med('reference-amqp', 'rate'):.2f}")
    if "nefeli-amqp" in results and "raw-amqp" in results:
        print(f"p99 nefeli / raw publisher: {med('nefeli-amqp', 'p99') / med('raw-amqp', 'p99'):.2f}")
    if "nefeli-amqp" in results:
        p99 = med("nefeli-amqp", "p99")
        print(f"goal p99 < {GOAL_P99_MS:.0f} ms at {args.rate:.0f}/s: {'ok' if p99 < GOAL_P99_MS else 'MISSED'} ({p99:.2f} ms)")
    return 0


def main() -> int:
    if sys.argv[1:2] == ["--sink"]:
        uvloop.run(sink_main(sys.argv[2:]))
        return 0
    if sys.argv[1:2] == ["--writer"]:
        writer_main(sys.argv[2])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--burst", type=int, default=5000)
    ap.add_argument("--window", type=int, default=256, help="confirm window of eventd and of the raw publisher")
    ap.add_argument("--prefetch", type=int, default=5, help="the consumer's prefetch (the dispatcher's: 5)")
    ap.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("rabbitmq-server"):
        print("eventd_compare: skipped, needs root and rabbitmq-server (scripts/install-test-peers)", file=sys.stderr)
        return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
