"""Swift-path details a real nefeli-blockd process must get right, as Swift's own
functional suite and its clients read them: the headers of 304/412/416 answers,
entity-tag lists read as Swift reads them, DLO conditionals/POST/manifest GET, SLO
manifests that name themselves or lost a segment, the XML listing layout, and
Content-Type as Swift accepts and guesses it."""

from __future__ import annotations

import hashlib
import json
from xml.dom import minidom

import pytest

from blockd_helpers import Client, Daemon, start_daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    d = start_daemon(tmp_path_factory.mktemp("blockd-swift-details"))
    c = d.client()
    assert c.put_container("c").status == 201
    yield d
    d.stop_cleanly()


@pytest.fixture
def c(daemon: Daemon) -> Client:
    return daemon.client()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def swift(c: Client, method: str, name: str, body: bytes | None = None, query: str = "", **headers: str):
    return c.request(method, c.p("c", name, api="swift", query=query), body, headers)


# --- conditional and range answers ------------------------------------------------------


def test_304_412_416_describe_the_object(c: Client) -> None:
    data = b"0123456789"
    assert swift(c, "PUT", "cond", data, **{"Content-Type": "text/x-test", "X-Object-Meta-Color": "red"}).status == 201
    ok = swift(c, "GET", "cond")
    assert ok.h("etag") == md5(data)
    for status, hdrs in (
        (304, {"If-None-Match": md5(data)}),
        (412, {"If-Match": "bogus"}),
        (416, {"Range": "bytes=100-200"}),
    ):
        for method in ("GET", "HEAD"):
            r = swift(c, method, "cond", **hdrs)
            assert r.status == status, (method, hdrs, r)
            for h in ("etag", "last-modified", "x-timestamp", "accept-ranges", "x-object-meta-color"):
                assert r.h(h) == ok.h(h), (status, method, h)
            if status == 304:
                assert r.h("content-type") == "text/x-test" and r.body == b""
    assert swift(c, "GET", "cond", Range="bytes=100-200").h("content-range") == "bytes */10"


def test_tag_lists_swift_sends_are_never_a_400(c: Client) -> None:
    data = b"tags"
    swift(c, "PUT", "tags", data)
    quoted = f'"{md5(data)}"'
    # what Swift's tests send: the quoted ETag with text in front; Swift reads it as one tag
    assert swift(c, "GET", "tags", **{"If-Match": f"not-{quoted}"}).status == 412
    assert swift(c, "GET", "tags", **{"If-None-Match": f"not-{quoted}"}).status == 200
    assert swift(c, "HEAD", "tags", **{"If-Match": f'"bogus1", {quoted}'}).status == 200
    # the Pithos path keeps the strict reading: an unparsable list is a 400 with its reason
    r = c.request("GET", c.p("c", "tags"), headers={"If-Match": f"not-{quoted}"})
    assert r.status == 400 and r.body.strip()


def test_write_if_none_match_takes_only_a_star(c: Client) -> None:
    r = swift(c, "PUT", "inm", b"x", **{"If-None-Match": '"not-star"'})
    assert r.status == 400 and b"only *" in r.body
    assert swift(c, "HEAD", "inm").status == 404  # nothing was written
    assert swift(c, "PUT", "inm", b"x", **{"If-None-Match": "*"}).status == 201
    assert swift(c, "PUT", "inm", b"y", **{"If-None-Match": "*"}).status == 412


# --- dynamic large objects -------------------------------------------------------------


def _dlo(c: Client, name: str) -> bytes:
    parts = [b"a" * 5, b"b" * 5]
    for i, p in enumerate(parts):
        assert swift(c, "PUT", f"{name}-segs/{i}", p).status == 201
    assert swift(c, "PUT", name, b"manifest-body", **{"X-Object-Manifest": f"c/{name}-segs/"}).status == 201
    return b"".join(parts)


def test_dlo_conditionals_use_the_joined_etag(c: Client) -> None:
    joined = _dlo(c, "dlo1")
    head = swift(c, "HEAD", "dlo1")
    etag = head.h("etag")
    assert etag == '"' + hashlib.md5((md5(b"a" * 5) + md5(b"b" * 5)).encode()).hexdigest() + '"'
    assert swift(c, "GET", "dlo1", **{"If-None-Match": etag}).status == 304
    assert swift(c, "HEAD", "dlo1", **{"If-Match": f"not-{etag}"}).status == 412
    r = swift(c, "GET", "dlo1", **{"If-Match": etag})
    assert r.status == 200 and r.body == joined


