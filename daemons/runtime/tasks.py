"""Background tasks a daemon runs beside its listeners, owned by the supervisor.

MD5 backfill, periodic router advertisements, an object expirer, a spool
publisher: each is an ``async`` function that runs until cancelled. The daemon
registers it with ``ctx.tasks.add(name, run)``; it starts once the daemon is
ready (so start-up work never races the first requests' set-up), and it is
cancelled and awaited as soon as a stop is requested, before the daemon's own
cleanup closes what the task uses (the store, a socket).

A task that fails is logged with its traceback and, unless it was added with
``restart=False``, started again after a back-off (1 s, doubling to 60 s), so
one bad input never silently ends a daemon's background work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["BackgroundTasks", "RESTART_DELAY_MAX", "RESTART_DELAY_MIN"]

log = logging.getLogger("nefeli.runtime.tasks")

RESTART_DELAY_MIN = 1.0
RESTART_DELAY_MAX = 60.0


@dataclass(frozen=True)
class _Spec:
    name: str
    run: Callable[[], Awaitable[None]]
    restart: bool


class BackgroundTasks:
    """The registry of one daemon's background tasks."""

    def __init__(self) -> None:
        self._specs: list[_Spec] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._started = False
        self._stopped = False
        #: Failures so far, by task name (for status lines and tests).
        self.failures: dict[str, int] = {}

    def add(self, name: str, run: Callable[[], Awaitable[None]], *, restart: bool = True) -> None:
        """Register ``run`` (called with no arguments) under a unique ``name``."""
        if any(s.name == name for s in self._specs):
            raise ValueError(f"background task {name!r} already added")
        if self._stopped:
            raise RuntimeError(f"background task {name!r} added after stop")
        spec = _Spec(name, run, restart)
        self._specs.append(spec)
        if self._started:
            self._launch(spec)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self._specs]

    def running(self) -> list[str]:
        return sorted(n for n, t in self._tasks.items() if not t.done())

    def start(self) -> None:
        """Start every registered task (idempotent); later ``add`` calls start at once."""
        if self._started or self._stopped:
            return
        self._started = True
        for spec in self._specs:
            self._launch(spec)

    def _launch(self, spec: _Spec) -> None:
        self._tasks[spec.name] = asyncio.get_running_loop().create_task(
            self._supervise(spec), name=f"background:{spec.name}"
        )

    async def _supervise(self, spec: _Spec) -> None:
        delay = RESTART_DELAY_MIN
        while True:
            try:
                await spec.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - logged; the daemon keeps running
                self.failures[spec.name] = self.failures.get(spec.name, 0) + 1
                if not spec.restart:
                    log.error("background task %s failed: %s", spec.name, exc or type(exc).__name__, exc_info=exc)
                    return
                log.error(
                    "background task %s failed (restarting in %gs): %s",
                    spec.name,
                    delay,
                    exc or type(exc).__name__,
                    exc_info=exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_DELAY_MAX)
                continue
            log.debug("background task %s finished", spec.name)
            return

    async def stop(self, timeout: float = 10.0) -> None:
        """Cancel every task and wait for them (at most ``timeout`` s); idempotent."""
        self._stopped = True
        tasks = [t for t in self._tasks.values() if not t.done()]
        for t in tasks:
            t.cancel()
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for t in pending:
            log.error("background task %s did not stop within %gs", t.get_name(), timeout)
        for t in done:
            if not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                log.error("background task %s failed while stopping: %s", t.get_name(), exc, exc_info=exc)
