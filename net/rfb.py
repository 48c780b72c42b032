"""RFB (VNC) handshake codec, sans-I/O, for both sides of an authenticating proxy.

The proxy is an RFB *server* towards the VNC client (it offers VNC
authentication and checks the DES challenge-response against a one-time
password) and an RFB *client* towards the VM's VNC server (security None, VNC
authentication, or VeNCrypt with TLS). Once both handshakes reach the
SecurityResult, everything after (ClientInit, ServerInit, the normal messages)
is identical in 3.3, 3.7 and 3.8, so the proxy relays it untouched.

In the style of h11: a :class:`ServerConnection` or :class:`ClientConnection`
holds the state; bytes from the peer go into :meth:`receive_data`, typed events
come out of :meth:`next_event`, and :meth:`send` turns our events into bytes.
One table per side (``SERVER_TRANSITIONS``, ``CLIENT_TRANSITIONS``) says which
event may happen in which state and where it leads. Nothing here does I/O: the
TLS of VeNCrypt is done by the caller, which then sends :class:`TLSEstablished`
and keeps feeding the decrypted bytes in.

Wire format: RFC 6143 (sections 7.1.1-7.1.3, 7.2.2) and the VeNCrypt extension
(docs/vncauthproxy.md, "RFB handshake").
"""

from __future__ import annotations

import enum
import hmac
import os
import re
import struct
from dataclasses import dataclass
from typing import ClassVar, Union

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

__all__ = [
    "CLIENT_TRANSITIONS",
    "CLOSED",
    "DONE",
    "NEED_DATA",
    "OUR_TURN",
    "SERVER_TRANSITIONS",
    "ClientConnection",
    "ClientState",
    "Event",
    "LocalProtocolError",
    "MAX_REASON",
    "ProtocolVersion",
    "RemoteProtocolError",
    "SecurityChoice",
    "SecurityFailure",
    "SecurityResult",
    "SecurityType",
    "SecurityTypes",
    "ServerConnection",
    "ServerSecurityType",
    "ServerState",
    "TLSEstablished",
    "VeNCryptChoice",
    "VeNCryptSubtype",
    "VeNCryptSubtypeAck",
    "VeNCryptSubtypes",
    "VeNCryptVersion",
    "VeNCryptVersionAck",
    "VncAuthChallenge",
    "VncAuthResponse",
    "check_vnc_auth",
    "pick_security",
    "pick_vencrypt_subtype",
    "vnc_auth_response",
]

#: Longest failure reason accepted from a peer (a server's text is a sentence).
MAX_REASON = 64 * 1024
#: Versions this codec speaks.
SUPPORTED = ((3, 3), (3, 7), (3, 8))
CHALLENGE_SIZE = 16


class SecurityType(enum.IntEnum):
    INVALID = 0
    NONE = 1
    VNC_AUTH = 2
    VENCRYPT = 19


class VeNCryptSubtype(enum.IntEnum):
    PLAIN = 256
    TLS_NONE = 257
    TLS_VNC = 258
    TLS_PLAIN = 259
    X509_NONE = 260
    X509_VNC = 261
    X509_PLAIN = 262


#: VeNCrypt subtypes the proxy can complete: TLS (anonymous) or X.509, then None or VNC auth.
TLS_SUBTYPES = frozenset(
    {VeNCryptSubtype.TLS_NONE, VeNCryptSubtype.TLS_VNC, VeNCryptSubtype.X509_NONE, VeNCryptSubtype.X509_VNC}
)
ANONYMOUS_TLS = frozenset({VeNCryptSubtype.TLS_NONE, VeNCryptSubtype.TLS_VNC})
_VNC_AFTER_TLS = frozenset({VeNCryptSubtype.TLS_VNC, VeNCryptSubtype.X509_VNC})


class RemoteProtocolError(ValueError):
    """The peer sent bytes that are not a valid RFB handshake at this point."""


