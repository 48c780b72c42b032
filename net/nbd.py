"""NBD (Network Block Device) protocol, server side, sans-I/O (docs/volumes.md §5).

Bytes in, typed events out, in the style of h11: a `Connection` holds the
protocol state and has one table of transitions (`_TRANSITIONS`); the shell
feeds it with `receive_data()`, takes events with `next_event()`, and turns
the events it sends back into bytes with `send()` / `send_parts()`.  No
sockets, no asyncio.

Supported: the fixed newstyle handshake (with NO_ZEROES), the options
EXPORT_NAME, ABORT, LIST, INFO, GO, STRUCTURED_REPLY, LIST_META_CONTEXT and
SET_META_CONTEXT (any other option arrives as `UnknownOption`, which the
shell answers with NBD_REP_ERR_UNSUP), and the commands READ, WRITE, DISC,
FLUSH, TRIM, CACHE, WRITE_ZEROES and BLOCK_STATUS with simple and structured
replies.

A request the protocol lets the server refuse (out of range, unknown command
or flag, a write to a read-only export) comes out as `InvalidCommand`, which
the shell answers with an error reply and the connection goes on.  A
request after which the stream cannot be trusted (bad magic, a payload
larger than `max_payload`, unknown client flags) comes out as
`ProtocolError` and the connection is `CLOSED`: the shell drops it.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Callable, Union

# ---------------------------------------------------------------- constants

NBDMAGIC = 0x4E42444D41474943  # "NBDMAGIC"
IHAVEOPT = 0x49484156454F5054  # "IHAVEOPT"
OPTION_REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF

# handshake flags (server) and client flags
FLAG_FIXED_NEWSTYLE = 1 << 0
FLAG_NO_ZEROES = 1 << 1
FLAG_C_FIXED_NEWSTYLE = 1 << 0
FLAG_C_NO_ZEROES = 1 << 1

# options
OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_STARTTLS = 5
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8
OPT_LIST_META_CONTEXT = 9
OPT_SET_META_CONTEXT = 10

# option replies
REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_META_CONTEXT = 4
REP_ERR_UNSUP = (1 << 31) + 1
REP_ERR_POLICY = (1 << 31) + 2
REP_ERR_INVALID = (1 << 31) + 3
REP_ERR_PLATFORM = (1 << 31) + 4
REP_ERR_TLS_REQD = (1 << 31) + 5
REP_ERR_UNKNOWN = (1 << 31) + 6
REP_ERR_SHUTDOWN = (1 << 31) + 7
REP_ERR_TOO_BIG = (1 << 31) + 9

# NBD_REP_INFO types
INFO_EXPORT = 0
INFO_NAME = 1
INFO_DESCRIPTION = 2
INFO_BLOCK_SIZE = 3

# transmission flags
TF_HAS_FLAGS = 1 << 0
TF_READ_ONLY = 1 << 1
TF_SEND_FLUSH = 1 << 2
TF_SEND_FUA = 1 << 3
TF_ROTATIONAL = 1 << 4
TF_SEND_TRIM = 1 << 5
TF_SEND_WRITE_ZEROES = 1 << 6
TF_SEND_DF = 1 << 7
TF_CAN_MULTI_CONN = 1 << 8
TF_SEND_CACHE = 1 << 10
TF_SEND_FAST_ZERO = 1 << 11

# commands
CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_TRIM = 4
CMD_CACHE = 5
CMD_WRITE_ZEROES = 6
CMD_BLOCK_STATUS = 7

# command flags
CMD_FLAG_FUA = 1 << 0
CMD_FLAG_NO_HOLE = 1 << 1
CMD_FLAG_DF = 1 << 2
CMD_FLAG_REQ_ONE = 1 << 3
CMD_FLAG_FAST_ZERO = 1 << 4

# structured reply chunk types and flags
REPLY_FLAG_DONE = 1 << 0
REPLY_TYPE_NONE = 0
REPLY_TYPE_OFFSET_DATA = 1
REPLY_TYPE_OFFSET_HOLE = 2
REPLY_TYPE_BLOCK_STATUS = 5
REPLY_TYPE_ERROR = (1 << 15) + 1
REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2

# base:allocation status flags
STATE_HOLE = 1 << 0
STATE_ZERO = 1 << 1
BASE_ALLOCATION = "base:allocation"

# errno values on the wire (fixed by the protocol, not the host's)
EPERM = 1
EIO = 5
ENOMEM = 12
EINVAL = 22
ENOSPC = 28
EOVERFLOW = 75
ENOTSUP = 95
ESHUTDOWN = 108

MAX_OPTION_DATA = 64 * 1024  # names are at most 4096 bytes; a longer option is an attack
MAX_STRING = 4096
DEFAULT_MAX_PAYLOAD = 32 * 1024 * 1024

_GREETING = struct.Struct(">QQH")  # NBDMAGIC, IHAVEOPT, handshake flags
_CLIENT_FLAGS = struct.Struct(">I")
_OPTION = struct.Struct(">QII")  # IHAVEOPT, option, length
_OPTION_REPLY = struct.Struct(">QIII")  # magic, option, reply type, length
_EXPORT_NAME_REPLY = struct.Struct(">QH")  # size, transmission flags
_INFO_EXPORT = struct.Struct(">HQH")  # INFO_EXPORT, size, transmission flags
_INFO_BLOCK_SIZE = struct.Struct(">HIII")  # INFO_BLOCK_SIZE, minimum, preferred, maximum
_REQUEST = struct.Struct(">IHHQQI")  # magic, flags, type, cookie, offset, length
_SIMPLE_REPLY = struct.Struct(">IIQ")  # magic, error, cookie
_CHUNK = struct.Struct(">IHHQI")  # magic, flags, type, cookie, length
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")

Buffer = Union[bytes, bytearray, memoryview]


class LocalProtocolError(Exception):
    """The shell tried to send something the protocol does not allow now."""


class State(enum.Enum):
    GREETING = "greeting"  # the server has not sent its greeting yet
    CLIENT_FLAGS = "client-flags"  # waiting for the client's 4 flag bytes
    NEGOTIATING = "negotiating"  # waiting for an option
    OPTION_PENDING = "option-pending"  # an option was received; the server owes its reply
    TRANSMISSION = "transmission"
    CLOSED = "closed"


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()


# ---------------------------------------------------------------- events from the client


@dataclass(frozen=True)
class ClientFlags:
    flags: int

    @property
    def no_zeroes(self) -> bool:
        return bool(self.flags & FLAG_C_NO_ZEROES)


@dataclass(frozen=True)
class ExportNameOption:
    """NBD_OPT_EXPORT_NAME: answer with ExportNameReply, or close the connection."""

    name: str


@dataclass(frozen=True)
class AbortOption:
    pass


@dataclass(frozen=True)
class ListOption:
    pass


@dataclass(frozen=True)
class InfoOption:
    """NBD_OPT_INFO (go=False) or NBD_OPT_GO (go=True)."""

    name: str
    requests: tuple[int, ...]
    go: bool

    @property
    def option(self) -> int:
        return OPT_GO if self.go else OPT_INFO


@dataclass(frozen=True)
class StructuredReplyOption:
    pass


@dataclass(frozen=True)
class MetaContextOption:
    """NBD_OPT_LIST_META_CONTEXT (set=False) or NBD_OPT_SET_META_CONTEXT (set=True)."""

    export: str
    queries: tuple[str, ...]
    set: bool

    @property
    def option(self) -> int:
        return OPT_SET_META_CONTEXT if self.set else OPT_LIST_META_CONTEXT


@dataclass(frozen=True)
class UnknownOption:
    """An option this codec does not know (STARTTLS included): answer NBD_REP_ERR_UNSUP."""

    option: int
    data: bytes


@dataclass(frozen=True)
class InvalidOption:
    """A known option with malformed data: answer OptionError(option, code)."""

    option: int
    code: int
    reason: str


@dataclass(frozen=True)
class Request:
    cookie: int
    offset: int
    length: int
    flags: int

    @property
    def fua(self) -> bool:
        return bool(self.flags & CMD_FLAG_FUA)


@dataclass(frozen=True)
class Read(Request):
    pass


@dataclass(frozen=True)
class Write(Request):
    data: bytes = b""


@dataclass(frozen=True)
class Flush(Request):
    pass


@dataclass(frozen=True)
class Trim(Request):
    pass


@dataclass(frozen=True)
class Cache(Request):
    pass


@dataclass(frozen=True)
class WriteZeroes(Request):
    @property
    def no_hole(self) -> bool:
        return bool(self.flags & CMD_FLAG_NO_HOLE)

    @property
    def fast_zero(self) -> bool:
        return bool(self.flags & CMD_FLAG_FAST_ZERO)


@dataclass(frozen=True)
class BlockStatus(Request):
    @property
    def req_one(self) -> bool:
        return bool(self.flags & CMD_FLAG_REQ_ONE)


@dataclass(frozen=True)
class Disconnect:
    pass


@dataclass(frozen=True)
class ConnectionClosed:
    """The client closed its side between messages (without NBD_CMD_DISC)."""


@dataclass(frozen=True)
class InvalidCommand:
    """A request the server refuses with an error reply; the connection goes on."""

    cookie: int
    error: int
    reason: str


@dataclass(frozen=True)
class ProtocolError:
    """The stream cannot be trusted any more: drop the connection."""

    reason: str


# ---------------------------------------------------------------- events from the server


@dataclass(frozen=True)
class Greeting:
    pass


@dataclass(frozen=True)
class OptionAck:
    option: int


@dataclass(frozen=True)
class OptionServer:
    """One NBD_REP_SERVER entry of a LIST reply."""

    option: int
    name: str
    description: str = ""


@dataclass(frozen=True)
class OptionInfoExport:
    option: int
    size: int
    flags: int


@dataclass(frozen=True)
class OptionInfoBlockSize:
    option: int
    minimum: int
    preferred: int
    maximum: int


@dataclass(frozen=True)
class OptionInfoName:
    option: int
    name: str


@dataclass(frozen=True)
class OptionMetaContext:
    option: int
    context_id: int
    name: str


@dataclass(frozen=True)
class OptionError:
    option: int
    code: int
    message: str = ""


@dataclass(frozen=True)
class ExportNameReply:
    size: int
    flags: int


@dataclass(frozen=True)
class SimpleReply:
    cookie: int
    error: int = 0
    data: Buffer = b""


@dataclass(frozen=True)
class ReplyData:
    cookie: int
    offset: int
    data: Buffer
    done: bool = True


@dataclass(frozen=True)
class ReplyHole:
    cookie: int
    offset: int
    length: int
    done: bool = True


@dataclass(frozen=True)
class ReplyBlockStatus:
    cookie: int
    context_id: int
    extents: tuple[tuple[int, int], ...]  # (length, status flags)
    done: bool = True


@dataclass(frozen=True)
class ReplyNone:
    cookie: int


@dataclass(frozen=True)
class ReplyError:
    cookie: int
    error: int
    message: str = ""
    offset: int | None = None
    done: bool = True


ClientEvent = Union[
    ClientFlags,
    ExportNameOption,
    AbortOption,
    ListOption,
    InfoOption,
    StructuredReplyOption,
    MetaContextOption,
    UnknownOption,
    InvalidOption,
    Read,
    Write,
    Flush,
    Trim,
    Cache,
    WriteZeroes,
    BlockStatus,
    Disconnect,
    ConnectionClosed,
    InvalidCommand,
    ProtocolError,
]
ServerEvent = Union[
    Greeting,
    OptionAck,
    OptionServer,
    OptionInfoExport,
    OptionInfoBlockSize,
    OptionInfoName,
    OptionMetaContext,
    OptionError,
    ExportNameReply,
    SimpleReply,
    ReplyData,
    ReplyHole,
    ReplyBlockStatus,
    ReplyNone,
    ReplyError,
]

_OPTION_EVENTS = (
    ExportNameOption,
    AbortOption,
    ListOption,
    InfoOption,
    StructuredReplyOption,
    MetaContextOption,
    UnknownOption,
    InvalidOption,
)
_PARTIAL_OPTION_REPLIES = (OptionServer, OptionInfoExport, OptionInfoBlockSize, OptionInfoName, OptionMetaContext)
_COMMAND_EVENTS = (Read, Write, Flush, Trim, Cache, WriteZeroes, BlockStatus, InvalidCommand)
_REPLIES = (SimpleReply, ReplyData, ReplyHole, ReplyBlockStatus, ReplyNone, ReplyError)

# The one table: (state, event type) -> next state.  None marks a transition whose
# target depends on the option being answered (see _after_option_reply).
_TRANSITIONS: dict[tuple[State, type], State | None] = {
    (State.GREETING, Greeting): State.CLIENT_FLAGS,
    (State.CLIENT_FLAGS, ClientFlags): State.NEGOTIATING,
    **{(State.NEGOTIATING, ev): State.OPTION_PENDING for ev in _OPTION_EVENTS},
    **{(State.OPTION_PENDING, ev): State.OPTION_PENDING for ev in _PARTIAL_OPTION_REPLIES},
    (State.OPTION_PENDING, OptionAck): None,
    (State.OPTION_PENDING, OptionError): State.NEGOTIATING,
    (State.OPTION_PENDING, ExportNameReply): State.TRANSMISSION,
    **{(State.TRANSMISSION, ev): State.TRANSMISSION for ev in _COMMAND_EVENTS + _REPLIES},
    (State.TRANSMISSION, Disconnect): State.CLOSED,
}
# ProtocolError leads to CLOSED from every state.
_ACK_TARGET = {OPT_GO: State.TRANSMISSION, OPT_ABORT: State.CLOSED}


@dataclass
class Export:
    """What the server told the client about the export it chose."""

    name: str
    size: int
    flags: int


@dataclass
class Connection:
    """The server's side of one NBD connection."""

    max_payload: int = DEFAULT_MAX_PAYLOAD
    state: State = State.GREETING
    structured: bool = False
    no_zeroes: bool = False
    export: Export | None = None
    meta_contexts: dict[int, str] = field(default_factory=dict)
    _buf: bytearray = field(default_factory=bytearray)
    _pending: object | None = None  # the option event the server is answering
    _pending_info: dict[str, int] = field(default_factory=dict)
    _pending_contexts: dict[int, str] = field(default_factory=dict)
    _inflight: set[int] = field(default_factory=set)
    _eof: bool = False

    # ------------------------------------------------------------ receiving

    def receive_data(self, data: Buffer) -> None:
        """Feed bytes from the client; b"" means the client closed its side."""
        if not data:
            self._eof = True
        else:
            self._buf += data

    def next_event(self) -> ClientEvent | _NeedData:
        """The next complete event from the client, or NEED_DATA."""
        if self.state is State.CLOSED:
            return NEED_DATA
        parse = _PARSERS.get(self.state)
        if parse is None:  # the server owes a reply (greeting or option answer)
            if self._eof:
                self.state = State.CLOSED
                return ConnectionClosed()
            return NEED_DATA
        event = parse(self)
        if event is NEED_DATA:
            if not self._eof:
                return NEED_DATA
            if self._buf or self.state is State.CLIENT_FLAGS:
                return self._fail("client closed the connection mid-message")
            self.state = State.CLOSED
            return ConnectionClosed()
        self._transition(event)  # type: ignore[arg-type]
        return event  # type: ignore[return-value]

    def _fail(self, reason: str) -> ProtocolError:
        self.state = State.CLOSED
        self._buf.clear()
        return ProtocolError(reason)

    def _take(self, n: int) -> bytes | None:
        if len(self._buf) < n:
            return None
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _parse_client_flags(self) -> ClientEvent | _NeedData:
        raw = self._take(_CLIENT_FLAGS.size)
        if raw is None:
            return NEED_DATA
        (flags,) = _CLIENT_FLAGS.unpack(raw)
        if flags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES):
            return self._fail(f"unknown client flags {flags:#x}")
        if not flags & FLAG_C_FIXED_NEWSTYLE:
            return self._fail("client does not speak fixed newstyle")
        self.no_zeroes = bool(flags & FLAG_C_NO_ZEROES)
        return ClientFlags(flags)

    def _parse_option(self) -> ClientEvent | _NeedData:
        if len(self._buf) < _OPTION.size:
            return NEED_DATA
        magic, option, length = _OPTION.unpack_from(self._buf)
        if magic != IHAVEOPT:
            return self._fail(f"bad option magic {magic:#x}")
        if length > MAX_OPTION_DATA:
            return self._fail(f"option {option} carries {length} bytes (at most {MAX_OPTION_DATA})")
        if len(self._buf) < _OPTION.size + length:
            return NEED_DATA
        del self._buf[: _OPTION.size]
        data = self._take(length) or b""
        return _decode_option(option, data, self.structured)

    def _parse_request(self) -> ClientEvent | _NeedData:
        if len(self._buf) < _REQUEST.size:
            return NEED_DATA
        magic, flags, kind, cookie, offset, length = _REQUEST.unpack_from(self._buf)
        if magic != REQUEST_MAGIC:
            return self._fail(f"bad request magic {magic:#x}")
        if kind == CMD_WRITE:
            if length > self.max_payload:
                return self._fail(f"write of {length} bytes (at most {self.max_payload})")
            if len(self._buf) < _REQUEST.size + length:
                return NEED_DATA
            del self._buf[: _REQUEST.size]
            data = self._take(length) or b""
        else:
            del self._buf[: _REQUEST.size]
            data = b""
        if kind == CMD_DISC:
            return Disconnect()
        if cookie in self._inflight:  # replies could not be told apart
            return self._fail(f"cookie {cookie:#x} is already in flight")
        return self._check_request(kind, flags, cookie, offset, length, data)

    def _check_request(self, kind: int, flags: int, cookie: int, offset: int, length: int, data: bytes) -> ClientEvent:
        assert self.export is not None
        cls = _COMMANDS.get(kind)
        if cls is None:
            return InvalidCommand(cookie, EINVAL, f"unknown command {kind}")
        allowed = _ALLOWED_FLAGS[kind]
        if flags & ~allowed:
            return InvalidCommand(cookie, EINVAL, f"flags {flags:#x} not allowed on command {kind}")
        ef = self.export.flags
        if kind in (CMD_WRITE, CMD_TRIM, CMD_WRITE_ZEROES) and ef & TF_READ_ONLY:
            return InvalidCommand(cookie, EPERM, "export is read-only")
        if kind == CMD_FLUSH:
            if offset or length:
                return InvalidCommand(cookie, EINVAL, "flush with an offset or length")
            return Flush(cookie, 0, 0, flags)
        if kind == CMD_BLOCK_STATUS and not self.meta_contexts:
            return InvalidCommand(cookie, EINVAL, "block status without a meta context")
        if kind == CMD_READ and length > self.max_payload:
            return InvalidCommand(cookie, EOVERFLOW if self.structured else EINVAL, f"read of {length} bytes")
        if offset + length > self.export.size:
            return InvalidCommand(cookie, EINVAL, f"{offset}+{length} is past the end ({self.export.size})")
        if length == 0:
            return InvalidCommand(cookie, EINVAL, "zero-length request")
        if cls is Write:
            return Write(cookie, offset, length, flags, data)
        return cls(cookie, offset, length, flags)

    # ------------------------------------------------------------ state

    def _transition(self, event: object) -> None:
        if isinstance(event, (ProtocolError, ConnectionClosed)):
            self.state = State.CLOSED
            return
        key = (self.state, type(event))
        if key not in _TRANSITIONS:
            raise LocalProtocolError(f"{type(event).__name__} is not allowed in state {self.state.value}")
        target = _TRANSITIONS[key]
        if target is None:
            option = _option_code(self._pending)
            target = _ACK_TARGET.get(option, State.NEGOTIATING)
        if isinstance(event, _OPTION_EVENTS):
            self._pending = event
            self._pending_info = {}
            self._pending_contexts = {}
        if isinstance(event, (Request, InvalidCommand)):
            self._inflight.add(event.cookie)
        self.state = target

    # ------------------------------------------------------------ sending

    def send(self, event: ServerEvent) -> bytes:
        return b"".join(bytes(p) for p in self.send_parts(event))

    def send_parts(self, event: ServerEvent) -> list[Buffer]:
        """The bytes for `event`, as a header and (for data) the caller's buffer, uncopied."""
        if self.state is State.CLOSED:
            raise LocalProtocolError("connection is closed")
        parts = self._encode(event)
        self._after_send(event)
        return parts

    def _encode(self, ev: ServerEvent) -> list[Buffer]:
        if isinstance(ev, Greeting):
            return [_GREETING.pack(NBDMAGIC, IHAVEOPT, FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)]
        if isinstance(ev, (OptionAck, OptionServer, OptionInfoExport, OptionInfoBlockSize, OptionInfoName,
                           OptionMetaContext, OptionError)):
            self._check_option_reply(ev.option)
            return [_encode_option_reply(ev)]
        if isinstance(ev, ExportNameReply):
            if not isinstance(self._pending, ExportNameOption):
                raise LocalProtocolError("ExportNameReply answers only NBD_OPT_EXPORT_NAME")
            tail = b"" if self.no_zeroes else bytes(124)
            return [_EXPORT_NAME_REPLY.pack(ev.size, ev.flags) + tail]
        if isinstance(ev, _REPLIES):
            return self._encode_reply(ev)
        raise LocalProtocolError(f"cannot send {type(ev).__name__}")

    def _check_option_reply(self, option: int) -> None:
        if self.state is not State.OPTION_PENDING or option != _option_code(self._pending):
            raise LocalProtocolError(f"no option {option} to answer")

    def _encode_reply(self, ev: ServerEvent) -> list[Buffer]:
        cookie = ev.cookie  # type: ignore[union-attr]
        if cookie not in self._inflight:
            raise LocalProtocolError(f"no request with cookie {cookie:#x} in flight")
        if isinstance(ev, SimpleReply):
            head = _SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, ev.error, cookie)
            return [head, ev.data] if len(ev.data) else [head]
        if not self.structured:
            raise LocalProtocolError("structured replies were not negotiated")
        if isinstance(ev, ReplyData):
            head = _CHUNK.pack(STRUCTURED_REPLY_MAGIC, _done(ev.done), REPLY_TYPE_OFFSET_DATA, cookie, 8 + len(ev.data))
            return [head + _U64.pack(ev.offset), ev.data]
        if isinstance(ev, ReplyHole):
            body = _U64.pack(ev.offset) + _U32.pack(ev.length)
            return [_CHUNK.pack(STRUCTURED_REPLY_MAGIC, _done(ev.done), REPLY_TYPE_OFFSET_HOLE, cookie, len(body)) + body]
        if isinstance(ev, ReplyBlockStatus):
            body = _U32.pack(ev.context_id) + b"".join(struct.pack(">II", n, f) for n, f in ev.extents)
            return [_CHUNK.pack(STRUCTURED_REPLY_MAGIC, _done(ev.done), REPLY_TYPE_BLOCK_STATUS, cookie, len(body)) + body]
        if isinstance(ev, ReplyNone):
            return [_CHUNK.pack(STRUCTURED_REPLY_MAGIC, REPLY_FLAG_DONE, REPLY_TYPE_NONE, cookie, 0)]
        assert isinstance(ev, ReplyError)
        msg = ev.message.encode()[:MAX_STRING]
        body = _U32.pack(ev.error) + _U16.pack(len(msg)) + msg
        kind = REPLY_TYPE_ERROR
        if ev.offset is not None:
            body += _U64.pack(ev.offset)
            kind = REPLY_TYPE_ERROR_OFFSET
        return [_CHUNK.pack(STRUCTURED_REPLY_MAGIC, _done(ev.done), kind, cookie, len(body)) + body]

    def _after_send(self, ev: ServerEvent) -> None:
        if isinstance(ev, OptionInfoExport):
            self._pending_info = {"size": ev.size, "flags": ev.flags}
        elif isinstance(ev, OptionMetaContext):
            self._pending_contexts[ev.context_id] = ev.name
        elif isinstance(ev, OptionAck):
            pending = self._pending
            if isinstance(pending, StructuredReplyOption):
                self.structured = True
            elif isinstance(pending, MetaContextOption) and pending.set:
                self.meta_contexts = dict(self._pending_contexts)
            elif isinstance(pending, InfoOption) and pending.go:
                if "size" not in self._pending_info:
                    raise LocalProtocolError("NBD_OPT_GO acknowledged without NBD_INFO_EXPORT")
                self.export = Export(pending.name, self._pending_info["size"], self._pending_info["flags"])
        elif isinstance(ev, ExportNameReply):
            assert isinstance(self._pending, ExportNameOption)
            self.export = Export(self._pending.name, ev.size, ev.flags)
        elif isinstance(ev, _REPLIES):
            final = isinstance(ev, (SimpleReply, ReplyNone)) or getattr(ev, "done", True)
            if final:
                self._inflight.discard(ev.cookie)
        self._transition(ev)

    def close(self) -> None:
        """The shell is dropping the connection (e.g. an unknown export on EXPORT_NAME)."""
        self.state = State.CLOSED
        self._buf.clear()

    @property
    def in_flight(self) -> int:
        return len(self._inflight)


