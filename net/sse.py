"""Server-Sent Events (the WHATWG HTML "event stream" format): encoding and incremental parsing.

eventd's ``GET /events`` writes one event per spooled message (``id`` = spool sequence
number, ``event`` = routing key, ``data`` = the JSON body); ``nefeli events tail``
parses the stream with :class:`SseParser`. Lines end in LF, CRLF or CR; a blank line
ends an event; ``:`` lines are comments (keep-alives); ``retry`` sets the reconnect
delay. Only what the format defines is accepted; unknown fields are ignored, as the
standard says.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SseEvent", "SseParser", "encode_event"]


@dataclass(frozen=True, slots=True)
class SseEvent:
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


def encode_event(data: str, *, event: str | None = None, id: str | None = None) -> bytes:
    """One event; multi-line data becomes several ``data:`` lines."""
    for name, value in (("event", event), ("id", id)):
        if value is not None and ("\n" in value or "\r" in value):
            raise ValueError(f"SSE {name} must be one line")
    out = []
    if id is not None:
        out.append(f"id: {id}\n")
    if event is not None:
        out.append(f"event: {event}\n")
    for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        out.append(f"data: {line}\n")
    out.append("\n")
    return "".join(out).encode("utf-8")


class SseParser:
    """Bytes in, complete events out; keeps the last event id across events (as a client must)."""

    def __init__(self, max_line: int = 1 << 22) -> None:
        self.max_line = max_line
        self.last_id: str | None = None
        self.retry: int | None = None
        self._buf = b""
        self._data: list[str] = []
        self._event = ""
        self._has_data = False
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across reads
        self._pending_cr = False
        self._buf += chunk
        out: list[SseEvent] = []
        while True:
            i_n = self._buf.find(b"\n")
            i_r = self._buf.find(b"\r")
            ends = [i for i in (i_n, i_r) if i >= 0]
            if not ends:
                if len(self._buf) > self.max_line:
                    raise ValueError(f"SSE line longer than {self.max_line} bytes")
                return out
            i = min(ends)
            line = self._buf[:i]
            if self._buf[i:i + 1] == b"\r":
                if i + 1 == len(self._buf):
                    self._pending_cr = True
                    self._buf = b""
                elif self._buf[i + 1:i + 2] == b"\n":
                    self._buf = self._buf[i + 2:]
                else:
                    self._buf = self._buf[i + 1:]
            else:
                self._buf = self._buf[i + 1:]
            ev = self._line(line.decode("utf-8", "replace"))
            if ev is not None:
                out.append(ev)

    def _line(self, line: str) -> SseEvent | None:
        if line == "":
            if not self._has_data:
                self._event = ""
                return None
            ev = SseEvent("\n".join(self._data), self._event or "message", self.last_id, self.retry)
            self._data, self._event, self._has_data = [], "", False
            return ev
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self.last_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self.retry = int(value)
        return None
