"""Signals, shutdown, reload and watchdog around a daemon's ``main(ctx)``.

Policy, identical for every nefeli daemon:

* SIGTERM / SIGINT: graceful stop. ``STOPPING=1`` is sent, ``ctx.wait_for_stop()``
  returns, and ``main`` gets ``shutdown_timeout`` seconds to clean up and
  return (exit 0). Past that it is cancelled (exit 1). A watchdog thread ends
  the process if even that hangs, e.g. on a blocked event loop.
* A second SIGTERM / SIGINT while stopping: exit at once (status 128+signal),
  for the operator who does not want to wait.
* SIGHUP: re-read the config file (flags still win), keep settings marked
  ``reloadable=False``, call the daemon's reload callbacks. Any failure is
  logged and the running configuration kept: a typo must never kill a daemon.
* ``WATCHDOG=1`` every half ``$WATCHDOG_USEC`` from the event loop itself, so
  a wedged loop stops the pings and systemd restarts the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from .config import CliArgs, ConfigError, ConfigLoader, RuntimeSettings
from .context import Context
from .logsetup import TextFormatter, configure_logging

__all__ = ["Supervisor", "EXIT_OK", "EXIT_FAILURE", "EXIT_CONFIG"]

C = TypeVar("C")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2

#: Extra time after a timed-out cleanup is cancelled before giving up on it.
CANCEL_GRACE = 2.0
#: Extra time on top of shutdown_timeout before the hard-deadline thread exits.
HARD_DEADLINE_GRACE = 5.0

log = logging.getLogger("nefeli.runtime")


def _hard_exit(message: str, status: int) -> None:
    """Write one log line without taking logging locks, then ``_exit``.

    Used from a signal callback or a timer thread when the normal path may
    be wedged (a handler blocked on a full pipe holds the logging lock).
    """
    record = logging.LogRecord("nefeli.runtime", logging.CRITICAL, __file__, 0, message, None, None)
    formatter: logging.Formatter = TextFormatter()
    for h in logging.getLogger().handlers:
        if h.get_name() == "nefeli.runtime.stderr" and h.formatter is not None:
            formatter = h.formatter
            break
    try:
        os.write(2, (formatter.format(record) + "\n").encode("utf-8", "replace"))
    except OSError:
        pass
    os._exit(status)


class Supervisor(Generic[C]):
    """Runs one daemon ``main`` under the shared lifecycle policy."""

    def __init__(
        self,
        main: Callable[[Context[C]], Awaitable[int | None]],
        ctx: Context[C],
        *,
        loader: ConfigLoader[C],
        cli_args: CliArgs,
        watchdog_interval: float | None = None,
    ) -> None:
        self.main = main
        self.ctx = ctx
        self.loader = loader
        self.cli_args = cli_args
        self.watchdog_interval = watchdog_interval
        self._reload_requested = False
        self._reload_task: asyncio.Task[None] | None = None
        self._deadline: threading.Timer | None = None
        self._signals: list[int] = []

    # -- entry ---------------------------------------------------------------

    async def run(self) -> int:
        """Run ``main`` to completion under the policy; returns the exit status."""
        loop = asyncio.get_running_loop()
        ctx = self.ctx
        ctx._on_stop.append(self._stopping)
        self._install_signals(loop)
        watchdog = (
            loop.create_task(self._watchdog(self.watchdog_interval), name="sd-watchdog")
            if self.watchdog_interval
            else None
        )
        main_task: asyncio.Future[Any] = asyncio.ensure_future(self.main(ctx))
        stop_task = loop.create_task(ctx._stop_event.wait(), name="stop-wait")
        timed_out = False
        try:
            await asyncio.wait({main_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            if not main_task.done():
                timeout = ctx.runtime.shutdown_timeout
                done, _ = await asyncio.wait({main_task}, timeout=timeout)
                if not done:
                    timed_out = True
                    log.error("cleanup did not finish within %gs; cancelling it", timeout)
                    main_task.cancel()
                    await asyncio.wait({main_task}, timeout=CANCEL_GRACE)
            elif not ctx.stopping:
                stop_task.cancel()
                if main_task.cancelled() or main_task.exception() is not None:
                    status = self._exit_status(main_task, timed_out)
                    ctx.stop("main failed")
                    return status
                ctx.stop("main returned")
            return self._exit_status(main_task, timed_out)
        finally:
            await ctx.tasks.stop(CANCEL_GRACE)
            for task in (watchdog, self._reload_task, stop_task):
                if task is not None and not task.done():
                    task.cancel()
            left = ctx.sockets.close_unused()
            if left:
                log.debug("closed unused inherited sockets: %s", ", ".join(left))

    def _exit_status(self, task: asyncio.Future[Any], timed_out: bool) -> int:
        if timed_out or not task.done():
            if not task.done():
                log.error("main did not react to cancellation")
            return EXIT_FAILURE
        if task.cancelled():
            log.error("main was cancelled")
            return EXIT_FAILURE
        exc = task.exception()
        if isinstance(exc, ConfigError):
            log.error("configuration error: %s", exc)
            self.ctx.notifier.status(f"configuration error: {exc}")
            return EXIT_CONFIG
        if exc is not None:
            log.critical("fatal error: %s", exc or type(exc).__name__, exc_info=exc)
            self.ctx.notifier.status(f"failed: {type(exc).__name__}: {exc}")
            return EXIT_FAILURE
        result = task.result()
        if isinstance(result, int) and not isinstance(result, bool):
            status = result
        else:
            status = EXIT_OK
        log.info("stopped (%s)", self.ctx.stop_reason or "main returned")
        return status

    # -- signals -------------------------------------------------------------

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
            self._signals.append(sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        self._signals.append(signal.SIGHUP)

    def _on_stop_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self.ctx.stopping:
            _hard_exit(f"received {name} again while stopping: exiting now", 128 + sig)
            return
        self.ctx.stop(f"received {name}")

    def _stopping(self, reason: str) -> None:
        """First step of every shutdown: tell systemd, arm the hard deadline."""
        log.info("stopping: %s", reason)
        self.ctx.notifier.stopping(f"stopping: {reason}")
        limit = self.ctx.runtime.shutdown_timeout + CANCEL_GRACE + HARD_DEADLINE_GRACE
        self._deadline = threading.Timer(
            limit,
            _hard_exit,
            (f"shutdown still not finished after {limit:g}s: exiting", EXIT_FAILURE),
        )
        self._deadline.daemon = True
        self._deadline.start()

    def cancel_deadline(self) -> None:
        """Disarm the hard deadline (the process is about to exit normally)."""
        if self._deadline is not None:
            self._deadline.cancel()

    # -- reload --------------------------------------------------------------

    def _on_hup(self) -> None:
        if self.ctx.stopping:
            log.info("ignoring SIGHUP: stopping")
            return
        self._reload_requested = True
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.get_running_loop().create_task(
                self._reload_loop(), name="reload"
            )

    async def _reload_loop(self) -> None:
        # SIGHUPs arriving during a reload coalesce into one more pass.
        while self._reload_requested and not self.ctx.stopping:
            self._reload_requested = False
            await self.reload()

    async def reload(self) -> bool:
        """Re-read the configuration and apply it; True when it was applied."""
        ctx = self.ctx
        source = str(self.cli_args.config_file) if self.cli_args.config_file else "command line"
        log.info("reloading configuration from %s", source)
        ctx.notifier.reloading("reloading configuration")
        try:
            loaded = self.loader.load(self.cli_args)
        except ConfigError as exc:
            log.error("reload failed, keeping the running configuration: %s", exc)
            ctx.notifier.ready(f"reload failed ({exc}); running with the previous configuration")
            return False
        old_config, old_runtime = ctx.config, ctx.runtime
        for key in self.loader.non_reloadable_changes(old_config, loaded.config):
            log.warning("%s changed: it takes effect only after a restart", key)
        ctx.config = self.loader.keep_non_reloadable(old_config, loaded.config)
        self._set_runtime(loaded.runtime)
        try:
            await ctx._run_reload_callbacks(ctx.config)
        except Exception as exc:  # noqa: BLE001 - a reload must never crash the daemon
            log.error(
                "reload rejected, keeping the running configuration: %s",
                exc or type(exc).__name__,
                exc_info=None if isinstance(exc, ConfigError) else exc,  # a bad value is one line
            )
            ctx.config = old_config
            self._set_runtime(old_runtime)
            ctx.notifier.ready(f"reload rejected ({exc}); running with the previous configuration")
            return False
        log.info("configuration reloaded")
        ctx.notifier.ready(ctx.last_status or None)
        return True

    def _set_runtime(self, runtime: RuntimeSettings) -> None:
        old = self.ctx.runtime
        self.ctx.runtime = runtime
        if (old.log_level, old.log_format) != (runtime.log_level, runtime.log_format):
            configure_logging(runtime.log_level, runtime.log_format, stream=sys.stderr)

    # -- watchdog ------------------------------------------------------------

    async def _watchdog(self, interval: float) -> None:
        log.debug("watchdog: pinging every %gs", interval)
        while True:
            self.ctx.notifier.watchdog()
            await asyncio.sleep(interval)
