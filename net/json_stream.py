"""Splitting a stream of concatenated JSON objects (snf-image's progress stream).

snf-image writes JSON objects back to back on a pipe, with no framing; a read may end
in the middle of an object, and helpers may print other text in between. Feed bytes
in, get :class:`JsonObject` and :class:`Garbage` items out. Anything that is not a
complete JSON object is reported as garbage and skipped to the next ``{``: the scanner
tracks strings and bracket nesting, so it knows where an object ends without trying to
parse a prefix, and it gives up on an object early at a byte that cannot occur in JSON
outside a string (so ``{oops`` does not swallow the objects that follow). Objects
larger than ``max_object`` bytes are garbage too, which bounds the buffer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Garbage", "JsonObject", "JsonObjectStream", "StreamItem"]

_WS = b" \t\r\n"
#: Bytes allowed outside strings inside a JSON value (structure, numbers, true/false/null).
_JSON_BARE = frozenset(b' \t\r\n{}[]:,"0123456789+-.eEtrufalsn')
_OPEN_CLOSE = {ord("{"): ord("}"), ord("["): ord("]")}
_CLOSERS = frozenset(b"}]")


@dataclass(frozen=True, slots=True)
class JsonObject:
    value: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Garbage:
    data: bytes
    reason: str


StreamItem = JsonObject | Garbage


class JsonObjectStream:
    """Incremental splitter; state survives across :meth:`feed` calls (O(n) overall)."""

    def __init__(self, max_object: int = 1 << 20) -> None:
        self.max_object = max_object
        self._buf = bytearray()
        self._pos = 0  # scan position inside the current object (or 0 when between objects)
        self._stack: list[int] = []
        self._in_string = False
        self._escape = False

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[StreamItem]:
        self._buf += data
        return self._drain(final=False)

    def end(self) -> list[StreamItem]:
        """End of input: whatever is left is a truncated object or garbage."""
        return self._drain(final=True)

    # -- scanning ------------------------------------------------------------

    def _drain(self, final: bool) -> list[StreamItem]:
        out: list[StreamItem] = []
        while True:
            if not self._stack and self._pos == 0:
                if not self._skip_to_object(out, final):
                    return out
            done = self._scan()
            if done is None:  # need more bytes
                if len(self._buf) > self.max_object:
                    self._reject(out, f"object larger than {self.max_object} bytes")
                    continue
                if final:
                    if self._buf.strip(_WS):
                        self._reject(out, "truncated object at end of input")
                        continue
                    self._buf.clear()
                    self._reset()
                    return out
                return out
            end, why = done
            if why is not None:
                self._reject(out, why)
                continue
            chunk = bytes(self._buf[:end])
            try:
                value = json.loads(chunk.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                self._reject(out, f"invalid JSON object: {exc}")
                continue
            del self._buf[:end]
            self._reset()
            out.append(JsonObject(value))

    def _skip_to_object(self, out: list[StreamItem], final: bool) -> bool:
        """Drop bytes before the next ``{`` (reporting non-blank ones); False when none is buffered."""
        i = self._buf.find(b"{")
        if i < 0:
            junk = bytes(self._buf)
            self._buf.clear()
            if junk.strip(_WS):
                out.append(Garbage(junk, "text between objects"))
            return False
        if i:
            junk = bytes(self._buf[:i])
            del self._buf[:i]
            if junk.strip(_WS):
                out.append(Garbage(junk, "text between objects"))
        return True

    def _scan(self) -> tuple[int, str | None] | None:
        """Advance over the object at the start of the buffer.

        Returns (end offset, None) when it is complete, (offset, reason) when it
        cannot be JSON, None when more bytes are needed.
        """
        buf = self._buf
        n = len(buf)
        i = self._pos
        stack = self._stack
        in_string = self._in_string
        escape = self._escape
        while i < n:
            c = buf[i]
            if in_string:
                if escape:
                    escape = False
                elif c == 0x5C:  # backslash
                    escape = True
                elif c == 0x22:
                    in_string = False
                elif c < 0x20:
                    return i, "control character inside a string"
                i += 1
                continue
            if c == 0x22:
                in_string = True
            elif c in _OPEN_CLOSE:
                stack.append(_OPEN_CLOSE[c])
            elif c in _CLOSERS:
                if not stack or stack.pop() != c:
                    return i, "mismatched bracket"
                if not stack:
                    self._pos = 0
                    self._in_string = self._escape = False
                    return i + 1, None
            elif c not in _JSON_BARE:
                return i, f"byte {bytes([c])!r} cannot occur in JSON here"
            i += 1
        self._pos = i
        self._in_string = in_string
        self._escape = escape
        return None

    def _reject(self, out: list[StreamItem], reason: str) -> None:
        """The object starting at offset 0 is not one: report up to the next ``{`` and go on."""
        nxt = self._buf.find(b"{", 1)
        cut = nxt if nxt > 0 else len(self._buf)
        out.append(Garbage(bytes(self._buf[:cut]), reason))
        del self._buf[:cut]
        self._reset()

    def _reset(self) -> None:
        self._pos = 0
        self._stack = []
        self._in_string = False
        self._escape = False
