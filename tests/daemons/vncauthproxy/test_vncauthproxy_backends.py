"""nefeli-vncauthproxy against real VNC servers, with vncdotool as the client.

A screenshot taken through the proxy must equal one taken directly from the
same server: the proxy's two handshakes and the relay are invisible to both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vncauthproxy_peers import capture, make_cert, start_proxy, start_qemu, start_xvnc


@pytest.fixture
def proxy(tmp_path: Path):
    p = start_proxy(tmp_path)
    yield p
    p.stop()


def _through(proxy, backend_port: int, tmp: Path, name: str, **kw) -> bytes:
    reply = proxy.request(backend_port, password="onetime1", **kw)
    assert reply["status"] == "OK", reply
    assert reply["proxy_address"] == "127.0.0.1"
    assert proxy.pool[0] <= reply["source_port"] <= proxy.pool[1]
    return capture(f"127.0.0.1::{reply['source_port']}", tmp / f"{name}-via.png", "onetime1")


def test_xvnc_security_none(proxy, tmp_path: Path) -> None:
    xvnc = start_xvnc(tmp_path, "None")
    try:
        direct = capture(f"127.0.0.1::{xvnc.port}", tmp_path / "direct.png")
        via = _through(proxy, xvnc.port, tmp_path, "none")
        assert via == direct
        line = proxy.wait_log("end=client closed")
        assert "security=none" in line and "to_client=" in line
        assert int(line.split("to_client=")[1].split()[0]) > 320 * 240 * 4  # the raw framebuffer went through
    finally:
        xvnc.close()


def test_xvnc_vnc_auth(proxy, tmp_path: Path) -> None:
    xvnc = start_xvnc(tmp_path, "VncAuth", password="bkpass12")
    try:
        direct = capture(f"127.0.0.1::{xvnc.port}", tmp_path / "direct.png", "bkpass12")
        via = _through(proxy, xvnc.port, tmp_path, "vnc", backend_password="bkpass12")
        assert via == direct
        assert "security=vnc" in proxy.wait_log("end=client closed")
        # Without the backend's password the request fails, with the reason.
        reply = proxy.request(xvnc.port, password="onetime1")
        assert reply["status"] == "FAILED" and "no backend password" in reply["reason"]
        reply = proxy.request(xvnc.port, password="onetime1", backend_password="wrong")
        assert reply["status"] == "FAILED" and "refused" in reply["reason"]
    finally:
        xvnc.close()


def test_xvnc_vencrypt_tls_vnc_and_x509(proxy, tmp_path: Path) -> None:
    # TLSVnc: anonymous TLS, then VNC auth inside; VncAuth is there for the direct capture.
    xvnc = start_xvnc(tmp_path, "TLSVnc,VncAuth", password="bkpass12")
    cert = make_cert(tmp_path, "xvnc")
    x509 = start_xvnc(tmp_path, "X509None,None", cert=cert)
    try:
        direct = capture(f"127.0.0.1::{xvnc.port}", tmp_path / "d1.png", "bkpass12")
        assert _through(proxy, xvnc.port, tmp_path, "tlsvnc", backend_password="bkpass12") == direct
        assert "security=vencrypt/tls_vnc" in proxy.wait_log("security=vencrypt/tls_vnc")
        direct = capture(f"127.0.0.1::{x509.port}", tmp_path / "d2.png")
        assert _through(proxy, x509.port, tmp_path, "x509") == direct
        proxy.wait_log("security=vencrypt/x509_none")
    finally:
        xvnc.close()
        x509.close()


def test_qemu_none_and_password(proxy, tmp_path: Path) -> None:
    plain = start_qemu(tmp_path)
    locked = start_qemu(tmp_path, password="qemupw")
    try:
        direct = capture(f"127.0.0.1::{plain.port}", tmp_path / "q1.png")
        assert _through(proxy, plain.port, tmp_path, "q1") == direct
        direct = capture(f"127.0.0.1::{locked.port}", tmp_path / "q2.png", "qemupw")
        assert _through(proxy, locked.port, tmp_path, "q2", backend_password="qemupw") == direct
        assert len(proxy.wait_log("security=vnc").split()) > 5
    finally:
        plain.close()
        locked.close()
