"""The runner in-process: exit statuses, ctx.stop(), reload coalescing, on uvloop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvloop

from daemons.runtime import App, ConfigError, Context, setting


@dataclass(frozen=True)
class Cfg:
    name: str = setting("a", help="a name")
    exit_with: int = setting(0, min=0, max=255)


@pytest.fixture(autouse=True)
def _restore_logging_and_signals() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    sigs = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)}
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for s, h in sigs.items():
        signal.signal(s, h)


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = str(tmp_path / "n.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    for var in ("WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "JOURNAL_STREAM"):
        monkeypatch.delenv(var, raising=False)
    yield s
    s.close()


def drain(s: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(s.recv(4096).decode())
        except BlockingIOError:
            return out


def test_main_runs_on_uvloop_and_its_status_is_the_exit_status(notify) -> None:
    seen: dict[str, object] = {}

    async def main(ctx: Context[Cfg]) -> int:
        seen["loop"] = type(asyncio.get_running_loop())
        seen["name"] = ctx.config.name
        ctx.ready("up")
        return ctx.config.exit_with

    assert App("t", Cfg, main).execute(["--name", "zed", "--exit-with", "3"]) == 3
    assert seen == {"loop": uvloop.Loop, "name": "zed"}
    msgs = drain(notify)
    assert msgs[0] == "READY=1\nSTATUS=up"
    assert msgs[-1].startswith("STOPPING=1\nSTATUS=stopping: main returned")


def test_ctx_stop_ends_wait_for_stop_and_implies_ready(notify) -> None:
    async def main(ctx: Context[Cfg]) -> None:
        asyncio.get_running_loop().call_later(0.01, ctx.stop, "done here")
        assert await ctx.wait_for_stop() == "done here"
        assert ctx.stopping and ctx.is_ready

    assert App("t", Cfg, main).execute([]) == 0
    msgs = drain(notify)
    assert msgs[0] == "READY=1"
    assert "STOPPING=1\nSTATUS=stopping: done here" in msgs


def test_signal_in_process_is_a_clean_stop(notify) -> None:
    async def main(ctx: Context[Cfg]) -> None:
        ctx.ready()
        os.kill(os.getpid(), signal.SIGTERM)
        await ctx.wait_for_stop()

    assert App("t", Cfg, main).execute([]) == 0


def test_config_error_raised_by_main_exits_2(notify) -> None:
    async def main(ctx: Context[Cfg]) -> None:
        raise ConfigError("/srv/data: not a directory")

    assert App("t", Cfg, main).execute([]) == 2


def test_reloads_coalesce_and_reread_the_file(notify, tmp_path: Path) -> None:
    """Two SIGHUPs that arrive while a reload runs fold into one more reload.

    Without timing: the first reload waits until the test lets it go, and the test
    lets it go only once its own SIGUSR1, sent after the two SIGHUPs, was handled
    (the loop handles signals in the order they came)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('name = "one"\n')
    applied: list[str] = []

    async def main(ctx: Context[Cfg]) -> None:
        loop = asyncio.get_running_loop()
        started, release, marker = asyncio.Event(), asyncio.Event(), asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, marker.set)

        @ctx.on_reload
        async def on_reload(new: Cfg) -> None:
            assert ctx.config is new
            applied.append(new.name)
            started.set()
            await release.wait()

        ctx.ready()
        cfg.write_text('name = "two"\n')
        os.kill(os.getpid(), signal.SIGHUP)
        await started.wait()
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGUSR1)
        await marker.wait()
        loop.remove_signal_handler(signal.SIGUSR1)
        release.set()
        while len(applied) < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # room for a third reload, which must not come
        ctx.stop()
        await ctx.wait_for_stop()

    assert App("t", Cfg, main).execute(["--config", str(cfg)]) == 0
    assert applied == ["two", "two"]
    msgs = drain(notify)
    assert sum(m.startswith("RELOADING=1\nMONOTONIC_USEC=") for m in msgs) == 2


def test_sync_reload_callback_and_hup_during_stop_is_ignored(notify, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('name = "x"\n')
    calls: list[str] = []

    async def main(ctx: Context[Cfg]) -> None:
        ctx.on_reload(lambda new: calls.append(new.name))
        ctx.ready()
        ctx.stop()
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.05)

    assert App("t", Cfg, main).execute(["--config", str(cfg)]) == 0
    assert calls == []
