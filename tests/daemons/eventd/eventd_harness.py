"""A private RabbitMQ, nefeli-eventd as a process, a dispatcher-like consumer, a Ganeti-like writer."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import string
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika

from eventd_fixtures import GANETI
from free_ports import free_port
from net.ganeti_events import Event, job_events
from net.ganeti_job import parse_job

REPO = Path(__file__).resolve().parents[3]
# Debian's /usr/sbin wrappers cd to /var/lib/rabbitmq and su to the rabbitmq user, which
# resets HOME and cannot write a private temporary directory: run the real scripts as root.
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


def rabbit_program(name: str) -> str:
    real = RABBIT_BIN / name
    return str(real) if real.exists() else name
PREFIXES = ("snf", "inst1.example.test", "nosuch.example.test", "net1")
MASTER = "node1.example.test"


class RabbitMQ:
    """One broker node of its own under a temporary directory (ports, mnesia, logs, cookie)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"nefeli-eventd-{os.getpid()}-{self.port}@localhost"
        (base / "home").mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("[].\n")
        self.pidfile = base / "rabbitmq.pid"
        self.env = dict(
            os.environ,
            HOME=str(base / "home"),
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
            RABBITMQ_LOG_BASE=str(base / "log"),
            RABBITMQ_PID_FILE=str(self.pidfile),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(base / "rabbitmq"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(base / "advanced.config"),
        )

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def ctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [rabbit_program("rabbitmqctl"), "-n", self.node, *args], env=self.env, cwd=self.base,
            capture_output=True, text=True, timeout=timeout,
        )

    def start(self) -> None:
        subprocess.run([rabbit_program("rabbitmq-server"), "-detached"], env=self.env, cwd=self.base, check=True, timeout=60)
        deadline = time.monotonic() + 90
        while True:
            r = self.ctl("-q", "await_startup", timeout=60)
            if r.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ did not start: {r.stderr.strip()[-500:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.pidfile.exists():
            self.ctl("stop", str(self.pidfile), timeout=60)


def write_like_ganeti(queue: Path, job_id: int, data: bytes, *, luxid: bool) -> None:
    """A temporary file in the queue directory renamed over job-N, as luxid or the job process does."""
    if luxid:
        tmp = queue / f"job-{job_id}-{os.getpid()}-{random.randrange(10**6)}.tmp"
    else:
        tmp = queue / f"job-{job_id}{''.join(random.choices(string.ascii_lowercase + '_', k=8))}.new"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, queue / f"job-{job_id}")


def archive_like_ganeti(queue: Path, job_id: int) -> None:
    target = queue / "archive" / str(job_id // 10000)
    target.mkdir(parents=True, exist_ok=True)
    os.rename(queue / f"job-{job_id}", target / f"job-{job_id}")


def ganeti_dir(base: Path, master: str = MASTER) -> Path:
    g = base / "ganeti"
    (g / "queue").mkdir(parents=True, exist_ok=True)
    (g / "ssconf_cluster_name").write_bytes((GANETI / "ssconf_cluster_name").read_bytes())
    (g / "ssconf_master_node").write_text(master + "\n")
    (g / "queue" / "serial").write_text("0\n")
    (g / "queue" / "version").write_text("1\n")
    return g


def expected_new(seen: set, data: bytes, cluster: str = "cluster.example.test") -> list[Event]:
    """What eventd should send for one more version of a job, given what it sent before."""
    evs, _ = job_events(parse_job(data), cluster)
    new = [e for e in evs if e.dedup_key not in seen]
    seen.update(e.dedup_key for e in new)
    return new


class Eventd:
    """nefeli-eventd run as a process, its stderr in a file."""

    def __init__(self, base: Path, ganeti: Path, *args: str, node: str | None = MASTER) -> None:
        self.base = base
        self.http = free_port()
        self.data = base / "spool"
        self.log = base / f"eventd-{time.monotonic_ns()}.log"
        self.args = ["--ganeti-dir", str(ganeti), "--data", str(self.data),
                     *(["--node-name", node] if node else []), "--listen", f"127.0.0.1:{self.http}", "--master-check-interval", "0.2",
                     "--reconnect-min", "0.1", "--reconnect-max", "0.5", "--retry-min", "0.1",
                     "--retry-max", "0.5", *args]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Eventd:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemons.eventd.main", *self.args],
                cwd=self.base, env=env, stdout=log, stderr=log,
            )
        deadline = time.monotonic() + 30
        # Up once the worker checked the master (and, on the master, scanned the queue).
        while not self._started():
            if self.proc.poll() is not None:
                raise RuntimeError(f"eventd exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"eventd did not scan the queue in 30 s: {self.log_text()[-2000:]}")
            time.sleep(0.05)
        return self

    def _started(self) -> bool:
        m = self.metrics()
        return m.get("nefeli_eventd_master_checks_total", 0) >= 1 and (
            m.get("nefeli_eventd_is_master") == 0 or m.get("nefeli_eventd_rescans_total", 0) >= 1
        )

    def metrics(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def metric(self, name: str) -> float:
        return self.metrics().get(name, 0.0)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL if still running (and SIGCONT first, should a test have stopped it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Received:
    queue: str
    routing_key: str
    message_id: str | None
    body: dict[str, Any]
    persistent: bool


@dataclass
class Consumer:
    """Queues bound as Synnefo's dispatcher binds them, for several prefixes, plus the heartbeat."""

    url: str
    tag: str
    #: The dispatcher's (snf-dispatcher asks for 5 unacked messages at a time).
    prefetch: int = 5
    received: list[Received] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    _conn: Any = None

    async def start(self, prefixes: tuple[str, ...] = PREFIXES) -> Consumer:
        self._conn = await aio_pika.connect(self.url)
        ch = await self._conn.channel()
        await ch.set_qos(prefetch_count=self.prefetch)
        ex = await ch.declare_exchange("ganeti", aio_pika.ExchangeType.TOPIC, durable=True)
        dl = await ch.declare_exchange("ganeti-dl", aio_pika.ExchangeType.TOPIC, durable=True)
        bindings: dict[str, str] = {}
        for p in prefixes:
            for kind in ("op", "network", "progress"):
                bindings[f"{self.tag}{p}-events-{kind}"] = f"ganeti.{p}.event.{kind}"
        bindings[f"{self.tag}events-cluster"] = "ganeti.event.cluster"
        bindings[f"{self.tag}heartbeat"] = "eventd.heartbeat"
        for name, key in bindings.items():
            q = await ch.declare_queue(name, durable=True, arguments={"x-dead-letter-exchange": "ganeti-dl"})
            await q.bind(ex, key)
            dq = await ch.declare_queue(f"{name}-dl", durable=True)
            await dq.bind(dl, key)
            await q.consume(self._handler(name))
            self.queues += [name, f"{name}-dl"]
        return self

    def _handler(self, queue: str) -> Any:
        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            self.received.append(
                Received(queue, message.routing_key or "", message.message_id, json.loads(message.body),
                         message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT)
            )
            await message.ack()

        return on_message

    async def wait_for(self, n: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"got {len(self.received)} of {n} messages in {timeout}s")
            await asyncio.sleep(0.02)
        return self.received

    def unique(self) -> list[Received]:
        """After the consumer's de-duplication by message_id (first copy kept)."""
        seen, out = set(), []
        for r in self.received:
            if r.message_id not in seen:
                seen.add(r.message_id)
                out.append(r)
        return out

    async def close(self, *, delete_queues: bool = False) -> None:
        """Disconnect; with ``delete_queues`` also drop the queues (durable ones outlive us).

        A queue left bound with no consumer gets a copy of every later message: a
        benchmark round would slow the next ones down.
        """
        if self._conn is None:
            return
        await self._conn.close()
        if delete_queues:
            conn = await aio_pika.connect(self.url)
            try:
                ch = await conn.channel()
                for name in self.queues:
                    await ch.queue_delete(name)
            finally:
                await conn.close()
