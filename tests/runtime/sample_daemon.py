"""A tiny daemon built on daemons.runtime, driven as a real process by the tests.

It serves one JSON line (its current config plus a few facts about its
environment) to every TCP/unix client on an activated socket named
``control`` (or on 127.0.0.1:``http.port`` when that is set), and reports its
config in STATUS= so tests can watch reloads on the notify socket.

``python sample_daemon.py --x-activate FD[,FD...] NAME[:NAME...] -- ARGS``
moves the given fds to 3, 4, ... and sets LISTEN_* for its own pid before
exec'ing itself, like systemd does (the pid survives exec).
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import json
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from daemons.runtime import App, Context, setting  # noqa: E402


def _even(value: int) -> None:
    if value % 2:
        raise ValueError(f"must be even, got {value}")


@dataclass(frozen=True)
class Http:
    port: int = setting(
        0, help="TCP port on 127.0.0.1 (0: none)", min=0, max=65535, reloadable=False
    )
    banner: str = setting("hi", help="first word of every reply")


@dataclass(frozen=True)
class SampleConfig:
    greeting: str = setting("hello", help="shown in STATUS")
    workers: int = setting(4, help="worker count", min=1, max=64)
    ratio: float = setting(0.5, help="a fraction", min=0.0, max=1.0)
    block_size: int = setting(4096, help="an even size", min=2, validate=_even)
    verbose: bool = setting(False, help="say more")
    tags: list[str] = setting(default_factory=list, help="labels")
    mode: Literal["fast", "safe"] = setting("fast", help="how")
    state_dir: Path | None = setting(None, help="a directory")
    token: str = setting("s3cret", help="a secret", secret=True)
    cleanup_delay: float = setting(0.0, help="seconds spent cleaning up", min=0.0)
    crash: bool = setting(False, help="raise after READY")
    reject_reload: bool = setting(False, help="refuse the next reload")
    http: Http = field(default_factory=Http)


def status_line(cfg: SampleConfig) -> str:
    return f"greeting={cfg.greeting} workers={cfg.workers}"


def snapshot(ctx: Context[SampleConfig]) -> dict[str, object]:
    cfg = dataclasses.asdict(ctx.config)
    return {
        "config": json.loads(json.dumps(cfg, default=str)),
        "log_level": ctx.runtime.log_level,
        "env": {
            k: os.environ.get(k)
            for k in (
                "LISTEN_FDS",
                "LISTEN_PID",
                "LISTEN_FDNAMES",
                "NOTIFY_SOCKET",
                "WATCHDOG_USEC",
            )
        },
        "unused_sockets": ctx.sockets.names(),
    }


async def main(ctx: Context[SampleConfig]) -> int | None:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = {"banner": ctx.config.http.banner, **snapshot(ctx)}
        writer.write(json.dumps(data).encode() + b"\n")
        await writer.drain()
        writer.close()

    servers: list[asyncio.AbstractServer] = []
    sock = ctx.sockets.take_one("control")
    if sock is not None:
        if sock.family == socket.AF_UNIX:
            servers.append(await asyncio.start_unix_server(reply, sock=sock))
        else:
            servers.append(await asyncio.start_server(reply, sock=sock))
    elif ctx.config.http.port:
        servers.append(await asyncio.start_server(reply, "127.0.0.1", ctx.config.http.port))

    @ctx.on_reload
    async def reloaded(new: SampleConfig) -> None:
        if new.reject_reload:
            raise ValueError("sample refuses this configuration")
        ctx.log.info("reloaded: greeting=%s", new.greeting)
        ctx.status(status_line(new))

    ctx.ready(status_line(ctx.config))
    ctx.log.debug("debug line\nwith a second line")
    if ctx.config.crash:
        await asyncio.sleep(0.05)
        raise RuntimeError("sample crash\nacross lines")
    reason = await ctx.wait_for_stop()
    ctx.log.info("cleaning up after %s", reason)
    for s in servers:
        s.close()
    await asyncio.sleep(ctx.config.cleanup_delay)
    return None


APP = App(
    "sample-daemon",
    SampleConfig,
    main,
    description="nefeli runtime test daemon",
    version="0.0-test",
)


def _activate_and_exec(argv: list[str]) -> None:
    """Put fds at 3.. with LISTEN_* for our pid, then exec the daemon (like systemd)."""
    fds = [int(x) for x in argv[0].split(",")]
    names = argv[1]
    rest = argv[3:] if len(argv) > 2 and argv[2] == "--" else argv[2:]
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
    for fd in fds:
        os.close(fd)
    for i, fd in enumerate(high):
        os.dup2(fd, 3 + i)  # dup2 makes the copy inheritable
        os.close(fd)
    os.environ["LISTEN_FDS"] = str(len(fds))
    os.environ["LISTEN_PID"] = str(os.getpid())
    if names:
        os.environ["LISTEN_FDNAMES"] = names
    os.execv(sys.executable, [sys.executable, os.path.abspath(__file__), *rest])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--x-activate":
        _activate_and_exec(sys.argv[2:])
    APP.run()
