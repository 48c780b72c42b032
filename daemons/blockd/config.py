"""Settings of nefeli-blockd (flags, TOML file, --print-config)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from daemons.runtime import access_log_setting, check_address, setting

MiB = 1 << 20


def _optional_address(value: str) -> None:
    if value:
        check_address(value)


def _block_size(value: int) -> None:
    if value < 512 or value > 1 << 30:
        raise ValueError("block size must be between 512 bytes and 1 GiB")


@dataclass(frozen=True)
class BlockdConfig:
    data: Path = setting(
        Path("var/nefeli"), help="data directory (meta.db + blocks/)", reloadable=False, metavar="DIR"
    )
    listen: str = setting(
        "127.0.0.1:8080",
        help="HOST:PORT, [IPv6]:PORT or unix:/PATH to listen on when systemd passes no 'http' socket",
        validate=check_address,
        reloadable=False,
        metavar="HOST:PORT",
    )
    public_url: str = setting(
        "",
        help="base URL clients reach this server at (X-Storage-Url, public URLs); "
        "empty: taken from each request's Host",
    )
    # sha256 by default: Pithos clients (kamaki, astakosclient) hash blocks themselves
    # with the container's scheme through hashlib, which has no BLAKE3.  Containers
    # keep the scheme they were made with; the nefeli client asks for blake3.
    default_hash: Literal["blake3", "sha256"] = setting(
        "sha256", help="hash scheme of new containers (X-Container-Policy-Block-Hash overrides)"
    )
    default_block_size: int = setting(
        4 * MiB, help="block size of new containers in bytes", validate=_block_size, reloadable=False
    )
    default_versioning: Literal["auto", "none"] = setting("auto", help="versioning of new containers")
    auth_token_ttl: float = setting(
        86400.0, help="lifetime (s) of tokens issued by /auth/v1.0 and /identity/v2.0/tokens", min=60.0
    )
    demo_account: str = setting("demo", help="account created (with a token) on first start; empty: none")
    db_synchronous: Literal["FULL", "NORMAL"] = setting(
        "FULL", help="SQLite synchronous mode (NORMAL: faster, may lose the last commits on power loss)",
        reloadable=False,
    )
    hash_threads: int = setting(0, help="threads hashing uploaded blocks (0: CPUs, at most 8)", min=0, max=256)
    drop_written_cache: bool = setting(
        True,
        help="drop stored blocks from the page cache once they are on disk, so uploads do not evict what readers use",
        reloadable=False,
    )
    md5_backfill: Literal["eager", "on-demand", "off"] = setting(
        "eager",
        help="MD5 (the Swift ETag) of objects stored from block hashes or by partial updates: computed in the "
        "background right after the write (eager), only once a Swift request meets the object (on-demand), "
        "or never (off)",
        reloadable=False,
    )
    nbd_listen: str = setting(
        "127.0.0.1:10809",
        help="HOST:PORT the NBD export of volumes listens on when systemd passes no `nbd` socket; empty: none",
        validate=_optional_address,
        reloadable=False,
        metavar="HOST:PORT",
    )
    nbd_socket: str = setting(
        "nbd.sock",
        help="unix socket of the NBD export (what a local QEMU opens), relative to the data directory; empty: none",
        reloadable=False,
        metavar="PATH",
    )
    access_log: bool = access_log_setting()
    max_partial_update: int = setting(
        1 << 30, help="largest body of a partial update (POST with Content-Range)", min=1
    )
