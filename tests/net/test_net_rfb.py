"""net/rfb.py: both handshake sides byte for byte, DES, and property tests."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from net.rfb import (
    CLOSED,
    DONE,
    NEED_DATA,
    OUR_TURN,
    ClientConnection,
    ClientState,
    LocalProtocolError,
    ProtocolVersion,
    RemoteProtocolError,
    SecurityChoice,
    SecurityFailure,
    SecurityResult,
    SecurityTypes,
    ServerConnection,
    ServerSecurityType,
    ServerState,
    TLSEstablished,
    VeNCryptChoice,
    VeNCryptSubtypeAck,
    VeNCryptSubtypes,
    VeNCryptVersion,
    VeNCryptVersionAck,
    VncAuthChallenge,
    VncAuthResponse,
    check_vnc_auth,
    pick_security,
    pick_vencrypt_subtype,
    vnc_auth_response,
)

CHALLENGE = bytes(range(16))
# OpenSSL's DES-ECB (enc -des-ecb -K cea6c64ea62e0000 -nopad) of CHALLENGE: the key is
# "secret" zero-padded to 8 bytes with each byte's bits mirrored.
SECRET_RESPONSE = bytes.fromhex("ee22539f33a5983ec12f9c2edbc995dd")


def feed(conn, data: bytes):
    conn.receive_data(data)
    return conn.next_event()


def test_des_response_matches_openssl() -> None:
    assert vnc_auth_response(b"secret", CHALLENGE) == SECRET_RESPONSE
    assert check_vnc_auth(b"secret", CHALLENGE, SECRET_RESPONSE)
    assert not check_vnc_auth(b"secreT", CHALLENGE, SECRET_RESPONSE)
    # Only the first 8 bytes count, as in every VNC client.
    assert vnc_auth_response(b"12345678", CHALLENGE) == vnc_auth_response(b"123456789", CHALLENGE)
    with pytest.raises(ValueError):
        vnc_auth_response(b"x", b"short")


# ----------------------------------------------------------------------- server side


def test_server_38_vnc_auth_success_bytes() -> None:
    s = ServerConnection(challenge=CHALLENGE)
    assert s.next_event() is OUR_TURN
    assert s.send(ProtocolVersion(3, 8)) == b"RFB 003.008\n"
    assert s.next_event() is NEED_DATA
    assert feed(s, b"RFB 003.") is NEED_DATA
    assert feed(s, b"008\n") == ProtocolVersion(3, 8)
    assert s.version == (3, 8)
    assert s.send(s.security_offer(2)) == b"\x01\x02"
    assert feed(s, b"\x02") == SecurityChoice(2)
    assert s.state is ServerState.SEND_CHALLENGE
    assert s.send(VncAuthChallenge(s.challenge)) == CHALLENGE
    # The response and the ClientInit that follows at once arrive together.
    ev = feed(s, SECRET_RESPONSE + b"\x01")
    assert ev == VncAuthResponse(SECRET_RESPONSE)
    assert check_vnc_auth(b"secret", s.challenge, ev.response)
    assert s.send(SecurityResult(True)) == b"\x00\x00\x00\x00"
    assert s.next_event() is DONE
    assert s.trailing_data == b"\x01"


def test_server_38_failure_carries_reason() -> None:
    s = ServerConnection(challenge=CHALLENGE)
    s.send(ProtocolVersion(3, 8))
    feed(s, b"RFB 003.008\n")
    s.send(s.security_offer(2))
    feed(s, b"\x02")
    s.send(VncAuthChallenge(CHALLENGE))
    feed(s, bytes(16))
    data = s.send(SecurityResult(False, "Authentication failed"))
    assert data == b"\x00\x00\x00\x01" + b"\x00\x00\x00\x15" + b"Authentication failed"
    assert s.next_event() is CLOSED
    assert s.failure == "Authentication failed"
    with pytest.raises(LocalProtocolError):
        s.trailing_data


def test_server_37_failure_has_no_reason_on_the_wire() -> None:
    s = ServerConnection(challenge=CHALLENGE)
    s.send(ProtocolVersion(3, 8))
    assert feed(s, b"RFB 003.007\n") == ProtocolVersion(3, 7)
    assert s.version == (3, 7)
    assert s.send(s.security_offer(2)) == b"\x01\x02"
    feed(s, b"\x02")
    s.send(VncAuthChallenge(CHALLENGE))
    feed(s, bytes(16))
    assert s.send(SecurityResult(False, "nope")) == b"\x00\x00\x00\x01"


def test_server_33_server_decides_the_type() -> None:
    s = ServerConnection(challenge=CHALLENGE)
    s.send(ProtocolVersion(3, 8))
    feed(s, b"RFB 003.003\n")
    offer = s.security_offer(2)
    assert offer == ServerSecurityType(2)
    assert s.send(offer) == b"\x00\x00\x00\x02"
    assert s.state is ServerState.SEND_CHALLENGE
    s.send(VncAuthChallenge(CHALLENGE))
    assert feed(s, SECRET_RESPONSE) == VncAuthResponse(SECRET_RESPONSE)
    assert s.send(SecurityResult(True)) == b"\x00\x00\x00\x00"
    assert s.next_event() is DONE


@pytest.mark.parametrize(
    "announced, agreed",
    [(b"RFB 003.003\n", (3, 3)), (b"RFB 003.005\n", (3, 3)), (b"RFB 003.007\n", (3, 7)),
     (b"RFB 003.008\n", (3, 8)), (b"RFB 003.889\n", (3, 8))],
)
def test_server_maps_client_versions(announced: bytes, agreed: tuple[int, int]) -> None:
    s = ServerConnection()
    s.send(ProtocolVersion(3, 8))
    feed(s, announced)
    assert s.version == agreed


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.1\r\n", b"RFB 004.000\n", b"RFB 03.008\n\n", b"\x16\x03\x01"])
def test_server_rejects_garbage_version(garbage: bytes) -> None:
    s = ServerConnection()
    s.send(ProtocolVersion(3, 8))
    s.receive_data(garbage)
    with pytest.raises(RemoteProtocolError):
        s.next_event()
    assert s.state is ServerState.ERROR
    with pytest.raises(RemoteProtocolError):
        s.next_event()


def test_server_client_picks_a_type_not_offered() -> None:
    s = ServerConnection()
    s.send(ProtocolVersion(3, 8))
    feed(s, b"RFB 003.008\n")
    s.send(s.security_offer(2))
    assert feed(s, b"\x01") == SecurityChoice(1)
    assert s.state is ServerState.SEND_RESULT
    with pytest.raises(LocalProtocolError):
        s.send(VncAuthChallenge(CHALLENGE))
    assert s.send(SecurityResult(False, "security type 1 not offered")).endswith(b"not offered")


def test_server_refuses_out_of_turn_sends() -> None:
    s = ServerConnection()
    with pytest.raises(LocalProtocolError):
        s.send(SecurityTypes((2,)))
    s.send(ProtocolVersion(3, 8))
    with pytest.raises(LocalProtocolError):
        s.send(ProtocolVersion(3, 8))  # the client's turn


def test_server_security_failure_33_and_38() -> None:
    for announced, head in ((b"RFB 003.003\n", b"\x00\x00\x00\x00"), (b"RFB 003.008\n", b"\x00")):
        s = ServerConnection()
        s.send(ProtocolVersion(3, 8))
        feed(s, announced)
        assert s.send(SecurityFailure("busy")) == head + b"\x00\x00\x00\x04busy"
        assert s.next_event() is CLOSED


# ----------------------------------------------------------------------- client side


def _client_to_security(server_version: bytes) -> ClientConnection:
    c = ClientConnection()
    assert c.next_event() is NEED_DATA
    assert feed(c, server_version) == ProtocolVersion(*map(int, server_version[4:11].split(b".")))
    c.send(c.reply_version())
    return c


def test_client_38_none() -> None:
    c = ClientConnection()
    assert feed(c, b"RFB 003.008\n") == ProtocolVersion(3, 8)
    assert c.send(c.reply_version()) == b"RFB 003.008\n"
    assert feed(c, b"\x02\x01") is NEED_DATA
    assert feed(c, b"\x02") == SecurityTypes((1, 2))
    assert c.send(SecurityChoice(1)) == b"\x01"
    assert c.state is ClientState.RECV_RESULT
    assert feed(c, b"\x00\x00\x00\x00") == SecurityResult(True)
    assert c.next_event() is DONE
    assert c.trailing_data == b""


def test_client_37_none_has_no_result() -> None:
    c = _client_to_security(b"RFB 003.007\n")
    feed(c, b"\x01\x01")
    c.send(SecurityChoice(1))
    assert c.next_event() is DONE


def test_client_33_server_picks_none_and_qemu_style_later_minor() -> None:
    c = ClientConnection()
    feed(c, b"RFB 003.003\n")
    assert c.send(c.reply_version()) == b"RFB 003.003\n"
    assert feed(c, b"\x00\x00\x00\x01") == ServerSecurityType(1)
    assert c.next_event() is DONE
    c = ClientConnection()
    feed(c, b"RFB 003.889\n")
    assert c.reply_version() == ProtocolVersion(3, 8)


def test_client_33_failure_and_unsupported_type() -> None:
    c = _client_to_security(b"RFB 003.003\n")
    assert feed(c, b"\x00\x00\x00\x00\x00\x00\x00\x03bad") == SecurityFailure("bad")
    assert c.next_event() is CLOSED and c.failure == "bad"
    c = _client_to_security(b"RFB 003.003\n")
    assert feed(c, b"\x00\x00\x00\x10") == ServerSecurityType(16)
    assert c.next_event() is CLOSED
    assert "unsupported security type 16" in (c.failure or "")


def test_client_38_vnc_auth_and_failure_reason() -> None:
    c = _client_to_security(b"RFB 003.008\n")
    feed(c, b"\x01\x02")
    c.send(SecurityChoice(2))
    assert feed(c, CHALLENGE) == VncAuthChallenge(CHALLENGE)
    assert c.send(VncAuthResponse(vnc_auth_response(b"secret", CHALLENGE))) == SECRET_RESPONSE
    ev = feed(c, b"\x00\x00\x00\x01\x00\x00\x00\x0eWrong password")
    assert ev == SecurityResult(False, "Wrong password")
    assert c.next_event() is CLOSED


def test_client_security_failure_38() -> None:
    c = _client_to_security(b"RFB 003.008\n")
    assert feed(c, b"\x00\x00\x00\x00\x05Busy!") == SecurityFailure("Busy!")
    assert c.next_event() is CLOSED


def test_client_vencrypt_tls_vnc() -> None:
    c = _client_to_security(b"RFB 003.008\n")
    assert feed(c, b"\x02\x13\x02") == SecurityTypes((19, 2))
    assert c.send(SecurityChoice(19)) == b"\x13"
    assert feed(c, b"\x00\x02") == VeNCryptVersion(0, 2)
    assert c.send(VeNCryptVersion(0, 2)) == b"\x00\x02"
    assert feed(c, b"\x00") == VeNCryptVersionAck(True)
    ev = feed(c, b"\x02" + struct.pack(">II", 257, 258))
    assert ev == VeNCryptSubtypes((257, 258))
    assert pick_vencrypt_subtype(ev.subtypes, have_password=True) == 258
    assert pick_vencrypt_subtype(ev.subtypes, have_password=False) == 257
    assert c.send(VeNCryptChoice(258)) == b"\x00\x00\x01\x02"
    assert feed(c, b"\x01") == VeNCryptSubtypeAck(True)
    assert c.state is ClientState.TLS_HANDSHAKE
    assert c.next_event() is OUR_TURN
    assert c.send(TLSEstablished()) == b""
    assert c.state is ClientState.RECV_CHALLENGE
    assert feed(c, CHALLENGE) == VncAuthChallenge(CHALLENGE)


def _client_to_vencrypt_subtypes(*subtypes: int) -> ClientConnection:
    """A client that chose VeNCrypt 0.2 and received ``subtypes``."""
    c = _client_to_security(b"RFB 003.008\n")
    feed(c, b"\x01\x13")
    c.send(SecurityChoice(19))
    feed(c, b"\x00\x02")
    c.send(VeNCryptVersion(0, 2))
    feed(c, b"\x00")
    feed(c, bytes([len(subtypes)]) + b"".join(struct.pack(">I", t) for t in subtypes))
    return c


def test_client_vencrypt_tls_none_and_refusals() -> None:
    c = _client_to_vencrypt_subtypes(257)
    with pytest.raises(LocalProtocolError):
        c.send(VeNCryptChoice(256))  # Plain: not offered and not supported
    c.send(VeNCryptChoice(257))
    feed(c, b"\x01")
    c.send(TLSEstablished())
    assert c.state is ClientState.RECV_RESULT
    # A server that refuses our VeNCrypt version.
    c = _client_to_security(b"RFB 003.008\n")
    feed(c, b"\x01\x13")
    c.send(SecurityChoice(19))
    feed(c, b"\x00\x03")
    c.send(VeNCryptVersion(0, 2))
    assert feed(c, b"\x01") == VeNCryptVersionAck(False)
    assert c.next_event() is CLOSED


def test_client_rejects_cleartext_after_tls_agreed() -> None:
    c = _client_to_vencrypt_subtypes(257)
    c.send(VeNCryptChoice(257))
    feed(c, b"\x01junk")
    with pytest.raises(RemoteProtocolError):
        c.send(TLSEstablished())
    assert c.state is ClientState.ERROR


def test_client_refuses_bad_choices_and_versions() -> None:
    c = _client_to_security(b"RFB 003.008\n")
    feed(c, b"\x01\x02")
    with pytest.raises(LocalProtocolError):
        c.send(SecurityChoice(1))  # not offered
    c = ClientConnection()
    feed(c, b"RFB 003.007\n")
    with pytest.raises(LocalProtocolError):
        c.send(ProtocolVersion(3, 8))  # above the server's
    c = ClientConnection()
    c.receive_data(b"RFB 005.000\n")
    with pytest.raises(RemoteProtocolError):
        c.next_event()


def test_pick_security_policy() -> None:
    pref = (19, 1, 2)
    assert pick_security((2, 19), pref, have_password=True) == 19
    assert pick_security((2,), pref, have_password=False) is None
    assert pick_security((2,), pref, have_password=True) == 2
    assert pick_security((1, 2), (1, 2), have_password=True) == 1
    assert pick_vencrypt_subtype((258,), have_password=False) is None
    assert pick_vencrypt_subtype((257, 260), have_password=False) == 260
    assert pick_vencrypt_subtype((257,), have_password=False, allow_anonymous=False) is None


# ----------------------------------------------------------------------- properties


def _drive(server: ServerConnection, client: ClientConnection, client_password: bytes, proxy_password: bytes,
           chunk: int) -> tuple[object, object]:
    """Run a proxy-side server against a backend-side client codec in memory."""
    to_client = server.send(ProtocolVersion(3, 8))
    to_server = b""

    def pump(conn, data: bytes):
        events = []
        for i in range(0, len(data), chunk):
            conn.receive_data(data[i : i + chunk])
            while True:
                ev = conn.next_event()
                if ev in (NEED_DATA, OUR_TURN, DONE, CLOSED):
                    break
                events.append(ev)
        if not data:
            while True:
                ev = conn.next_event()
                if ev in (NEED_DATA, OUR_TURN, DONE, CLOSED):
                    break
                events.append(ev)
        return events

    for _ in range(10):
        pump(client, to_client)
        to_client = b""
        if client.our_turn:
            st_ = client.state
            if st_ is ClientState.SEND_VERSION:
                to_server += client.send(client.reply_version())
            elif st_ is ClientState.SEND_SECURITY_CHOICE:
                to_server += client.send(SecurityChoice(pick_security(client.offered, (2,), True)))
            elif st_ is ClientState.SEND_AUTH_RESPONSE:
                to_server += client.send(VncAuthResponse(vnc_auth_response(client_password, client.challenge)))
        pump(server, to_server)
        to_server = b""
        if server.our_turn:
            st_ = server.state
            if st_ is ServerState.SEND_SECURITY:
                to_client += server.send(server.security_offer(2))
            elif st_ is ServerState.SEND_CHALLENGE:
                to_client += server.send(VncAuthChallenge(server.challenge))
            elif st_ is ServerState.SEND_RESULT:
                ok = server.chosen == 2 and check_vnc_auth(proxy_password, server.challenge, server.response or b"")
                to_client += server.send(SecurityResult(ok, "" if ok else "Authentication failed"))
        if server.next_event() in (DONE, CLOSED) and client.next_event() in (DONE, CLOSED):
            break
    return server.next_event(), client.next_event()


@given(
    client_pw=st.binary(min_size=1, max_size=10),
    proxy_pw=st.binary(min_size=1, max_size=10),
    challenge=st.binary(min_size=16, max_size=16),
    chunk=st.integers(min_value=1, max_value=20),
)
def test_property_handshake_between_both_codecs(client_pw: bytes, proxy_pw: bytes, challenge: bytes, chunk: int) -> None:
    server = ServerConnection(challenge=challenge)
    s_end, c_end = _drive(server, ClientConnection(), client_pw, proxy_pw, chunk)
    # DES ignores each key byte's parity bit, which the bit mirroring makes the
    # password bytes' top bit: passwords equal but for those bits are the same key.
    def key(pw: bytes) -> bytes:
        return bytes(b & 0x7F for b in pw[:8].ljust(8, b"\0"))

    expect = DONE if key(client_pw) == key(proxy_pw) else CLOSED
    assert s_end is expect and c_end is expect


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=64))
def test_property_server_survives_any_bytes(data: bytes, chunk: int) -> None:
    s = ServerConnection()
    s.send(ProtocolVersion(3, 8))
    try:
        for i in range(0, len(data), chunk):
            s.receive_data(data[i : i + chunk])
            while True:
                ev = s.next_event()
                if ev is OUR_TURN:
                    if s.state is ServerState.SEND_SECURITY:
                        s.send(s.security_offer(2))
                    elif s.state is ServerState.SEND_CHALLENGE:
                        s.send(VncAuthChallenge(s.challenge))
                    elif s.state is ServerState.SEND_RESULT:
                        s.send(SecurityResult(False, "no"))
                    continue
                if ev in (NEED_DATA, DONE, CLOSED):
                    break
    except RemoteProtocolError:
        assert s.state is ServerState.ERROR


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
def test_property_client_survives_any_bytes(data: bytes, chunk: int) -> None:
    c = ClientConnection()
    try:
        for i in range(0, len(data), chunk):
            c.receive_data(data[i : i + chunk])
            while True:
                ev = c.next_event()
                if ev is OUR_TURN:
                    if c.state is ClientState.SEND_VERSION:
                        c.send(c.reply_version())
                    elif c.state is ClientState.SEND_SECURITY_CHOICE:
                        choice = pick_security(c.offered, (19, 1, 2), True)
                        if choice is None:
                            return
                        c.send(SecurityChoice(choice))
                    elif c.state is ClientState.SEND_AUTH_RESPONSE:
                        c.send(VncAuthResponse(bytes(16)))
                    elif c.state is ClientState.SEND_VENCRYPT_VERSION:
                        c.send(VeNCryptVersion(0, 2))
                    elif c.state is ClientState.SEND_VENCRYPT_CHOICE:
                        sub = pick_vencrypt_subtype(c.subtypes, True)
                        if sub is None:
                            return
                        c.send(VeNCryptChoice(sub))
                    elif c.state is ClientState.TLS_HANDSHAKE:
                        return
                    continue
                if ev in (NEED_DATA, DONE, CLOSED):
                    break
    except RemoteProtocolError:
        assert c.state is ClientState.ERROR
