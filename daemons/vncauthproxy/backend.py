"""Reaching the VM's VNC server: connect with retries, then the client-side RFB handshake.

The handshake is finished up to the SecurityResult before the control request
is answered, so an OK reply means the console really is reachable. What
follows (ClientInit from the user's client onwards) is relayed untouched.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from net import rfb
from net.rfb import ClientConnection, ClientState

from .relay import Endpoint

__all__ = ["BackendError", "BackendLink", "SECURITY_CODES", "connect_backend"]

log = logging.getLogger("nefeli-vncauthproxy.backend")

SECURITY_CODES = {
    "vencrypt": rfb.SecurityType.VENCRYPT,
    "none": rfb.SecurityType.NONE,
    "vnc": rfb.SecurityType.VNC_AUTH,
}
_NAMES = {int(v): k for k, v in SECURITY_CODES.items()}


class BackendError(Exception):
    """The backend cannot be used; the text is the reason the control reply gives."""


@dataclass
class BackendLink:
    endpoint: Endpoint
    #: Bytes the backend sent past its SecurityResult (normally none).
    trailing: bytes
    #: How we authenticated, for the audit line ("none", "vnc", "vencrypt/258").
    security: str


def _tls_context(subtype: int, ca: Path | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if subtype in rfb.ANONYMOUS_TLS:
        # Anonymous (EC)DH: no certificates exist, so nothing to verify; TLS 1.3 has no
        # anonymous suites, hence 1.2.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("aNULL:!eNULL:@SECLEVEL=0")
    elif ca is not None:
        ctx.load_verify_locations(cafile=str(ca))
        ctx.check_hostname = False  # backends are addressed by IP; the chain is what is checked
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _connect(host: str, port: int, retries: int, delay: float) -> Endpoint:
    loop = asyncio.get_running_loop()
    last: OSError | None = None
    for attempt in range(retries):
        try:
            _, ep = await loop.create_connection(Endpoint, host, port)
            return ep
        except OSError as exc:
            last = exc
            if attempt + 1 < retries:
                await asyncio.sleep(delay)
    raise BackendError(f"cannot connect to backend {host}:{port}: {last.strerror if last and last.strerror else last}")


async def connect_backend(
    host: str,
    port: int,
    *,
    security: list[str],
    password: str,
    tls_ca: Path | None,
    allow_anonymous: bool,
    timeout: float,
    retries: int,
    retry_delay: float,
) -> BackendLink:
    """Connect and authenticate; raises BackendError (connection closed) on any failure."""
    ep: Endpoint | None = None
    try:
        async with asyncio.timeout(timeout):
            ep = await _connect(host, port, retries, retry_delay)
            return await _handshake(ep, host, security, password.encode("utf-8"), tls_ca, allow_anonymous)
    except TimeoutError:
        if ep is not None:
            ep.abort()
        raise BackendError(f"backend {host}:{port} did not finish the handshake within {timeout:g}s") from None
    except BackendError:
        if ep is not None:
            ep.abort()
        raise
    except (rfb.RemoteProtocolError, rfb.LocalProtocolError, ssl.SSLError, OSError) as exc:
        if ep is not None:
            ep.abort()
        raise BackendError(f"backend {host}:{port}: {exc}") from None


async def _handshake(
    ep: Endpoint, host: str, security: list[str], password: bytes, tls_ca: Path | None, allow_anonymous: bool
) -> BackendLink:
    conn = ClientConnection()
    preference = tuple(int(SECURITY_CODES[s]) for s in security)
    used = ""
    while True:
        ev = conn.next_event()
        if ev is rfb.NEED_DATA:
            data = await ep.recv()
            if not data:
                raise BackendError("backend closed the connection during the RFB handshake")
            conn.receive_data(data)
            continue
        if ev is rfb.DONE:
            return BackendLink(ep, conn.trailing_data, used or _NAMES.get(conn.chosen or 0, str(conn.chosen)))
        if ev is rfb.CLOSED:
            raise BackendError(f"backend refused the connection: {conn.failure}")
        if ev is not rfb.OUR_TURN:
            continue
        state = conn.state
        if state is ClientState.SEND_VERSION:
            ep.write(conn.send(conn.reply_version()))
        elif state is ClientState.SEND_SECURITY_CHOICE:
            choice = rfb.pick_security(conn.offered, preference, bool(password))
            if choice is None:
                offered = ", ".join(_NAMES.get(t, str(t)) for t in conn.offered)
                raise BackendError(
                    f"backend offers security types [{offered}], none usable with backend_security "
                    f"[{', '.join(security)}]{'' if password else ' and no backend password'}"
                )
            ep.write(conn.send(rfb.SecurityChoice(choice)))
        elif state is ClientState.SEND_AUTH_RESPONSE:
            assert conn.challenge is not None
            ep.write(conn.send(rfb.VncAuthResponse(rfb.vnc_auth_response(password, conn.challenge))))
        elif state is ClientState.SEND_VENCRYPT_VERSION:
            ep.write(conn.send(rfb.VeNCryptVersion(0, 2)))
        elif state is ClientState.SEND_VENCRYPT_CHOICE:
            sub = rfb.pick_vencrypt_subtype(conn.subtypes, bool(password), allow_anonymous)
            if sub is None:
                raise BackendError(
                    f"backend offers VeNCrypt subtypes {list(conn.subtypes)}, none usable"
                    f"{'' if password else ' without a backend password'}"
                )
            ep.write(conn.send(rfb.VeNCryptChoice(sub)))
            used = f"vencrypt/{rfb.VeNCryptSubtype(sub).name.lower()}"
        elif state is ClientState.TLS_HANDSHAKE:
            assert conn.subtype is not None and ep.transport is not None
            loop = asyncio.get_running_loop()
            tls = await loop.start_tls(ep.transport, ep, _tls_context(conn.subtype, tls_ca), server_side=False)
            if tls is None:
                raise BackendError("TLS to the backend could not be started")
            ep.transport = tls  # the protocol stays; reads now come decrypted
            conn.send(rfb.TLSEstablished())
        else:  # pragma: no cover - every send state is handled above
            raise BackendError(f"internal: unhandled handshake state {state.name}")