class LocalProtocolError(RuntimeError):
    """We tried to send something the protocol does not allow now (a bug)."""


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: More bytes from the peer are needed before the next event.
NEED_DATA = _Sentinel("NEED_DATA")
#: It is our turn to :meth:`send`; the peer is waiting for us.
OUR_TURN = _Sentinel("OUR_TURN")
#: Handshake complete; what follows is relayed (see ``trailing_data``).
DONE = _Sentinel("DONE")
#: The handshake failed in an orderly way (a failure was sent or received).
CLOSED = _Sentinel("CLOSED")


# ----------------------------------------------------------------------- events


@dataclass(frozen=True)
class ProtocolVersion:
    """``RFB xxx.yyy\\n``, the first message in each direction."""

    major: int
    minor: int

    @property
    def pair(self) -> tuple[int, int]:
        return (self.major, self.minor)


@dataclass(frozen=True)
class SecurityTypes:
    """3.7+: the security types the server offers (non-empty)."""

    types: tuple[int, ...]


@dataclass(frozen=True)
class ServerSecurityType:
    """3.3: the one security type the server decided on (1 or 2)."""

    type: int


@dataclass(frozen=True)
class SecurityFailure:
    """The server refuses at once: zero types (3.7+) or type 0 (3.3), with a reason."""

    reason: str


@dataclass(frozen=True)
class SecurityChoice:
    """3.7+: the client's pick among the offered types."""

    type: int


@dataclass(frozen=True)
class VncAuthChallenge:
    challenge: bytes


@dataclass(frozen=True)
class VncAuthResponse:
    response: bytes


@dataclass(frozen=True)
class SecurityResult:
    """OK or failed; the reason goes on the wire only in 3.8."""

    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class VeNCryptVersion:
    major: int
    minor: int


@dataclass(frozen=True)
class VeNCryptVersionAck:
    ok: bool


@dataclass(frozen=True)
class VeNCryptSubtypes:
    subtypes: tuple[int, ...]


@dataclass(frozen=True)
class VeNCryptChoice:
    subtype: int


@dataclass(frozen=True)
class VeNCryptSubtypeAck:
    ok: bool


@dataclass(frozen=True)
class TLSEstablished:
    """Local: the caller finished the TLS handshake VeNCrypt asked for (no bytes)."""


Event = Union[
    ProtocolVersion,
    SecurityTypes,
    ServerSecurityType,
    SecurityFailure,
    SecurityChoice,
    VncAuthChallenge,
    VncAuthResponse,
    SecurityResult,
    VeNCryptVersion,
    VeNCryptVersionAck,
    VeNCryptSubtypes,
    VeNCryptChoice,
    VeNCryptSubtypeAck,
    TLSEstablished,
]


# ----------------------------------------------------------------------- DES


def _reverse_bits(b: int) -> int:
    return int(f"{b:08b}"[::-1], 2)


_KEY_BYTES = bytes(_reverse_bits(i) for i in range(256))


def vnc_auth_response(password: bytes, challenge: bytes) -> bytes:
    """DES-ECB of the challenge under the password, as VNC authentication does.

    The key is the first 8 bytes of the password (zero-padded) with the bits of
    each byte mirrored: a quirk of the original VNC code every peer copies.
    """
    if len(challenge) != CHALLENGE_SIZE:
        raise ValueError("a VNC challenge is 16 bytes")
    key = password[:8].ljust(8, b"\0").translate(_KEY_BYTES)
    # 3DES with K1 = K2 = K3 is single DES (EDE collapses to one encryption).
    enc = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return enc.update(challenge) + enc.finalize()


def check_vnc_auth(password: bytes, challenge: bytes, response: bytes) -> bool:
    """Whether ``response`` answers ``challenge`` for ``password`` (constant time)."""
    return hmac.compare_digest(vnc_auth_response(password, challenge), response)


# ----------------------------------------------------------------------- policy


def pick_security(offered: tuple[int, ...], preference: tuple[int, ...], have_password: bool) -> int | None:
    """The first type of ``preference`` that the server offers and we can complete."""
    for t in preference:
        if t not in offered:
            continue
        if t == SecurityType.VNC_AUTH and not have_password:
            continue
        return t
    return None


