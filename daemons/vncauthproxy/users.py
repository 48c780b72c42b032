"""The users file: who may ask for consoles, checked in constant time.

Format (as snf-vncauthproxy's): one ``user:<crypt hash>`` per line, ``#``
comments and blank lines ignored. Hashes are SHA-512 crypt (``$6$``) when
written by ``nefeli-vncauthproxy passwd``; any scheme libcrypt knows verifies.
"""

from __future__ import annotations

import hmac
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .libcrypt import CryptError, crypt, sha512_crypt

__all__ = ["UsersError", "Users", "load_users", "write_user", "delete_user"]

#: Hash checked for unknown users so that they take as long as known ones.
_DUMMY = sha512_crypt("nefeli-no-such-user", "nefelidummysalt0")


class UsersError(ValueError):
    """The users file cannot be read or has a bad line (the text says where)."""


@dataclass(frozen=True)
class Users:
    path: Path | None
    hashes: dict[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def check(self, user: str | None, password: str | None) -> bool:
        """Whether ``user``/``password`` may make requests (always True when disabled)."""
        if self.path is None:
            return True
        stored = self.hashes.get(user or "")
        try:
            computed = crypt(password or "", stored or _DUMMY)
        except CryptError:
            return False
        ok = hmac.compare_digest(computed.encode(), (stored or _DUMMY).encode())
        return ok and stored is not None and user is not None and password is not None


def parse_users(text: str, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed.startswith("$"):
            raise UsersError(f"{where}:{n}: expected user:<crypt hash>")
        if user in out:
            raise UsersError(f"{where}:{n}: user {user!r} appears twice")
        out[user] = hashed
    return out


def load_users(path: Path | None) -> Users:
    if path is None:
        return Users(None)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsersError(f"cannot read users file {path}: {exc}") from None
    return Users(path, parse_users(text, str(path)))


def _rewrite(path: Path, lines: list[str]) -> None:
    """Atomically replace the file (mode 0600), so a reader never sees half of it.

    The old file's owner is kept: root edits the file that the proxy's own
    (systemd dynamic) user reads.
    """
    try:
        owner: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        owner = None
    fd, tmp = tempfile.mkstemp(prefix=".users.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        if owner is not None and os.geteuid() == 0:
            os.chown(tmp, owner.st_uid, owner.st_gid)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _existing(path: Path) -> list[str]:
    if not path.exists():
        return []
    text = path.read_text("utf-8")
    parse_users(text, str(path))  # refuse to rewrite a file we do not understand
    return text.splitlines()


def write_user(path: Path, user: str, password: str) -> bool:
    """Add or replace ``user``; True when it was new."""
    if not user or ":" in user or any(c.isspace() for c in user):
        raise UsersError(f"invalid user name {user!r}")
    lines = _existing(path)
    entry = f"{user}:{sha512_crypt(password)}"
    new = True
    for i, line in enumerate(lines):
        if line.strip().partition(":")[0] == user and not line.lstrip().startswith("#"):
            lines[i] = entry
            new = False
    if new:
        lines.append(entry)
    _rewrite(path, lines)
    return new


def delete_user(path: Path, user: str) -> bool:
    """Remove ``user``; False when it was not there."""
    lines = _existing(path)
    kept = [ln for ln in lines if ln.lstrip().startswith("#") or ln.strip().partition(":")[0] != user]
    if len(kept) == len(lines):
        return False
    _rewrite(path, kept)
    return True
