"""Background tasks: started on ready, restarted after failures, stopped before cleanup."""

from __future__ import annotations

import asyncio
import logging

import pytest

from daemons.runtime import tasks as tasks_mod
from daemons.runtime.tasks import BackgroundTasks


async def test_tasks_start_only_when_started_and_stop_cancels_them() -> None:
    t = BackgroundTasks()
    events: list[str] = []

    async def worker() -> None:
        events.append("start")
        try:
            await asyncio.sleep(3600)
        finally:
            events.append("cancelled")

    t.add("worker", worker)
    await asyncio.sleep(0.01)
    assert events == [] and t.running() == []
    t.start()
    await asyncio.sleep(0.01)
    assert events == ["start"] and t.running() == ["worker"]
    await t.stop()
    assert events == ["start", "cancelled"] and t.running() == []
    with pytest.raises(RuntimeError):
        t.add("late", worker)


async def test_a_task_added_after_start_starts_at_once_and_names_are_unique() -> None:
    t = BackgroundTasks()
    t.start()
    ran = asyncio.Event()

    async def once() -> None:
        ran.set()

    t.add("once", once)
    await asyncio.wait_for(ran.wait(), 1)
    with pytest.raises(ValueError):
        t.add("once", once)
    await t.stop()


async def test_a_failing_task_is_logged_and_restarted_with_backoff(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tasks_mod, "RESTART_DELAY_MIN", 0.01)
    t = BackgroundTasks()
    runs = 0
    third = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise ValueError(f"bad input #{runs}")
        third.set()
        await asyncio.sleep(3600)

    t.add("flaky", flaky)
    with caplog.at_level(logging.ERROR, "nefeli.runtime.tasks"):
        t.start()
        await asyncio.wait_for(third.wait(), 2)
    assert t.failures == {"flaky": 2}
    lines = [r.getMessage() for r in caplog.records]
    assert any("flaky failed (restarting in 0.01s): bad input #1" in m for m in lines)
    assert any("restarting in 0.02s): bad input #2" in m for m in lines)
    await t.stop()


async def test_restart_false_ends_the_task_after_one_failure(caplog: pytest.LogCaptureFixture) -> None:
    t = BackgroundTasks()
    runs = 0

    async def broken() -> None:
        nonlocal runs
        runs += 1
        raise OSError("disk gone")

    t.add("broken", broken, restart=False)
    t.start()
    await asyncio.sleep(0.05)
    assert runs == 1 and t.running() == [] and t.failures == {"broken": 1}
    await t.stop()


async def test_stop_gives_up_on_a_task_that_ignores_cancellation(caplog: pytest.LogCaptureFixture) -> None:
    t = BackgroundTasks()
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    t.add("stubborn", stubborn)
    t.start()
    await asyncio.sleep(0.01)
    with caplog.at_level(logging.ERROR, "nefeli.runtime.tasks"):
        await t.stop(timeout=0.05)
    assert any("did not stop within 0.05s" in r.getMessage() for r in caplog.records)
    release.set()
    for task in asyncio.all_tasks():
        if task.get_name() == "background:stubborn":
            task.cancel()


def test_the_supervisor_starts_tasks_after_ready_and_stops_them_before_cleanup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import dataclass

    from daemons.runtime import App, Context

    for var in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID"):
        monkeypatch.delenv(var, raising=False)

    @dataclass(frozen=True)
    class Cfg:
        pass

    events: list[str] = []

    async def work() -> None:
        events.append("task started")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            events.append("task cancelled")
            raise

    async def main(ctx: Context[Cfg]) -> int:
        ctx.tasks.add("work", work)
        await asyncio.sleep(0.01)
        events.append("ready")
        ctx.ready()
        await asyncio.sleep(0.01)
        ctx.stop("test over")
        await ctx.wait_for_stop()
        events.append("cleanup")
        return 0

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        assert App("nefeli-tasks-test", Cfg, main).execute([]) == 0
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert events == ["ready", "task started", "task cancelled", "cleanup"]
