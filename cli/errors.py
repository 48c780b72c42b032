"""Expected failures of the `nefeli` client: one line on stderr, non-zero exit."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable
from typing import Any


class CliError(Exception):
    """A failure to report as one line (no traceback)."""

    exit_code = 1


class HttpError(CliError):
    def __init__(self, method: str, url: str, status: int, reason: str, text: str) -> None:
        self.method, self.url, self.status, self.reason, self.text = method, url, status, reason, text
        detail = " ".join(text.split())[:300]
        super().__init__(f"{method} {url}: {status} {reason}" + (f": {detail}" if detail else ""))


class Conflict(CliError):
    """The remote (or local) copy changed under us (412)."""


def _run(coro: Any) -> Any:
    """asyncio.run on uvloop when it is installed (faster sockets for bulk transfers)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def command(fn: Callable[..., Any]) -> Callable[..., int]:
    """Wrap a subcommand: CliError (and connection trouble) → `nefeli: message`, exit 1."""

    @functools.wraps(fn)
    def run(args: Any) -> int:
        import aiohttp

        try:
            result = fn(args)
            if asyncio.iscoroutine(result):
                result = _run(result)
            return int(result or 0)
        except CliError as exc:
            print(f"nefeli: {exc}", file=sys.stderr)
            return exc.exit_code
        except aiohttp.ClientConnectorError as exc:
            why = "connection refused" if isinstance(exc.os_error, ConnectionRefusedError) else (exc.os_error.strerror or str(exc))
            print(f"nefeli: cannot connect to {exc.host}:{exc.port}: {why}", file=sys.stderr)
            return 1
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            print(f"nefeli: connection failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"nefeli: {exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}", file=sys.stderr)
            return 1

    return run
