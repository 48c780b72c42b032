"""vnc-ws / vnc-wss: WebSocket (binary subprotocol) with an Origin check, noVNC in Chromium."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from free_ports import free_port
from net import rfb
from peers import require_program
from vncauthproxy_peers import capture, make_cert, start_proxy, start_xvnc

NOVNC = Path("/usr/share/novnc")


@pytest.fixture(scope="module")
def xvnc(tmp_path_factory):
    b = start_xvnc(tmp_path_factory.mktemp("xvnc"), "None")
    yield b
    b.close()


async def ws_rfb_session(url: str, password: str, ssl_ctx: ssl.SSLContext | None = None,
                         origin: str | None = None) -> tuple[int, int, bytes]:
    """Handshake over the WebSocket with our own codec, then one framebuffer update."""
    headers = {"Origin": origin} if origin else {}
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, protocols=("binary",), ssl=ssl_ctx or True, headers=headers) as ws:
            assert ws.protocol == "binary"
            c = rfb.ClientConnection()
            buf = b""
            while True:
                ev = c.next_event()
                if ev is rfb.NEED_DATA:
                    msg = await ws.receive()
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        raise PermissionError(c.failure or f"websocket closed: {msg.type}")
                    c.receive_data(msg.data)
                elif ev is rfb.OUR_TURN:
                    if c.state is rfb.ClientState.SEND_VERSION:
                        await ws.send_bytes(c.send(c.reply_version()))
                    elif c.state is rfb.ClientState.SEND_SECURITY_CHOICE:
                        await ws.send_bytes(c.send(rfb.SecurityChoice(2)))
                    elif c.state is rfb.ClientState.SEND_AUTH_RESPONSE:
                        await ws.send_bytes(c.send(rfb.VncAuthResponse(rfb.vnc_auth_response(password.encode(), c.challenge))))
                elif ev is rfb.DONE:
                    buf = c.trailing_data
                    break
                elif ev is rfb.CLOSED:
                    raise PermissionError(c.failure)
            await ws.send_bytes(b"\x01")
            while len(buf) < 24:
                buf += (await ws.receive()).data
            width, height = int.from_bytes(buf[0:2], "big"), int.from_bytes(buf[2:4], "big")
            await ws.send_bytes(b"\x03\x00\x00\x00\x00\x00" + buf[0:4])
            update = b""
            while len(update) < 4:
                update += (await ws.receive()).data
            return width, height, update


def test_vnc_ws_relay_and_one_client(xvnc, tmp_path: Path) -> None:
    proxy = start_proxy(tmp_path)
    try:
        port = proxy.request(xvnc.port, password="pw", console_type="vnc-ws")["source_port"]
        width, height, update = asyncio.run(ws_rfb_session(f"ws://127.0.0.1:{port}/websockify", "pw"))
        assert (width, height) == (320, 240)
        proxy.wait_log("type=vnc-ws")
        with pytest.raises(aiohttp.ClientError):
            asyncio.run(ws_rfb_session(f"ws://127.0.0.1:{port}/websockify", "pw"))
        # Wrong password over WebSocket: refused with the 3.8 reason; the port is gone.
        port = proxy.request(xvnc.port, password="pw", console_type="vnc-ws")["source_port"]
        with pytest.raises(PermissionError, match="Authentication failed"):
            asyncio.run(ws_rfb_session(f"ws://127.0.0.1:{port}/", "bad"))
        proxy.wait_log("end=wrong password")
    finally:
        proxy.stop()


def test_origin_check_and_wss(xvnc, tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    proxy = start_proxy(tmp_path, "--wss-tls-cert", str(cert), "--wss-tls-key", str(key),
                        "--allowed-origins", "https://cloud.example.org")
    try:
        port = proxy.request(xvnc.port, password="pw", console_type="vnc-ws")["source_port"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            asyncio.run(ws_rfb_session(f"ws://127.0.0.1:{port}/", "pw", origin="https://evil.example.com"))
        assert exc.value.status == 403
        # The refused attempt did not claim the port: the allowed origin still gets it.
        assert asyncio.run(ws_rfb_session(f"ws://127.0.0.1:{port}/", "pw", origin="https://cloud.example.org"))[0] == 320
        ctx = ssl.create_default_context(cafile=str(cert))
        port = proxy.request(xvnc.port, password="pw", console_type="vnc-wss")["source_port"]
        assert asyncio.run(ws_rfb_session(f"wss://localhost:{port}/", "pw", ssl_ctx=ctx))[:2] == (320, 240)
        proxy.wait_log("type=vnc-wss")
    finally:
        proxy.stop()


# ----------------------------------------------------------------------- noVNC in Chromium


class DevTools:
    """Just enough of the Chrome DevTools protocol: evaluate, screenshot."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params):
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            msg = json.loads((await self.ws.receive()).data)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    async def evaluate(self, expression: str):
        res = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return res["result"].get("value")