def _done(done: bool) -> int:
    return REPLY_FLAG_DONE if done else 0


def _option_code(ev: object) -> int:
    if isinstance(ev, ExportNameOption):
        return OPT_EXPORT_NAME
    if isinstance(ev, AbortOption):
        return OPT_ABORT
    if isinstance(ev, ListOption):
        return OPT_LIST
    if isinstance(ev, StructuredReplyOption):
        return OPT_STRUCTURED_REPLY
    if isinstance(ev, (InfoOption, MetaContextOption, UnknownOption, InvalidOption)):
        return ev.option
    return -1


def _encode_option_reply(ev: ServerEvent) -> bytes:
    if isinstance(ev, OptionAck):
        kind, body = REP_ACK, b""
    elif isinstance(ev, OptionServer):
        name = ev.name.encode()
        kind, body = REP_SERVER, _U32.pack(len(name)) + name + ev.description.encode()
    elif isinstance(ev, OptionInfoExport):
        kind, body = REP_INFO, _INFO_EXPORT.pack(INFO_EXPORT, ev.size, ev.flags)
    elif isinstance(ev, OptionInfoBlockSize):
        kind, body = REP_INFO, _INFO_BLOCK_SIZE.pack(INFO_BLOCK_SIZE, ev.minimum, ev.preferred, ev.maximum)
    elif isinstance(ev, OptionInfoName):
        kind, body = REP_INFO, _U16.pack(INFO_NAME) + ev.name.encode()
    elif isinstance(ev, OptionMetaContext):
        kind, body = REP_META_CONTEXT, _U32.pack(ev.context_id) + ev.name.encode()
    else:
        assert isinstance(ev, OptionError)
        if not ev.code & (1 << 31):
            raise LocalProtocolError(f"{ev.code:#x} is not an error reply type")
        kind, body = ev.code, ev.message.encode()[:MAX_STRING]
    return _OPTION_REPLY.pack(OPTION_REPLY_MAGIC, ev.option, kind, len(body)) + body  # type: ignore[union-attr]


