"""TOML in and out for configs: parse errors as ``file:line:col``, key line lookup, dump.

``tomllib`` reads; it reports syntax errors with a position but knows nothing
of line numbers once parsed, so :func:`find_line` recovers the line of a key
(best effort, for messages only). ``tomllib`` cannot write, so
:func:`dump_toml` does, for ``--print-config``.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["dump_toml", "find_line", "norm_key", "parse_toml"]


_POS_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_EOD_RE = re.compile(r"\s*\(at end of document\)\s*$")


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _POS_RE.search(msg)
        if m:
            reason = msg[: m.start()]
            raise ConfigError(
                f"{source}:{m.group(1)}:{m.group(2)}: invalid TOML: {_lower1(reason)}"
            ) from None
        m = _EOD_RE.search(msg)
        if m:
            raise ConfigError(
                f"{source}: invalid TOML at end of file: {_lower1(msg[: m.start()])}"
            ) from None
        raise ConfigError(f"{source}: invalid TOML: {_lower1(msg)}") from None
    except (ValueError, RecursionError, OverflowError, MemoryError) as exc:
        raise ConfigError(f"{source}: invalid TOML: {type(exc).__name__}: {exc}") from None


def _lower1(s: str) -> str:
    return s[:1].lower() + s[1:] if s[:1].isupper() and s[1:2].islower() else s


def norm_key(key: str) -> str:
    return key.replace("-", "_")


_HEADER_RE = re.compile(r"^\s*\[\[?\s*(.+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_RE = re.compile(
    r"^\s*((?:[A-Za-z0-9_\-]+|\"[^\"\n]*\"|'[^'\n]*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|\"[^\"\n]*\"|'[^'\n]*'))*)\s*="
)


def _split_key(text: str) -> tuple[str, ...]:
    parts = re.findall(r"\"([^\"\n]*)\"|'([^'\n]*)'|([A-Za-z0-9_\-]+)", text)
    return tuple(norm_key(a or b or c) for a, b, c in parts)


def find_line(text: str, path: tuple[str, ...]) -> int | None:
    """Best-effort line of ``path`` in ``text`` (for messages only; never raises)."""
    try:
        table: tuple[str, ...] = ()
        for lineno, line in enumerate(text.splitlines(), 1):
            m = _HEADER_RE.match(line)
            if m:
                table = _split_key(m.group(1))
                if table[: len(path)] == path:
                    return lineno
                continue
            m = _KEY_RE.match(line)
            if m:
                full = table + _split_key(m.group(1))
                if full[: len(path)] == path:
                    return lineno
        return None
    except Exception:  # noqa: BLE001 - a message helper must not mask the real error
        return None


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k, ensure_ascii=False)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, Path):
        v = str(v)
    if isinstance(v, str):
        # A JSON string is a valid TOML basic string (\uXXXX escapes included).
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def dump_toml(values: Mapping[tuple[str, ...], Any]) -> str:
    """Write ``{path: value}`` as TOML; ``None`` values become comments."""
    by_table: dict[tuple[str, ...], list[tuple[str, Any]]] = {}
    for path, v in values.items():
        by_table.setdefault(path[:-1], []).append((path[-1], v))
    lines: list[str] = []
    for table in sorted(by_table, key=lambda t: (len(t) > 0, t)):
        if table:
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_toml_key(t) for t in table) + "]")
        for key, v in by_table[table]:
            if v is None:
                lines.append(f"# {_toml_key(key)} = (not set)")
            else:
                lines.append(f"{_toml_key(key)} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"
