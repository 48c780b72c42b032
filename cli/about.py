"""`nefeli about`: what this installation has (native core, SIMD back end, commands)."""

from __future__ import annotations

import argparse
import shutil

import native

DAEMONS = ["nefeli-blockd", "nefeli-dhcpd", "nefeli-eventd", "nefeli-progress-monitor", "nefeli-vncauthproxy"]


def run(args: argparse.Namespace) -> int:
    print("nefeli: node daemons around a deduplicating block store")
    print(f"  native core: {'built' if native.NATIVE else 'not in use (pure Python)'}; BLAKE3 back end: {native.simd()}")
    installed = [d for d in DAEMONS if shutil.which(d)]
    print(f"  daemons installed: {', '.join(installed) if installed else 'none yet'}")
    print("  commands: nefeli --help")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("about", help="show what this installation has")
    p.set_defaults(func=run)
