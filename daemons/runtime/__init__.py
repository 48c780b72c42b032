"""Shared runtime of the nefeli daemons: config, logging, lifecycle, sd_notify, uvloop,
listeners, metrics, background tasks and the access log.

A daemon declares a settings dataclass and an ``async main(ctx)``, and its
console script calls ``App("nefeli-xyz", Config, main).run()``. See app.py.
"""

from .access_log import access_log_setting, note_reason, runner_options
from .activation import ListenFds, take_listen_fds
from .app import App, package_version, run
from .config import ConfigError, ConfigLoader, Loaded, RuntimeSettings, Setting, setting
from .context import Context
from .http_sites import start_sites
from .listeners import ListenAddress, check_address, open_listener, parse_address
from .logsetup import configure_logging
from .metrics import DaemonMetrics, Sampled, metrics_app
from .notify import Notifier
from .tasks import BackgroundTasks

__all__ = [
    "App",
    "BackgroundTasks",
    "DaemonMetrics",
    "ListenAddress",
    "Sampled",
    "access_log_setting",
    "check_address",
    "metrics_app",
    "note_reason",
    "open_listener",
    "parse_address",
    "runner_options",
    "start_sites",
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