def pick_vencrypt_subtype(offered: tuple[int, ...], have_password: bool, allow_anonymous: bool = True) -> int | None:
    """X.509 before anonymous TLS; VNC auth inside only when we have its password."""
    order = [VeNCryptSubtype.X509_VNC, VeNCryptSubtype.TLS_VNC] if have_password else []
    order += [VeNCryptSubtype.X509_NONE, VeNCryptSubtype.TLS_NONE]
    for t in order:
        if t in offered and (allow_anonymous or t not in ANONYMOUS_TLS):
            return int(t)
    return None


# ----------------------------------------------------------------------- framing helpers

_VERSION_RE = re.compile(rb"RFB (\d{3})\.(\d{3})\n")
_U8 = struct.Struct(">B")
_U32 = struct.Struct(">I")


def encode_version(v: ProtocolVersion) -> bytes:
    return b"RFB %03d.%03d\n" % (v.major, v.minor)


def _reason_bytes(reason: str) -> bytes:
    data = reason.encode("utf-8", "replace")[:MAX_REASON]
    return _U32.pack(len(data)) + data


def _normalise(major: int, minor: int) -> tuple[int, int]:
    """Map what a peer announces to 3.3, 3.7 or 3.8 (RFC 6143 7.1.1: unknown 3.x as 3.3,
    later minors, e.g. Apple's 3.889, as 3.8)."""
    if major != 3:
        raise RemoteProtocolError(f"unsupported RFB version {major}.{minor}")
    if minor >= 8:
        return (3, 8)
    if minor == 7:
        return (3, 7)
    return (3, 3)


class _Reader:
    """A view on the receive buffer; ``None`` from a take means 'not enough yet'."""

    def __init__(self, buf: bytearray) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> bytes | None:
        if len(self.buf) - self.pos < n:
            return None
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def u8(self) -> int | None:
        b = self.take(1)
        return None if b is None else b[0]

    def u32(self) -> int | None:
        b = self.take(4)
        return None if b is None else _U32.unpack(b)[0]

    def reason(self) -> str | None:
        n = self.u32()
        if n is None:
            return None
        if n > MAX_REASON:
            raise RemoteProtocolError(f"failure reason of {n} bytes is too long")
        b = self.take(n)
        return None if b is None else b.decode("utf-8", "replace")


def _parse_version(r: _Reader) -> ProtocolVersion | None:
    raw = r.take(12)
    if raw is None:
        head = bytes(r.buf[:4])
        if not b"RFB ".startswith(head):
            raise RemoteProtocolError(f"not an RFB protocol version message: {head!r}")
        return None
    m = _VERSION_RE.fullmatch(raw)
    if m is None:
        raise RemoteProtocolError(f"not an RFB protocol version message: {raw!r}")
    return ProtocolVersion(int(m.group(1)), int(m.group(2)))


# ----------------------------------------------------------------------- base


