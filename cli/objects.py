"""`nefeli ls`, `nefeli rm`, `nefeli share`, `nefeli publish`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from . import config as cfgmod
from .client import Client, split_target
from .errors import CliError, HttpError, command
from .progress import human


@command
async def _ls(args: argparse.Namespace) -> int:
    cfg = cfgmod.load(args)
    async with Client(cfg) as c:
        if not args.target:
            for e in await c.list_containers():
                if args.long:
                    print(f"{e.get('count', 0):>8} {_size(e.get('bytes', 0), args):>12}  {e.get('last_modified', ''):<27} {e['name']}")
                else:
                    print(e["name"])
            return 0
        cont, prefix = split_target(args.target, need_object=False)
        for e in await c.list_objects(cont, prefix, "/" if args.delimiter else None):
            if "subdir" in e:
                print(f"{'':>12}  {e['subdir']}" if args.long else e["subdir"])
                continue
            if args.long:
                h = e.get("x_object_hash") or e.get("hash") or ""
                print(
                    f"{_size(e.get('bytes', 0), args):>12}  {e.get('last_modified', ''):<27} {h[:16]:<16}  "
                    f"{e.get('content_type', ''):<24} {e['name']}"
                )
            else:
                print(f"{_size(e.get('bytes', 0), args):>12}  {e['name']}")
    return 0


def _size(n: int, args: argparse.Namespace) -> str:
    return human(n) if args.human else str(n)


@command
async def _rm(args: argparse.Namespace) -> int:
    cfg = cfgmod.load(args)
    failed = 0
    async with Client(cfg) as c:
        names: list[tuple[str, str]] = []
        for target in args.targets:
            cont, obj = split_target(target, need_object=not args.recursive)
            if args.recursive:
                names += [(cont, e["name"]) for e in await c.list_objects(cont, obj) if "name" in e]
            else:
                names.append((cont, obj))
        sem = asyncio.Semaphore(8)

        async def rm(cont: str, obj: str) -> None:
            nonlocal failed
            async with sem:
                try:
                    await c.delete_object(cont, obj)
                    if args.verbose:
                        print(f"deleted {cont}/{obj}")
                except HttpError as exc:
                    if exc.status == 404 and args.force:
                        return
                    print(f"nefeli: {exc}", file=sys.stderr)
                    failed += 1

        await asyncio.gather(*(rm(cont, obj) for cont, obj in names))
    return 1 if failed else 0


def _acl(items: list[str] | None) -> str:
    out: list[str] = []
    for item in items or []:
        out += [x.strip() for x in item.split(",") if x.strip()]
    return ",".join(out)


@command
async def _share(args: argparse.Namespace) -> int:
    cfg = cfgmod.load(args)
    cont, obj = split_target(args.target)
    parts = []
    if args.read:
        parts.append("read=" + _acl(args.read))
    if args.write:
        parts.append("write=" + _acl(args.write))
    if not parts and not args.clear:
        raise CliError("nothing to share: give --read, --write or --clear")
    async with Client(cfg) as c:
        await c.post_object(cont, obj, {"X-Object-Sharing": ";".join(parts)})
        h = await c.head_object(cont, obj)
    print(h.get("x-object-sharing", "") or "(not shared)")
    return 0


@command
async def _publish(args: argparse.Namespace) -> int:
    cfg = cfgmod.load(args)
    cont, obj = split_target(args.target)
    async with Client(cfg) as c:
        await c.post_object(cont, obj, {"X-Object-Public": "false" if args.unpublish else "true"})
        h = await c.head_object(cont, obj)
        public = h.get("x-object-public", "")
        if args.unpublish:
            if public and public.lower() not in ("false", ""):
                raise CliError(f"{cont}/{obj} is still public at {public}")
            return 0
        if not public or public.lower() in ("true", "false"):
            raise CliError(f"the server did not give {cont}/{obj} a public URL")
        print(c.public_url(public))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ls", help="list containers, or the objects of CONT[/PREFIX]")
    p.add_argument("target", nargs="?", metavar="CONT[/PREFIX]")
    p.add_argument("-l", "--long", action="store_true", help="long format (size, date, hash, type)")
    p.add_argument("-H", "--human", action="store_true", help="sizes in KiB/MiB/GiB")
    p.add_argument("-d", "--delimiter", action="store_true", help="group by '/' (one level)")
    cfgmod.add_options(p)
    p.set_defaults(func=_ls)

    p = sub.add_parser("rm", help="delete objects (-r: every object under a prefix)")
    p.add_argument("targets", nargs="+", metavar="CONT/OBJ")
    p.add_argument("-r", "--recursive", action="store_true", help="CONT[/PREFIX]: delete every object under it")
    p.add_argument("-f", "--force", action="store_true", help="no error for objects that do not exist")
    p.add_argument("-v", "--verbose", action="store_true")
    cfgmod.add_options(p)
    p.set_defaults(func=_rm)

    p = sub.add_parser("share", help="set who may read or write an object (X-Object-Sharing)")
    p.add_argument("target", metavar="CONT/OBJ")
    p.add_argument("--read", action="append", metavar="U1,U2", help="accounts or acct:group, '*' for everyone")
    p.add_argument("--write", action="append", metavar="U1,U2")
    p.add_argument("--clear", action="store_true", help="stop sharing")
    cfgmod.add_options(p)
    p.set_defaults(func=_share)

    p = sub.add_parser("publish", help="make an object public and print its URL (--unpublish to undo)")
    p.add_argument("target", metavar="CONT/OBJ")
    p.add_argument("--unpublish", action="store_true")
    cfgmod.add_options(p)
    p.set_defaults(func=_publish)