def test_dlo_manifest_get_and_post(c: Client) -> None:
    joined = _dlo(c, "dlo2")
    r = swift(c, "GET", "dlo2", query="multipart-manifest=get")
    assert r.body == b"manifest-body" and r.h("x-object-manifest") == "c/dlo2-segs/"
    # a POST without the header drops it (Swift's POST sets such headers afresh)
    assert swift(c, "POST", "dlo2", **{"X-Object-Meta-A": "1"}).status == 202
    r = swift(c, "GET", "dlo2")
    assert r.body == b"manifest-body" and r.h("x-object-manifest") is None and r.h("x-object-meta-a") == "1"
    # and a POST with it makes a plain object a DLO, its own bytes kept
    assert swift(c, "POST", "dlo2", **{"X-Object-Manifest": "c/dlo2-segs/"}).status == 202
    assert swift(c, "GET", "dlo2").body == joined
    assert swift(c, "GET", "dlo2", query="multipart-manifest=get").body == b"manifest-body"


# --- static large objects --------------------------------------------------------------


def test_a_manifest_cannot_name_itself(c: Client) -> None:
    seg = b"s" * 100
    swift(c, "PUT", "self-a", seg)
    swift(c, "PUT", "self-b", seg)
    manifest = [{"path": f"/c/self-{x}", "etag": md5(seg), "size_bytes": 100} for x in "ab"]
    r = swift(c, "PUT", "self-b", json.dumps(manifest).encode(), query="multipart-manifest=put")
    assert r.status == 400 and b"its own segment" in r.body
    assert swift(c, "GET", "self-b").body == seg  # the segment is still there, unchanged


def test_a_lost_segment_is_a_409_before_any_byte(c: Client, daemon: Daemon) -> None:
    seg = b"q" * 1000
    for x in "abc":
        swift(c, "PUT", f"lost-{x}", seg)
    manifest = [{"path": f"/c/lost-{x}", "etag": md5(seg), "size_bytes": 1000} for x in "abc"]
    assert swift(c, "PUT", "lost", json.dumps(manifest).encode(), query="multipart-manifest=put").status == 201
    swift(c, "PUT", "lost-c", b"changed")
    # a range starting in a good segment but reaching the changed one: refused whole,
    # never a 206 whose body stops short of its Content-Length
    r = swift(c, "GET", "lost", Range="bytes=999-2500")
    assert r.status == 409 and b"lost-c" in r.body
    r = swift(c, "GET", "lost", Range="bytes=0-1999")
    assert r.status == 206 and r.body == seg * 2


# --- listings -------------------------------------------------------------------------


def test_xml_listings_in_swifts_layout(c: Client) -> None:
    assert c.request("PUT", c.p("xml", api="swift")).status == 201
    for name in ("a", "d/x", "d/y"):
        assert c.request("PUT", c.p("xml", name, api="swift"), b"1").status == 201
    r = c.request("GET", c.p("xml", api="swift", query="format=xml&delimiter=/"))
    assert r.h("content-type") == "application/xml; charset=utf-8"
    root = minidom.parseString(r.body).documentElement
    assert root.tagName == "container" and root.getAttribute("name") == "xml"
    assert [n.tagName for n in root.childNodes] == ["object", "subdir"]  # no text nodes between
    obj = root.childNodes[0]
    assert [e.tagName for e in obj.childNodes][:5] == ["name", "hash", "bytes", "content_type", "last_modified"]
    assert obj.getElementsByTagName("hash")[0].firstChild.nodeValue == md5(b"1")
    r = c.request("GET", c.p(api="swift", query="format=xml"))
    containers = minidom.parseString(r.body).getElementsByTagName("container")
    policies = {x.getElementsByTagName("name")[0].firstChild.nodeValue:
                x.getElementsByTagName("storage_policy")[0].firstChild.nodeValue for x in containers}
    assert policies["xml"] == "sha256"  # the container's block hash scheme


def test_account_listing_with_a_delimiter_lists_subdirs(c: Client) -> None:
    for name in ("grp", "grp-one", "grp-two"):
        assert c.request("PUT", c.p(name, api="swift")).status == 201
    r = c.request("GET", c.p(api="swift", query="prefix=grp&delimiter=-"))
    assert r.body.decode().split() == ["grp", "grp-"]
    r = c.request("GET", c.p(api="swift", query="prefix=grp&delimiter=-&format=json"))
    assert [e.get("name") or e.get("subdir") for e in r.json()] == ["grp", "grp-"]


# --- Content-Type ---------------------------------------------------------------------


@pytest.mark.parametrize("ctype", ["a5f3c0d1e2", "蔊댎ःx", "text/plain; charset=utf-8", "no/such; x"])
def test_any_header_text_is_a_content_type(c: Client, ctype: str) -> None:
    name = "ct-" + hashlib.md5(ctype.encode()).hexdigest()
    conn_headers = {"Content-Type": ctype.encode().decode("latin-1")}  # http.client sends latin-1
    assert swift(c, "PUT", name, b"x", **conn_headers).status == 201
    got = swift(c, "HEAD", name).h("content-type")
    assert got is not None and got.encode("latin-1").decode() == ctype