class _Connection:
    """Shared machinery: buffer, the transition table walk, errors."""

    TRANSITIONS: ClassVar[dict]
    PARSERS: ClassVar[dict]
    DONE_STATE: ClassVar[enum.Enum]
    CLOSED_STATE: ClassVar[enum.Enum]
    ERROR_STATE: ClassVar[enum.Enum]

    def __init__(self, initial: enum.Enum) -> None:
        self.state: enum.Enum = initial
        self._buf = bytearray()
        #: The version both sides speak, once agreed.
        self.version: tuple[int, int] | None = None
        #: Reason of the failure sent or received, once CLOSED.
        self.failure: str | None = None

    # -- input

    def receive_data(self, data: bytes) -> None:
        """Bytes read from the peer (after a VeNCrypt TLS handshake: the decrypted ones)."""
        self._buf += data

    def next_event(self) -> Event | _Sentinel:
        """The next event from the peer, or NEED_DATA / OUR_TURN / DONE / CLOSED."""
        if self.state is self.ERROR_STATE:
            raise RemoteProtocolError("connection is in the error state")
        if self.state is self.DONE_STATE:
            return DONE
        if self.state is self.CLOSED_STATE:
            return CLOSED
        parser = self.PARSERS.get(self.state)
        if parser is None:
            return OUR_TURN
        reader = _Reader(self._buf)
        try:
            event = parser(self, reader)
        except RemoteProtocolError:
            self.state = self.ERROR_STATE
            raise
        if event is None:
            return NEED_DATA
        del self._buf[: reader.pos]
        self._advance(event, remote=True)
        return event

    # -- output

    def send(self, event: Event) -> bytes:
        """Bytes for our ``event``; raises LocalProtocolError when it is not allowed now."""
        if self.state in self.PARSERS or (self.state, type(event)) not in self.TRANSITIONS:
            raise LocalProtocolError(f"cannot send {type(event).__name__} in state {self.state.name}")
        data = self._encode(event)
        self._advance(event, remote=False)
        return data

    @property
    def our_turn(self) -> bool:
        return self.state not in self.PARSERS and self.state not in (
            self.DONE_STATE,
            self.CLOSED_STATE,
            self.ERROR_STATE,
        )

    @property
    def trailing_data(self) -> bytes:
        """Bytes received past the end of the handshake: the first relayed ones."""
        if self.state is not self.DONE_STATE:
            raise LocalProtocolError("handshake not finished")
        return bytes(self._buf)

    def _advance(self, event: Event, *, remote: bool) -> None:
        target = self.TRANSITIONS[(self.state, type(event))]
        try:
            self._check(event, remote)
        except RemoteProtocolError:
            self.state = self.ERROR_STATE
            raise
        new = target if isinstance(target, enum.Enum) else target(self, event)
        if isinstance(event, SecurityFailure) or (isinstance(event, SecurityResult) and not event.ok):
            self.failure = event.reason or "authentication failed"
        self.state = new

    def _check(self, event: Event, remote: bool) -> None:
        """Side-specific validation of an event before its transition."""

    def _encode(self, event: Event) -> bytes:
        raise NotImplementedError


def _encode_common(conn: _Connection, event: Event) -> bytes:
    if isinstance(event, ProtocolVersion):
        return encode_version(event)
    if isinstance(event, SecurityTypes):
        return _U8.pack(len(event.types)) + bytes(event.types)
    if isinstance(event, ServerSecurityType):
        return _U32.pack(event.type)
    if isinstance(event, SecurityFailure):
        head = _U32.pack(0) if conn.version == (3, 3) else _U8.pack(0)
        return head + _reason_bytes(event.reason)
    if isinstance(event, SecurityChoice):
        return _U8.pack(event.type)
    if isinstance(event, VncAuthChallenge):
        return event.challenge
    if isinstance(event, VncAuthResponse):
        return event.response
    if isinstance(event, SecurityResult):
        if event.ok:
            return _U32.pack(0)
        tail = _reason_bytes(event.reason or "authentication failed") if conn.version == (3, 8) else b""
        return _U32.pack(1) + tail
    if isinstance(event, VeNCryptVersion):
        return bytes((event.major, event.minor))
    if isinstance(event, VeNCryptVersionAck):
        return _U8.pack(0 if event.ok else 1)
    if isinstance(event, VeNCryptSubtypes):
        return _U8.pack(len(event.subtypes)) + b"".join(_U32.pack(t) for t in event.subtypes)
    if isinstance(event, VeNCryptChoice):
        return _U32.pack(event.subtype)
    if isinstance(event, VeNCryptSubtypeAck):
        return _U8.pack(1 if event.ok else 0)
    if isinstance(event, TLSEstablished):
        return b""
    raise LocalProtocolError(f"cannot encode {event!r}")


# ----------------------------------------------------------------------- server side


class ServerState(enum.Enum):
    SEND_VERSION = enum.auto()
    RECV_VERSION = enum.auto()
    SEND_SECURITY = enum.auto()
    RECV_SECURITY_CHOICE = enum.auto()
    SEND_CHALLENGE = enum.auto()
    RECV_AUTH_RESPONSE = enum.auto()
    SEND_RESULT = enum.auto()
    DONE = enum.auto()
    CLOSED = enum.auto()
    ERROR = enum.auto()


