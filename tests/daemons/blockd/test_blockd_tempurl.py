"""Swift temporary URLs against a real nefeli-blockd: account and container keys, every
signature form, prefixes, methods, Content-Disposition, and every bad URL a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from blockd_helpers import Client, Daemon, start_daemon

ACCOUNT_KEY = "account-key-1"
ACCOUNT_KEY2 = "account-key-2"
CONTAINER_KEY = "container-key-1"


@pytest.fixture(scope="module")
def blockd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = start_daemon(tmp_path_factory.mktemp("tempurl"))
    c = d.client()
    assert c.request("POST", "/v1/demo", headers={
        "X-Account-Meta-Temp-URL-Key": ACCOUNT_KEY, "X-Account-Meta-Temp-URL-Key-2": ACCOUNT_KEY2,
    }).status == 204
    assert c.request("PUT", "/v1/demo/pub").status in (201, 202)
    assert c.request("PUT", "/v1/demo/other").status in (201, 202)
    assert c.request("PUT", "/v1/demo/keyed", headers={"X-Container-Meta-Temp-URL-Key": CONTAINER_KEY}).status in (201, 202)
    for cont in ("pub", "keyed", "other"):
        assert c.request("PUT", f"/v1/demo/{cont}/obj", b"obj contents", {
            "X-Object-Meta-Secret": "s", "X-Object-Meta-Public-Colour": "blue",
        }).status == 201
    yield d
    d.stop_cleanly()


def sig(key: str, method: str, expires: int, path: str, digest: str = "sha256") -> str:
    return hmac.new(key.encode(), f"{method}\n{expires}\n{path}".encode(), getattr(hashlib, digest)).hexdigest()


def url(path: str, key: str = ACCOUNT_KEY, method: str = "GET", *, expires: int | None = None, **extra: str) -> str:
    exp = expires if expires is not None else int(time.time()) + 3600
    q = {"temp_url_sig": sig(key, method, exp, path), "temp_url_expires": str(exp), **extra}
    return quote(path) + "?" + urlencode(q)


def anon(d: Daemon) -> Client:
    return d.client(token="")


def test_info_advertises_tempurl(blockd: Daemon) -> None:
    info = anon(blockd).request("GET", "/info", auth=False).json()
    t = info["tempurl"]
    assert t["methods"] == ["GET", "HEAD", "PUT", "POST", "DELETE"]
    assert set(t["allowed_digests"]) == {"sha1", "sha256", "sha512"}
    assert "x-object-meta-*" in t["outgoing_remove_headers"]


def test_get_and_head_with_the_account_key(blockd: Daemon) -> None:
    a = anon(blockd)
    r = a.request("GET", url("/v1/demo/pub/obj"), auth=False)
    assert r.status == 200 and r.body == b"obj contents"
    assert r.h("Content-Disposition") == "attachment; filename=\"obj\"; filename*=UTF-8''obj"
    assert r.h("Expires") and r.h("Expires").endswith("GMT")
    assert r.h("X-Object-Meta-Secret") is None  # private metadata is not for URL holders
    assert r.h("X-Object-Meta-Public-Colour") == "blue"
    assert a.request("HEAD", url("/v1/demo/pub/obj"), auth=False).status == 200  # a GET URL may be HEADed
    assert a.request("GET", url("/v1/demo/pub/obj", ACCOUNT_KEY2), auth=False).status == 200


def test_iso8601_expiry_and_other_digests(blockd: Daemon) -> None:
    a = anon(blockd)
    exp = int(time.time()) + 600
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
    path = "/v1/demo/pub/obj"
    for digest in ("sha1", "sha256", "sha512"):
        mac = hmac.new(ACCOUNT_KEY.encode(), f"GET\n{exp}\n{path}".encode(), getattr(hashlib, digest)).digest()
        for s in (mac.hex(), f"{digest}:" + base64.b64encode(mac).decode(), f"{digest}:" + base64.urlsafe_b64encode(mac).decode().rstrip("=")):
            for e in (str(exp), iso):
                r = a.request("GET", path + "?" + urlencode({"temp_url_sig": s, "temp_url_expires": e}), auth=False)
                assert r.status == 200, (digest, s, e, r)


def test_bad_urls_are_401_with_swifts_text(blockd: Daemon) -> None:
    a = anon(blockd)
    path = "/v1/demo/pub/obj"
    exp = int(time.time()) + 600
    good = sig(ACCOUNT_KEY, "GET", exp, path)
    cases = {
        "changed sig": {"temp_url_sig": ("b" if good[0] == "a" else "a") + good[1:], "temp_url_expires": str(exp)},
        "changed expiry": {"temp_url_sig": good, "temp_url_expires": str(exp + 1)},
        "expired": {"temp_url_sig": sig(ACCOUNT_KEY, "GET", 1000, path), "temp_url_expires": "1000"},
        "no expiry": {"temp_url_sig": good},
        "no sig": {"temp_url_expires": str(exp)},
        "garbage sig": {"temp_url_sig": "zz:%%%", "temp_url_expires": str(exp)},
        "garbage expiry": {"temp_url_sig": good, "temp_url_expires": "soon"},
        "md5": {"temp_url_sig": "md5:" + base64.b64encode(b"0" * 16).decode(), "temp_url_expires": str(exp)},
        "past year 9999": {"temp_url_sig": sig(ACCOUNT_KEY, "GET", 10**17, path), "temp_url_expires": str(10**17)},
        "ip range garbage": {"temp_url_sig": good, "temp_url_expires": str(exp), "temp_url_ip_range": "nope"},
        "other ip range": {"temp_url_sig": good, "temp_url_expires": str(exp), "temp_url_ip_range": "10.0.0.0/8"},
        "other object": None,
    }
    for what, q in cases.items():
        target = url("/v1/demo/pub/obj").replace("/pub/obj", "/other/obj") if q is None else path + "?" + urlencode(q)
        r = a.request("GET", target, auth=False)
        assert r.status == 401, (what, r)
        assert r.body == b"401 Unauthorized: Temp URL invalid\n", what
    # a GET URL does not allow PUT; the object is unchanged
    assert a.request("PUT", url(path), b"evil", auth=False).status == 401
    # not an object: account and container paths, the Pithos path
    assert a.request("GET", url("/v1/demo/pub"), auth=False).status == 401
    assert a.request("GET", url("/object-store/v1/demo/pub/obj"), auth=False).status == 401
    assert blockd.client().request("GET", path).body == b"obj contents"


def test_container_key_reaches_only_its_container(blockd: Daemon) -> None:
    a = anon(blockd)
    assert a.request("GET", url("/v1/demo/keyed/obj", CONTAINER_KEY), auth=False).status == 200
    assert a.request("GET", url("/v1/demo/pub/obj", CONTAINER_KEY), auth=False).status == 401
    c = blockd.client()
    assert c.request("PUT", "/v1/demo/keyed/dlo-in", b"", {"X-Object-Manifest": "keyed/ob"}).status == 201
    assert c.request("PUT", "/v1/demo/keyed/dlo-out", b"", {"X-Object-Manifest": "other/ob"}).status == 201
    assert a.request("GET", url("/v1/demo/keyed/dlo-in", CONTAINER_KEY), auth=False).body == b"obj contents"
    for m in ("GET", "HEAD"):
        assert a.request(m, url("/v1/demo/keyed/dlo-out", CONTAINER_KEY), auth=False).status == 401
    # the account key reaches across containers
    assert a.request("GET", url("/v1/demo/keyed/dlo-out"), auth=False).body == b"obj contents"


def test_put_post_delete(blockd: Daemon) -> None:
    a = anon(blockd)
    c = blockd.client()
    p = "/v1/demo/pub/uploaded"
    # the query is narrowed to the tempurl parameters: multipart-manifest is not honoured
    r = a.request("PUT", url(p, method="PUT") + "&multipart-manifest=put", b"[not a manifest", auth=False)
    assert r.status == 201, r
    assert c.request("GET", p).body == b"[not a manifest"
    assert a.request("HEAD", url(p, method="PUT"), auth=False).status == 200
    for h in ("X-Object-Manifest", "X-Copy-From", "X-Symlink-Target", "X-Move-From", "X-Source-Object"):
        r = a.request("PUT", url(p, method="PUT"), b"", {h: "/pub/obj"}, auth=False)
        assert r.status == 400 and h in r.body.decode(), (h, r)
    # a URL holder cannot make the object outlive the URL (public or shared)
    for h, v in (("X-Object-Public", "true"), ("X-Object-Sharing", "read=*")):
        assert a.request("POST", url(p, method="POST"), None, {h: v}, auth=False).status == 400
    assert c.request("HEAD", p).h("X-Object-Public") is None
    assert c.request("GET", "/v1/demo/pub/obj").body == b"obj contents"  # X-Move-From moved nothing
    assert a.request("POST", url(p, method="POST"), None, {"X-Object-Meta-Note": "hi"}, auth=False).status in (202, 204)
    assert c.request("HEAD", p).h("X-Object-Meta-Note") == "hi"
    assert a.request("DELETE", url(p, method="GET"), auth=False).status == 401
    assert a.request("DELETE", url(p, method="DELETE"), auth=False).status == 204
    assert c.request("HEAD", p).status == 404


def test_prefix_signatures(blockd: Daemon) -> None:
    a = anon(blockd)
    exp = int(time.time()) + 600

    def q(prefix: str, method: str = "GET") -> str:
        s = sig(ACCOUNT_KEY, method, exp, f"prefix:/v1/demo/pub/{prefix}")
        return urlencode({"temp_url_sig": s, "temp_url_expires": str(exp), "temp_url_prefix": prefix})

    assert a.request("GET", "/v1/demo/pub/obj?" + q("ob"), auth=False).status == 200
    assert a.request("GET", "/v1/demo/pub/obj?" + q(""), auth=False).status == 200
    assert a.request("GET", "/v1/demo/pub/obj?" + q("x"), auth=False).status == 401
    # an object signature is not a prefix signature
    s = sig(ACCOUNT_KEY, "GET", exp, "/v1/demo/pub/obj")
    qq = urlencode({"temp_url_sig": s, "temp_url_expires": str(exp), "temp_url_prefix": "obj"})
    assert a.request("GET", "/v1/demo/pub/obj?" + qq, auth=False).status == 401


def test_content_disposition_choices(blockd: Daemon) -> None:
    a = anon(blockd)
    c = blockd.client()
    assert c.request("PUT", "/v1/demo/pub/d/stored", b"x", {"Content-Disposition": "attachment; filename=kept.bin"}).status == 201
    assert a.request("GET", url("/v1/demo/pub/d/stored"), auth=False).h("Content-Disposition") == "attachment; filename=kept.bin"
    r = a.request("GET", url("/v1/demo/pub/d/stored", filename="My File.pdf"), auth=False)
    assert r.h("Content-Disposition") == "attachment; filename=\"My File.pdf\"; filename*=UTF-8''My%20File.pdf"
    assert a.request("GET", url("/v1/demo/pub/d/stored", inline=""), auth=False).h("Content-Disposition") == "inline"
    r = a.request("GET", url("/v1/demo/pub/d/stored", inline="", filename="a.txt"), auth=False)
    assert r.h("Content-Disposition") == "inline; filename=\"a.txt\"; filename*=UTF-8''a.txt"


def test_no_key_no_access_and_owner_requests_unchanged(blockd: Daemon, tmp_path: Path) -> None:
    d = blockd
    tok = d.new_account("nokeys")
    c = d.client(tok, account="nokeys")
    assert c.request("PUT", "/v1/nokeys/c").status in (201, 202)
    assert c.request("PUT", "/v1/nokeys/c/o", b"x").status == 201
    assert anon(d).request("GET", url("/v1/nokeys/c/o"), auth=False).status == 401
    assert anon(d).request("GET", url("/v1/nobody/c/o"), auth=False).status == 401
    # the keys are the owner's metadata, shown to the owner
    head = d.client().request("HEAD", "/v1/demo")
    assert head.h("X-Account-Meta-Temp-Url-Key") == ACCOUNT_KEY
    assert json.loads(d.client().request("GET", "/v1/demo?format=json").body)


def test_swift_tempurl_command(blockd: Daemon) -> None:
    """The URL python-swiftclient's `swift tempurl` prints works as it is."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "swiftclient.shell", "tempurl", "--digest", "sha512", "GET", "600", "/v1/demo/pub/obj", ACCOUNT_KEY],
        capture_output=True, text=True, timeout=60,
    )
    if out.returncode != 0 and "No module named" in out.stderr:
        pytest.skip("python-swiftclient not installed (pip install .[test])")
    assert out.returncode == 0, out.stderr
    r = anon(blockd).request("GET", out.stdout.strip(), auth=False)
    assert r.status == 200 and r.body == b"obj contents"


def test_container_key_and_slo_segments_elsewhere(blockd: Daemon) -> None:
    c = blockd.client()
    a = anon(blockd)
    etag = hashlib.md5(b"obj contents").hexdigest()
    for name, cont in (("slo-in", "keyed"), ("slo-out", "other")):
        manifest = json.dumps([{"path": f"/{cont}/obj", "etag": etag, "size_bytes": 12}]).encode()
        r = c.request("PUT", f"/v1/demo/keyed/{name}?multipart-manifest=put", manifest)
        assert r.status == 201, r
    assert a.request("GET", url("/v1/demo/keyed/slo-in", CONTAINER_KEY), auth=False).body == b"obj contents"
    assert a.request("GET", url("/v1/demo/keyed/slo-out", CONTAINER_KEY), auth=False).status == 401
    assert a.request("GET", url("/v1/demo/keyed/slo-out"), auth=False).body == b"obj contents"
