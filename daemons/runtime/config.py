"""Loading a daemon's settings: flags and TOML file merged into its dataclass schema.

A daemon declares its settings once (see schema.py). From that declaration
this module derives the argparse parser, the accepted TOML keys (``-`` and
``_`` alike, nested dataclasses as tables), ``--print-config`` and help text,
so flags, file and docs never drift apart.

Precedence is ``defaults < config file < command-line flags``: an operator can
always override the packaged file for one run without editing it.

Everything that can go wrong with operator input raises :class:`ConfigError`,
whose text is one line naming the file/line/key or flag, because the runner
prints it as the single line systemd shows in ``systemctl status``.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import sys
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from .errors import ConfigError
from .schema import (
    Field,
    Invalid,
    RuntimeSettings,
    Setting,
    check,
    compile_schema,
    fold_choice,
    from_text,
    from_toml,
    get_path,
    instantiate,
    scalar_kind,
    set_path,
    setting,
    short,
    toml_type,
)
from .tomlio import dump_toml, find_line, norm_key, parse_toml

__all__ = [
    "CliArgs",
    "ConfigError",
    "ConfigLoader",
    "Loaded",
    "RuntimeSettings",
    "Setting",
    "dump_toml",
    "setting",
]

C = TypeVar("C")


@dataclass(frozen=True)
class Loaded(Generic[C]):
    """The outcome of a load: the daemon's settings, the runtime's, and the file used."""

    config: C
    runtime: RuntimeSettings
    file: Path | None


@dataclass(frozen=True)
class CliArgs:
    """What the command line said: kept so a SIGHUP reload re-applies the same flags."""

    config_file: Path | None
    overrides: dict[tuple[str, ...], Any]
    check_config: bool = False
    print_config: bool = False


class _Parser(argparse.ArgumentParser):
    """argparse that raises ConfigError instead of printing usage (one line, exit 2)."""

    def error(self, message: str) -> typing.NoReturn:
        raise ConfigError(f"{message} (see --help)")


class _Append(argparse.Action):
    """Repeatable flag for list settings; values appended in order."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        current = getattr(namespace, self.dest, None)
        items = list(current) if isinstance(current, list) else []
        items.append(values)
        setattr(namespace, self.dest, items)


