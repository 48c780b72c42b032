"""`nefeli`: the command line of a nefeli node, for its users and its admins.

Each command group lives in its own module and registers itself here through
a ``register(subparsers)`` function, so this file stays a table of contents.
The help lists only the commands that are there.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import config as cfgmod

# Modules under cli/ that add subcommands; each has register(subparsers).
COMMAND_MODULES = [
    "cli.about", "cli.store", "cli.transfer", "cli.sync", "cli.objects", "cli.tokens", "cli.events", "cli.volumes",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nefeli", description=__doc__.splitlines()[0].replace("`", ""),
        epilog="The connection options may also follow the command: nefeli ls -q --url URL.",
    )
    cfgmod.add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command group not written yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("nefeli: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
