"""Logging to stderr, one line per record, in the form journald understands.

Under systemd stderr is a stream into journald, which timestamps each line
itself and reads a leading ``<N>`` as the syslog priority. So in ``journal``
format a record is ``<6>logger: message`` with no time of its own; elsewhere
(a terminal, a file) it is ``2026-01-02 03:04:05.678 INFO logger: message``.

journald splits on newlines, so a multi-line message or a traceback would turn
into several entries with the wrong priority — and a newline in a client's
input could forge a log line. Every record is therefore kept on one line:
control characters are written as ``\\n``, ``\\r``, ``\\xNN``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import IO, Literal

__all__ = [
    "JournalFormatter",
    "TextFormatter",
    "configure_logging",
    "one_line",
    "resolve_format",
    "stderr_is_journal",
    "syslog_priority",
]

_HANDLER_NAME = "nefeli.runtime.stderr"

# Every C0 control character except TAB, plus DEL, as a visible escape.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x20), 0x7F)}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r"})
del _ESCAPES[ord("\t")]


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped."""
    return text.translate(_ESCAPES)


def syslog_priority(levelno: int) -> int:
    """The syslog priority (0-7) journald should record for a Python level."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def stderr_is_journal(environ: Mapping[str, str] | None = None, fd: int = 2) -> bool:
    """True when ``fd`` is the very stream systemd connected to journald.

    ``$JOURNAL_STREAM`` is ``DEV:INODE`` of that stream; comparing it with the
    fd (rather than trusting ``$INVOCATION_ID``) stays right when a unit or a
    shell redirects stderr elsewhere.
    """
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not sep:
        return False
    try:
        st = os.fstat(fd)
        return st.st_dev == int(dev) and st.st_ino == int(ino)
    except (OSError, ValueError):
        return False


def resolve_format(
    fmt: str, environ: Mapping[str, str] | None = None, fd: int = 2
) -> Literal["journal", "text"]:
    """``auto`` becomes ``journal`` or ``text`` depending on where stderr goes."""
    if fmt == "journal":
        return "journal"
    if fmt == "text":
        return "text"
    return "journal" if stderr_is_journal(environ, fd) else "text"


class _OneLineFormatter(logging.Formatter):
    """Shared part: message plus exception/stack, all on one line."""

    def body(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text = f"{text}\n{record.exc_text}" if text else record.exc_text
        if record.stack_info:
            text = f"{text}\n{self.formatStack(record.stack_info)}"
        return one_line(text.rstrip("\n"))


class JournalFormatter(_OneLineFormatter):
    """``<N>logger: message`` — journald adds time, pid and unit itself."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{syslog_priority(record.levelno)}>{record.name}: {self.body(record)}"


class TextFormatter(_OneLineFormatter):
    """``YYYY-MM-DD HH:MM:SS.mmm LEVEL logger: message`` for terminals and files."""

    def format(self, record: logging.LogRecord) -> str:
        t = time.localtime(record.created)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", t) + f".{int(record.msecs):03d}"
        return f"{stamp} {record.levelname} {record.name}: {self.body(record)}"


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    *,
    stream: IO[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Install (or replace, on reload) the root stderr handler; returns it."""
    stream = sys.stderr if stream is None else stream
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    resolved = (
        resolve_format(fmt, environ, fd) if fd >= 0 else ("text" if fmt != "journal" else "journal")
    )
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == _HANDLER_NAME:
            root.removeHandler(h)
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JournalFormatter() if resolved == "journal" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    logging.captureWarnings(True)
    return handler


def emergency_line(prog: str, reason: str, *, environ: Mapping[str, str] | None = None) -> str:
    """The single stderr line for a fatal start-up error (before logging exists).

    journald strips the ``<3>`` and files the line as an error; elsewhere it is
    plain ``prog: reason``.
    """
    prefix = "<3>" if stderr_is_journal(environ) else ""
    return f"{prefix}{prog}: {one_line(reason)}"
