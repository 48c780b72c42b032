"""The volume admin protocol (docs/volumes.md §6): JSON lines over a unix socket.

A request is one line, ``{"op": NAME, "args": {...}}``; the server answers
with zero or more progress lines ``{"progress": [done, total]}`` and one
final line, ``{"ok": true, "result": ...}`` or ``{"ok": false, "error":
MESSAGE, "kind": ERROR CLASS}``.  Sans-I/O: a framer that splits lines
(refusing a line longer than MAX_LINE) and strict parsers for both ends.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

MAX_LINE = 64 * 1024
_OP = re.compile(r"[a-z][a-z_]{0,31}\Z")


class AdminProtocolError(ValueError):
    """A line that is not a valid message (the connection is closed after the answer)."""


@dataclass(frozen=True)
class AdminRequest:
    op: str
    args: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        return json.dumps({"op": self.op, "args": self.args}, separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True)
class AdminReply:
    ok: bool
    result: Any = None
    error: str = ""
    kind: str = ""

    def encode(self) -> bytes:
        body: dict[str, Any] = {"ok": self.ok}
        if self.ok:
            body["result"] = self.result
        else:
            body["error"] = self.error
            body["kind"] = self.kind
        return json.dumps(body, separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True)
class AdminProgress:
    done: int
    total: int

    def encode(self) -> bytes:
        return json.dumps({"progress": [self.done, self.total]}).encode() + b"\n"


class LineFramer:
    """Bytes in, complete lines out."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        lines = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > self.max_line:
                    raise AdminProtocolError(f"line longer than {self.max_line} bytes")
                return lines
            if nl > self.max_line:
                raise AdminProtocolError(f"line longer than {self.max_line} bytes")
            lines.append(bytes(self._buf[:nl]))
            del self._buf[: nl + 1]


def _json_object(line: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AdminProtocolError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise AdminProtocolError("not a JSON object")
    return obj


def parse_request(line: bytes) -> AdminRequest:
    obj = _json_object(line)
    op, args = obj.get("op"), obj.get("args", {})
    if not isinstance(op, str) or not _OP.match(op):
        raise AdminProtocolError("op must be a lowercase name")
    if not isinstance(args, dict) or set(obj) - {"op", "args"}:
        raise AdminProtocolError("args must be an object, and nothing else may be sent")
    return AdminRequest(op, args)


def parse_reply(line: bytes) -> AdminReply | AdminProgress:
    obj = _json_object(line)
    if "progress" in obj:
        p = obj["progress"]
        if not (isinstance(p, list) and len(p) == 2 and all(isinstance(x, int) for x in p)):
            raise AdminProtocolError("bad progress line")
        return AdminProgress(p[0], p[1])
    ok = obj.get("ok")
    if ok is True:
        return AdminReply(True, obj.get("result"))
    if ok is False and isinstance(obj.get("error"), str):
        return AdminReply(False, error=obj["error"], kind=str(obj.get("kind", "")))
    raise AdminProtocolError("reply without ok")
