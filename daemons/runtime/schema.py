"""Settings schemas: what a daemon declares, and how values are typed and checked.

A daemon's settings are a dataclass whose fields use :func:`setting` (help,
bounds, choices, a validator, reloadability). This module turns such a class
into a flat list of :class:`Field` leaves (nested dataclasses become TOML
tables / dotted flags), converts TOML values and command-line strings to the
declared types, validates them, and builds the dataclass instances back.
Problems with a value raise :class:`Invalid`; the caller adds where it came from.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "Field",
    "Invalid",
    "Kind",
    "RuntimeSettings",
    "Setting",
    "check",
    "compile_schema",
    "fold_choice",
    "from_text",
    "from_toml",
    "get_path",
    "instantiate",
    "scalar_kind",
    "set_path",
    "setting",
    "short",
    "toml_type",
]

META_KEY = "nefeli.setting"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("auto", "journal", "text")


@dataclass(frozen=True)
class Setting:
    """Per-field metadata: what the operator sees (help) and what is accepted."""

    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    validate: Callable[[Any], None] | None = None
    reloadable: bool = True
    secret: bool = False
    metavar: str | None = None


def setting(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    help: str = "",
    min: float | None = None,
    max: float | None = None,
    choices: Sequence[Any] | None = None,
    validate: Callable[[Any], None] | None = None,
    reloadable: bool = True,
    secret: bool = False,
    metavar: str | None = None,
) -> Any:
    """A dataclass field carrying :class:`Setting` metadata.

    ``validate(value)`` may raise ``ValueError("why")`` to reject a value;
    ``reloadable=False`` marks settings (listen addresses, paths of open
    databases) whose change on SIGHUP is reported and deferred to a restart;
    ``secret=True`` masks the value in ``--print-config``.
    """
    meta = {
        META_KEY: Setting(
            help=help,
            min=min,
            max=max,
            choices=tuple(choices) if choices is not None else None,
            validate=validate,
            reloadable=reloadable,
            secret=secret,
            metavar=metavar,
        )
    }
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    if isinstance(default, (list, dict, set)):
        # Dataclasses refuse mutable defaults; copy per instance instead.
        template = default
        return dataclasses.field(default_factory=lambda: type(template)(template), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class RuntimeSettings:
    """Settings every nefeli daemon has; they live at the top level of the file."""

    log_level: str = setting("info", help="minimum level logged", choices=LOG_LEVELS)
    log_format: str = setting(
        "auto",
        help="'journal' (<N> priority prefix, no timestamp), 'text', or 'auto' "
        "(journal when stderr is connected to journald)",
        choices=LOG_FORMATS,
    )
    shutdown_timeout: float = setting(
        10.0, help="seconds allowed for cleanup after SIGTERM", min=0.0, max=3600.0
    )


@dataclass(frozen=True)
class Kind:
    """The normalised type of one setting."""

    name: str  # bool int float str path literal list
    optional: bool = False
    item: Kind | None = None
    literals: tuple[Any, ...] = ()

    def describe(self) -> str:
        if self.name == "list" and self.item is not None:
            return "an array of " + _plural(self.item)
        return {
            "bool": "a boolean",
            "int": "an integer",
            "float": "a number",
            "str": "a string",
            "path": "a path (string)",
            "literal": "one of " + ", ".join(repr(v) for v in self.literals),
        }.get(self.name, "a value")


def _plural(kind: Kind) -> str:
    return {
        "bool": "booleans",
        "int": "integers",
        "float": "numbers",
        "str": "strings",
        "path": "paths",
        "literal": "values (" + ", ".join(repr(v) for v in kind.literals) + ")",
        "list": "arrays",
    }[kind.name]


@dataclass(frozen=True)
class Field:
    """One leaf setting, addressed by its path of table names plus key."""

    path: tuple[str, ...]
    owner: str  # "runtime" or "daemon"
    kind: Kind
    meta: Setting
    default: Any  # dataclasses.MISSING when required

    @property
    def key(self) -> str:
        return ".".join(self.path)

    @property
    def flag(self) -> str:
        return "--" + ".".join(p.replace("_", "-") for p in self.path)


def kind_of(tp: Any, where: str) -> Kind:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return dataclasses.replace(kind_of(rest[0], where), optional=True)
        raise TypeError(f"{where}: only 'X | None' unions are supported, not {tp!r}")
    if origin is Literal:
        if not args or not all(type(a) in (str, int) for a in args):
            raise TypeError(f"{where}: Literal settings take str or int values")
        return Kind("literal", literals=tuple(args))
    if origin in (list, Sequence) or tp is list:
        if len(args) != 1:
            raise TypeError(f"{where}: list settings need an item type, e.g. list[str]")
        item = kind_of(args[0], where)
        if item.name == "list" or item.optional:
            raise TypeError(f"{where}: list items must be plain scalars")
        return Kind("list", item=item)
    simple = {bool: "bool", int: "int", float: "float", str: "str", Path: "path"}
    if tp in simple:
        return Kind(simple[tp])
    raise TypeError(f"{where}: unsupported setting type {tp!r}")


def compile_schema(cls: type, owner: str, prefix: tuple[str, ...] = ()) -> list[Field]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    out: list[Field] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        path = prefix + (f.name,)
        where = f"{cls.__qualname__}.{f.name}"
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            out.extend(compile_schema(tp, owner, path))
            continue
        kind = kind_of(tp, where)
        meta = f.metadata.get(META_KEY, Setting())
        if kind.name == "literal" and meta.choices is None:
            meta = dataclasses.replace(meta, choices=kind.literals)
        if (meta.min is not None or meta.max is not None) and scalar_kind(kind).name not in (
            "int",
            "float",
        ):
            raise TypeError(f"{where}: min/max only apply to numeric settings")
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        fld = Field(path, owner, kind, meta, default)
        if default is not dataclasses.MISSING and default is not None:
            try:
                check(fld, default)
            except Invalid as exc:
                raise TypeError(f"{where}: invalid default {default!r}: {exc}") from None
        out.append(fld)
    return out


def scalar_kind(kind: Kind) -> Kind:
    return kind.item if kind.name == "list" and kind.item is not None else kind


# ----------------------------------------------------------------------- coercion


class Invalid(Exception):
    """A value rejected for a reason; the caller adds where it came from."""


_TOML_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "an array",
    dict: "a table",
}


def toml_type(value: Any) -> str:
    for t, name in _TOML_TYPE_NAMES.items():
        if type(value) is t:
            return name
    return "a date/time" if hasattr(value, "isoformat") else type(value).__name__


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def from_toml(kind: Kind, value: Any) -> Any:
    """Accept a TOML-typed value for ``kind`` (no string parsing)."""
    n = kind.name
    if n == "bool" and type(value) is bool:
        return value
    if n == "int" and type(value) is int:
        return value
    if n == "float" and type(value) in (int, float):
        return float(value)
    if n == "str" and type(value) is str:
        return value
    if n == "path" and type(value) is str:
        return Path(value)
    if n == "literal" and type(value) in (str, int) and value in kind.literals:
        return value
    if n == "list" and type(value) is list and kind.item is not None:
        out = []
        for i, v in enumerate(value):
            try:
                out.append(from_toml(kind.item, v))
            except Invalid as exc:
                raise Invalid(f"item {i}: {exc}") from None
        return out
    raise Invalid(f"expected {kind.describe()}, got {toml_type(value)} ({short(value)})")


def from_text(kind: Kind, text: str) -> Any:
    """Parse a command-line string for ``kind``."""
    n = kind.name
    try:
        if n == "int":
            try:
                return int(text)
            except ValueError:
                return int(text, 0)
        if n == "float":
            return float(text)
    except (ValueError, OverflowError):
        raise Invalid(f"expected {kind.describe()}, got {short(text)}") from None
    if n == "bool":
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise Invalid(f"expected a boolean, got {short(text)}")
    if n == "path":
        return Path(text)
    if n == "literal":
        for lit in kind.literals:
            if str(lit) == text:
                return lit
        raise Invalid(f"expected {kind.describe()}, got {short(text)}")
    return text


def check(fld: Field, value: Any) -> Any:
    """Range/choice/custom validation on an already typed value."""
    if value is None:
        if fld.kind.optional:
            return None
        raise Invalid("a value is required")
    items = value if fld.kind.name == "list" else [value]
    meta = fld.meta
    for v in items:
        if isinstance(v, float) and not math.isfinite(v):
            raise Invalid(f"must be a finite number, got {v!r}")
        if fld.kind.name == "path" or scalar_kind(fld.kind).name == "path":
            if str(v) in ("", "."):
                raise Invalid("must not be an empty path")
            if "\x00" in str(v):
                raise Invalid("must not contain NUL bytes")
        if meta.min is not None and v < meta.min:
            raise Invalid(f"must be >= {_num(meta.min)}, got {v!r}")
        if meta.max is not None and v > meta.max:
            raise Invalid(f"must be <= {_num(meta.max)}, got {v!r}")
        if meta.choices is not None and v not in meta.choices:
            raise Invalid(
                "must be one of " + ", ".join(repr(c) for c in meta.choices) + f", got {short(v)}"
            )
    if meta.validate is not None:
        try:
            meta.validate(value)
        except (ValueError, TypeError) as exc:
            raise Invalid(str(exc) or "rejected by validator") from None
    return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def fold_choice(fld: Field, value: Any) -> Any:
    """Let ``--log-level DEBUG`` match the choice 'debug' (unambiguous case-fold)."""
    choices = fld.meta.choices
    if choices is None or not isinstance(value, str) or value in choices:
        return value
    hits = [c for c in choices if isinstance(c, str) and c.casefold() == value.casefold()]
    return hits[0] if len(hits) == 1 else value


def instantiate(
    cls: type,
    merged: Mapping[tuple[str, ...], Any],
    prefix: tuple[str, ...],
    owner: str,
    fields: Mapping[tuple[str, ...], Field],
) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        path = prefix + (f.name,)
        tp = hints[f.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            kwargs[f.name] = instantiate(tp, merged, path, owner, fields)
        elif path in fields and fields[path].owner == owner:
            v = merged[path]
            kwargs[f.name] = list(v) if isinstance(v, list) else v
    return cls(**kwargs)


def get_path(obj: Any, path: tuple[str, ...]) -> Any:
    for p in path:
        obj = getattr(obj, p)
    return obj


def set_path(obj: Any, path: tuple[str, ...], value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: value})
    inner = set_path(getattr(obj, path[0]), path[1:], value)
    return dataclasses.replace(obj, **{path[0]: inner})