def _server_after_choice(conn: ServerConnection, ev: SecurityChoice) -> ServerState:
    if ev.type not in conn.offered:
        return ServerState.SEND_RESULT  # the caller answers with a failure
    if ev.type == SecurityType.VNC_AUTH:
        return ServerState.SEND_CHALLENGE
    if ev.type == SecurityType.NONE:
        return ServerState.SEND_RESULT if conn.version == (3, 8) else ServerState.DONE
    return ServerState.SEND_RESULT


def _server_after_type33(conn: ServerConnection, ev: ServerSecurityType) -> ServerState:
    return ServerState.SEND_CHALLENGE if ev.type == SecurityType.VNC_AUTH else ServerState.DONE


def _server_after_result(conn: ServerConnection, ev: SecurityResult) -> ServerState:
    return ServerState.DONE if ev.ok else ServerState.CLOSED


S = ServerState
SERVER_TRANSITIONS: dict = {
    (S.SEND_VERSION, ProtocolVersion): S.RECV_VERSION,
    (S.RECV_VERSION, ProtocolVersion): S.SEND_SECURITY,
    (S.SEND_SECURITY, SecurityTypes): S.RECV_SECURITY_CHOICE,
    (S.SEND_SECURITY, ServerSecurityType): _server_after_type33,
    (S.SEND_SECURITY, SecurityFailure): S.CLOSED,
    (S.RECV_SECURITY_CHOICE, SecurityChoice): _server_after_choice,
    (S.SEND_CHALLENGE, VncAuthChallenge): S.RECV_AUTH_RESPONSE,
    (S.RECV_AUTH_RESPONSE, VncAuthResponse): S.SEND_RESULT,
    (S.SEND_RESULT, SecurityResult): _server_after_result,
}
del S


class ServerConnection(_Connection):
    """We are the RFB server (the proxy facing a VNC client).

    Typical run: ``send(ProtocolVersion(3, 8))``; receive the client's
    ProtocolVersion; ``send(conn.security_offer(SecurityType.VNC_AUTH))``;
    receive SecurityChoice (3.7+); ``send(VncAuthChallenge(conn.challenge))``;
    receive VncAuthResponse; ``send(SecurityResult(ok, reason))``.
    """

    TRANSITIONS = SERVER_TRANSITIONS
    DONE_STATE = ServerState.DONE
    CLOSED_STATE = ServerState.CLOSED
    ERROR_STATE = ServerState.ERROR

    def __init__(self, challenge: bytes | None = None) -> None:
        super().__init__(ServerState.SEND_VERSION)
        self.challenge = os.urandom(CHALLENGE_SIZE) if challenge is None else challenge
        if len(self.challenge) != CHALLENGE_SIZE:
            raise ValueError("a VNC challenge is 16 bytes")
        self.offered: tuple[int, ...] = ()
        self.chosen: int | None = None
        self.response: bytes | None = None
        #: What the client announced, before mapping to 3.3/3.7/3.8.
        self.client_version: tuple[int, int] | None = None
        self._sent_version: tuple[int, int] = (3, 8)

    def security_offer(self, *types: int) -> SecurityTypes | ServerSecurityType:
        """The right message to offer ``types`` in the agreed version (3.3: the first one)."""
        if self.version == (3, 3):
            return ServerSecurityType(types[0])
        return SecurityTypes(tuple(types))

    def _check(self, event: Event, remote: bool) -> None:
        if isinstance(event, ProtocolVersion):
            if not remote:
                if event.pair not in SUPPORTED:
                    raise LocalProtocolError(f"cannot offer RFB {event.major}.{event.minor}")
                self._sent_version = event.pair
            else:
                self.client_version = event.pair
                agreed = _normalise(event.major, event.minor)
                self.version = min(agreed, self._sent_version)
        elif isinstance(event, SecurityTypes):
            if self.version == (3, 3) or not event.types:
                raise LocalProtocolError("3.7+ offers a non-empty list; 3.3 uses ServerSecurityType")
            self.offered = event.types
        elif isinstance(event, ServerSecurityType):
            if self.version != (3, 3):
                raise LocalProtocolError("ServerSecurityType is for RFB 3.3")
            self.offered = (event.type,)
            self.chosen = event.type
        elif isinstance(event, SecurityChoice):
            self.chosen = event.type
        elif isinstance(event, VncAuthChallenge):
            if len(event.challenge) != CHALLENGE_SIZE:
                raise LocalProtocolError("a VNC challenge is 16 bytes")
            self.challenge = event.challenge
        elif isinstance(event, VncAuthResponse):
            self.response = event.response

    def _encode(self, event: Event) -> bytes:
        return _encode_common(self, event)

    # -- parsers (what the client sends)

    def _p_version(self, r: _Reader) -> Event | None:
        return _parse_version(r)

    def _p_choice(self, r: _Reader) -> Event | None:
        t = r.u8()
        return None if t is None else SecurityChoice(t)

    def _p_response(self, r: _Reader) -> Event | None:
        b = r.take(CHALLENGE_SIZE)
        return None if b is None else VncAuthResponse(b)

    PARSERS = {
        ServerState.RECV_VERSION: _p_version,
        ServerState.RECV_SECURITY_CHOICE: _p_choice,
        ServerState.RECV_AUTH_RESPONSE: _p_response,
    }


