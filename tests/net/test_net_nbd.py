"""net/nbd: the server side of the NBD handshake and transmission, byte for byte."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from net import nbd
from net.nbd import NEED_DATA, Connection, State


def opt(option: int, data: bytes = b"") -> bytes:
    return b"IHAVEOPT" + struct.pack(">II", option, len(data)) + data


def go_data(name: str, *requests: int) -> bytes:
    raw = name.encode()
    return struct.pack(">I", len(raw)) + raw + struct.pack(">H", len(requests)) + b"".join(struct.pack(">H", r) for r in requests)


def meta_data(export: str, *queries: str) -> bytes:
    out = struct.pack(">I", len(export)) + export.encode() + struct.pack(">I", len(queries))
    for q in queries:
        out += struct.pack(">I", len(q)) + q.encode()
    return out


def req(kind: int, cookie: int = 1, offset: int = 0, length: int = 0, flags: int = 0, data: bytes = b"") -> bytes:
    return struct.pack(">IHHQQI", 0x25609513, flags, kind, cookie, offset, length) + data


def events(conn: Connection) -> list[object]:
    out = []
    while (ev := conn.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


def negotiated(size: int = 1 << 20, flags: int = nbd.TF_HAS_FLAGS | nbd.TF_SEND_FLUSH, structured: bool = False,
               meta: bool = False) -> Connection:
    """A connection in transmission on export "vol" (through GO)."""
    c = Connection()
    c.send(nbd.Greeting())
    c.receive_data(struct.pack(">I", 3))
    assert events(c) == [nbd.ClientFlags(3)]
    if structured:
        c.receive_data(opt(nbd.OPT_STRUCTURED_REPLY))
        assert events(c) == [nbd.StructuredReplyOption()]
        c.send(nbd.OptionAck(nbd.OPT_STRUCTURED_REPLY))
    if meta:
        c.receive_data(opt(nbd.OPT_SET_META_CONTEXT, meta_data("vol", nbd.BASE_ALLOCATION)))
        assert events(c) == [nbd.MetaContextOption("vol", (nbd.BASE_ALLOCATION,), True)]
        c.send(nbd.OptionMetaContext(nbd.OPT_SET_META_CONTEXT, 1, nbd.BASE_ALLOCATION))
        c.send(nbd.OptionAck(nbd.OPT_SET_META_CONTEXT))
    c.receive_data(opt(nbd.OPT_GO, go_data("vol")))
    assert events(c) == [nbd.InfoOption("vol", (), True)]
    c.send(nbd.OptionInfoExport(nbd.OPT_GO, size, flags))
    c.send(nbd.OptionAck(nbd.OPT_GO))
    assert c.state is State.TRANSMISSION
    return c


def test_greeting_is_fixed_newstyle_with_no_zeroes() -> None:
    c = Connection()
    assert c.send(nbd.Greeting()) == b"NBDMAGIC" + b"IHAVEOPT" + b"\x00\x03"
    assert c.state is State.CLIENT_FLAGS


def test_client_flags_split_across_reads() -> None:
    c = Connection()
    c.send(nbd.Greeting())
    c.receive_data(b"\x00\x00")
    assert c.next_event() is NEED_DATA
    c.receive_data(b"\x00\x01")
    assert c.next_event() == nbd.ClientFlags(1)
    assert not c.no_zeroes and c.state is State.NEGOTIATING


@pytest.mark.parametrize("flags", [0, 4, 0x80000001])
def test_client_without_fixed_newstyle_or_with_unknown_flags_is_dropped(flags: int) -> None:
    c = Connection()
    c.send(nbd.Greeting())
    c.receive_data(struct.pack(">I", flags))
    ev = c.next_event()
    assert isinstance(ev, nbd.ProtocolError) and c.state is State.CLOSED


def test_export_name_reply_with_and_without_zeroes() -> None:
    for flags, tail in ((3, b""), (1, bytes(124))):
        c = Connection()
        c.send(nbd.Greeting())
        c.receive_data(struct.pack(">I", flags) + opt(nbd.OPT_EXPORT_NAME, b"disk0"))
        assert events(c) == [nbd.ClientFlags(flags), nbd.ExportNameOption("disk0")]
        out = c.send(nbd.ExportNameReply(10 << 20, nbd.TF_HAS_FLAGS | nbd.TF_READ_ONLY))
        assert out == struct.pack(">QH", 10 << 20, 3) + tail
        assert c.state is State.TRANSMISSION and c.export == nbd.Export("disk0", 10 << 20, 3)


def test_go_with_block_size_reply_bytes() -> None:
    c = Connection()
    c.send(nbd.Greeting())
    c.receive_data(struct.pack(">I", 3) + opt(nbd.OPT_GO, go_data("v1", nbd.INFO_BLOCK_SIZE)))
    assert events(c)[-1] == nbd.InfoOption("v1", (nbd.INFO_BLOCK_SIZE,), True)
    magic = struct.pack(">Q", 0x3E889045565A9)
    assert c.send(nbd.OptionInfoExport(nbd.OPT_GO, 4096, 0x0D)) == (
        magic + struct.pack(">III", 7, 3, 12) + struct.pack(">HQH", 0, 4096, 0x0D)
    )
    assert c.send(nbd.OptionInfoBlockSize(nbd.OPT_GO, 1, 4096, 32 << 20)) == (
        magic + struct.pack(">III", 7, 3, 14) + struct.pack(">HIII", 3, 1, 4096, 32 << 20)
    )
    assert c.send(nbd.OptionAck(nbd.OPT_GO)) == magic + struct.pack(">III", 7, 1, 0)
    assert c.state is State.TRANSMISSION


def test_info_returns_to_negotiation_and_go_needs_info_export() -> None:
    c = Connection()
    c.send(nbd.Greeting())
    c.receive_data(struct.pack(">I", 3) + opt(nbd.OPT_INFO, go_data("v")))
    events(c)
    c.send(nbd.OptionInfoExport(nbd.OPT_INFO, 1, 1))
    c.send(nbd.OptionAck(nbd.OPT_INFO))
    assert c.state is State.NEGOTIATING and c.export is None
    c.receive_data(opt(nbd.OPT_GO, go_data("v")))
    events(c)
    with pytest.raises(nbd.LocalProtocolError):
        c.send(nbd.OptionAck(nbd.OPT_GO))


def test_list_replies_and_abort() -> None:
    c = Connection()
    c.send(nbd.Greeting())
    c.receive_data(struct.pack(">I", 3) + opt(nbd.OPT_LIST))
    assert events(c)[-1] == nbd.ListOption()
    magic = struct.pack(">Q", 0x3E889045565A9)
    assert c.send(nbd.OptionServer(nbd.OPT_LIST, "ab")) == magic + struct.pack(">IIII", 3, 2, 6, 2) + b"ab"
    c.send(nbd.OptionAck(nbd.OPT_LIST))
    c.receive_data(opt(nbd.OPT_LIST, b"x"))
    ev = events(c)[-1]
    assert isinstance(ev, nbd.InvalidOption) and ev.code == nbd.REP_ERR_INVALID
    assert c.send(nbd.OptionError(nbd.OPT_LIST, ev.code, "no")) == magic + struct.pack(">III", 3, 0x80000003, 2) + b"no"
    c.receive_data(opt(nbd.OPT_ABORT))
    assert events(c) == [nbd.AbortOption()]
    c.send(nbd.OptionAck(nbd.OPT_ABORT))
    assert c.state is State.CLOSED


def test_unknown_option_and_starttls_are_unknown() -> None:
    c = Connection()
    c.send(nbd.Greeting())
    c.receive_data(struct.pack(">I", 3) + opt(nbd.OPT_STARTTLS) + opt(77, b"zz"))
    assert events(c)[-1] == nbd.UnknownOption(nbd.OPT_STARTTLS, b"")
    c.send(nbd.OptionError(nbd.OPT_STARTTLS, nbd.REP_ERR_UNSUP))
    assert events(c) == [nbd.UnknownOption(77, b"zz")]
    out = c.send(nbd.OptionError(77, nbd.REP_ERR_UNSUP))
    assert out == struct.pack(">QIII", 0x3E889045565A9, 77, 0x80000001, 0)


def test_option_reply_to_the_wrong_option_is_refused() -> None:
    c = Connection()
    c.send(nbd.Greeting())
    c.receive_data(struct.pack(">I", 3) + opt(nbd.OPT_LIST))
    events(c)
    with pytest.raises(nbd.LocalProtocolError):
        c.send(nbd.OptionAck(nbd.OPT_GO))


def test_set_meta_context_needs_structured_replies() -> None:
    c = Connection()
    c.send(nbd.Greeting())
    c.receive_data(struct.pack(">I", 3) + opt(nbd.OPT_SET_META_CONTEXT, meta_data("v", nbd.BASE_ALLOCATION)))
    ev = events(c)[-1]
    assert isinstance(ev, nbd.InvalidOption) and ev.code == nbd.REP_ERR_INVALID


def test_list_meta_context_bytes() -> None:
    c = Connection()
    c.send(nbd.Greeting())
    c.receive_data(struct.pack(">I", 3) + opt(nbd.OPT_LIST_META_CONTEXT, meta_data("v", "base:")))
    assert events(c)[-1] == nbd.MetaContextOption("v", ("base:",), False)
    out = c.send(nbd.OptionMetaContext(nbd.OPT_LIST_META_CONTEXT, 0, nbd.BASE_ALLOCATION))
    assert out == struct.pack(">QIII", 0x3E889045565A9, 9, 4, 4 + 15) + b"\0\0\0\0base:allocation"


def test_truncated_go_data_is_invalid() -> None:
    c = Connection()
    c.send(nbd.Greeting())
    c.receive_data(struct.pack(">I", 3) + opt(nbd.OPT_GO, struct.pack(">I", 10) + b"abc"))
    ev = events(c)[-1]
    assert isinstance(ev, nbd.InvalidOption) and ev.option == nbd.OPT_GO


def test_bad_option_magic_and_huge_option_close() -> None:
    for bad in (b"IHAVEOPX" + struct.pack(">II", 1, 0), b"IHAVEOPT" + struct.pack(">II", 1, 1 << 30)):
        c = Connection()
        c.send(nbd.Greeting())
        c.receive_data(struct.pack(">I", 3) + bad)
        assert isinstance(events(c)[-1], nbd.ProtocolError) and c.state is State.CLOSED


def test_read_write_and_simple_replies() -> None:
    c = negotiated()
    c.receive_data(req(nbd.CMD_WRITE, 7, 512, 4, nbd.CMD_FLAG_FUA, b"abcd") + req(nbd.CMD_READ, 8, 512, 4))
    w, r = events(c)
    assert w == nbd.Write(7, 512, 4, nbd.CMD_FLAG_FUA, b"abcd") and w.fua
    assert r == nbd.Read(8, 512, 4, 0)
    assert c.send(nbd.SimpleReply(8, 0, b"abcd")) == struct.pack(">IIQ", 0x67446698, 0, 8) + b"abcd"
    assert c.send(nbd.SimpleReply(7)) == struct.pack(">IIQ", 0x67446698, 0, 7)
    with pytest.raises(nbd.LocalProtocolError):
        c.send(nbd.SimpleReply(7))  # already answered


def test_write_payload_split_across_reads() -> None:
    c = negotiated()
    raw = req(nbd.CMD_WRITE, 1, 0, 6, 0, b"xyzxyz")
    c.receive_data(raw[:30])
    assert c.next_event() is NEED_DATA
    c.receive_data(raw[30:])
    assert c.next_event() == nbd.Write(1, 0, 6, 0, b"xyzxyz")


def test_flush_trim_zeroes_cache_disc() -> None:
    c = negotiated()
    flags = nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FAST_ZERO
    c.receive_data(req(nbd.CMD_FLUSH, 1) + req(nbd.CMD_TRIM, 2, 0, 4096) + req(nbd.CMD_WRITE_ZEROES, 3, 0, 8192, flags)
                   + req(nbd.CMD_CACHE, 4, 0, 10) + req(nbd.CMD_DISC, 5))
    f, t, z, ca, d = events(c)
    assert isinstance(f, nbd.Flush) and isinstance(t, nbd.Trim) and isinstance(ca, nbd.Cache)
    assert isinstance(z, nbd.WriteZeroes) and z.no_hole and z.fast_zero and not z.fua
    assert d == nbd.Disconnect() and c.state is State.CLOSED


@pytest.mark.parametrize(
    "raw, error",
    [
        (req(nbd.CMD_READ, 1, (1 << 20) - 1, 2), nbd.EINVAL),  # past the end
        (req(nbd.CMD_READ, 1, 0, 64 << 20), nbd.EINVAL),  # larger than max_payload
        (req(99, 1, 0, 1), nbd.EINVAL),  # unknown command
        (req(nbd.CMD_READ, 1, 0, 1, 1 << 9), nbd.EINVAL),  # unknown flag
        (req(nbd.CMD_FLUSH, 1, 5, 0), nbd.EINVAL),
        (req(nbd.CMD_BLOCK_STATUS, 1, 0, 10), nbd.EINVAL),  # no meta context
        (req(nbd.CMD_READ, 1, 0, 0), nbd.EINVAL),
    ],
)
def test_refused_requests_keep_the_connection(raw: bytes, error: int) -> None:
    c = negotiated()
    c.receive_data(raw + req(nbd.CMD_READ, 2, 0, 1))
    bad, good = events(c)
    assert isinstance(bad, nbd.InvalidCommand) and bad.cookie == 1 and bad.error == error
    assert good == nbd.Read(2, 0, 1, 0)
    assert c.send(nbd.SimpleReply(1, error)) == struct.pack(">IIQ", 0x67446698, error, 1)
    assert c.state is State.TRANSMISSION


def test_write_to_read_only_export_is_eperm() -> None:
    c = negotiated(flags=nbd.TF_HAS_FLAGS | nbd.TF_READ_ONLY)
    c.receive_data(req(nbd.CMD_WRITE, 1, 0, 2, 0, b"hi") + req(nbd.CMD_TRIM, 2, 0, 2))
    a, b = events(c)
    assert a == nbd.InvalidCommand(1, nbd.EPERM, "export is read-only") and b.error == nbd.EPERM  # type: ignore[union-attr]


def test_bad_request_magic_and_oversized_write_close() -> None:
    for raw in (b"\x00" * 28, req(nbd.CMD_WRITE, 1, 0, 64 << 20)):
        c = negotiated()
        c.receive_data(raw)
        assert isinstance(c.next_event(), nbd.ProtocolError) and c.state is State.CLOSED
        with pytest.raises(nbd.LocalProtocolError):
            c.send(nbd.SimpleReply(1))


def test_structured_read_reply_bytes() -> None:
    c = negotiated(structured=True)
    c.receive_data(req(nbd.CMD_READ, 9, 0, 8192))
    events(c)
    data = c.send(nbd.ReplyData(9, 0, b"ab", done=False))
    assert data == struct.pack(">IHHQI", 0x668E33EF, 0, 1, 9, 10) + struct.pack(">Q", 0) + b"ab"
    hole = c.send(nbd.ReplyHole(9, 2, 8190, done=True))
    assert hole == struct.pack(">IHHQI", 0x668E33EF, 1, 2, 9, 12) + struct.pack(">QI", 2, 8190)
    assert c.in_flight == 0


def test_structured_error_and_none_bytes() -> None:
    c = negotiated(structured=True)
    c.receive_data(req(nbd.CMD_READ, 1, 0, 1) + req(nbd.CMD_FLUSH, 2))
    events(c)
    out = c.send(nbd.ReplyError(1, nbd.EIO, "bad", offset=0))
    assert out == struct.pack(">IHHQI", 0x668E33EF, 1, 0x8002, 1, 17) + struct.pack(">IH", 5, 3) + b"bad" + bytes(8)
    assert c.send(nbd.ReplyNone(2)) == struct.pack(">IHHQI", 0x668E33EF, 1, 0, 2, 0)


def test_block_status_reply_bytes() -> None:
    c = negotiated(structured=True, meta=True)
    assert c.meta_contexts == {1: nbd.BASE_ALLOCATION}
    c.receive_data(req(nbd.CMD_BLOCK_STATUS, 4, 0, 1 << 20, nbd.CMD_FLAG_REQ_ONE))
    (bs,) = events(c)
    assert isinstance(bs, nbd.BlockStatus) and bs.req_one
    out = c.send(nbd.ReplyBlockStatus(4, 1, ((4096, 0), (8192, 3))))
    assert out == struct.pack(">IHHQI", 0x668E33EF, 1, 5, 4, 20) + struct.pack(">IIIII", 1, 4096, 0, 8192, 3)


def test_structured_replies_need_negotiation() -> None:
    c = negotiated()
    c.receive_data(req(nbd.CMD_READ, 1, 0, 1))
    events(c)
    with pytest.raises(nbd.LocalProtocolError):
        c.send(nbd.ReplyNone(1))


def test_duplicate_cookie_in_flight_is_refused() -> None:
    c = negotiated()
    c.receive_data(req(nbd.CMD_READ, 1, 0, 1) + req(nbd.CMD_READ, 1, 0, 1))
    a, b = events(c)
    assert isinstance(a, nbd.Read) and isinstance(b, nbd.ProtocolError)


def test_eof_between_and_inside_messages() -> None:
    c = negotiated()
    c.receive_data(b"")
    assert isinstance(c.next_event(), nbd.ConnectionClosed)
    c = negotiated()
    c.receive_data(req(nbd.CMD_READ, 1, 0, 1)[:10])
    c.receive_data(b"")
    assert isinstance(c.next_event(), nbd.ProtocolError)


def test_send_parts_does_not_copy_data() -> None:
    c = negotiated()
    c.receive_data(req(nbd.CMD_READ, 1, 0, 3))
    events(c)
    payload = memoryview(bytearray(b"xyz"))
    parts = c.send_parts(nbd.SimpleReply(1, 0, payload))
    assert parts[1] is payload


# ---------------------------------------------------------------- property tests


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=1, max_value=40), max_size=10))
def test_random_bytes_after_handshake_never_crash(junk: bytes, cuts: list[int]) -> None:
    """Whatever a client sends, the codec yields events or a ProtocolError, never an exception."""
    c = Connection()
    c.send(nbd.Greeting())
    pos = 0
    for n in cuts + [len(junk)]:
        if pos >= len(junk):
            break
        c.receive_data(junk[pos : pos + n])
        pos += n
        for ev in events(c):
            if c.state is State.OPTION_PENDING:
                code = nbd._option_code(ev)
                c.send(nbd.OptionError(code, nbd.REP_ERR_UNSUP))
    assert c.state in (State.CLIENT_FLAGS, State.NEGOTIATING, State.CLOSED, State.OPTION_PENDING)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=1, max_value=64))
def test_random_requests_never_crash_and_replies_encode(junk: bytes, step: int) -> None:
    c = negotiated(structured=True, meta=True)
    for i in range(0, len(junk), step):
        c.receive_data(junk[i : i + step])
        for ev in events(c):
            if isinstance(ev, (nbd.Request, nbd.InvalidCommand)):
                c.send(nbd.SimpleReply(ev.cookie, nbd.EIO))
            else:
                assert isinstance(ev, (nbd.ProtocolError, nbd.Disconnect))
    assert c.in_flight == 0


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([nbd.CMD_READ, nbd.CMD_WRITE, nbd.CMD_TRIM, nbd.CMD_CACHE, nbd.CMD_WRITE_ZEROES]),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=0, max_value=5000),
)
def test_valid_requests_round_trip(kind: int, cookie: int, offset: int, length: int) -> None:
    size = 1 << 20
    c = negotiated(size=size)
    data = bytes(length) if kind == nbd.CMD_WRITE else b""
    c.receive_data(req(kind, cookie, offset, length, 0, data))
    (ev,) = events(c)
    if offset + length <= size and length > 0:
        assert isinstance(ev, nbd.Request) and (ev.cookie, ev.offset, ev.length) == (cookie, offset, length)
    else:
        assert isinstance(ev, nbd.InvalidCommand) and ev.error == nbd.EINVAL
