"""The entry point every nefeli daemon's console script calls.

``App(prog, Config, main).run()`` does, in order: parse flags and the config
file (one stderr line and exit 2 on any error), set up logging, take the
socket-activated fds and the notify socket from the environment, then run
``main(ctx)`` on a uvloop event loop under :class:`~.lifecycle.Supervisor`.

Exit statuses: 0 clean stop, 1 failure, 2 bad configuration or usage,
128+N forced by a second signal N.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, NoReturn, TypeVar

import uvloop

from .access_log import quiet_protocol_errors
from .activation import take_listen_fds
from .config import ConfigError, ConfigLoader
from .context import Context
from .lifecycle import EXIT_CONFIG, Supervisor
from .logsetup import configure_logging, emergency_line
from .notify import Notifier, watchdog_interval

__all__ = ["App", "run"]

C = TypeVar("C")

log = logging.getLogger("nefeli.runtime")


def package_version() -> str | None:
    """nefeli's installed version (None when run from a tree that is not installed)."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("nefeli")
    except (ImportError, PackageNotFoundError):
        return None


@dataclass
class App(Generic[C]):
    """A daemon: its command name, settings schema and async ``main(ctx)``."""

    prog: str
    config: type[C]
    main: Callable[[Context[C]], Awaitable[int | None]]
    description: str | None = None
    version: str | None = None

    def loader(self) -> ConfigLoader[C]:
        """The config loader (its ``parser`` is handy for docs and man pages)."""
        return ConfigLoader(
            self.config,
            prog=self.prog,
            description=self.description,
            version=self.version or package_version(),
        )

    def run(self, argv: Sequence[str] | None = None) -> NoReturn:
        """Run the daemon and exit the process with its status."""
        sys.exit(self.execute(argv))

    def execute(self, argv: Sequence[str] | None = None) -> int:
        """Run the daemon; returns the exit status instead of exiting."""
        try:
            return self._execute(argv)
        except KeyboardInterrupt:  # Ctrl-C before the loop took over SIGINT
            return 128 + 2

    def _execute(self, argv: Sequence[str] | None) -> int:
        if threading.current_thread() is threading.main_thread():
            # Until the loop installs the reload handler, a SIGHUP (default:
            # terminate) must not kill a daemon that is still starting.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        loader = self.loader()
        try:
            args = loader.parse_args(argv)
            loaded = loader.load(args)
        except ConfigError as exc:
            print(emergency_line(self.prog, exc.reason), file=sys.stderr, flush=True)
            return EXIT_CONFIG
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else 0
        if args.check_config:
            where = str(args.config_file) if args.config_file else "defaults and flags"
            print(f"{self.prog}: configuration OK ({where})")
            return 0
        if args.print_config:
            sys.stdout.write(loader.dump(loaded))
            return 0

        configure_logging(loaded.runtime.log_level, loaded.runtime.log_format)
        quiet_protocol_errors()
        sockets = take_listen_fds()
        notifier = Notifier.from_env()
        interval = watchdog_interval(unset=True)
        log.info(
            "starting %s (pid %d, config %s%s)",
            self.prog,
            os.getpid(),
            loaded.file or "defaults",
            f", sockets {', '.join(sockets.names())}" if sockets else "",
        )
        supervisor: Supervisor[C] | None = None

        async def serve() -> int:
            nonlocal supervisor
            ctx = Context(
                prog=self.prog,
                config=loaded.config,
                runtime=loaded.runtime,
                config_file=loaded.file,
                sockets=sockets,
                notifier=notifier,
            )
            supervisor = Supervisor(
                self.main, ctx, loader=loader, cli_args=args, watchdog_interval=interval
            )
            return await supervisor.run()

        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                status = runner.run(serve())
        finally:
            if supervisor is not None:
                supervisor.cancel_deadline()
            notifier.close()
            for handler in logging.getLogger().handlers:
                handler.flush()
        return status


def run(
    prog: str,
    config: type[C],
    main: Callable[[Context[C]], Awaitable[int | None]],
    *,
    description: str | None = None,
    argv: Sequence[str] | None = None,
) -> NoReturn:
    """Shorthand for ``App(prog, config, main, description).run(argv)``."""
    App(prog, config, main, description=description).run(argv)