def test_a_content_type_that_is_no_header_text_is_refused(c: Client) -> None:
    r = swift(c, "PUT", "ct-bad", b"x", **{"Content-Type": "a" * 300})
    assert r.status == 400 and b"content type" in r.body
    assert swift(c, "HEAD", "ct-bad").status == 404


def test_content_type_guessed_from_the_name_on_the_swift_path(c: Client) -> None:
    for name, want in (("g.txt", "text/plain"), ("g.zip", "application/zip"), ("g.nosuch", "application/octet-stream")):
        r = c.request("PUT", c.p("c", name, api="swift"), b"x", {"Content-Type": ""})
        assert r.status == 201
        assert swift(c, "HEAD", name).h("content-type") == want
    r = swift(c, "PUT", "h.txt", b"x", **{"Content-Type": "x/y", "X-Detect-Content-Type": "true"})
    assert swift(c, "HEAD", "h.txt").h("content-type") == "text/plain"
    # the Pithos path keeps application/octet-stream for a PUT without a type
    c.request("PUT", c.p("c", "p.txt"), b"x", {"Content-Type": ""})
    assert c.request("HEAD", c.p("c", "p.txt")).h("content-type") == "application/octet-stream"


def test_part_number_serves_one_part(c: Client) -> None:
    parts = [b"a" * 100, b"b" * 50, b"c" * 7]
    for i, p in enumerate(parts):
        swift(c, "PUT", f"pn-{i}", p)
    manifest = [{"path": f"/c/pn-{i}", "etag": md5(p), "size_bytes": len(p)} for i, p in enumerate(parts)]
    assert swift(c, "PUT", "pn", json.dumps(manifest).encode(), query="multipart-manifest=put").status == 201
    whole = swift(c, "HEAD", "pn")
    for method in ("GET", "HEAD"):
        r = swift(c, method, "pn", query="part-number=2", Range="bytes=0-0")  # the part wins over Range
        assert r.status == 206 and r.h("content-range") == "bytes 100-149/157"
        assert r.h("content-length") == "50" and r.h("x-parts-count") == "3" and r.h("etag") == whole.h("etag")
        assert r.h("x-manifest-etag") and r.body == (b"b" * 50 if method == "GET" else b"")
    r = swift(c, "GET", "pn", query="part-number=0")
    assert r.status == 400 and r.body == b"Part number must be an integer greater than 0"
    r = swift(c, "GET", "pn", query="part-number=4")
    assert r.status == 416 and r.body == b"The requested part number is not satisfiable"
    assert r.h("content-range") == "bytes */157" and r.h("x-parts-count") == "3"
    r = swift(c, "HEAD", "pn", query="part-number=4")
    assert r.status == 416 and r.h("content-length") == "0"
    # a copy with ?part-number= copies that part's bytes
    r = c.request("COPY", c.p("c", "pn", api="swift", query="part-number=3"), headers={"Destination": "c/pn-copy"})
    assert r.status == 201 and swift(c, "GET", "pn-copy").body == b"c" * 7
    # and the manifest itself ignores it
    assert json.loads(swift(c, "GET", "pn", query="multipart-manifest=get&part-number=9").body)


def test_slo_listing_shows_slo_etag_beside_the_manifest_hash(c: Client) -> None:
    swift(c, "PUT", "le-0", b"z" * 10)
    manifest = [{"path": "/c/le-0", "etag": md5(b"z" * 10), "size_bytes": 10}]
    assert swift(c, "PUT", "le", json.dumps(manifest).encode(), query="multipart-manifest=put").status == 201
    listed = {e["name"]: e for e in c.request("GET", c.p("c", api="swift", query="format=json&prefix=le")).json()}
    raw = swift(c, "GET", "le", query="multipart-manifest=get")
    assert listed["le"]["bytes"] == 10 and listed["le"]["hash"] == md5(raw.body)
    assert listed["le"]["slo_etag"] == swift(c, "HEAD", "le").h("etag")
    assert "slo_etag" not in listed["le-0"]


def test_reverse_listings(c: Client) -> None:
    assert c.request("PUT", c.p("rev", api="swift")).status == 201
    for name in ("a1", "a2", "b/1", "b/2", "c"):
        c.request("PUT", c.p("rev", name, api="swift"), b"x")
    def names(query: str) -> list[str]:
        r = c.request("GET", c.p("rev", api="swift", query=query))
        return r.body.decode().split()
    assert names("reverse=on") == ["c", "b/2", "b/1", "a2", "a1"]
    assert names("reverse=true&delimiter=/") == ["c", "b/", "a2", "a1"]
    assert names("reverse=yes&marker=b/2&end_marker=a1") == ["b/1", "a2"]
    assert names("reverse=1&marker=b1%00") == ["b/2", "b/1", "a2", "a1"]  # a NUL marker: a bound only
    assert names("reverse=on&prefix=a&limit=1") == ["a2"]
    r = c.request("GET", c.p("rev", api="swift", query="reverse=on&marker=a&end_marker=b"))
    assert r.status == 204
    acct = c.request("GET", c.p(api="swift", query="reverse=on&prefix=re")).body.decode().split()
    assert acct == ["rev"]


