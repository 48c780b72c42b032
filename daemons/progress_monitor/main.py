"""`nefeli-progress-monitor`: snf-image's progress stream into eventd's spool.

    nefeli-progress-monitor [--config /etc/nefeli/eventd.toml] [--data DIR] INSTANCE

snf-image pipes its progress (concatenated JSON objects) to this command. Each object
gets ``instance`` and ``event_time`` and is committed to the spool that nefeli-eventd
on this node publishes from (routing key ``ganeti.<prefix>.event.progress``); eventd
is woken through the spool's wake file. At end of input the command exits 0 as soon
as everything it read is on disk, so an image deploy never waits for the broker.
Garbage on the stream is logged in one line and skipped. It reads eventd's config
file (only ``data`` matters here), so one file configures both.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # python daemons/progress_monitor/main.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from daemons.eventd.config import EventdConfig  # noqa: E402
from daemons.eventd.spool import Spool, SpoolError  # noqa: E402
from daemons.runtime import App, Context, RuntimeSettings, setting  # noqa: E402
from daemons.runtime.schema import compile_schema  # noqa: E402
from net.ganeti_events import Event, progress_event  # noqa: E402
from net.json_stream import Garbage, JsonObject, JsonObjectStream  # noqa: E402

READ_SIZE = 1 << 16


def _instance(value: str) -> None:
    if any(c.isspace() for c in value):
        raise ValueError(f"expected one instance name, got {value!r}")


@dataclass(frozen=True)
class ProgressMonitorConfig(EventdConfig):
    instance: str = setting(
        "", help="instance being deployed (also the positional argument)", validate=_instance, metavar="NAME"
    )


def now_timestamp() -> tuple[int, int]:
    t = time.time_ns() // 1000
    return (t // 1_000_000, t % 1_000_000)


def short(data: bytes, limit: int = 120) -> str:
    text = repr(data[:limit])
    return text + ("..." if len(data) > limit else "")


async def main(ctx: Context[ProgressMonitorConfig]) -> int:
    cfg = ctx.config
    if not cfg.instance:
        ctx.log.error("no instance name given (usage: nefeli-progress-monitor [options] INSTANCE)")
        return 2
    try:
        spool = Spool(cfg.data)
    except (SpoolError, OSError) as exc:
        ctx.log.error("cannot open the spool: %s", exc)
        return 1
    chunks = stdin_reader()
    stream = JsonObjectStream()
    spooled = skipped = 0
    ctx.ready(f"reading progress of {cfg.instance}")
    try:
        while not ctx.stopping:
            read = asyncio.ensure_future(chunks.get())
            stop = asyncio.ensure_future(ctx.wait_for_stop())
            done, _ = await asyncio.wait([read, stop], return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if read not in done:
                read.cancel()
                break  # SIGTERM: spool what was read so far
            chunk = read.result()
            items = stream.feed(chunk) if chunk else stream.end()
            events: list[Event] = []
            for item in items:
                if isinstance(item, Garbage):
                    skipped += 1
                    ctx.log.warning("skipping garbage on the progress stream (%s): %s", item.reason, short(item.data))
                elif isinstance(item, JsonObject):
                    events.append(
                        progress_event(item.value, cfg.instance, now_timestamp(), f"progress:{cfg.instance}:{uuid.uuid4().hex}")
                    )
            if events:
                spool.add(events)  # committed and fsynced before we read on
                spooled += len(events)
                spool.wake()
            if not chunk:
                break
    finally:
        spool.close()
    ctx.log.info("%d progress messages of %s spooled, %d garbage pieces skipped", spooled, cfg.instance, skipped)
    return 0


def stdin_reader() -> asyncio.Queue[bytes]:
    """Chunks of stdin (b"" at its end) from a daemon thread: a blocked read never delays exit."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)

    def put(chunk: bytes) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()

    def reader() -> None:
        while True:
            try:
                chunk = os.read(0, READ_SIZE)
            except OSError:
                chunk = b""
            try:
                put(chunk)
            except RuntimeError:  # the loop is gone
                return
            if not chunk:
                return

    threading.Thread(target=reader, name="stdin", daemon=True).start()
    return queue


APP = App(
    "nefeli-progress-monitor",
    ProgressMonitorConfig,
    main,
    description="snf-image's progress stream (stdin) into the eventd spool, for publishing. "
    "Usage: nefeli-progress-monitor [options] INSTANCE (the settings are eventd's; only data is used)",
)


def with_instance_flag(argv: Sequence[str]) -> list[str]:
    """Turn the positional INSTANCE into ``--instance INSTANCE`` (the runtime parses flags only)."""
    takes_value = {"-c", "--config"} | {
        f.flag for f in compile_schema(RuntimeSettings, "runtime") + compile_schema(ProgressMonitorConfig, "daemon")
        if f.kind.name != "bool"
    }
    out: list[str] = []
    positional: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            positional += args[i + 1:]
            break
        if a.startswith("-") and a != "-":
            out.append(a)
            if a in takes_value and "=" not in a and i + 1 < len(args):
                out.append(args[i + 1])
                i += 1
        else:
            positional.append(a)
        i += 1
    if len(positional) > 1:
        out.append("--instance=" + " ".join(positional))  # rejected by the validator, with the value shown
    elif positional:
        out.append("--instance=" + positional[0])
    return out


def entry() -> None:
    APP.run(with_instance_flag(sys.argv[1:]))


if __name__ == "__main__":
    entry()