async def _novnc_canvas(debug_port: int, url: str, out_dir: Path) -> tuple[bytes, str]:
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 30
        while True:
            try:
                async with http.get(f"http://127.0.0.1:{debug_port}/json/list") as r:
                    targets = [t for t in await r.json() if t.get("type") == "page"]
                if targets:
                    break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("Chromium's DevTools endpoint did not come up")
            await asyncio.sleep(0.2)
        async with http.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            dt = DevTools(ws)
            await dt.call("Page.enable")
            await dt.call("Page.navigate", url=url)
            status = ""
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                status = await dt.evaluate("document.getElementById('status') ? document.getElementById('status').textContent : ''") or ""
                size = await dt.evaluate("(() => { const c = document.querySelector('canvas'); return c ? c.width + 'x' + c.height : '' })()")
                if status.startswith("Connected") and size == "320x240":
                    break
                await asyncio.sleep(0.3)
            else:
                raise AssertionError(f"noVNC did not connect: status {status!r}")
            await asyncio.sleep(1.0)  # let the first full update be drawn
            shot = await dt.call("Page.captureScreenshot", format="png")
            (out_dir / "chromium.png").write_bytes(base64.b64decode(shot["data"]))
            data_url = await dt.evaluate("document.querySelector('canvas').toDataURL('image/png')")
            return base64.b64decode(data_url.split(",", 1)[1]), status


def test_novnc_in_chromium_shows_the_desktop(xvnc, tmp_path: Path) -> None:
    require_program("chromium", "compare")
    if not (NOVNC / "vnc_lite.html").is_file():
        require_program("/usr/share/novnc/vnc_lite.html")
    direct = tmp_path / "direct.png"
    capture(f"127.0.0.1::{xvnc.port}", direct)
    proxy = start_proxy(tmp_path, "--novnc-dir", str(NOVNC))
    debug_port = free_port()
    profile = tmp_path / "chromium-profile"
    browser = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--remote-debugging-port={debug_port}",
         "--window-size=800,600", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "chromium.log").open("wb"), cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    try:
        port = proxy.request(xvnc.port, password="novnc123", console_type="vnc-ws")["source_port"]
        url = f"http://127.0.0.1:{port}/vnc_lite.html?host=127.0.0.1&port={port}&path=websockify&password=novnc123"
        canvas_png, status = asyncio.run(_novnc_canvas(debug_port, url, tmp_path))
        (tmp_path / "canvas.png").write_bytes(canvas_png)
        # Pixels of noVNC's canvas against vncdotool's direct capture (a little fuzz for
        # lossy encodings noVNC may ask for).
        res = subprocess.run(["compare", "-metric", "AE", "-fuzz", "8%", str(tmp_path / "canvas.png"), str(direct),
                              "null:"], capture_output=True, text=True)
        differing = float(res.stderr.split()[0])
        assert differing <= 320 * 240 * 0.01, f"{differing} pixels differ ({status})"
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        proxy.stop()
        shutil.rmtree(profile, ignore_errors=True)
    assert any("type=vnc-ws" in ln and "Origin http://127.0.0.1" in ln for ln in proxy.audit_lines())