class _Reader:
    """Bounds-checked reads over an option's data."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("option data is shorter than its fields say")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def u16(self) -> int:
        return int(_U16.unpack(self.take(2))[0])

    def string(self) -> str:
        n = self.u32()
        if n > MAX_STRING:
            raise ValueError(f"string of {n} bytes (at most {MAX_STRING})")
        return self.take(n).decode("utf-8")

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ValueError("option data is longer than its fields say")


def _decode_option(option: int, data: bytes, structured: bool) -> ClientEvent:
    try:
        if option == OPT_EXPORT_NAME:
            if len(data) > MAX_STRING:
                raise ValueError("export name too long")
            return ExportNameOption(data.decode("utf-8"))
        if option in (OPT_ABORT, OPT_LIST, OPT_STRUCTURED_REPLY):
            if data:
                raise ValueError("option takes no data")
            return {OPT_ABORT: AbortOption, OPT_LIST: ListOption, OPT_STRUCTURED_REPLY: StructuredReplyOption}[option]()
        if option in (OPT_INFO, OPT_GO):
            r = _Reader(data)
            name = r.string()
            requests = tuple(r.u16() for _ in range(r.u16()))
            r.end()
            return InfoOption(name, requests, option == OPT_GO)
        if option in (OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT):
            if option == OPT_SET_META_CONTEXT and not structured:
                return InvalidOption(option, REP_ERR_INVALID, "SET_META_CONTEXT before STRUCTURED_REPLY")
            r = _Reader(data)
            export = r.string()
            queries = tuple(r.string() for _ in range(r.u32()))
            r.end()
            return MetaContextOption(export, queries, option == OPT_SET_META_CONTEXT)
    except (ValueError, UnicodeDecodeError) as exc:
        return InvalidOption(option, REP_ERR_INVALID, str(exc))
    return UnknownOption(option, data)


_COMMANDS: dict[int, type[Request]] = {
    CMD_READ: Read,
    CMD_WRITE: Write,
    CMD_FLUSH: Flush,
    CMD_TRIM: Trim,
    CMD_CACHE: Cache,
    CMD_WRITE_ZEROES: WriteZeroes,
    CMD_BLOCK_STATUS: BlockStatus,
}
_ALLOWED_FLAGS = {
    CMD_READ: CMD_FLAG_DF | CMD_FLAG_FUA,
    CMD_WRITE: CMD_FLAG_FUA,
    CMD_FLUSH: 0,
    CMD_TRIM: CMD_FLAG_FUA,
    CMD_CACHE: 0,
    CMD_WRITE_ZEROES: CMD_FLAG_FUA | CMD_FLAG_NO_HOLE | CMD_FLAG_FAST_ZERO,
    CMD_BLOCK_STATUS: CMD_FLAG_REQ_ONE,
}
_PARSERS: dict[State, Callable[[Connection], ClientEvent | _NeedData]] = {
    State.CLIENT_FLAGS: Connection._parse_client_flags,
    State.NEGOTIATING: Connection._parse_option,
    State.TRANSMISSION: Connection._parse_request,
}