# ----------------------------------------------------------------------- client side


class ClientState(enum.Enum):
    RECV_VERSION = enum.auto()
    SEND_VERSION = enum.auto()
    RECV_SECURITY = enum.auto()
    SEND_SECURITY_CHOICE = enum.auto()
    RECV_CHALLENGE = enum.auto()
    SEND_AUTH_RESPONSE = enum.auto()
    RECV_RESULT = enum.auto()
    RECV_VENCRYPT_VERSION = enum.auto()
    SEND_VENCRYPT_VERSION = enum.auto()
    RECV_VENCRYPT_VERSION_ACK = enum.auto()
    RECV_VENCRYPT_SUBTYPES = enum.auto()
    SEND_VENCRYPT_CHOICE = enum.auto()
    RECV_VENCRYPT_SUBTYPE_ACK = enum.auto()
    TLS_HANDSHAKE = enum.auto()
    DONE = enum.auto()
    CLOSED = enum.auto()
    ERROR = enum.auto()


def _client_after_type33(conn: ClientConnection, ev: ServerSecurityType) -> ClientState:
    if ev.type == SecurityType.NONE:
        return ClientState.DONE
    if ev.type == SecurityType.VNC_AUTH:
        return ClientState.RECV_CHALLENGE
    conn.failure = f"server requires unsupported security type {ev.type}"
    return ClientState.CLOSED


def _client_after_choice(conn: ClientConnection, ev: SecurityChoice) -> ClientState:
    if ev.type == SecurityType.NONE:
        return ClientState.RECV_RESULT if conn.version == (3, 8) else ClientState.DONE
    if ev.type == SecurityType.VNC_AUTH:
        return ClientState.RECV_CHALLENGE
    return ClientState.RECV_VENCRYPT_VERSION


def _client_after_tls(conn: ClientConnection, ev: TLSEstablished) -> ClientState:
    return ClientState.RECV_CHALLENGE if conn.subtype in _VNC_AFTER_TLS else ClientState.RECV_RESULT


def _client_after_vencrypt_ack(conn: ClientConnection, ev: VeNCryptVersionAck) -> ClientState:
    if ev.ok:
        return ClientState.RECV_VENCRYPT_SUBTYPES
    conn.failure = "server refused VeNCrypt version 0.2"
    return ClientState.CLOSED


def _client_after_subtype_ack(conn: ClientConnection, ev: VeNCryptSubtypeAck) -> ClientState:
    if ev.ok:
        return ClientState.TLS_HANDSHAKE
    conn.failure = f"server refused VeNCrypt subtype {conn.subtype}"
    return ClientState.CLOSED


