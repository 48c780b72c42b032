"""SHA-512 crypt through the system's libcrypt (libxcrypt), by ctypes.

The users file holds ``crypt(3)`` hashes (``$6$salt$hash``) as the original
``vncauthproxy-passwd`` wrote them. Python 3.13 removed the stdlib ``crypt``
module; libxcrypt is part of every Debian system (``libcrypt1`` is essential),
so calling it directly keeps the exact same hashes without a new dependency.
``crypt_rn`` is used: reentrant (own work area), returns NULL on failure.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import secrets

__all__ = ["CryptError", "crypt", "sha512_crypt"]

_SALT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: Work area for crypt_rn; libxcrypt's struct crypt_data is 32768 bytes.
_DATA_SIZE = 65536


class CryptError(ValueError):
    """libcrypt refused the phrase or the setting (an unknown or malformed hash)."""


def _load() -> ctypes.CDLL:
    name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.crypt_rn.restype = ctypes.c_char_p
    lib.crypt_rn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    return lib


_lib = _load()


def crypt(phrase: str, setting: str) -> str:
    """``crypt(3)`` of ``phrase`` with ``setting`` (a salt string or a whole stored hash)."""
    p = phrase.encode("utf-8")
    s = setting.encode("ascii", "replace")
    if b"\0" in p or b"\0" in s:
        raise CryptError("NUL in phrase or setting")
    buf = ctypes.create_string_buffer(_DATA_SIZE)
    out = _lib.crypt_rn(p, s, buf, _DATA_SIZE)
    if not out or out.startswith(b"*"):
        raise CryptError(f"libcrypt cannot hash with setting {setting[:20]!r}")
    return out.decode("ascii")


def sha512_crypt(phrase: str, salt: str | None = None) -> str:
    """A new ``$6$<16-char salt>$<hash>``, as ``vncauthproxy-passwd`` made them."""
    if salt is None:
        salt = "".join(secrets.choice(_SALT_ALPHABET) for _ in range(16))
    return crypt(phrase, f"$6${salt}$")
