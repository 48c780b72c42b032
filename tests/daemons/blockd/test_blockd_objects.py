"""nefeli-blockd: plain objects, listings, ranges, conditionals, versions, copy/move,
partial updates, manifests (a real server process on loopback)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from blockd_helpers import Daemon, chunks, sha_hashes, sha_top, start_daemon

BS = 4096


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    d = start_daemon(tmp_path_factory.mktemp("blockd-obj"))
    c = d.client()
    assert c.put_container("c", scheme="sha256", block_size=BS).status == 201
    yield d
    d.stop_cleanly()


@pytest.mark.parametrize(
    "data",
    [b"", b"small object", os.urandom(BS * 2) + bytes(BS * 2) + os.urandom(10) + bytes(BS)],
    ids=["empty", "small", "multiblock-zeros"],
)
@pytest.mark.parametrize("api", ["pithos", "swift"])
def test_put_get_roundtrip(daemon: Daemon, data: bytes, api: str) -> None:
    c = daemon.client()
    name = f"rt-{api}-{len(data)}"
    r = c.put("c", name, data, api=api, **{"Content-Type": "text/x-test", "X-Object-Meta-Color": "blue"})
    assert r.status == 201, r
    top = sha_top(sha_hashes(data, BS)).hex()
    md5 = hashlib.md5(data).hexdigest()
    assert r.h("X-Object-Hash") == top
    assert r.h("ETag") == (top if api == "pithos" else md5)
    g = c.get("c", name, api=api)
    assert g.status == 200 and g.body == data
    assert g.h("Content-Length") == str(len(data))
    assert g.h("Content-Type") == "text/x-test"
    assert g.h("X-Object-Meta-Color") == "blue"
    assert g.h("X-Object-Hash") == top
    assert g.h("ETag") == (top if api == "pithos" else md5)
    assert g.h("X-Object-Version") and g.h("X-Object-Modified-By") == "demo" and g.h("Last-Modified")
    head = c.request("HEAD", c.p("c", name, api=api))
    assert head.status == 200 and head.h("Content-Length") == str(len(data)) and head.body == b""


def test_chunked_put(daemon: Daemon) -> None:
    c = daemon.client()
    data = os.urandom(BS * 3 + 77)
    r = c.request("PUT", c.p("c", "chunked"), chunks(data, 1000), chunked=True)
    assert r.status == 201, r
    assert c.get("c", "chunked").body == data


def test_put_etag_check(daemon: Daemon) -> None:
    c = daemon.client()
    data = b"checked"
    assert c.put("c", "e1", data, api="swift", ETag=hashlib.md5(data).hexdigest()).status == 201
    assert c.put("c", "e2", data, ETag=sha_top(sha_hashes(data, BS)).hex()).status == 201
    assert c.put("c", "e3", data, api="swift", ETag="0" * 32).status == 422
    assert c.get("c", "e3").status == 404


def test_put_needs_length(daemon: Daemon) -> None:
    c = daemon.client()
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", daemon.port)
    conn.putrequest("PUT", c.p("c", "nolen"))
    conn.putheader("X-Auth-Token", daemon.token)
    conn.endheaders()
    assert conn.getresponse().status == 411
    conn.close()


def test_short_body_is_not_committed(daemon: Daemon) -> None:
    import socket

    c = daemon.client()
    s = socket.create_connection(("127.0.0.1", daemon.port))
    s.sendall(
        f"PUT {c.p('c', 'short')} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {daemon.token}\r\n"
        "Content-Length: 10000\r\n\r\n".encode() + b"x" * 100
    )
    s.shutdown(socket.SHUT_WR)
    s.settimeout(5)
    try:
        s.recv(1000)
    except OSError:
        pass
    s.close()
    assert c.get("c", "short").status == 404
    assert c.request("GET", "/healthz", auth=False).status == 200


def test_listings(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.put_container("l").status == 201
    r = c.request("GET", c.p("l"))
    assert r.status == 204
    assert c.request("GET", c.p("l", query="format=json")).body == b"[]"
    for n in ["a/1", "a/2", "b/1", "c", "d"]:
        assert c.put("l", n, n.encode()).status == 201
    assert c.request("GET", c.p("l")).body == b"a/1\na/2\nb/1\nc\nd\n"
    assert c.request("GET", c.p("l", query="delimiter=/")).body == b"a/\nb/\nc\nd\n"
    assert c.request("GET", c.p("l", query="prefix=a/")).body == b"a/1\na/2\n"
    assert c.request("GET", c.p("l", query="marker=b/1&limit=1")).body == b"c\n"
    assert c.request("GET", c.p("l", query="path=a")).body == b"a/1\na/2\n"
    js = c.request("GET", c.p("l", query="format=json&delimiter=/")).json()
    assert js[0] == {"subdir": "a/"}
    obj = js[2]
    assert obj["name"] == "c" and obj["bytes"] == 1
    for key in ("hash", "content_type", "last_modified", "x_object_hash", "x_object_version",
                "x_object_version_timestamp", "x_object_modified_by"):
        assert key in obj
    xml = c.request("GET", c.p("l", query="format=xml"))
    assert xml.body.startswith(b"<?xml") and b"<name>a/1</name>" in xml.body
    acc = c.request("GET", c.p(query="format=json"))
    assert any(x["name"] == "l" and x["count"] == 5 for x in acc.json())
    head = c.request("HEAD", c.p())
    assert head.status == 204 and int(head.h("X-Account-Container-Count")) >= 2
    assert c.request("GET", c.p("l", query="limit=abc")).status == 400
    assert c.request("GET", c.p("l", query="limit=100000")).status == 412


def test_ranges(daemon: Daemon) -> None:
    c = daemon.client()
    data = os.urandom(BS * 3)
    c.put("c", "rng", data)
    r = c.get("c", "rng", Range="bytes=10-5000")
    assert r.status == 206 and r.body == data[10:5001]
    assert r.h("Content-Range") == f"bytes 10-5000/{len(data)}"
    r = c.get("c", "rng", Range="bytes=-100")
    assert r.status == 206 and r.body == data[-100:]
    r = c.get("c", "rng", Range="bytes=0-0,9000-9010")
    assert r.status == 206 and r.h("Content-Type").startswith("multipart/byteranges; boundary=")
    boundary = r.h("Content-Type").split("boundary=", 1)[1].encode()
    ctype = b"Content-Type: application/octet-stream\r\n"
    # RFC 9110 §14.6, written out: every part, its headers and bytes, then the close delimiter
    assert r.body == (
        b"--" + boundary + b"\r\n" + ctype + f"Content-Range: bytes 0-0/{len(data)}\r\n\r\n".encode() + data[0:1]
        + b"\r\n--" + boundary + b"\r\n" + ctype
        + f"Content-Range: bytes 9000-9010/{len(data)}\r\n\r\n".encode() + data[9000:9011]
        + b"\r\n--" + boundary + b"--\r\n"
    )
    assert int(r.h("Content-Length")) == len(r.body)
    r = c.get("c", "rng", Range=f"bytes={len(data)}-")
    assert r.status == 416 and r.h("Content-Range") == f"bytes */{len(data)}"
    r = c.get("c", "rng", Range="bytes=0-9", **{"If-Range": '"nope"'})
    assert r.status == 200 and r.body == data


def test_conditionals(daemon: Daemon) -> None:
    c = daemon.client()
    r = c.put("c", "cond", b"conditional")
    etag, lm = r.h("ETag"), r.h("Last-Modified")
    assert c.get("c", "cond", **{"If-None-Match": etag}).status == 304
    assert c.get("c", "cond", **{"If-Match": etag}).status == 200
    assert c.get("c", "cond", **{"If-Match": '"x"'}).status == 412
    assert c.get("c", "cond", **{"If-Modified-Since": lm}).status == 304
    assert c.get("c", "cond", **{"If-Unmodified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"}).status == 412
    assert c.put("c", "cond", b"x", **{"If-None-Match": "*"}).status == 412
    assert c.put("c", "cond", b"x", **{"If-Match": "0" * 64}).status == 412
    assert c.put("c", "cond", b"y", **{"If-Match": etag}).status == 201
    assert c.put("c", "cond-new", b"y", **{"If-None-Match": "*"}).status == 201


def test_versions(daemon: Daemon) -> None:
    c = daemon.client()
    v1 = c.put("c", "ver", b"one").h("X-Object-Version")
    v2 = c.put("c", "ver", b"two").h("X-Object-Version")
    assert c.get("c", "ver", query=f"version={v1}").body == b"one"
    assert c.get("c", "ver", query=f"version={v2}").body == b"two"
    assert c.request("HEAD", c.p("c", "ver", query=f"version={v1}")).h("Content-Length") == "3"
    lst = c.get("c", "ver", query="version=list&format=json").json()
    serials = [s for s, _ in lst["versions"]]
    assert serials == [int(v1), int(v2)]
    assert all(isinstance(t, str) for _, t in lst["versions"])
    assert c.get("c", "ver", query="version=abc").status == 400
    assert c.get("c", "ver", query="version=999999").status == 404
    # versioning none: no history kept
    assert c.put_container("nover", **{"X-Container-Policy-Versioning": "none"}).status == 201
    c.put("nover", "o", b"1")
    c.put("nover", "o", b"2")
    assert len(c.get("nover", "o", query="version=list&format=json").json()["versions"]) == 1


def test_copy_move(daemon: Daemon) -> None:
    c = daemon.client()
    data = os.urandom(BS + 5)
    c.put("c", "src", data, **{"X-Object-Meta-K": "v"})
    r = c.request("PUT", c.p("c", "dst"), headers={"X-Copy-From": "/c/src"})
    assert r.status == 201
    g = c.get("c", "dst")
    assert g.body == data and g.h("X-Object-Meta-K") == "v"
    r = c.request("COPY", c.p("c", "src"), headers={"Destination": "/c/dst2", "X-Object-Meta-Extra": "1"})
    assert r.status == 201
    assert c.get("c", "dst2").h("X-Object-Meta-Extra") == "1"
    r = c.request("MOVE", c.p("c", "dst2"), headers={"Destination": "/c/moved"})
    assert r.status == 201
    assert c.get("c", "dst2").status == 404 and c.get("c", "moved").body == data
    r = c.request("PUT", c.p("c", "moved2"), headers={"X-Move-From": "/c/moved"})
    assert r.status == 201 and c.get("c", "moved").status == 404
    # copy of an old version
    v1 = c.put("c", "vs", b"old").h("X-Object-Version")
    c.put("c", "vs", b"new")
    r = c.request("PUT", c.p("c", "vs-old"), headers={"X-Copy-From": "/c/vs", "X-Source-Version": v1})
    assert r.status == 201 and c.get("c", "vs-old").body == b"old"
    # across containers with another scheme: re-hashed through the data path
    assert c.put_container("b3", scheme="blake3", block_size=BS).status == 201
    r = c.request("PUT", c.p("b3", "x"), headers={"X-Copy-From": "/c/src"})
    assert r.status == 201 and c.get("b3", "x").body == data
    assert c.request("PUT", c.p("c", "y"), headers={"X-Copy-From": "/c/nonexistent"}).status == 404
    assert c.request("COPY", c.p("c", "src")).status == 400


def test_partial_updates(daemon: Daemon) -> None:
    c = daemon.client()
    data = bytearray(os.urandom(BS * 2 + 100))
    c.put("c", "pu", bytes(data))
    r = c.request("POST", c.p("c", "pu"), b"XYZ", {"Content-Range": "bytes 4095-4097/*"})
    assert r.status == 204, r
    data[4095:4098] = b"XYZ"
    assert c.get("c", "pu").body == bytes(data)
    r = c.request("POST", c.p("c", "pu"), b"appended", {"Content-Range": "bytes */*"})
    assert r.status == 204
    data += b"appended"
    assert c.get("c", "pu").body == bytes(data)
    r = c.request("POST", c.p("c", "pu"), None, {"X-Object-Bytes": "5000"})
    assert r.status == 204
    assert c.get("c", "pu").body == bytes(data[:5000])
    c.put("c", "pu-src", b"SOURCE")
    r = c.request("POST", c.p("c", "pu"), None, {"X-Source-Object": "/c/pu-src", "Content-Range": "bytes 0-5/*"})
    assert r.status == 204
    assert c.get("c", "pu").body[:6] == b"SOURCE"
    assert c.request("POST", c.p("c", "pu"), b"x", {"Content-Range": "bytes 999999-999999/*"}).status == 416
    assert c.request("POST", c.p("c", "pu"), b"xx", {"Content-Range": "bytes 0-0/*"}).status == 400
    assert c.request("POST", c.p("c", "pu"), b"x", {"Content-Range": "garbage"}).status == 400
    assert c.get("c", "pu").body[:6] == b"SOURCE"


def test_metadata_post_and_directory(daemon: Daemon) -> None:
    c = daemon.client()
    c.put("c", "m", b"m", **{"X-Object-Meta-A": "1"})
    assert c.request("POST", c.p("c", "m", query="update"), headers={"X-Object-Meta-B": "2"}).status == 202
    g = c.get("c", "m")
    assert g.h("X-Object-Meta-A") == "1" and g.h("X-Object-Meta-B") == "2"
    assert c.request("POST", c.p("c", "m", api="swift"), headers={"X-Object-Meta-C": "3"}).status == 202
    g = c.get("c", "m")
    assert g.h("X-Object-Meta-A") is None and g.h("X-Object-Meta-C") == "3" and g.body == b"m"
    r = c.put("c", "dir", b"", **{"Content-Type": "application/directory"})
    assert r.status == 201
    assert c.get("c", "dir").h("Content-Type") == "application/directory"
    assert c.request("POST", c.p("c", query="update"), headers={"X-Container-Meta-Q": "z"}).status == 202
    assert c.request("HEAD", c.p("c")).h("X-Container-Meta-Q") == "z"
    assert c.request("POST", c.p(query="update"), headers={"X-Account-Meta-W": "x"}).status == 202
    assert c.request("HEAD", c.p()).h("X-Account-Meta-W") == "x"


def test_manifest(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.put_container("segs").status == 201
    parts = [os.urandom(3000), os.urandom(5000), b"end"]
    for i, p in enumerate(parts):
        c.put("segs", f"big/{i:04d}", p)
    r = c.put("c", "big", b"", **{"X-Object-Manifest": "segs/big/"})
    assert r.status == 201
    g = c.get("c", "big")
    assert g.body == b"".join(parts) and g.h("X-Object-Manifest") == "segs/big/"
    g = c.get("c", "big", Range="bytes=2990-3010")
    assert g.status == 206 and g.body == b"".join(parts)[2990:3011]


def test_delete(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.put_container("del").status == 201
    c.put("del", "o", b"x")
    assert c.request("DELETE", c.p("del")).status == 409
    assert c.request("DELETE", c.p("del", "o")).status == 204
    assert c.get("del", "o").status == 404
    assert c.request("DELETE", c.p("del", "o")).status == 404
    assert c.request("DELETE", c.p("del")).status == 204
    assert c.request("HEAD", c.p("del")).status == 404


def test_hashmap_of_plain_put_matches(daemon: Daemon) -> None:
    c = daemon.client()
    data = os.urandom(BS * 2 + 3)
    c.put("c", "hm", data)
    js = c.get("c", "hm", query="hashmap&format=json").json()
    assert js["hashes"] == [h.hex() for h in sha_hashes(data, BS)]
    assert json.loads(c.get("c", "hm", query="hashmap&format=json").body)["bytes"] == len(data)
