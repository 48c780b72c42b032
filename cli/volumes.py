"""`nefeli volume ...`: thin-clone VM volumes (create, snapshot, clone, resize, diff, ...).

Every command goes through the running nefeli-blockd (its admin socket in the
data directory), so the CLI, the Ganeti provider scripts and the NBD export
never race; with no daemon running it opens the store itself, under the
store lock.  Sizes take binary suffixes: 512, 64K, 100M, 10G, 2T (or KiB...).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .progress import human

DEFAULT_DATA = os.environ.get("NEFELI_DATA", "var/nefeli")
ADMIN_SOCKET = "volumes-admin.sock"  # daemons/blockd/admin_api.py serves it
_SIZE = re.compile(r"(\d+)\s*([kmgtp]?)(i?b)?\Z", re.IGNORECASE)
_UNITS = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50}


class VolumeCommandError(Exception):
    """The daemon (or the store) refused: the message is for the operator."""


def parse_size(text: str) -> int:
    """'10G' -> 10 GiB in bytes; plain numbers are bytes."""
    m = _SIZE.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 512, 64K, 100M, 10G, 2T)")
    return int(m.group(1)) << _UNITS[m.group(2).lower()]


# ---------------------------------------------------------------- transport


def call(data: str | os.PathLike[str], op: str, args: dict[str, Any],
         progress: Callable[[int, int], None] | None = None) -> Any:
    """Run one volume operation: through the daemon if it runs, else on the store directly."""
    path = Path(data) / ADMIN_SOCKET
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return _direct(data, op, args, progress)
    try:
        return _over_socket(sock, op, args, progress)
    finally:
        sock.close()


def _over_socket(sock: socket.socket, op: str, args: dict[str, Any],
                 progress: Callable[[int, int], None] | None) -> Any:
    from net.volume_admin import AdminProgress, AdminProtocolError, AdminRequest, LineFramer, parse_reply

    sock.sendall(AdminRequest(op, args).encode())
    framer = LineFramer(max_line=64 << 20)
    while True:
        data = sock.recv(1 << 16)
        if not data:
            raise VolumeCommandError("the daemon closed the admin connection without an answer")
        for line in framer.feed(data):
            try:
                msg = parse_reply(line)
            except AdminProtocolError as exc:
                raise VolumeCommandError(f"bad answer from the daemon: {exc}") from None
            if isinstance(msg, AdminProgress):
                if progress is not None:
                    progress(msg.done, msg.total)
                continue
            if not msg.ok:
                raise VolumeCommandError(msg.error)
            return msg.result


def _direct(data: str | os.PathLike[str], op: str, args: dict[str, Any],
            progress: Callable[[int, int], None] | None) -> Any:
    from daemons.blockd.volume_ops import VolumeOps
    from storage_engine.blocks.errors import StoreError, StoreLocked
    from storage_engine.objects.metadata.errors import MetadataError
    from storage_engine.objects.store import ObjectStore
    from storage_engine.volumes import VolumeError, VolumeStore

    async def run() -> Any:
        try:
            objects = await ObjectStore.open(data)
        except StoreLocked as exc:
            raise VolumeCommandError(f"{exc}, but its admin socket {Path(data) / ADMIN_SOCKET} does not answer")
        try:
            volumes = VolumeStore(objects.blocks.store)
            try:
                async def report(done: int, total: int) -> None:
                    if progress is not None:
                        progress(done, total)

                result = await VolumeOps(volumes, objects).call(op, args, report)
                await asyncio.get_running_loop().run_in_executor(None, volumes.freeze_pending)
                return result
            finally:
                volumes.close()
        finally:
            await objects.close()

    try:
        return asyncio.run(run())
    except (VolumeError, MetadataError, StoreError, OSError) as exc:
        raise VolumeCommandError(str(exc)) from None


# ---------------------------------------------------------------- commands


def _out(args: argparse.Namespace, result: Any, text: Callable[[Any], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        line = text(result)
        if line:
            print(line)


def _describe(info: dict[str, Any]) -> str:
    kind = "snapshot" if info["snapshot"] else "volume"
    b = info["blocks"]
    parent = f", from {info['parent']}" if info.get("parent") else ""
    return (f"{info['name']}: {kind}, {human(info['size'])} ({info['size']} bytes), {info['scheme']} blocks of "
            f"{human(info['block_size'])}{parent}; blocks: {b['owned']} owned, {b['shared']} shared, "
            f"{b['frozen']} frozen, {b['zero']} zero")


def _progress_bar(args: argparse.Namespace, desc: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
               disable=args.no_progress or not sys.stderr.isatty())

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args) or 0)
    except VolumeCommandError as exc:
        print(f"nefeli volume {args.volume_command}: {exc}", file=sys.stderr)
        return 1


def _create(a: argparse.Namespace) -> None:
    req: dict[str, Any] = {"name": a.name, "size": a.size, "scheme": a.scheme}
    if a.block_size:
        req["block_size"] = a.block_size
    _out(a, call(a.data, "create", req), _describe)


def _snapshot(a: argparse.Namespace) -> None:
    _out(a, call(a.data, "snapshot", {"volume": a.volume, "snapshot": a.snapshot}), _describe)


def _clone(a: argparse.Namespace) -> None:
    req: dict[str, Any] = {"source": a.source, "name": a.name}
    if a.account:
        req["account"] = a.account
    if a.size:
        req["size"] = a.size
    _out(a, call(a.data, "clone", req), _describe)


def _rm(a: argparse.Namespace) -> None:
    for name in a.names:
        call(a.data, "rm", {"name": name})


def _resize(a: argparse.Namespace) -> None:
    _out(a, call(a.data, "resize", {"name": a.name, "size": a.size}), _describe)


def _flatten(a: argparse.Namespace) -> None:
    _out(a, call(a.data, "flatten", {"name": a.name}), _describe)


def _rollback(a: argparse.Namespace) -> None:
    _out(a, call(a.data, "rollback", {"volume": a.volume, "snapshot": a.snapshot}), _describe)


def _diff(a: argparse.Namespace) -> None:
    ranges = call(a.data, "diff", {"a": a.a, "b": a.b})
    if a.json:
        print(json.dumps([{"offset": off, "length": n} for off, n in ranges]))
    else:
        for off, n in ranges:
            print(f"{off}\t{n}")


def _info(a: argparse.Namespace) -> None:
    _out(a, call(a.data, "info", {"name": a.name}), _describe)


def _ls(a: argparse.Namespace) -> None:
    _out(a, call(a.data, "ls", {}), lambda infos: "\n".join(_describe(i) for i in infos))


def _publish(a: argparse.Namespace) -> None:
    req: dict[str, Any] = {"snapshot": a.snapshot, "object": a.object}
    if a.account:
        req["account"] = a.account
    _out(a, call(a.data, "publish", req), lambda r: f"published {r['object']} ({r['bytes']} bytes)")


def _import(a: argparse.Namespace) -> None:
    update, done = _progress_bar(a, f"import {a.name}")
    try:
        req: dict[str, Any] = {"path": str(Path(a.file).resolve()), "name": a.name}
        if a.block_size:
            req["block_size"] = a.block_size
        result = call(a.data, "import", req, update)
    finally:
        done()
    _out(a, result, _describe)


def _export(a: argparse.Namespace) -> None:
    update, done = _progress_bar(a, f"export {a.name}")
    try:
        result = call(a.data, "export", {"name": a.name, "path": str(Path(a.file).resolve())}, update)
    finally:
        done()
    _out(a, result, lambda r: f"exported {r['name']} to {r['path']} ({r['bytes']} bytes)")


def _provider_install(a: argparse.Namespace) -> None:
    from .ganeti_provider import install

    where = install(Path(a.dir), Path(a.data).resolve(), nbd_socket=a.nbd_socket)
    print(f"installed the nefeli ExtStorage provider in {where}")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("volume", help="thin-clone VM volumes", description=__doc__)
    vsub = p.add_subparsers(dest="volume_command", metavar="COMMAND", required=True)

    def cmd(name: str, handler: Callable[[argparse.Namespace], Any], help: str, json_out: bool = True) -> argparse.ArgumentParser:
        c = vsub.add_parser(name, help=help, description=help)
        c.add_argument("--data", default=DEFAULT_DATA, help="data directory (default: $NEFELI_DATA or var/nefeli)")
        if json_out:
            c.add_argument("--json", action="store_true", help="print the result as JSON")
        c.set_defaults(func=_run, handler=handler)
        return c

    c = cmd("create", _create, "create an empty (all zero) volume")
    c.add_argument("name")
    c.add_argument("size", type=parse_size)
    c.add_argument("--block-size", type=parse_size, default=None, help="block size (default 4M)")
    c.add_argument("--scheme", choices=["blake3", "sha256"], default="blake3",
                   help="hash scheme of its blocks (sha256 to publish into Pithos containers)")
    c = cmd("snapshot", _snapshot, "read-only snapshot of a volume (metadata only)")
    c.add_argument("volume")
    c.add_argument("snapshot")
    c = cmd("clone", _clone, "writable clone of a snapshot, a volume, or an object ACCOUNT/CONTAINER/OBJECT")
    c.add_argument("source")
    c.add_argument("name")
    c.add_argument("--account", help="account of a CONTAINER/OBJECT source")
    c.add_argument("--size", type=parse_size, help="size of a clone of an object (default: the object's)")
    c = cmd("rm", _rm, "delete volumes or snapshots", json_out=False)
    c.add_argument("names", nargs="+")
    c = cmd("resize", _resize, "grow or shrink a volume")
    c.add_argument("name")
    c.add_argument("size", type=parse_size)
    c = cmd("flatten", _flatten, "make a clone stand alone (no parent, one hold on exactly its blocks)")
    c.add_argument("name")
    c = cmd("diff", _diff, "byte ranges where two volumes or snapshots differ")
    c.add_argument("a")
    c.add_argument("b")
    c = cmd("rollback", _rollback, "make a volume read what a snapshot reads")
    c.add_argument("volume")
    c.add_argument("snapshot")
    c = cmd("info", _info, "one volume's size, parent and blocks")
    c.add_argument("name")
    cmd("ls", _ls, "all volumes and snapshots")
    c = cmd("publish", _publish, "make a snapshot an object (no data copied)")
    c.add_argument("snapshot")
    c.add_argument("object", help="ACCOUNT/CONTAINER/OBJECT (or CONTAINER/OBJECT with --account)")
    c.add_argument("--account")
    c = cmd("import", _import, "a new volume with a raw image file's bytes")
    c.add_argument("file")
    c.add_argument("name")
    c.add_argument("--block-size", type=parse_size, default=None)
    c.add_argument("--no-progress", action="store_true")
    c = cmd("export", _export, "write a volume's bytes to a raw file (sparse)")
    c.add_argument("name")
    c.add_argument("file")
    c.add_argument("--no-progress", action="store_true")

    prov = vsub.add_parser("provider", help="the Ganeti ExtStorage provider")
    psub = prov.add_subparsers(dest="provider_command", metavar="COMMAND", required=True)
    c = psub.add_parser("install", help="write DIR/nefeli/ (the provider scripts) for this data directory")
    c.add_argument("dir", help="an ExtStorage search path directory, e.g. /srv/ganeti/extstorage")
    c.add_argument("--data", default=DEFAULT_DATA, help="data directory baked into the scripts")
    c.add_argument("--nbd-socket", default=None,
                   help="NBD unix socket QEMU opens (default: DATA/nbd.sock, nefeli-blockd's default)")
    c.set_defaults(func=_run, handler=_provider_install, volume_command="provider install")
