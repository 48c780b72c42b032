"""Where the `nefeli` client finds its server, token and account.

Order (later wins): the TOML config file (~/.config/nefeli/config.toml, or
--config FILE), the environment (NEFELI_URL, NEFELI_TOKEN, NEFELI_ACCOUNT),
then the command-line flags (--url, --token, --account).

    # ~/.config/nefeli/config.toml
    url = "http://127.0.0.1:8080"
    token = "nfl_..."
    account = "alice"
"""

from __future__ import annotations

import argparse
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import CliError

DEFAULT_CONFIG = Path("~/.config/nefeli/config.toml")
API_PREFIXES = ("/object-store/v1", "/v1")


@dataclass(frozen=True)
class Config:
    url: str  # server root, e.g. http://127.0.0.1:8080 (no trailing slash)
    token: str
    account: str
    api_prefix: str = "/object-store/v1"

    @property
    def storage_url(self) -> str:
        return f"{self.url}{self.api_prefix}/{self.account}"


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME")
    if base:
        return Path(base) / "nefeli" / "config.toml"
    return DEFAULT_CONFIG.expanduser()


def _read_file(path: Path, explicit: bool) -> dict[str, str]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if explicit:
            raise CliError(f"config file {path} not found") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"cannot read config file {path}: {exc}") from None
    # accept a flat file or a [nefeli] / [client] table
    for table in ("nefeli", "client"):
        if isinstance(data.get(table), dict):
            data = {**data, **data[table]}
    return {k: str(v) for k, v in data.items() if k in ("url", "token", "account") and v is not None}


def split_url(url: str, account: str | None) -> tuple[str, str, str | None]:
    """(server root, API prefix, account found in the URL or None).

    Accepts a server root (http://h:p), or a storage URL as Swift auth hands out
    (http://h:p/v1/acct, http://h:p/object-store/v1/acct)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"bad server URL {url!r} (expected http://host:port)")
    path = parts.path.rstrip("/")
    root = urlunsplit((parts.scheme, parts.netloc, "", "", "")).rstrip("/")
    for prefix in API_PREFIXES:
        if path == prefix:
            return root, prefix, None
        if path.startswith(prefix + "/"):
            rest = path[len(prefix) + 1 :]
            return root, prefix, rest.split("/", 1)[0] or None
    if path:
        root = root + path  # a server mounted under a path
    return root, API_PREFIXES[0], None


def load(args: argparse.Namespace, env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ) if env is None else env
    explicit = getattr(args, "config", None)
    values = _read_file(Path(explicit).expanduser() if explicit else default_config_path(), bool(explicit))
    for key in ("url", "token", "account"):
        if env.get(f"NEFELI_{key.upper()}"):
            values[key] = env[f"NEFELI_{key.upper()}"]
        flag = getattr(args, key, None)
        if flag:
            values[key] = flag
    if not values.get("url"):
        raise CliError("no server URL: set NEFELI_URL, url in the config file, or --url")
    root, prefix, url_account = split_url(values["url"], values.get("account"))
    account = values.get("account") or url_account
    if not account:
        raise CliError("no account: set NEFELI_ACCOUNT, account in the config file, or --account")
    token = values.get("token")
    if not token:
        raise CliError("no token: set NEFELI_TOKEN, token in the config file, or --token")
    return Config(url=root, token=token, account=account, api_prefix=prefix)


def _connection_options(p: argparse.ArgumentParser, defaults: bool) -> None:
    # Given on both the main parser and each client command, so they may stand
    # anywhere on the line; the command's copies default to "absent" so they never
    # undo a value given before the command name.
    d: dict[str, object] = {} if defaults else {"default": argparse.SUPPRESS}
    g = p.add_argument_group("connection")
    g.add_argument("--url", help="server URL (NEFELI_URL)", **d)  # type: ignore[arg-type]
    g.add_argument("--token", help="auth token (NEFELI_TOKEN)", **d)  # type: ignore[arg-type]
    g.add_argument("--account", help="account (NEFELI_ACCOUNT)", **d)  # type: ignore[arg-type]
    g.add_argument("--config", metavar="FILE", help=f"TOML config file (default {DEFAULT_CONFIG})", **d)  # type: ignore[arg-type]
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output", **d)  # type: ignore[arg-type]


def add_options(p: argparse.ArgumentParser) -> None:
    """The connection flags every client command takes."""
    _connection_options(p, defaults=False)


def add_global_options(p: argparse.ArgumentParser) -> None:
    """The same flags on the main parser (`nefeli -q --url U upload ...`)."""
    _connection_options(p, defaults=True)


def progress_enabled(args: argparse.Namespace) -> bool:
    """Progress output unless --quiet: a bar on a terminal, plain lines otherwise (cli.progress)."""
    return not getattr(args, "quiet", False)