def _client_after_result(conn: ClientConnection, ev: SecurityResult) -> ClientState:
    return ClientState.DONE if ev.ok else ClientState.CLOSED


C = ClientState
CLIENT_TRANSITIONS: dict = {
    (C.RECV_VERSION, ProtocolVersion): C.SEND_VERSION,
    (C.SEND_VERSION, ProtocolVersion): C.RECV_SECURITY,
    (C.RECV_SECURITY, SecurityTypes): C.SEND_SECURITY_CHOICE,
    (C.RECV_SECURITY, ServerSecurityType): _client_after_type33,
    (C.RECV_SECURITY, SecurityFailure): C.CLOSED,
    (C.SEND_SECURITY_CHOICE, SecurityChoice): _client_after_choice,
    (C.RECV_CHALLENGE, VncAuthChallenge): C.SEND_AUTH_RESPONSE,
    (C.SEND_AUTH_RESPONSE, VncAuthResponse): C.RECV_RESULT,
    (C.RECV_RESULT, SecurityResult): _client_after_result,
    (C.RECV_VENCRYPT_VERSION, VeNCryptVersion): C.SEND_VENCRYPT_VERSION,
    (C.SEND_VENCRYPT_VERSION, VeNCryptVersion): C.RECV_VENCRYPT_VERSION_ACK,
    (C.RECV_VENCRYPT_VERSION_ACK, VeNCryptVersionAck): _client_after_vencrypt_ack,
    (C.RECV_VENCRYPT_SUBTYPES, VeNCryptSubtypes): C.SEND_VENCRYPT_CHOICE,
    (C.SEND_VENCRYPT_CHOICE, VeNCryptChoice): C.RECV_VENCRYPT_SUBTYPE_ACK,
    (C.RECV_VENCRYPT_SUBTYPE_ACK, VeNCryptSubtypeAck): _client_after_subtype_ack,
    (C.TLS_HANDSHAKE, TLSEstablished): _client_after_tls,
}
del C


