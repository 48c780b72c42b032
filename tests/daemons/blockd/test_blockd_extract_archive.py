"""Swift extract-archive against a real nefeli-blockd: tar, tar.gz and tar.bz2 expanded into
an account (containers made from the first directory), a container or a prefix, pax
metadata, and bad archives answered in the body without storing anything."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator

import pytest

from blockd_helpers import Client, Daemon, start_daemon


@pytest.fixture(scope="module")
def blockd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = start_daemon(tmp_path_factory.mktemp("extract"))
    yield d
    d.stop_cleanly()


def archive(files: dict[str, bytes], mode: str = "w", pax: dict[str, dict[str, str]] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo("somedir")
        d.type = tarfile.DIRTYPE
        tar.addfile(d)
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.pax_headers = (pax or {}).get(name, {})
            tar.addfile(ti, io.BytesIO(data))
        link = tarfile.TarInfo("c1/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "a.txt"
        tar.addfile(link)
    return buf.getvalue()


def extract(c: Client, path: str, kind: str, body: bytes, **h: str) -> dict:
    r = c.request("PUT", f"{path}?extract-archive={kind}", body, {"Accept": "application/json", **h})
    assert r.status == 200, r
    return json.loads(r.body)


def test_info_lists_bulk_upload(blockd: Daemon) -> None:
    info = blockd.client().request("GET", "/info", auth=False).json()
    assert info["bulk_upload"] == {"max_containers_per_extraction": 10000, "max_failed_extractions": 1000}


@pytest.mark.parametrize("kind,mode", [("tar", "w"), ("tar.gz", "w:gz"), ("tar.bz2", "w:bz2")])
def test_into_the_account(blockd: Daemon, kind: str, mode: str) -> None:
    c = blockd.client()
    cont = "x" + kind.replace(".", "")
    body = archive({f"{cont}/a.txt": b"alpha", f"./{cont}/d/b.bin": b"\0" * 70000, "top-level": b"skipped"}, mode)
    out = extract(c, "/v1/demo", kind, body)
    assert out == {"Number Files Created": 2, "Response Status": "201 Created", "Response Body": "", "Errors": []}
    assert c.request("GET", f"/v1/demo/{cont}/a.txt").body == b"alpha"
    r = c.request("GET", f"/v1/demo/{cont}/d/b.bin")
    assert r.body == b"\0" * 70000 and r.h("Content-Type") == "application/octet-stream"
    assert c.request("HEAD", f"/v1/demo/{cont}/a.txt").h("Content-Type") == "text/plain"
    assert c.request("HEAD", f"/v1/demo/{cont}/link").status == 404  # only regular files


def test_into_a_prefix_with_metadata(blockd: Daemon) -> None:
    c = blockd.client()
    assert c.request("PUT", "/v1/demo/pre").status in (201, 202)
    pax = {"f.py": {"SCHILY.xattr.user.mime_type": "application/python-setup", "SCHILY.xattr.user.meta.lunch": "burger"}}
    out = extract(c, "/v1/demo/pre/sub", "tar", archive({"f.py": b"print()"}, pax=pax), **{"X-Object-Meta-Batch": "7"})
    assert out["Number Files Created"] == 1, out
    h = c.request("HEAD", "/v1/demo/pre/sub/f.py")
    assert h.h("Content-Type") == "application/python-setup"
    assert h.h("X-Object-Meta-Lunch") == "burger" and h.h("X-Object-Meta-Batch") == "7"


def test_bad_archives_store_nothing(blockd: Daemon) -> None:
    c = blockd.client()
    assert c.request("PUT", "/v1/demo/bad").status in (201, 202)
    good = archive({"bad/x": b"1"})
    cases = [
        ("tar", b"this is not a tar file at all" * 40, "400 Bad Request"),
        ("tar.gz", good, "400 Bad Request"),  # not gzip
        ("tar.bz2", b"BZh9garbage", "400 Bad Request"),
        ("zip", good, "400 Bad Request"),
        ("tar", archive({}), "400 Bad Request"),  # no files
    ]
    for kind, body, want in cases:
        out = extract(c, "/v1/demo/bad", kind, body)
        assert out["Response Status"] == want and out["Number Files Created"] == 0, (kind, out)
    assert c.request("GET", "/v1/demo/bad?format=json").json() == []
    # a file the account may not write is reported, the others stored
    tok = blockd.new_account("other")
    o = blockd.client(tok, "other")
    out = extract(o, "/v1/demo/bad", "tar", good)
    assert out["Errors"] == [["bad/bad/x", "403 Forbidden"]] and out["Response Status"] == "400 Bad Request", out
    out = extract(c, "/v1/demo", "tar", archive({"bad/ok": b"1", "in%valid/\u0000x": b"2"}))
    assert out["Number Files Created"] == 1 and len(out["Errors"]) == 1, out
    assert blockd.client(token="").request("PUT", "/v1/demo/bad?extract-archive=tar", good).status == 401