def test_small_swift_refusals(c: Client, daemon: Daemon) -> None:
    # an empty metadata name, a COPY without a usable Destination: Swift's 400 and 412s
    r = swift(c, "PUT", "blank-meta", b"x", **{"X-Object-Meta-": "v"})
    assert r.status == 400 and swift(c, "HEAD", "blank-meta").status == 404
    swift(c, "PUT", "src", b"x")
    for dest in (None, "nocontainer", "//x"):
        hdrs = {} if dest is None else {"Destination": dest}
        assert c.request("COPY", c.p("c", "src", api="swift"), headers=hdrs).status == 412, dest
        assert c.request("COPY", c.p("c", "src"), headers=hdrs).status == 400, dest  # Pithos keeps 400
    # a 401 on the Swift path names its realm, quoted
    r = Client(daemon.port).request("GET", "/v1/a%22b%0Ac", auth=False)
    assert r.status == 401 and r.h("www-authenticate") == 'Swift realm="a%22b%0Ac"'
    r = Client(daemon.port).request("GET", c.p("c"), auth=False)
    assert r.h("www-authenticate") == 'Token realm="nefeli"'


# --- another account's resources, copies with a range or from another account ---


def test_another_accounts_resources_answer_403_existing_or_not(c: Client, daemon: Daemon) -> None:
    other = daemon.client(daemon.new_account("eve"), account="eve")
    assert other.put_container("eves").status == 201
    other.put("eves", "secret", b"s")
    for api in ("swift", "pithos"):
        for path in ((), ("eves",), ("nosuch",), ("eves", "secret"), ("eves", "nosuch"), ("nosuch", "x")):
            for method in ("GET", "HEAD"):
                r = c.request(method, c.p(*path, api=api, account="eve"))
                assert r.status == 403, (api, path, method, r)
        r = c.request("GET", c.p(api=api, account="nobody-at-all"))
        assert r.status == 403
    # once eve shares something in a container, its listing (and her account's) opens up
    r = other.request("POST", other.p("eves", "secret"), headers={"X-Object-Sharing": "read=demo"})
    assert r.status == 202
    assert c.request("GET", c.p("eves", account="eve")).body.split() == [b"secret"]
    assert c.request("GET", c.p(account="eve")).body.split() == [b"eves"]
    assert c.request("GET", c.p("eves", "secret", account="eve")).body == b"s"
    assert c.request("HEAD", c.p("eves", account="eve")).status == 403  # HEAD is the owner's


def test_copy_with_a_range_and_from_another_account(c: Client, daemon: Daemon) -> None:
    data = bytes(range(256)) * 4
    swift(c, "PUT", "ranged-src", data, **{"Content-Type": "x/y", "X-Object-Meta-K": "v"})
    r = c.request("COPY", c.p("c", "ranged-src", api="swift"), headers={"Destination": "c/ranged-dst", "Range": "bytes=100-200"})
    assert r.status == 201
    got = swift(c, "GET", "ranged-dst")
    assert got.body == data[100:201] and got.h("etag") == md5(data[100:201])
    assert got.h("content-type") == "x/y" and got.h("x-object-meta-k") == "v"
    r = swift(c, "PUT", "ranged-put", b"", **{"X-Copy-From": "c/ranged-src", "Range": "bytes=-10"})
    assert r.status == 201 and swift(c, "GET", "ranged-put").body == data[-10:]
    r = c.request("COPY", c.p("c", "ranged-src", api="swift"), headers={"Destination": "c/x", "Range": "bytes=5000-"})
    assert r.status == 416 and swift(c, "HEAD", "x").status == 404
    # X-Copy-From-Account: from an account that shares the object with the caller
    eve = daemon.client(daemon.new_account("eve2"), account="eve2")
    assert eve.put_container("pub").status == 201
    eve.put("pub", "o", b"from eve")
    r = swift(c, "PUT", "from-eve", b"", **{"X-Copy-From": "pub/o", "X-Copy-From-Account": "eve2"})
    assert r.status == 403  # not shared: 403, and no object
    eve.request("POST", eve.p("pub", "o"), headers={"X-Object-Sharing": "read=demo"})
    r = swift(c, "PUT", "from-eve", b"", **{"X-Copy-From": "pub/o", "X-Copy-From-Account": "eve2"})
    assert r.status == 201 and swift(c, "GET", "from-eve").body == b"from eve"