class ClientConnection(_Connection):
    """We are the RFB client (the proxy facing the VM's VNC server)."""

    TRANSITIONS = CLIENT_TRANSITIONS
    DONE_STATE = ClientState.DONE
    CLOSED_STATE = ClientState.CLOSED
    ERROR_STATE = ClientState.ERROR

    def __init__(self) -> None:
        super().__init__(ClientState.RECV_VERSION)
        self.server_version: tuple[int, int] | None = None
        self.offered: tuple[int, ...] = ()
        self.chosen: int | None = None
        self.subtypes: tuple[int, ...] = ()
        self.subtype: int | None = None
        self.challenge: bytes | None = None

    def reply_version(self) -> ProtocolVersion:
        """The version to answer the server's with: its own, capped at 3.8."""
        if self.server_version is None:
            raise LocalProtocolError("server version not received yet")
        major, minor = _normalise(*self.server_version)
        return ProtocolVersion(major, minor)

    def _check(self, event: Event, remote: bool) -> None:
        if isinstance(event, ProtocolVersion):
            if remote:
                _normalise(event.major, event.minor)  # raises for 4.x and friends
                self.server_version = event.pair
            else:
                assert self.server_version is not None
                if event.pair not in SUPPORTED or event.pair > _normalise(*self.server_version):
                    raise LocalProtocolError(f"cannot answer with RFB {event.major}.{event.minor}")
                self.version = event.pair
        elif isinstance(event, SecurityTypes):
            self.offered = event.types
        elif isinstance(event, ServerSecurityType):
            self.offered = (event.type,)
            self.chosen = event.type
        elif isinstance(event, SecurityChoice):
            if event.type not in self.offered:
                raise LocalProtocolError(f"security type {event.type} was not offered")
            if event.type not in (SecurityType.NONE, SecurityType.VNC_AUTH, SecurityType.VENCRYPT):
                raise LocalProtocolError(f"security type {event.type} is not supported")
            self.chosen = event.type
        elif isinstance(event, VncAuthChallenge):
            self.challenge = event.challenge
        elif isinstance(event, VncAuthResponse):
            if len(event.response) != CHALLENGE_SIZE:
                raise LocalProtocolError("a VNC response is 16 bytes")
        elif isinstance(event, VeNCryptVersion) and not remote:
            if (event.major, event.minor) != (0, 2):
                raise LocalProtocolError("only VeNCrypt 0.2 is spoken")
        elif isinstance(event, VeNCryptSubtypes):
            self.subtypes = event.subtypes
        elif isinstance(event, VeNCryptChoice):
            if event.subtype not in self.subtypes or event.subtype not in TLS_SUBTYPES:
                raise LocalProtocolError(f"VeNCrypt subtype {event.subtype} not offered or not supported")
            self.subtype = event.subtype
        elif isinstance(event, TLSEstablished):
            if self._buf:
                raise RemoteProtocolError("server sent cleartext after agreeing to TLS")

    def _encode(self, event: Event) -> bytes:
        return _encode_common(self, event)

    # -- parsers (what the server sends)

    def _p_version(self, r: _Reader) -> Event | None:
        return _parse_version(r)

    def _p_security(self, r: _Reader) -> Event | None:
        if self.version == (3, 3):
            t = r.u32()
            if t is None:
                return None
            if t == 0:
                reason = r.reason()
                return None if reason is None else SecurityFailure(reason)
            return ServerSecurityType(t)
        n = r.u8()
        if n is None:
            return None
        if n == 0:
            reason = r.reason()
            return None if reason is None else SecurityFailure(reason)
        types = r.take(n)
        return None if types is None else SecurityTypes(tuple(types))

    def _p_challenge(self, r: _Reader) -> Event | None:
        b = r.take(CHALLENGE_SIZE)
        return None if b is None else VncAuthChallenge(b)

    def _p_result(self, r: _Reader) -> Event | None:
        status = r.u32()
        if status is None:
            return None
        if status == 0:
            return SecurityResult(True)
        if status not in (1, 2):  # 2: "too many attempts" in some servers' 3.8
            raise RemoteProtocolError(f"invalid SecurityResult status {status}")
        if self.version == (3, 8):
            reason = r.reason()
            return None if reason is None else SecurityResult(False, reason)
        return SecurityResult(False, "authentication failed")

    def _p_vencrypt_version(self, r: _Reader) -> Event | None:
        b = r.take(2)
        if b is None:
            return None
        if (b[0], b[1]) < (0, 2):
            raise RemoteProtocolError(f"VeNCrypt version {b[0]}.{b[1]} is too old (0.2 needed)")
        return VeNCryptVersion(b[0], b[1])

    def _p_vencrypt_version_ack(self, r: _Reader) -> Event | None:
        b = r.u8()
        return None if b is None else VeNCryptVersionAck(b == 0)

    def _p_vencrypt_subtypes(self, r: _Reader) -> Event | None:
        n = r.u8()
        if n is None:
            return None
        raw = r.take(4 * n)
        if raw is None:
            return None
        if n == 0:
            raise RemoteProtocolError("server offers no VeNCrypt subtypes")
        return VeNCryptSubtypes(struct.unpack(f">{n}I", raw))

    def _p_subtype_ack(self, r: _Reader) -> Event | None:
        b = r.u8()
        if b is None:
            return None
        if b not in (0, 1):
            raise RemoteProtocolError(f"invalid VeNCrypt subtype acknowledgement {b}")
        return VeNCryptSubtypeAck(b == 1)

    PARSERS = {
        ClientState.RECV_VERSION: _p_version,
        ClientState.RECV_SECURITY: _p_security,
        ClientState.RECV_CHALLENGE: _p_challenge,
        ClientState.RECV_RESULT: _p_result,
        ClientState.RECV_VENCRYPT_VERSION: _p_vencrypt_version,
        ClientState.RECV_VENCRYPT_VERSION_ACK: _p_vencrypt_version_ack,
        ClientState.RECV_VENCRYPT_SUBTYPES: _p_vencrypt_subtypes,
        ClientState.RECV_VENCRYPT_SUBTYPE_ACK: _p_subtype_ack,
    }