class ConfigLoader(Generic[C]):
    """Builds the argparse parser from a schema and merges file and flags into it."""

    def __init__(
        self,
        schema: type[C],
        *,
        prog: str,
        description: str | None = None,
        version: str | None = None,
    ) -> None:
        self.schema = schema
        self.prog = prog
        self.description = description
        self.version = version
        fields = compile_schema(RuntimeSettings, "runtime") + compile_schema(schema, "daemon")
        self._fields: dict[tuple[str, ...], Field] = {}
        tables: set[tuple[str, ...]] = set()
        for fld in fields:
            if fld.path in self._fields:
                raise TypeError(
                    f"setting {fld.key!r} is declared twice (clashes with the runtime's)"
                )
            if fld.path[0] in ("config", "check_config", "print_config", "version", "help"):
                raise TypeError(f"setting name {fld.path[0]!r} is reserved")
            self._fields[fld.path] = fld
            for i in range(1, len(fld.path)):
                tables.add(fld.path[:i])
        self._tables = tables
        self.parser = self._build_parser()

    # -- command line ------------------------------------------------------

    def _build_parser(self) -> argparse.ArgumentParser:
        p = _Parser(prog=self.prog, description=self.description, allow_abbrev=False)
        p.add_argument(
            "-c",
            "--config",
            metavar="FILE",
            default=None,
            help="TOML configuration file (flags override its values)",
        )
        p.add_argument(
            "--check-config",
            action="store_true",
            help="validate the configuration, then exit (0 when valid, 2 when not)",
        )
        p.add_argument(
            "--print-config",
            action="store_true",
            help="print the effective configuration as TOML, then exit",
        )
        if self.version:
            p.add_argument("--version", action="version", version=f"{self.prog} {self.version}")
        groups = {
            "runtime": p.add_argument_group("runtime settings"),
            "daemon": p.add_argument_group("daemon settings"),
        }
        for fld in self._fields.values():
            g = groups[fld.owner]
            dest = "s:" + fld.key
            help_text = fld.meta.help or ""
            if fld.default is not dataclasses.MISSING and fld.default is not None:
                shown = "***" if fld.meta.secret else _show(fld.default)
                help_text += f" (default: {shown})"
            elif fld.default is dataclasses.MISSING:
                help_text += " (required)"
            help_text = help_text.replace("%", "%%").strip()
            if fld.kind.name == "bool":
                g.add_argument(
                    fld.flag,
                    dest=dest,
                    action=argparse.BooleanOptionalAction,
                    default=argparse.SUPPRESS,
                    help=help_text,
                )
                continue
            choices_meta = _metavar(fld)
            g.add_argument(
                fld.flag,
                dest=dest,
                action=_Append if fld.kind.name == "list" else "store",
                default=argparse.SUPPRESS,
                metavar=choices_meta,
                help=help_text + (" (repeatable)" if fld.kind.name == "list" else ""),
            )
        return p

    def parse_args(self, argv: Sequence[str] | None = None) -> CliArgs:
        """Parse flags; values are converted and validated here, errors name the flag."""
        ns = self.parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        overrides: dict[tuple[str, ...], Any] = {}
        for fld in self._fields.values():
            dest = "s:" + fld.key
            if not hasattr(ns, dest):
                continue
            raw = getattr(ns, dest)
            try:
                value: Any
                if fld.kind.name == "bool":
                    value = bool(raw)
                elif fld.kind.name == "list" and fld.kind.item is not None:
                    item = fld.kind.item
                    value = []
                    for r in raw:
                        value.append(fold_choice(fld, from_text(item, r)))
                else:
                    value = fold_choice(fld, from_text(fld.kind, raw))
                overrides[fld.path] = check(fld, value)
            except Invalid as exc:
                raise ConfigError(f"{fld.flag}: {exc}") from None
        if ns.config is not None and not ns.config.strip():
            raise ConfigError("--config: empty file name")
        config_file = Path(ns.config) if ns.config is not None else None
        return CliArgs(config_file, overrides, ns.check_config, ns.print_config)

    # -- file --------------------------------------------------------------

    def read_file(self, path: Path) -> tuple[str, str]:
        """The file's text and the name used for it in messages."""
        source = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
        try:
            return data.decode("utf-8"), source
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ConfigError(f"{source}:{line}: not valid UTF-8") from None

    def values_from_text(self, text: str, source: str = "<config>") -> dict[tuple[str, ...], Any]:
        """Parse and validate TOML text into ``{path: value}``; ConfigError otherwise."""
        doc = parse_toml(text, source)
        out: dict[tuple[str, ...], Any] = {}
        self._walk(doc, (), out, text, source)
        return out

    def values_from_mapping(
        self, doc: Mapping[str, Any], source: str = "<config>", text: str = ""
    ) -> dict[tuple[str, ...], Any]:
        """Validate an already parsed document (tests, embedding)."""
        out: dict[tuple[str, ...], Any] = {}
        self._walk(doc, (), out, text, source)
        return out

    def _where(self, source: str, text: str, path: tuple[str, ...]) -> str:
        line = find_line(text, path) if text else None
        return f"{source}:{line}" if line else source

    def _walk(
        self,
        doc: Mapping[str, Any],
        prefix: tuple[str, ...],
        out: dict[tuple[str, ...], Any],
        text: str,
        source: str,
    ) -> None:
        seen: dict[str, str] = {}
        for raw_key, value in doc.items():
            if not isinstance(raw_key, str):
                raise ConfigError(f"{source}: keys must be strings, got {short(raw_key)}")
            key = norm_key(raw_key)
            path = prefix + (key,)
            dotted = ".".join(prefix + (raw_key,))
            if key in seen:
                where = self._where(source, text, path)
                raise ConfigError(
                    f"{where}: {dotted!r} given twice (as {seen[key]!r} and {raw_key!r})"
                )
            seen[key] = raw_key
            if path in self._tables:
                if not isinstance(value, dict):
                    where = self._where(source, text, path)
                    raise ConfigError(
                        f"{where}: {dotted}: expected a table, got {toml_type(value)}"
                    )
                self._walk(value, path, out, text, source)
                continue
            fld = self._fields.get(path)
            if fld is None:
                where = self._where(source, text, path)
                raise ConfigError(f"{where}: unknown key {dotted!r}{self._suggest(path)}")
            try:
                out[path] = check(fld, fold_choice(fld, from_toml(fld.kind, value)))
            except Invalid as exc:
                where = self._where(source, text, path)
                raise ConfigError(f"{where}: {fld.key}: {exc}") from None

    def _suggest(self, path: tuple[str, ...]) -> str:
        names = [".".join(p) for p in self._fields] + [".".join(t) for t in self._tables]
        close = difflib.get_close_matches(".".join(path), names, n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""

    # -- merge -------------------------------------------------------------

    def load(self, args: CliArgs | None = None) -> Loaded[C]:
        """defaults < file < :meth:`extra_layer` < flags, then build the dataclasses
        (ConfigError on failure)."""
        args = args or CliArgs(None, {})
        file_values: dict[tuple[str, ...], Any] = {}
        source = "command line"
        if args.config_file is not None:
            text, source = self.read_file(args.config_file)
            file_values = self.values_from_text(text, source)
        extra = self.extra_layer(file_values, args.overrides)
        if extra is not None:
            extra_values, extra_source = extra
            file_values = {**file_values, **extra_values}
            if args.config_file is None:
                source = extra_source
        return self.build({**file_values, **args.overrides}, args.config_file, source)

    def extra_layer(
        self,
        file_values: Mapping[tuple[str, ...], Any],
        overrides: Mapping[tuple[str, ...], Any],
    ) -> tuple[dict[tuple[str, ...], Any], str] | None:
        """Values that sit between the TOML file and the flags, with the name of where
        they came from; None (the default) for no such layer. A daemon that also reads
        another program's config file (nefeli-dhcpd: nfdhcpd.conf) overrides this; it
        sees the file's and the flags' values, so either can name that file."""
        return None

    def build(
        self,
        values: Mapping[tuple[str, ...], Any],
        file: Path | None = None,
        source: str = "<config>",
    ) -> Loaded[C]:
        """Turn ``{path: value}`` plus defaults into the schema instances."""
        merged: dict[tuple[str, ...], Any] = {}
        for path, fld in self._fields.items():
            if path in values:
                merged[path] = values[path]
            elif fld.default is dataclasses.MISSING:
                raise ConfigError(
                    f"{source}: missing required setting {fld.key!r} (or pass {fld.flag})"
                )
            else:
                merged[path] = fld.default
        try:
            runtime = instantiate(RuntimeSettings, merged, (), "runtime", self._fields)
            config = instantiate(self.schema, merged, (), "daemon", self._fields)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{source}: invalid configuration: {exc}") from None
        return Loaded(config, runtime, file)

    # -- reload helpers ----------------------------------------------------

    def non_reloadable_changes(self, old: C, new: C) -> list[str]:
        """Keys that changed but take effect only at restart."""
        return [
            fld.key
            for fld in self._fields.values()
            if fld.owner == "daemon"
            and not fld.meta.reloadable
            and get_path(old, fld.path) != get_path(new, fld.path)
        ]

    def keep_non_reloadable(self, old: C, new: C) -> C:
        """``new`` with every non-reloadable setting taken from ``old``."""
        result: Any = new
        for fld in self._fields.values():
            if fld.owner == "daemon" and not fld.meta.reloadable:
                result = set_path(result, fld.path, get_path(old, fld.path))
        return typing.cast(C, result)

    def dump(self, loaded: Loaded[C], *, reveal_secrets: bool = False) -> str:
        """The effective configuration as TOML (secrets masked unless asked)."""
        values: dict[tuple[str, ...], Any] = {}
        for fld in self._fields.values():
            obj = loaded.runtime if fld.owner == "runtime" else loaded.config
            v = get_path(obj, fld.path)
            if fld.meta.secret and not reveal_secrets and v is not None:
                v = "***"
            values[fld.path] = v
        return dump_toml(values)


def _metavar(fld: Field) -> str:
    if fld.meta.metavar:
        return fld.meta.metavar
    kind = scalar_kind(fld.kind)
    if fld.meta.choices is not None:
        return "{" + ",".join(str(c) for c in fld.meta.choices) + "}"
    return {"int": "N", "float": "NUM", "path": "PATH"}.get(kind.name, "TEXT")


def _show(value: Any) -> str:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)
