"""The handle a daemon's ``main(ctx)`` gets: its config, sockets and lifecycle calls.

The daemon never touches signals or ``$NOTIFY_SOCKET`` itself; it says when it
is ready, awaits the stop request, and registers what to do on reload. That
keeps every daemon's shutdown and reload behaviour identical.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from .activation import ListenFds
from .config import RuntimeSettings
from .notify import Notifier
from .tasks import BackgroundTasks

__all__ = ["Context", "ReloadCallback"]

C = TypeVar("C")
ReloadCallback = Callable[[Any], Awaitable[None] | None]


class Context(Generic[C]):
    """Per-run state shared between the runner and the daemon."""

    def __init__(
        self,
        *,
        prog: str,
        config: C,
        runtime: RuntimeSettings,
        config_file: Path | None,
        sockets: ListenFds,
        notifier: Notifier,
    ) -> None:
        self.prog = prog
        #: Current settings; replaced (never mutated) by a successful reload.
        self.config: C = config
        self.runtime = runtime
        self.config_file = config_file
        #: Sockets inherited through socket activation, by FileDescriptorName.
        self.sockets = sockets
        self.notifier = notifier
        #: Background work started once ready, stopped when a stop is requested.
        self.tasks = BackgroundTasks()
        self.log = logging.getLogger(prog)
        self._stop_event = asyncio.Event()
        self._stop_reason: str | None = None
        self._reload_callbacks: list[ReloadCallback] = []
        self._ready = False
        self._status = ""
        self._on_stop: list[Callable[[str], None]] = []

    # -- readiness and status ------------------------------------------------

    @property
    def is_ready(self) -> bool:
        return self._ready

    def ready(self, status: str | None = None) -> None:
        """Tell systemd start-up is complete (``READY=1``): call once listening."""
        if status:
            self._status = status
        if not self._ready:
            self.log.info("ready%s", f": {status}" if status else "")
        self._ready = True
        self.notifier.ready(status or None)
        self.tasks.start()

    def status(self, text: str) -> None:
        """One-line status for ``systemctl status`` (``STATUS=``)."""
        self._status = text
        self.notifier.status(text)

    @property
    def last_status(self) -> str:
        return self._status

    def extend_timeout(self, seconds: float) -> None:
        """Ask systemd for more time for a slow start-up or shutdown step."""
        self.notifier.extend_timeout(seconds)

    def close_unused_sockets(self) -> None:
        """Close the inherited sockets no listener took, with one warning naming them.

        Called once every listener is open, so a socket unit meant for another
        daemon is never left accepting connections nobody answers.
        """
        ignored = self.sockets.close_unused()
        if ignored:
            self.log.warning("closed inherited sockets %s does not serve: %s", self.prog, ", ".join(ignored))

    # -- stopping ------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    def stop(self, reason: str = "stop requested") -> None:
        """Begin a graceful shutdown (as SIGTERM does); idempotent."""
        if self._stop_event.is_set():
            return
        self._stop_reason = reason
        self._stop_event.set()
        for cb in self._on_stop:
            cb(reason)

    async def wait_for_stop(self) -> str:
        """Wait until shutdown is requested; returns why.

        Implies readiness: a daemon that reaches this point without calling
        :meth:`ready` has finished starting, so ``READY=1`` is sent for it.
        Background tasks are cancelled and awaited before it returns, so the
        daemon's cleanup may close whatever they were using.
        """
        if not self._ready:
            self.ready()
        await self._stop_event.wait()
        await self.tasks.stop(self.runtime.shutdown_timeout)
        return self._stop_reason or "stop requested"

    # -- reloading -----------------------------------------------------------

    def on_reload(self, callback: ReloadCallback) -> ReloadCallback:
        """Register ``callback(new_config)`` (sync or async) for SIGHUP reloads.

        It runs after the new file was read and validated, with ``ctx.config``
        already the new value; raising rejects the reload (the old config is
        restored and the error logged). Usable as a decorator.
        """
        self._reload_callbacks.append(callback)
        return callback

    async def _run_reload_callbacks(self, new_config: C) -> None:
        for cb in list(self._reload_callbacks):
            result = cb(new_config)
            if inspect.isawaitable(result):
                await result
