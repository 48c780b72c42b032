"""`nefeli token create|list|revoke|key ... --data DIR`: admin, on the server's data dir.

Opens the metadata database (DIR/meta.db) directly through the blocking API
(SQLite WAL: works while nefeli-blockd runs).  A token or key is printed once and
kept only hashed.  `token key ACCOUNT USER` gives the Swift user ACCOUNT:USER (what
`swift -U ACCOUNT:USER` and rclone's `user` send as X-Auth-User) a key for
`GET /auth/v1.0`.
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


@command
def _key(args: argparse.Namespace) -> int:
    from storage_engine.objects.metadata import MetadataError

    if not args.admin:
        # The server has no users below an account's admin yet (they need container
        # ACLs); a key made without --admin would silently be an admin key.
        raise CliError("token key: users who are not the account's admin are not supported yet; give --admin")
    user = f"{args.account}:{args.user}"
    try:
        with _open(args.data, must_exist=False) as md:
            md.accounts.ensure(args.account)
            key = md.tokens.set_key(user, args.account, args.key)
    except MetadataError as exc:
        raise CliError(f"token key: {exc}") from None
    print(key)
    if sys.stderr.isatty():
        print(f"Swift user {user!r} (X-Auth-User) for account {args.account!r}; the key is shown only this once",
              file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="create, list or revoke API tokens, give Swift keys (admin, on the data dir)")
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

    k = tsub.add_parser(
        "key", help="give the Swift user ACCOUNT:USER a key for /auth/v1.0 (prints it)",
        description="Creates or replaces the key of ACCOUNT:USER (the X-Auth-User of Swift clients). Without "
        "--key a random one is made. Prints the key once.",
    )
    k.add_argument("account")
    k.add_argument("user")
    k.add_argument("--key", help="the key (at least 16 characters; default: a random one)")
    k.add_argument("--admin", action="store_true", help="the user acts as the account's owner")
    k.add_argument("--data", default=DEFAULT_DATA, metavar="DIR", help="blockd data directory (default %(default)s)")
    k.set_defaults(func=_key)

    r = tsub.add_parser("revoke", help="revoke a token by its number")
    r.add_argument("id", type=int)
    r.add_argument("--data", default=DEFAULT_DATA, metavar="DIR")
    r.set_defaults(func=_revoke)
