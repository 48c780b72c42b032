"""daemons.blockd.http.RequestBody: a request body read in pieces, cut at a limit.

Driven through aiohttp's own StreamReader (fed by hand, as aiohttp's protocol
feeds it from the socket); the request around it only has to offer `.content`."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiohttp.streams import StreamReader

from daemons.blockd.http import RequestBody
from net.http_errors import PayloadTooLarge


class _Protocol:
    """What StreamReader asks of its protocol: flow control, a no-op here."""

    _reading_paused = False

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def _request(*chunks: bytes) -> SimpleNamespace:
    reader = StreamReader(_Protocol(), 1 << 16, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    for c in chunks:
        reader.feed_data(c)
    reader.feed_eof()
    return SimpleNamespace(content=reader)


@pytest.mark.parametrize("how", ["read", "readany"])
async def test_a_body_within_the_limit_reads_whole(how: str) -> None:
    src = RequestBody(_request(b"12345", b"67890"), limit=10)  # type: ignore[arg-type]
    got = b""
    while True:
        piece = await (src.readany() if how == "readany" else src.read(4))
        if not piece:
            break
        got += piece
    assert got == b"1234567890"


@pytest.mark.parametrize("how", ["read", "readany"])
async def test_a_body_past_the_limit_is_cut_where_it_crosses(how: str) -> None:
    src = RequestBody(_request(b"12345", b"67890", b"x"), limit=10)  # type: ignore[arg-type]
    got = b""
    with pytest.raises(PayloadTooLarge):
        while True:
            piece = await (src.readany() if how == "readany" else src.read(4))
            if not piece:
                break
            got += piece
    assert len(got) <= 10
