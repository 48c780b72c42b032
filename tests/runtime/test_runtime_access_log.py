"""The access line per request, masked credentials, and aiohttp's refusals as one WARNING."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from aiohttp import web

from daemons.runtime.access_log import (
    BYTES_IN,
    TRANSACTION_ID,
    note_reason,
    quiet_protocol_errors,
    runner_options,
)
from free_ports import free_port


async def handler(request: web.Request) -> web.Response:
    request[TRANSACTION_ID] = "tx123"
    if request.path == "/missing":
        note_reason(request, "container 'c' does not exist\nsecond line never shown")
        return web.Response(status=404, text="no")
    if request.path == "/boom":
        return web.Response(status=503, text="busy")
    body = await request.read()
    request[BYTES_IN] = len(body)
    return web.Response(status=201, body=b"x" * 10)


async def serve(enabled: bool) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, **runner_options("nefeli-test", enabled))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def raw(port: int, data: bytes) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(data)
    await w.drain()
    out = await asyncio.wait_for(r.read(), 5)
    w.close()
    return out


def lines(caplog: pytest.LogCaptureFixture, name: str) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == name]


async def test_one_line_per_request_with_status_bytes_tx_and_reason(caplog: pytest.LogCaptureFixture) -> None:
    runner, port = await serve(True)
    try:
        with caplog.at_level(logging.INFO):
            await raw(port, b"PUT /v1/a/c/o?temp_url_sig=s3cret&x=1 HTTP/1.1\r\nHost: h\r\n"
                            b"Content-Length: 5\r\nConnection: close\r\n\r\nhello")
            await raw(port, b"GET /missing HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            await raw(port, b"GET /boom HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    finally:
        await runner.cleanup()
    got = lines(caplog, "nefeli-test.access")
    assert len(got) == 3
    level, put = got[0]
    assert level == logging.INFO
    m = re.search(r'"PUT /v1/a/c/o\?temp_url_sig=%2A%2A%2A&x=1" 201 in=5 out=(\d+) \d+\.\d\dms ', put)
    assert m is not None, put
    assert 10 + len("HTTP/1.1 201 Created\r\n") < int(m.group(1)) < 400  # body plus headers, as sent
    assert "s3cret" not in put and put.endswith("tx=tx123")
    assert put.startswith("127.0.0.1 ")
    assert got[1] == (logging.INFO, got[1][1])
    assert got[1][1].endswith("tx=tx123 reason=\"container 'c' does not exist\"")
    assert got[2][0] == logging.WARNING and " 503 " in got[2][1] and "reason" not in got[2][1]


async def test_no_access_log_means_no_lines(caplog: pytest.LogCaptureFixture) -> None:
    runner, port = await serve(False)
    try:
        with caplog.at_level(logging.DEBUG):
            await raw(port, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    finally:
        await runner.cleanup()
    assert lines(caplog, "nefeli-test.access") == []


async def test_a_malformed_request_is_one_warning_line_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    quiet_protocol_errors()
    quiet_protocol_errors()  # idempotent
    runner, port = await serve(True)
    try:
        with caplog.at_level(logging.DEBUG, "aiohttp.server"):
            answer = await raw(port, b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n")
    finally:
        await runner.cleanup()
    assert answer.split(b" ", 2)[1] == b"400"
    refused = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(refused) == 1
    rec = refused[0]
    assert rec.levelno == logging.WARNING and rec.exc_info is None
    assert rec.getMessage().startswith("refused a malformed request from 127.0.0.1: 400 ")
    assert "\n" not in rec.getMessage()
