"""Swift static large objects over HTTP: manifest PUT and its refusals, GET/HEAD and Range
across segments, ?multipart-manifest=get and delete, nested manifests, segment ranges and
inline data segments (a real server process)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random

import pytest

from blockd_helpers import Client, Daemon, start_daemon
from net.http_range import MultipartByteranges, Span

BS = 4096


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    d = start_daemon(tmp_path_factory.mktemp("blockd-slo"))
    c = d.client()
    assert c.put_container("c", scheme="sha256", block_size=BS).status == 201
    assert c.put_container("segs", block_size=BS).status == 201
    yield d
    d.stop()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def put_segments(c: Client, prefix: str, parts: list[bytes]) -> list[dict[str, object]]:
    out = []
    for i, p in enumerate(parts):
        name = f"{prefix}/{i:04d}"
        r = c.put("segs", name, p, api="swift")
        assert r.status == 201, r
        out.append({"path": f"/segs/{name}", "etag": md5(p), "size_bytes": len(p)})
    return out


def put_manifest(c: Client, name: str, manifest: object, api: str = "swift", **headers: str):
    body = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    return c.request("PUT", c.p("c", name, api=api, query="multipart-manifest=put"), body, headers)


def delete_with_segments(c: Client, name: str) -> object:
    """DELETE ?multipart-manifest=delete asking for JSON; the bulk-delete answer."""
    r = c.request("DELETE", c.p("c", name, api="swift", query="multipart-manifest=delete"),
                  headers={"Accept": "application/json"})
    assert r.status == 200, r
    return r.json()


def bulk_deleted(n: int) -> dict[str, object]:
    return {"Number Deleted": n, "Number Not Found": 0, "Response Body": "", "Response Status": "200 OK", "Errors": []}


def slo_etag(parts: list[bytes]) -> str:
    return md5("".join(md5(p) for p in parts).encode())


@pytest.mark.parametrize("api", ["swift", "pithos"])
def test_put_get_head(daemon: Daemon, api: str) -> None:
    c = daemon.client()
    parts = [os.urandom(BS * 2 + 100), os.urandom(3000), b"tail"]
    manifest = put_segments(c, f"rt-{api}", parts)
    manifest[1]["etag"] = None  # not checked
    del manifest[2]["size_bytes"]
    r = put_manifest(c, f"slo-{api}", manifest, api=api, **{"Content-Type": "text/x-big", "X-Object-Meta-K": "v"})
    assert r.status == 201, r
    assert r.h("ETag") == f'"{slo_etag(parts)}"'
    whole = b"".join(parts)
    g = c.get("c", f"slo-{api}", api=api)
    assert g.status == 200 and g.body == whole
    assert g.h("X-Static-Large-Object") == "True" and g.h("ETag") == f'"{slo_etag(parts)}"'
    assert g.h("Content-Type") == "text/x-big" and g.h("X-Object-Meta-K") == "v"
    h = c.request("HEAD", c.p("c", f"slo-{api}", api=api))
    assert h.status == 200 and h.h("Content-Length") == str(len(whole)) and h.h("X-Static-Large-Object") == "True"
    listed = c.request("GET", c.p("c", api=api, query=f"format=json&prefix=slo-{api}")).json()
    assert [(o["name"], o["bytes"]) for o in listed] == [(f"slo-{api}", len(whole))]  # the total, as Swift lists it


def test_range_across_segments(daemon: Daemon) -> None:
    c = daemon.client()
    parts = [os.urandom(1000), os.urandom(BS + 1), os.urandom(10), os.urandom(2000)]
    assert put_manifest(c, "ranged", put_segments(c, "ranged", parts)).status == 201
    whole = b"".join(parts)
    for a, b in [(0, 0), (990, 1010), (999, 1000), (1000, 1000 + BS + 5), (len(whole) - 1, len(whole) - 1), (5, len(whole) - 3)]:
        g = c.get("c", "ranged", api="swift", Range=f"bytes={a}-{b}")
        assert g.status == 206 and g.body == whole[a : b + 1], (a, b)
        assert g.h("Content-Range") == f"bytes {a}-{b}/{len(whole)}"
    g = c.get("c", "ranged", api="swift", Range="bytes=-15")
    assert g.body == whole[-15:]
    g = c.get("c", "ranged", api="swift", Range="bytes=10-20,1500-1600")
    assert g.status == 206 and g.h("Content-Type").startswith("multipart/byteranges")
    assert whole[10:21] in g.body and whole[1500:1601] in g.body
    g = c.get("c", "ranged", api="swift", Range=f"bytes={len(whole)}-")
    assert g.status == 416 and g.h("Content-Range") == f"bytes */{len(whole)}"
    etag = slo_etag(parts)
    assert c.get("c", "ranged", api="swift", **{"If-None-Match": f'"{etag}"'}).status == 304
    assert c.get("c", "ranged", api="swift", **{"If-Match": "nope"}).status == 412


def test_manifest_get(daemon: Daemon) -> None:
    c = daemon.client()
    parts = [os.urandom(100), os.urandom(50)]
    assert put_manifest(c, "mg", put_segments(c, "mg", parts)).status == 201
    g = c.get("c", "mg", api="swift", query="multipart-manifest=get")
    assert g.status == 200 and g.h("Content-Type") == "application/json; charset=utf-8"
    assert g.h("X-Static-Large-Object") == "True" and g.h("ETag").strip('"') == md5(g.body)
    doc = g.json()
    assert [d["name"] for d in doc] == ["/segs/mg/0000", "/segs/mg/0001"]
    assert [d["hash"] for d in doc] == [md5(p) for p in parts] and [d["bytes"] for d in doc] == [100, 50]
    assert set(doc[0]) == {"name", "hash", "bytes", "content_type", "last_modified"}
    raw = c.get("c", "mg", api="swift", query="multipart-manifest=get&format=raw").json()
    assert raw == [{"path": "/segs/mg/0000", "etag": md5(parts[0]), "size_bytes": 100},
                   {"path": "/segs/mg/0001", "etag": md5(parts[1]), "size_bytes": 50}]
    # the raw form can be PUT again as it is
    assert put_manifest(c, "mg-again", raw).status == 201
    assert c.get("c", "mg-again").body == b"".join(parts)


def test_delete(daemon: Daemon) -> None:
    c = daemon.client()
    parts = [os.urandom(10), os.urandom(20)]
    seg = put_segments(c, "del", parts)
    assert put_manifest(c, "del-plain", seg).status == 201
    assert c.request("DELETE", c.p("c", "del-plain", api="swift")).status == 204
    assert c.get("segs", "del/0000").status == 200  # a plain DELETE keeps the segments
    assert put_manifest(c, "del-all", seg).status == 201
    assert delete_with_segments(c, "del-all") == bulk_deleted(3)
    for name in ("del/0000", "del/0001"):
        assert c.get("segs", name).status == 404
    assert c.get("c", "del-all").status == 404
    assert c.request("DELETE", c.p("c", "del-all", api="swift", query="multipart-manifest=delete")).status == 404


def test_broken_segments_are_409(daemon: Daemon) -> None:
    c = daemon.client()
    parts = [os.urandom(100), os.urandom(100)]
    assert put_manifest(c, "broken", put_segments(c, "broken", parts)).status == 201
    c.put("segs", "broken/0000", os.urandom(100))  # replaced: its ETag no longer matches
    g = c.get("c", "broken")
    assert g.status == 409 and b"/segs/broken/0000" in g.body
    assert c.get("c", "broken", Range="bytes=100-199").body == parts[1]  # the untouched part still reads
    assert c.request("HEAD", c.p("c", "broken")).status == 200  # HEAD does not read segments


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        (b"{not json", b"valid JSON"),
        ([], b"at least one segment"),
        ([{"path": "/segs/nope", "etag": None, "size_bytes": None}], b"404 Not Found"),
        ([{"path": "/nocont/x"}], b"404 Not Found"),
        ([{"path": "/segs/err/0000", "etag": "0" * 32}], b"Etag Mismatch"),
        ([{"path": "/segs/err/0000", "size_bytes": 11}], b"Size Mismatch"),
        ([{"path": "/segs/err/0000", "range": "10-"}], b"/segs/err/0000, Unsatisfiable Range"),
        ([{"path": "/segs/err/0000", "range": "-0"}], b"/segs/err/0000, Unsatisfiable Range"),
        ([{"path": "/segs/err/0000", "range": "0-3", "size_bytes": 11}], b"/segs/err/0000, Size Mismatch"),
        ([{"path": "/segs/err/0000", "range": "0-3", "etag": "0" * 32}], b"/segs/err/0000, Etag Mismatch"),
        ([{"path": "/segs/err/0000", "range": "3-1"}], b"segment 0: invalid range"),
        ([{"path": "/segs/err/0000", "range": "0-1,3-4"}], b"segment 0: multiple ranges (only one allowed)"),
        ([{"path": "/segs/err/0000", "range": 3}], b"segment 0: invalid range"),
        ([{"path": "/segs/err/0000", "size_bytes": 10, "range": "10-"}], b"segment 0: unsatisfiable range"),
        ([{"path": "/segs/err/0000"}, {"data": "not base64!"}], b"segment 1: data must be valid base64"),
        ([{"path": "/segs/err/0000"}, {"data": "aGk"}], b"segment 1: data must be valid base64"),
        ([{"path": "/segs/err/0000"}, {"data": ""}], b"segment 1: too small"),
        ([{"data": "aGk=", "path": "/segs/err/0000"}], b"segment 0: unknown key 'path' in a data segment"),
        ([{"data": "aGVsbG8="}], b"require at least one object-backed segment"),
        ([{"path": "/segs/err/empty"}, {"data": "aGk="}], b"/segs/err/empty, Too small"),  # data after it: not last
        ([{"path": "/segs/err/0000"}] * 1001, b"too many segments"),
        ([{"path": "/segs/err/empty"}, {"path": "/segs/err/0000"}], b"Too small"),
        ([{"path": "noslash"}], b"/container/object"),
    ],
)
def test_bad_manifests_are_400(daemon: Daemon, manifest: object, reason: bytes) -> None:
    c = daemon.client()
    put_segments(c, "err", [os.urandom(10)])
    assert c.put("segs", "err/empty", b"", api="swift").status == 201
    r = put_manifest(c, "bad", manifest)
    assert r.status == 400 and reason in r.body, r
    assert r.h("Content-Type").startswith("text/plain")
    assert c.get("c", "bad").status == 404  # nothing stored


def test_manifest_etag_header(daemon: Daemon) -> None:
    c = daemon.client()
    parts = [os.urandom(10)]
    seg = put_segments(c, "etagged", parts)
    assert put_manifest(c, "etagged", seg, ETag="0" * 32).status == 422
    assert put_manifest(c, "etagged", seg, ETag=slo_etag(parts)).status == 201


def test_nested(daemon: Daemon) -> None:
    c = daemon.client()
    inner_parts = [os.urandom(300), os.urandom(200)]
    assert put_manifest(c, "inner", put_segments(c, "inner", inner_parts)).status == 201
    inner_etag = slo_etag(inner_parts)
    tail = os.urandom(77)
    seg = put_segments(c, "outer", [tail])
    outer = [{"path": "/c/inner", "etag": inner_etag, "size_bytes": 500}, *seg]
    r = put_manifest(c, "outer", outer)
    assert r.status == 201, r
    whole = b"".join(inner_parts) + tail
    assert c.get("c", "outer").body == whole
    assert c.get("c", "outer", Range="bytes=250-520").body == whole[250:521]
    doc = c.get("c", "outer", query="multipart-manifest=get").json()
    assert doc[0]["sub_slo"] is True and doc[0]["bytes"] == 500 and doc[0]["hash"] == inner_etag
    # nesting is limited: each level wraps the previous one
    prev, size, etag = "outer", len(whole), md5((inner_etag + md5(tail)).encode())
    levels = 2
    while True:
        name = f"nest-{levels + 1}"
        r = put_manifest(c, name, [{"path": f"/c/{prev}", "etag": etag, "size_bytes": size}])
        if r.status != 201:
            break
        prev, etag, levels = name, md5(etag.encode()), levels + 1
    assert levels == 10 and r.status == 400 and b"nested" in r.body, r
    assert c.get("c", prev).body == whole
    # deleting the outer manifest with its segments follows the inner manifest too
    r = c.request("DELETE", c.p("c", "outer", query="multipart-manifest=delete"))
    assert r.status == 200 and b"Number Deleted: 5\n" in r.body, r
    assert c.get("c", "inner").status == 404 and c.get("segs", "inner/0000").status == 404


def test_partial_update_refused(daemon: Daemon) -> None:
    c = daemon.client()
    assert put_manifest(c, "fixed", put_segments(c, "fixed", [os.urandom(10)])).status == 201
    r = c.request("POST", c.p("c", "fixed"), b"xx", {"Content-Range": "bytes 0-1/*"})
    assert r.status == 409
    assert c.request("POST", c.p("c", "fixed", api="swift"), headers={"X-Object-Meta-A": "b"}).status == 202
    assert c.request("HEAD", c.p("c", "fixed", api="swift")).h("X-Static-Large-Object") == "True"


def test_shared_user_needs_read_on_segments(daemon: Daemon) -> None:
    c = daemon.client()
    other = daemon.client(daemon.new_account("slo-other"))
    seg = put_segments(c, "priv", [os.urandom(10)])
    assert c.put("c", "shared/x", b"", **{"X-Object-Sharing": "read=slo-other;write=slo-other"}).status == 201
    assert c.request("PUT", c.p("c", "shared/", api="pithos"), b"",
                     {"Content-Type": "application/directory", "X-Object-Sharing": "write=slo-other"}).status == 201
    r = other.request("PUT", other.p("c", "shared/slo", account="demo", api="swift", query="multipart-manifest=put"),
                      json.dumps(seg).encode())
    assert r.status == 400 and b"403 Forbidden" in r.body, r


# --- segment ranges and inline data ---------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def swift_slo_etag(parts: list[str]) -> str:
    """The SLO ETag as Swift's docs put it: MD5 of `etag`, `etag:first-last;` (ranged
    segments) and the MD5 of inline data, concatenated."""
    return md5("".join(parts).encode())


def check_ranges(c: Client, name: str, pieces: list[bytes], api: str = "swift") -> None:
    """Single ranges at and around every boundary between pieces and at random, and a
    multi-range request, byte for byte."""
    whole = b"".join(pieces)
    n = len(whole)
    bounds = [sum(map(len, pieces[:i])) for i in range(1, len(pieces))]
    rng = random.Random(n)
    spans = [(0, 0), (n - 1, n - 1), (0, n - 1)]
    for x in bounds:
        spans += [(x - 1, x), (x, x), (x - 1, x - 1), (max(0, x - 3), min(n - 1, x + 2)), (x, n - 1), (0, x - 1)]
    spans += [(rng.randrange(n), rng.randrange(n)) for _ in range(30)]
    for a, b in spans:
        a, b = min(a, b), max(a, b)
        g = c.get("c", name, api=api, Range=f"bytes={a}-{b}")
        assert g.status == 206 and g.body == whole[a : b + 1], (a, b)
        assert g.h("Content-Range") == f"bytes {a}-{b}/{n}"
    g = c.get("c", name, api=api, Range="bytes=-7")
    assert g.status == 206 and g.body == whole[-7:]
    multi = [Span(1, n // 3), Span(n // 3 + 2, n // 2), Span(n - 5, n - 1)]
    g = c.get("c", name, api=api, Range="bytes=" + ",".join(f"{s.start}-{s.end}" for s in multi))
    assert g.status == 206
    ctype = g.h("Content-Type") or ""
    assert ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.split("boundary=", 1)[1]
    want = MultipartByteranges(multi, n, content_type="application/x-slo", boundary=boundary).render(whole)
    assert g.body == want
    g = c.get("c", name, api=api, Range=f"bytes={n}-")
    assert g.status == 416 and g.h("Content-Range") == f"bytes */{n}"


@pytest.mark.parametrize("api", ["swift", "pithos"])
def test_ranges_and_data(daemon: Daemon, api: str) -> None:
    c = daemon.client()
    a, b = os.urandom(BS * 2 + 100), os.urandom(3000)
    seg = put_segments(c, f"rd-{api}", [a, b])
    big = os.urandom(70_000)  # inline data larger than one gathered write
    manifest = [
        {**seg[0], "range": "100-4199"},
        {"data": b64(b"hello")},
        {**seg[1], "range": "-500"},  # etag and size_bytes are still the whole object's
        {"data": b64(big)},
        {"path": seg[0]["path"], "range": "0-"},  # all of it: kept without a range
        {"path": seg[1]["path"], "range": "10-10"},
        {"data": b64(b"!")},
    ]
    pieces = [a[100:4200], b"hello", b[-500:], big, a, b[10:11], b"!"]
    whole = b"".join(pieces)
    etag = swift_slo_etag(
        [f"{md5(a)}:100-4199;", md5(b"hello"), f"{md5(b)}:2500-2999;", md5(big), md5(a), f"{md5(b)}:10-10;", md5(b"!")]
    )
    name = f"rd-{api}"
    r = put_manifest(c, name, manifest, api=api, **{"Content-Type": "application/x-slo"})
    assert r.status == 201, r
    assert r.h("ETag") == f'"{etag}"'
    g = c.get("c", name, api=api)
    assert g.status == 200 and g.body == whole and g.h("ETag") == f'"{etag}"'
    h = c.request("HEAD", c.p("c", name, api=api))
    assert h.status == 200 and h.h("Content-Length") == str(len(whole)) and h.h("ETag") == f'"{etag}"'
    listed = c.request("GET", c.p("c", api=api, query=f"format=json&prefix={name}")).json()
    assert [(o["name"], o["bytes"]) for o in listed] == [(name, len(whole))]
    check_ranges(c, name, pieces, api)
    assert c.get("c", name, api=api, **{"If-None-Match": f'"{etag}"'}).status == 304
    # the request ETag is checked against the same value
    assert put_manifest(c, name + "-e", manifest, api=api, ETag=md5(b"x")).status == 422
    assert put_manifest(c, name + "-e", manifest, api=api, ETag=etag).status == 201


def test_ranges_and_data_manifest_get(daemon: Daemon) -> None:
    c = daemon.client()
    a, b = os.urandom(1000), os.urandom(100)
    seg = put_segments(c, "rdm", [a, b])
    manifest = [
        {**seg[0], "range": " 10 - 19 "},
        {"data": "aGk=="},  # extra padding: Swift keeps it re-encoded
        {"path": seg[1]["path"], "range": "-1000"},  # longer than the object: all of it
        {"path": seg[0]["path"], "range": "990-"},
    ]
    assert put_manifest(c, "rdm", manifest, **{"Content-Type": "application/x-slo"}).status == 201
    g = c.get("c", "rdm", query="multipart-manifest=get")
    assert g.status == 200 and g.h("Content-Type") == "application/json; charset=utf-8"
    doc = g.json()
    assert [set(d) for d in doc] == [
        {"name", "hash", "bytes", "content_type", "last_modified", "range"},
        {"data"},
        {"name", "hash", "bytes", "content_type", "last_modified"},
        {"name", "hash", "bytes", "content_type", "last_modified", "range"},
    ]
    assert (doc[0]["name"], doc[0]["hash"], doc[0]["bytes"], doc[0]["range"]) == (seg[0]["path"], md5(a), 1000, "10-19")
    assert doc[1] == {"data": "aGk="}
    assert (doc[2]["bytes"], doc[3]["range"]) == (100, "990-999")
    raw = c.get("c", "rdm", query="multipart-manifest=get&format=raw")
    assert raw.body.startswith(b'[{"etag": "' + md5(a).encode() + b'", "path": ')  # keys sorted, as Swift writes it
    assert raw.json() == [
        {"etag": md5(a), "path": seg[0]["path"], "range": "10-19", "size_bytes": 1000},
        {"data": "aGk="},
        {"etag": md5(b), "path": seg[1]["path"], "size_bytes": 100},
        {"etag": md5(a), "path": seg[0]["path"], "range": "990-999", "size_bytes": 1000},
    ]
    whole = a[10:20] + b"hi" + b + a[990:]
    etag = swift_slo_etag([f"{md5(a)}:10-19;", md5(b"hi"), md5(b), f"{md5(a)}:990-999;"])
    assert c.get("c", "rdm").body == whole
    # the raw form PUT again is the same SLO
    again = put_manifest(c, "rdm-again", raw.body)
    assert again.status == 201 and again.h("ETag") == f'"{etag}"'
    assert c.get("c", "rdm-again").body == whole


def test_ranges_and_data_delete(daemon: Daemon) -> None:
    c = daemon.client()
    x, y = os.urandom(10), os.urandom(20)
    seg = put_segments(c, "rdd", [x, y])
    manifest = [
        {**seg[0], "range": "0-4"},
        {"data": b64(b"between")},
        {**seg[0], "range": "5-9"},
        {**seg[1], "range": "-1"},
    ]
    assert put_manifest(c, "rdd", manifest).status == 201
    assert c.get("c", "rdd").body == x[:5] + b"between" + x[5:] + y[-1:]
    # the segment used twice is deleted once, the data segment has nothing to delete
    assert delete_with_segments(c, "rdd") == bulk_deleted(3)
    for name in ("rdd/0000", "rdd/0001"):
        assert c.get("segs", name).status == 404
    assert c.get("c", "rdd").status == 404


def test_ranged_broken_segment_is_409(daemon: Daemon) -> None:
    c = daemon.client()
    parts = [os.urandom(100), os.urandom(100)]
    seg = put_segments(c, "rbroken", parts)
    manifest = [{**seg[0], "range": "50-"}, {"data": b64(b"ok")}, {**seg[1], "range": "0-9"}]
    assert put_manifest(c, "rbroken", manifest).status == 201
    c.put("segs", "rbroken/0000", os.urandom(50) + parts[0][50:])  # replaced: the bytes of the range are the same
    g = c.get("c", "rbroken")
    assert g.status == 409 and b"/segs/rbroken/0000" in g.body  # the whole object is checked, as in Swift
    assert c.get("c", "rbroken", Range="bytes=50-61").body == b"ok" + parts[1][:10]


def test_nested_with_ranges_and_data(daemon: Daemon) -> None:
    c = daemon.client()
    p0, p1 = os.urandom(300), os.urandom(200)
    seg = put_segments(c, "rnest", [p0, p1])
    inner = [{**seg[0], "range": "50-249"}, {"data": b64(b"INNER")}, seg[1]]
    r = put_manifest(c, "rnest-inner", inner)
    assert r.status == 201, r
    inner_bytes = p0[50:250] + b"INNER" + p1
    inner_etag = swift_slo_etag([f"{md5(p0)}:50-249;", md5(b"INNER"), md5(p1)])
    assert r.h("ETag") == f'"{inner_etag}"' and len(inner_bytes) == 405
    outer = [
        {"path": "/c/rnest-inner", "etag": inner_etag, "size_bytes": 405, "range": "100-"},
        {"data": b64(b"OUTER")},
        {"path": "/c/rnest-inner", "range": "-10"},
    ]
    r = put_manifest(c, "rnest-outer", outer, **{"Content-Type": "application/x-slo"})
    assert r.status == 201, r
    pieces = [p0[150:250], b"INNER", p1, b"OUTER", p1[-10:]]  # inner[100:] starts at p0[150]
    whole = b"".join(pieces)
    assert whole == inner_bytes[100:] + b"OUTER" + inner_bytes[-10:]
    etag = swift_slo_etag([f"{inner_etag}:100-404;", md5(b"OUTER"), f"{inner_etag}:395-404;"])
    assert r.h("ETag") == f'"{etag}"'
    g = c.get("c", "rnest-outer")
    assert g.body == whole and g.h("ETag") == f'"{etag}"'
    assert c.request("HEAD", c.p("c", "rnest-outer")).h("Content-Length") == str(len(whole))
    check_ranges(c, "rnest-outer", pieces)
    doc = c.get("c", "rnest-outer", query="multipart-manifest=get").json()
    assert doc[0]["sub_slo"] is True and doc[0]["range"] == "100-404" and doc[0]["bytes"] == 405
    assert doc[1] == {"data": b64(b"OUTER")} and doc[2]["range"] == "395-404"
    r = c.request("DELETE", c.p("c", "rnest-outer", query="multipart-manifest=delete"))
    assert r.status == 200 and b"Number Deleted: 4\n" in r.body, r  # p0, p1, the inner and outer manifests
    assert c.get("c", "rnest-inner").status == 404 and c.get("segs", "rnest/0000").status == 404


# --- copies: on the Swift path a large object is copied as the bytes it reads as ------


def test_swift_copy_of_an_slo_is_a_plain_object_of_the_joined_segments(daemon: Daemon) -> None:
    c = daemon.client()
    parts = [os.urandom(BS + 10), os.urandom(700), b"end"]
    whole = b"".join(parts)
    assert put_manifest(c, "to-copy", put_segments(c, "to-copy", parts), **{"X-Object-Meta-K": "v",
                        "Content-Type": "text/x-slo"}).status == 201
    r = c.request("PUT", c.p("c", "joined", api="swift"), headers={"X-Copy-From": "/c/to-copy", "X-Object-Meta-New": "n"})
    assert r.status == 201, r
    assert r.h("ETag") == md5(whole)
    for api in ("swift", "pithos"):
        g = c.get("c", "joined", api=api)
        assert g.status == 200 and g.body == whole
        assert g.h("X-Static-Large-Object") is None
        assert g.h("X-Object-Meta-K") == "v" and g.h("X-Object-Meta-New") == "n" and g.h("Content-Type") == "text/x-slo"
    assert c.get("c", "joined", api="swift").h("ETag") == md5(whole)
    assert c.get("c", "joined", query="multipart-manifest=get").body == whole  # not a manifest any more
    # COPY does the same, into another container (other block policy) too
    r = c.request("COPY", c.p("c", "to-copy", api="swift"), headers={"Destination": "/segs/joined2"})
    assert r.status == 201, r
    g = c.get("segs", "joined2", api="swift")
    assert g.body == whole and g.h("ETag") == md5(whole) and g.h("X-Static-Large-Object") is None
    # the joined copy does not depend on the segments any more
    assert c.request("DELETE", c.p("segs", "to-copy/0000", api="swift")).status == 204
    assert c.get("c", "joined", api="swift").body == whole
    r = c.request("PUT", c.p("c", "joined3", api="swift"), headers={"X-Copy-From": "/c/to-copy"})
    assert r.status == 409 and b"to-copy/0000" in r.body, r  # a broken SLO cannot be copied
    assert c.get("c", "joined3", api="swift").status == 404


def test_copying_the_manifest_itself(daemon: Daemon) -> None:
    """?multipart-manifest=get on a Swift copy, any copy on the Pithos path, and moves
    keep the manifest: another SLO over the same segments."""
    c = daemon.client()
    parts = [os.urandom(BS), b"tail"]
    assert put_manifest(c, "man", put_segments(c, "man", parts)).status == 201
    etag = f'"{slo_etag(parts)}"'
    r = c.request("PUT", c.p("c", "man-copy", api="swift", query="multipart-manifest=get"),
                  headers={"X-Copy-From": "/c/man"})
    assert r.status == 201, r
    r = c.request("COPY", c.p("c", "man", api="swift", query="multipart-manifest=get"),
                  headers={"Destination": "/c/man-copy2"})
    assert r.status == 201, r
    assert c.request("PUT", c.p("c", "man-pithos"), headers={"X-Copy-From": "/c/man"}).status == 201
    assert c.request("COPY", c.p("c", "man-pithos"), headers={"Destination": "/c/man-pithos2"}).status == 201
    assert c.request("PUT", c.p("c", "man-moved", api="swift"), headers={"X-Move-From": "/c/man-pithos2"}).status == 201
    for name in ("man-copy", "man-copy2", "man-pithos", "man-moved"):
        g = c.get("c", name, api="swift")
        assert g.body == b"".join(parts) and g.h("X-Static-Large-Object") == "True" and g.h("ETag") == etag, name


def test_swift_copy_of_a_dynamic_large_object(daemon: Daemon) -> None:
    c = daemon.client()
    parts = [os.urandom(2000), os.urandom(BS + 3)]
    put_segments(c, "dlo", parts)
    assert c.put("c", "dlo", b"", api="swift", **{"X-Object-Manifest": "segs/dlo/"}).status == 201
    r = c.request("PUT", c.p("c", "dlo-joined", api="swift"), headers={"X-Copy-From": "/c/dlo"})
    assert r.status == 201, r
    g = c.get("c", "dlo-joined", api="swift")
    assert g.body == b"".join(parts) and g.h("X-Object-Manifest") is None and g.h("ETag") == md5(b"".join(parts))
    r = c.request("PUT", c.p("c", "dlo-man", api="swift", query="multipart-manifest=get"),
                  headers={"X-Copy-From": "/c/dlo"})
    assert r.status == 201, r
    g = c.get("c", "dlo-man", api="swift")
    assert g.h("X-Object-Manifest") == "segs/dlo/" and g.body == b"".join(parts)


def test_swift_copy_of_an_slo_refusals(daemon: Daemon) -> None:
    c = daemon.client()
    parts = [os.urandom(BS), os.urandom(BS)]
    assert put_manifest(c, "cp-bad", put_segments(c, "cp-bad", parts)).status == 201
    r = c.request("PUT", c.p("nowhere", "x", api="swift"), headers={"X-Copy-From": "/c/cp-bad"})
    assert r.status == 404, r
    r = c.request("COPY", c.p("c", "cp-bad", api="swift"), headers={"Destination": "/c/x", "X-Source-Version": "999999"})
    assert r.status == 404, r
    assert c.put_container("tiny", **{"X-Container-Policy-Quota": str(BS)}).status == 201
    r = c.request("PUT", c.p("tiny", "x", api="swift"), headers={"X-Copy-From": "/c/cp-bad"})
    assert r.status == 413, r  # the joined bytes do not fit, though the manifest would
    assert c.get("tiny", "x").status == 404
    r = c.request("PUT", c.p("c", "cp-bad", api="swift"), headers={"X-Copy-From": "/c/cp-bad", "If-None-Match": "*"})
    assert r.status == 412, r
