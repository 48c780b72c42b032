"""Shared runtime of the nefeli daemons: config, logging, lifecycle, sd_notify, uvloop.

A daemon declares a settings dataclass and an ``async main(ctx)``, and its
console script calls ``App("nefeli-xyz", Config, main).run()``. See app.py.
"""

from .activation import ListenFds, take_listen_fds
from .app import App, package_version, run
from .config import ConfigError, ConfigLoader, Loaded, RuntimeSettings, Setting, setting
from .context import Context
from .logsetup import configure_logging
from .notify import Notifier

__all__ = [
    "App",
    "ConfigError",
    "ConfigLoader",
    "Context",
    "ListenFds",
    "Loaded",
    "Notifier",
    "RuntimeSettings",
    "Setting",
    "configure_logging",
    "package_version",
    "run",
    "setting",
    "take_listen_fds",
]
