"""The Ganeti ExtStorage provider `nefeli` (man page ganeti-extstorage-interface).

`nefeli volume provider install DIR --data DATA` writes DIR/nefeli/: one
small executable per action (create, attach, detach, remove, grow, setinfo,
verify, and the optional snapshot, open, close) and parameters.list.  Ganeti
runs them with a cleaned environment and the provider directory as cwd, so
each script names this Python, this code and the data directory by absolute
path.  Inputs come from VOL_* and EXTP_* variables only; errors go to stderr
with a non-zero exit (Ganeti shows the last lines).

    python -m cli.ganeti_provider ACTION --data DATA --nbd-socket PATH
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from .volumes import VolumeCommandError, call

PROVIDER = "nefeli"
MiB = 1 << 20
ACTIONS = ("create", "attach", "detach", "remove", "grow", "setinfo", "verify", "snapshot", "open", "close")
PARAMETERS = {
    "origin": "create the disk as a clone of a snapshot, a volume, or an object ACCOUNT/CONTAINER/OBJECT (an image)",
    "origin_size": "size of the origin in MiB (accepted as Synnefo sends it; the origin's own size is used)",
}
# Ganeti's own disk parameters, which it passes to every action as EXTP_* beside the
# provider's: `provider` always, `access` from the cluster's or the disk's ext diskparams.
GANETI_PARAMETERS = ("provider", "access")
_SCRIPT = """#!/bin/sh
# nefeli ExtStorage provider: {action} (written by `nefeli volume provider install`)
PYTHONPATH={code} exec {python} -m cli.ganeti_provider {action} --data {data} --nbd-socket {socket}
"""


def install(root: Path, data: Path, *, nbd_socket: str | None = None) -> Path:
    where = root / PROVIDER
    where.mkdir(parents=True, exist_ok=True)
    sock = nbd_socket or str(data / "nbd.sock")
    repo = Path(__file__).resolve().parent.parent
    python = shlex.quote(sys.executable)
    for action in ACTIONS:
        path = where / action
        text = _SCRIPT.format(action=action, python=python, data=shlex.quote(str(data)), socket=shlex.quote(sock),
                              code=shlex.quote(str(repo)))
        path.write_text(text)
        path.chmod(0o755)
    (where / "parameters.list").write_text("".join(f"{k} {v}\n" for k, v in PARAMETERS.items()))
    return where


class ProviderError(Exception):
    pass


def _need(env: Mapping[str, str], key: str) -> str:
    value = env.get(key, "")
    if not value:
        raise ProviderError(f"{key} is not set")
    return value


def _mib(env: Mapping[str, str], key: str) -> int:
    raw = _need(env, key)
    if not raw.isdigit():
        raise ProviderError(f"{key}={raw!r} is not a size in MiB")
    return int(raw) * MiB


def _check_parameters(env: Mapping[str, str]) -> None:
    known = (*PARAMETERS, *GANETI_PARAMETERS)
    unknown = sorted(k[5:].lower() for k in env if k.startswith("EXTP_") and k[5:].lower() not in known)
    if unknown:
        raise ProviderError(f"unknown parameter(s): {', '.join(unknown)} (known: {', '.join(PARAMETERS)})")


def _exists(data: str, name: str) -> bool:
    try:
        call(data, "info", {"name": name})
        return True
    except VolumeCommandError:
        return False


def run(action: str, env: Mapping[str, str], data: str, nbd_socket: str, out: Callable[[str], None]) -> None:
    if action == "verify":
        _check_parameters(env)
        return
    name = _need(env, "VOL_NAME")
    if action == "create":
        _check_parameters(env)
        size = _mib(env, "VOL_SIZE")
        origin = env.get("EXTP_ORIGIN", "")
        if origin:
            info = call(data, "clone", {"source": origin, "name": name})
            if info["size"] < size:
                call(data, "resize", {"name": name, "size": size})
        else:
            call(data, "create", {"name": name, "size": size})
    elif action == "attach":
        call(data, "info", {"name": name})  # it must exist
        out("")  # no kernel block device: QEMU opens the NBD export itself
        out(f"kvm:nbd+unix:///{name}?socket={nbd_socket}")
    elif action in ("detach", "close"):
        return  # nothing is held per node; idempotent
    elif action == "open":
        call(data, "info", {"name": name})
    elif action == "remove":
        if _exists(data, name):
            call(data, "rm", {"name": name})
    elif action == "grow":
        new = _mib(env, "VOL_NEW_SIZE")
        call(data, "resize", {"name": name, "size": new})
    elif action == "setinfo":
        call(data, "setinfo", {"name": name, "metadata": env.get("VOL_METADATA", "")})
    elif action == "snapshot":
        call(data, "snapshot", {"volume": name, "snapshot": _need(env, "VOL_SNAPSHOT_NAME")})
    else:
        raise ProviderError(f"unknown action {action!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nefeli ExtStorage provider")
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("--data", required=True)
    parser.add_argument("--nbd-socket", required=True)
    args = parser.parse_args(argv)
    try:
        run(args.action, os.environ, args.data, args.nbd_socket, print)
    except (ProviderError, VolumeCommandError) as exc:
        print(f"nefeli {args.action} {os.environ.get('VOL_NAME', '')}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
