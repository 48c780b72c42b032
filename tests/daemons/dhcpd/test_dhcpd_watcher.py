"""The binding watcher on a real inotify queue: events as the hooks cause them, a
queue overflow (forced by not reading while more events happen than the kernel
queues) answered by a full rescan, and the data path removed and made again."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path

import pytest

from daemons.dhcpd import watcher
from daemons.dhcpd.bindings import Binding, BindingTable

BINDING = "MAC=02:00:00:00:07:01\nHOSTNAME=vm71\nIP=10.0.0.71\n"


async def until(check, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_events_overflow_and_a_lost_directory(tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, "nefeli-dhcpd.bindings")
    monkeypatch.setattr(watcher, "RETRY", 0.1)
    data = tmp_path / "bindings"
    data.mkdir()
    table = BindingTable(data)
    changed: list[Binding] = []
    ready = asyncio.Event()
    task = asyncio.create_task(watcher.watch_bindings(table, changed.append, ready))
    try:
        await ready.wait()
        (data / "tap1").write_text(BINDING)
        await until(lambda: "tap1" in table)
        assert changed[-1].hostname == "vm71"
        os.rename(data / "tap1", data / "tap2")  # MOVED_FROM + MOVED_TO
        await until(lambda: "tap2" in table and "tap1" not in table)

        # Overflow: more events than the kernel queues, while the loop does not read.
        limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
        junk = data / ".junk"
        for _ in range(limit // 2 + 10):
            junk.touch()  # CREATE + CLOSE_WRITE
            junk.unlink()  # DELETE
        (data / "tap3").write_text(BINDING)  # its events are lost with the overflow
        (data / "tap2").unlink()
        await until(lambda: "inotify queue overflowed" in caplog.text)
        await until(lambda: "tap3" in table and "tap2" not in table)

        # The whole directory goes away and comes back.
        shutil.rmtree(data)
        await until(lambda: "went away" in caplog.text)
        data.mkdir()
        (data / "tap4").write_text(BINDING)
        await until(lambda: "tap4" in table)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
