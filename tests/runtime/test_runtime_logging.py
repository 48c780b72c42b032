"""daemons.runtime.logsetup: journal/text formats, one line per record, detection."""

from __future__ import annotations

import io
import logging
import os
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemons.runtime.logsetup import (
    JournalFormatter,
    TextFormatter,
    configure_logging,
    emergency_line,
    one_line,
    resolve_format,
    stderr_is_journal,
    syslog_priority,
)

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [A-Z]+ [\w.\-]+: ")


def record(
    msg: str, level: int = logging.INFO, exc: bool = False, *args: object
) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad\nthing")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("nefeli.test", level, __file__, 1, msg, args or None, exc_info)


@pytest.mark.parametrize(
    ("level", "prio"),
    [
        (logging.DEBUG, 7),
        (logging.INFO, 6),
        (logging.WARNING, 4),
        (logging.ERROR, 3),
        (logging.CRITICAL, 2),
        (5, 7),
        (25, 6),
        (45, 3),
        (100, 2),
    ],
)
def test_syslog_priority(level: int, prio: int) -> None:
    assert syslog_priority(level) == prio


def test_journal_format_has_priority_and_no_timestamp() -> None:
    line = JournalFormatter().format(record("listening on %s", logging.WARNING, False, "[::]:80"))
    assert line == "<4>nefeli.test: listening on [::]:80"


def test_text_format() -> None:
    line = TextFormatter().format(record("hello", logging.ERROR))
    assert TEXT_LINE.match(line) and line.endswith(" ERROR nefeli.test: hello")


@pytest.mark.parametrize("fmt", [JournalFormatter(), TextFormatter()])
def test_newlines_and_tracebacks_stay_on_one_line(fmt: logging.Formatter) -> None:
    line = fmt.format(record("first\nsecond\r\x1b[31m", logging.ERROR, True))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "first\\nsecond\\r\\x1b[31m\\nTraceback (most recent call last):\\n" in line
    assert line.endswith("ValueError: bad\\nthing")


@given(st.text())
def test_one_line_never_breaks(text: str) -> None:
    out = one_line(text)
    assert "\n" not in out and "\r" not in out
    assert all(ord(c) >= 0x20 or c == "\t" for c in out)
    assert "\x7f" not in out


def test_stderr_is_journal_compares_dev_and_inode(tmp_path: Path) -> None:
    f = tmp_path / "stream"
    with open(f, "w") as fh:
        st_ = os.fstat(fh.fileno())
        env = {"JOURNAL_STREAM": f"{st_.st_dev}:{st_.st_ino}"}
        assert stderr_is_journal(env, fh.fileno())
        assert resolve_format("auto", env, fh.fileno()) == "journal"
        assert resolve_format("text", env, fh.fileno()) == "text"
        other = {"JOURNAL_STREAM": f"{st_.st_dev}:{st_.st_ino + 1}"}
        assert not stderr_is_journal(other, fh.fileno())
        assert resolve_format("auto", other, fh.fileno()) == "text"
        assert resolve_format("journal", {}, fh.fileno()) == "journal"
        for bad in ("", "x", "1:x", ":", "1:2:3"):
            assert not stderr_is_journal({"JOURNAL_STREAM": bad}, fh.fileno())


def test_configure_logging_replaces_its_handler(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        buf = io.StringIO()
        configure_logging("debug", "journal", stream=buf)
        configure_logging("warning", "journal", stream=buf)
        mine = [h for h in root.handlers if h.get_name() == "nefeli.runtime.stderr"]
        assert len(mine) == 1
        logging.getLogger("x.y").info("hidden")
        logging.getLogger("x.y").warning("shown\nhere")
        assert buf.getvalue() == "<4>x.y: shown\\nhere\n"
        configure_logging("info", "auto", stream=buf)  # no fd: auto is text
        logging.getLogger("x.y").info("t")
        assert TEXT_LINE.match(buf.getvalue().splitlines()[-1])
    finally:
        for h in list(root.handlers):
            if h.get_name() == "nefeli.runtime.stderr":
                root.removeHandler(h)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_emergency_line_is_one_line() -> None:
    assert emergency_line("p", "bad\nthing", environ={}) == "p: bad\\nthing"
