"""vncauthproxy control messages, sans-I/O: request framing, validation, replies.

A control client sends one JSON object per request. snf-vncauthproxy's own
client sends it with no newline and reads the answer with a single recv, so a
lone object that parses completely is a request; newline-terminated objects
(JSON Lines) work as well, several on one connection. Each request gets one
reply line: ``{"source_port", "status": "OK"|"FAILED", "proxy_address"}``, and
every FAILED reply carries a ``reason``. See docs/vncauthproxy.md, "Control
protocol".
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CONSOLE_TYPES",
    "MAX_REQUEST",
    "ControlError",
    "ControlReply",
    "ControlRequest",
    "RequestReader",
    "parse_request",
]

#: Longest request accepted, in bytes (the original read at most 1024).
MAX_REQUEST = 16 * 1024
CONSOLE_TYPES = ("vnc", "vnc-ws", "vnc-wss")
#: Longest one-time password accepted; only the first 8 bytes take part in VNC auth.
MAX_PASSWORD = 256
MAX_TEXT = 1024

ConsoleType = Literal["vnc", "vnc-ws", "vnc-wss"]

_HOSTNAME_RE = re.compile(r"(?=.{1,253}\Z)(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?")


class ControlError(ValueError):
    """A request that cannot be served; ``str()`` is the reason sent back."""


@dataclass(frozen=True)
class ControlRequest:
    """One validated forwarding request."""

    destination_address: str
    destination_port: int
    password: str
    source_port: int = 0
    auth_user: str | None = None
    auth_password: str | None = None
    type: ConsoleType = "vnc"
    #: nefeli extension: the backend's own VNC password, when it asks for one.
    backend_password: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source_port": self.source_port,
            "destination_address": self.destination_address,
            "destination_port": self.destination_port,
            "password": self.password,
        }
        if self.auth_user is not None:
            out["auth_user"] = self.auth_user
        if self.auth_password is not None:
            out["auth_password"] = self.auth_password
        if self.type != "vnc":
            out["type"] = self.type
        if self.backend_password is not None:
            out["backend_password"] = self.backend_password
        return out

    def encode(self) -> bytes:
        """One request line, as a client sends it."""
        return json.dumps(self.to_json(), separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True)
class ControlReply:
    """The answer to one request."""

    status: Literal["OK", "FAILED"]
    source_port: int = 0
    proxy_address: str | None = None
    reason: str | None = None

    @classmethod
    def ok(cls, source_port: int, proxy_address: str) -> ControlReply:
        return cls("OK", source_port, proxy_address)

    @classmethod
    def failed(cls, reason: str) -> ControlReply:
        return cls("FAILED", 0, None, reason)

    def encode(self) -> bytes:
        out: dict[str, Any] = {
            "source_port": self.source_port,
            "status": self.status,
            "proxy_address": self.proxy_address,
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return json.dumps(out, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> ControlReply:
        """Parse a reply (the client library's side); raises ControlError."""
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ControlError(f"reply is not JSON: {exc}") from None
        if not isinstance(obj, dict) or obj.get("status") not in ("OK", "FAILED"):
            raise ControlError("reply has no status OK or FAILED")
        port = obj.get("source_port", 0)
        addr = obj.get("proxy_address")
        reason = obj.get("reason")
        if type(port) is not int or not (addr is None or isinstance(addr, str)):
            raise ControlError("reply has a malformed source_port or proxy_address")
        return cls(obj["status"], port, addr, reason if isinstance(reason, str) else None)


# ----------------------------------------------------------------------- validation


def _port(obj: dict[str, Any], key: str, *, zero_ok: bool) -> int:
    value = obj[key]
    if type(value) is not int:
        raise ControlError(f"{key} must be an integer, got {_type_name(value)}")
    low = 0 if zero_ok else 1
    if not low <= value <= 65535:
        raise ControlError(f"{key} must be between {low} and 65535, got {value}")
    return value


def _text(obj: dict[str, Any], key: str, *, limit: int = MAX_TEXT) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ControlError(f"{key} must be a string, got {_type_name(value)}")
    if len(value) > limit:
        raise ControlError(f"{key} is longer than {limit} characters")
    if "\x00" in value:
        raise ControlError(f"{key} must not contain NUL characters")
    return value


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        pass
    if not _HOSTNAME_RE.fullmatch(value):
        raise ControlError(f"destination_address is not an IP address or host name: {value[:80]!r}")
    return value


def parse_request(obj: Any) -> ControlRequest:
    """Validate a decoded JSON value as a request; raises ControlError with the reason.

    Unknown keys are ignored (newer clients may send more).
    """
    if not isinstance(obj, dict):
        raise ControlError(f"request must be a JSON object, got {_type_name(obj)}")
    for key in ("destination_address", "destination_port", "password"):
        if obj.get(key) is None:
            raise ControlError(f"missing required field {key}")
    source_port = _port(obj, "source_port", zero_ok=True) if obj.get("source_port") is not None else 0
    dport = _port(obj, "destination_port", zero_ok=False)
    daddr = _text(obj, "destination_address", limit=253)
    password = _text(obj, "password", limit=MAX_PASSWORD)
    assert daddr is not None and password is not None
    if not password:
        raise ControlError("password must not be empty")
    console = obj.get("type", "vnc")
    if console is None:
        console = "vnc"
    if console not in CONSOLE_TYPES:
        raise ControlError(f"type must be one of {', '.join(CONSOLE_TYPES)}, got {str(console)[:40]!r}")
    return ControlRequest(
        destination_address=_address(daddr),
        destination_port=dport,
        password=password,
        source_port=source_port,
        auth_user=_text(obj, "auth_user"),
        auth_password=_text(obj, "auth_password"),
        type=console,
        backend_password=_text(obj, "backend_password", limit=MAX_PASSWORD),
    )


# ----------------------------------------------------------------------- framing


class RequestReader:
    """Cuts the byte stream of one control connection into requests.

    ``feed(data)`` then ``next()`` repeatedly: each call returns a
    :class:`ControlRequest`, a :class:`ControlError` (that request gets a
    FAILED reply; the stream goes on after a bad line), or ``None`` when more
    bytes are needed. A request is a complete line, or a lone object without
    newline that parses completely; ``feed_eof()`` makes a trailing partial
    request an error. Input past :data:`MAX_REQUEST` without a complete
    request is fatal (``broken`` is set): the caller replies and closes.
    """

    def __init__(self, limit: int = MAX_REQUEST) -> None:
        self.limit = limit
        self._buf = bytearray()
        self._eof = False
        self.broken = False
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> None:
        if not self.broken:
            self._buf += data

    def feed_eof(self) -> None:
        self._eof = True

    @property
    def pending(self) -> int:
        """Bytes held that are not (yet) a request."""
        return len(self._buf)

    def next(self) -> ControlRequest | ControlError | None:
        if self.broken:
            return None
        # Skip whitespace between requests (blank lines, the newline after a lone object).
        stripped = self._buf.lstrip()
        if len(stripped) != len(self._buf):
            del self._buf[: len(self._buf) - len(stripped)]
        if not self._buf:
            return None
        nl = self._buf.find(b"\n")
        if nl >= 0:
            if nl > self.limit:
                return self._too_large()
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            return self._parse_text(line)
        if len(self._buf) > self.limit:
            return self._too_large()
        if self._eof:
            line = bytes(self._buf)
            self._buf.clear()
            return self._parse_text(line)
        if self._buf[-1:] != b"}":  # an object can only be complete once it ends in '}'
            return None
        try:
            text = self._buf.decode("utf-8")
        except UnicodeDecodeError:
            return None  # maybe a split character; decided at newline, EOF or the limit
        try:
            obj, end = self._decoder.raw_decode(text)
        except ValueError:
            return None
        consumed = len(text[:end].encode("utf-8"))
        del self._buf[:consumed]
        return _validated(obj)

    def _too_large(self) -> ControlError:
        self.broken = True
        self._buf.clear()
        return ControlError(f"request larger than {self.limit} bytes")

    def _parse_text(self, raw: bytes) -> ControlRequest | ControlError:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return ControlError("request is not valid UTF-8")
        try:
            obj = json.loads(text)
        except ValueError as exc:
            return ControlError(f"request is not valid JSON: {exc}")
        return _validated(obj)


def _validated(obj: Any) -> ControlRequest | ControlError:
    try:
        return parse_request(obj)
    except ControlError as exc:
        return exc
