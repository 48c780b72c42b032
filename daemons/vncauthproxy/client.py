"""Client library of the control protocol, in the shape of snf-vncauthproxy's.

``request_forwarding(sport, daddr, dport, password, auth_user, auth_password,
server_address=..., server_port=..., enable_ssl=False, ca_cert=None,
strict=False)`` returns the reply as a dict, as the original did; TLS is 1.2
or later (the original forced 1.0). ``console_type`` selects vnc, vnc-ws or
vnc-wss.
"""

from __future__ import annotations

import json
import socket
import ssl
from typing import Any

from net.vnc_control import ControlError, ControlReply, ControlRequest, parse_request

__all__ = ["DEFAULT_SERVER_ADDRESS", "DEFAULT_SERVER_PORT", "request_forwarding"]

DEFAULT_SERVER_ADDRESS = "127.0.0.1"
DEFAULT_SERVER_PORT = 24999


def client_tls_context(ca_cert: str | None, strict: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_cert:
        ctx.load_verify_locations(cafile=ca_cert)
    else:
        ctx.load_default_certs()
    if not strict:
        ctx.check_hostname = False
        if not ca_cert:
            ctx.verify_mode = ssl.CERT_NONE
    return ctx


def request_forwarding(
    sport: int,
    daddr: str,
    dport: int,
    password: str,
    auth_user: str | None = None,
    auth_password: str | None = None,
    server_address: str = DEFAULT_SERVER_ADDRESS,
    server_port: int = DEFAULT_SERVER_PORT,
    enable_ssl: bool = False,
    ca_cert: str | None = None,
    strict: bool = False,
    console_type: str = "vnc",
    backend_password: str | None = None,
    timeout: float = 90.0,
) -> dict[str, Any]:
    """Ask the proxy for a forwarding; the reply dict (``status`` OK or FAILED).

    ``strict`` checks the server's host name against its certificate (needs
    ``ca_cert``). Raises ValueError for arguments the proxy would refuse and
    OSError when the proxy cannot be reached.
    """
    if strict and not ca_cert:
        raise ValueError("strict requires ca_cert")
    obj: dict[str, Any] = {
        "source_port": int(sport or 0),
        "destination_address": daddr,
        "destination_port": int(dport),
        "password": password,
        "type": console_type,
    }
    if auth_user is not None:
        obj["auth_user"] = auth_user
    if auth_password is not None:
        obj["auth_password"] = auth_password
    if backend_password is not None:
        obj["backend_password"] = backend_password
    try:
        req: ControlRequest = parse_request(obj)
    except ControlError as exc:
        raise ValueError(str(exc)) from None
    with socket.create_connection((server_address, int(server_port)), timeout=timeout) as raw:
        sock: socket.socket = raw
        if enable_ssl:
            sock = client_tls_context(ca_cert, strict).wrap_socket(raw, server_hostname=server_address)
        sock.sendall(req.encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    try:
        reply = ControlReply.decode(data)
    except ControlError as exc:
        raise OSError(f"bad reply from vncauthproxy: {exc}") from None
    out: dict[str, Any] = json.loads(data)
    out.setdefault("status", reply.status)
    return out
