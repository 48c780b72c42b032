"""Swift bulk delete against a real nefeli-blockd: objects then containers, the three
result formats, the failures reported per path, bad lists refused, and swiftclient's
`swift delete`, which uses bulk delete because /info lists it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import quote
from xml.dom import minidom

import pytest

from blockd_helpers import Client, Daemon, start_daemon


@pytest.fixture(scope="module")
def blockd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = start_daemon(tmp_path_factory.mktemp("bulk"))
    yield d
    d.stop_cleanly()


def fill(c: Client, cont: str, *names: str) -> None:
    assert c.request("PUT", f"/v1/demo/{cont}").status in (201, 202)
    for n in names:
        assert c.request("PUT", f"/v1/demo/{cont}/{quote(n)}", b"x").status == 201


def bulk(c: Client, body: bytes, accept: str | None = None, path: str = "/v1/demo?bulk-delete", **h: str) -> tuple[int, bytes]:
    headers = {"Content-Type": "text/plain", **h}
    if accept:
        headers["Accept"] = accept
    r = c.request("POST", path, body, headers)
    return r.status, r.body


def test_info_lists_bulk_delete(blockd: Daemon) -> None:
    info = blockd.client().request("GET", "/info", auth=False).json()
    assert info["bulk_delete"] == {"max_deletes_per_request": 10000, "max_failed_deletes": 1000}


def test_objects_then_containers_json(blockd: Daemon) -> None:
    c = blockd.client()
    fill(c, "b1", "a", "sp ace", "dir/€")
    # the container is listed first: it is deleted after its objects
    status, body = bulk(c, b"/b1\n/b1/a\nb1/sp%20ace\n/b1/dir/%E2%82%AC\n/b1/missing\n", "application/json")
    assert status == 200
    assert json.loads(body) == {
        "Number Deleted": 4, "Number Not Found": 1, "Response Status": "200 OK", "Response Body": "", "Errors": [],
    }
    assert c.request("HEAD", "/v1/demo/b1").status == 404


def test_failures_are_listed_text(blockd: Daemon) -> None:
    c = blockd.client()
    fill(c, "b2", "keep")
    status, body = bulk(c, b"/b2\n")
    assert status == 200
    lines = body.decode().strip().splitlines()
    assert lines == [
        "Number Deleted: 0", "Number Not Found: 0", "Response Body: ", "Response Status: 400 Bad Request",
        "Errors:", "/b2, 409 Conflict",
    ], lines
    assert c.request("HEAD", "/v1/demo/b2/keep").status == 200


def test_xml_on_an_object_path_as_swifts_functional_test(blockd: Daemon) -> None:
    c = blockd.client()
    fill(c, "b3", "o")
    r = c.request("DELETE", "/v1/demo/b3/o?bulk-delete", b"b3/o", {"Accept": "application/xml", "Content-Type": "text/plain"})
    assert r.status == 200
    tree = minidom.parseString(r.body)
    assert tree.documentElement.tagName == "delete"
    assert tree.getElementsByTagName("number_deleted")[0].firstChild.data == "1"
    assert tree.getElementsByTagName("response_status")[0].firstChild.data == "200 OK"


def test_bad_requests_change_nothing(blockd: Daemon) -> None:
    c = blockd.client()
    fill(c, "b4", "o")
    for body, headers, want in [
        (b"", {}, "400 Bad Request"),
        (b"/b4/o", {"Content-Type": "application/json"}, "406 Not Acceptable"),
        (b"/b4/%FF", {}, "400 Bad Request"),
        (b"/b4/" + b"x" * 10000, {}, "400 Bad Request"),
        (b"\n".join(b"/b4/o%d" % i for i in range(10001)), {}, "413 Request Entity Too Large"),
    ]:
        status, out = bulk(c, body, "application/json", **headers)
        assert status == 200
        assert json.loads(out)["Response Status"] == want, (body[:40], out)
    status, out = bulk(c, b"/b4/o", "image/png")
    assert status == 200 and b"406 Not Acceptable" in out
    assert c.request("HEAD", "/v1/demo/b4/o").status == 200
    # without a token: 401 before anything is read
    assert bulk(blockd.client(token=""), b"/b4/o")[0] == 401
    # another account's objects: each refused, none deleted
    tok = blockd.new_account("intruder")
    status, out = bulk(blockd.client(tok, "intruder"), b"/b4/o\n/b4/nope\n/b4", "application/json")
    assert json.loads(out) == {
        "Response Status": "400 Bad Request", "Response Body": "", "Number Deleted": 0, "Number Not Found": 0,
        "Errors": [["/b4/o", "403 Forbidden"], ["/b4/nope", "403 Forbidden"], ["/b4", "403 Forbidden"]],
    }
    assert c.request("HEAD", "/v1/demo/b4/o").status == 200


def test_swift_delete_uses_bulk_delete(blockd: Daemon) -> None:
    c = blockd.client()
    fill(c, "b5", *(f"o{i}" for i in range(12)))
    env = {**os.environ, "OS_STORAGE_URL": f"http://127.0.0.1:{blockd.port}/v1/demo", "OS_AUTH_TOKEN": blockd.token}
    env.pop("ST_AUTH", None)
    r = subprocess.run([sys.executable, "-m", "swiftclient.shell", "delete", "b5"], env=env, capture_output=True, text=True, timeout=120)
    if r.returncode != 0 and "No module named" in r.stderr:
        pytest.skip("python-swiftclient not installed (pip install .[test])")
    assert r.returncode == 0, r.stderr
    assert c.request("HEAD", "/v1/demo/b5").status == 404
    log = blockd.log.read_text()
    assert "bulk-delete" in log, "swift delete did not use bulk delete"
