"""`nefeli token create|list|revoke ACCOUNT --data DIR`: admin, on the server's data dir.

Opens the metadata database (DIR/meta.db) directly through the blocking API
(SQLite WAL: works while nefeli-blockd runs).  The token is printed once and kept
only hashed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import CliError, command

DEFAULT_DATA = os.environ.get("NEFELI_DATA", "var/nefeli")
META_DB = "meta.db"


def meta_path(data: str) -> Path:
    d = Path(data)
    if d.is_file():
        return d  # the database itself
    if not d.is_dir():
        raise CliError(f"no data directory at {d}")
    return d / META_DB


def _open(data: str, must_exist: bool = True):  # type: ignore[no-untyped-def]
    from storage_engine.objects.metadata import SyncMetadataStore

    path = meta_path(data)
    if must_exist and not path.exists():
        raise CliError(f"no metadata database at {path} (has nefeli-blockd run with --data {data}?)")
    return SyncMetadataStore(path)


@command
def _create(args: argparse.Namespace) -> int:
    from storage_engine.objects.metadata import MetadataError

    try:
        with _open(args.data, must_exist=False) as md:
            md.accounts.ensure(args.account)
            new = md.tokens.create(args.account, ttl=args.ttl, description=args.description)
    except MetadataError as exc:
        raise CliError(f"token create: {exc}") from None
    print(new.token)
    if sys.stderr.isatty():
        print(f"token #{new.info.id} for account {args.account!r}; shown only this once", file=sys.stderr)
    return 0


@command
def _list(args: argparse.Namespace) -> int:
    from storage_engine.objects.metadata import MetadataError

    try:
        with _open(args.data) as md:
            rows = md.tokens.list(args.account)
    except MetadataError as exc:
        raise CliError(f"token list: {exc}") from None
    for t in rows:
        print(f"{t.id}\t{t.created:.0f}\t{t.expires or '-'}\t{t.description}")
    return 0


@command
def _revoke(args: argparse.Namespace) -> int:
    from storage_engine.objects.metadata import MetadataError

    try:
        with _open(args.data) as md:
            ok = md.tokens.revoke(args.id)
    except MetadataError as exc:
        raise CliError(f"token revoke: {exc}") from None
    if not ok:
        raise CliError(f"no token #{args.id}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="create, list or revoke API tokens (admin, on the data dir)")
    tsub = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)

    c = tsub.add_parser("create", help="create a token (and the account if missing); prints it once")
    c.add_argument("account")
    c.add_argument("--data", default=DEFAULT_DATA, metavar="DIR", help="blockd data directory (default %(default)s)")
    c.add_argument("--ttl", type=float, default=None, help="seconds until it expires (default never)")
    c.add_argument("--description", default="", help="a note kept with it")
    c.set_defaults(func=_create)

    ls = tsub.add_parser("list", help="list an account's tokens (not the secrets)")
    ls.add_argument("account")
    ls.add_argument("--data", default=DEFAULT_DATA, metavar="DIR")
    ls.set_defaults(func=_list)

    r = tsub.add_parser("revoke", help="revoke a token by its number")
    r.add_argument("id", type=int)
    r.add_argument("--data", default=DEFAULT_DATA, metavar="DIR")
    r.set_defaults(func=_revoke)
