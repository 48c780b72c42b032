"""`nefeli about`: what this installation has (native core, SIMD back end, commands)."""

from __future__ import annotations

import argparse
import shutil
import sys
from importlib import metadata
from pathlib import Path

import native


def daemons() -> list[str]:
    """The nefeli-* commands this installation declares (pyproject's [project.scripts])."""
    try:
        eps = metadata.distribution("nefeli").entry_points
    except metadata.PackageNotFoundError:
        return []
    return sorted(ep.name for ep in eps if ep.group == "console_scripts" and ep.name.startswith("nefeli-"))


def run(args: argparse.Namespace) -> int:
    print("nefeli: node daemons around a deduplicating block store")
    print(f"  native core: {'built' if native.NATIVE else 'not in use (pure Python)'}; BLAKE3 back end: {native.simd()}")
    here = Path(sys.executable).parent  # the venv's bin/, whether or not it is on PATH
    installed = [d for d in daemons() if shutil.which(d) or (here / d).exists()]
    print(f"  daemons installed: {', '.join(installed) if installed else 'none yet'}")
    print("  commands: nefeli --help")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("about", help="show what this installation has")
    p.set_defaults(func=run)
