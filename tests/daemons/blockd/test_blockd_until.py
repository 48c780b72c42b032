"""nefeli-blockd: Pithos `until`, reading the past over HTTP (a real server process
on loopback): objects, hashmaps, listings and usage as they were before a write
and a delete, under versioning auto and none; bad values and who may ask."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from blockd_helpers import Client, Daemon, sha_hashes, start_daemon
from net.http_conditional import format_http_date

BS = 4096


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    d = start_daemon(tmp_path_factory.mktemp("blockd-until"))
    yield d
    d.stop_cleanly()


def _q(until: str, extra: str = "") -> str:
    return "until=" + quote(until, safe="") + (("&" + extra) if extra else "")


def _timestamps(c: Client, cont: str, name: str) -> dict[int, str]:
    """serial -> the version's timestamp as the server shows it (six decimals)."""
    r = c.get(cont, name, query="version=list&format=json")
    assert r.status == 200, r
    return {serial: ts for serial, ts in r.json()["versions"]}


def _listing(c: Client, cont: str, query: str) -> list[dict]:
    r = c.request("GET", c.p(cont, query="format=json&" + query))
    assert r.status == 200, r  # a JSON listing is a JSON list, [] when empty
    return r.json()


def _next_second() -> int:
    """Sleep past the next whole second; returns it (for integer and date forms of until)."""
    boundary = math.floor(time.time()) + 1
    time.sleep(boundary - time.time() + 0.05)
    return boundary


def test_an_object_through_two_versions_and_a_delete(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.put_container("h", scheme="sha256", block_size=BS).status == 201
    first, second = b"first version " * 700, b"second!"
    time.sleep(0.05)  # so that there is a time when the container existed and "doc" did not
    r1 = c.put("h", "doc", first, **{"X-Object-Meta-Color": "red"})
    assert r1.status == 201
    v1 = int(r1.h("X-Object-Version") or 0)
    assert c.put("h", "dir/a", b"A").status == 201
    between = _next_second()
    r2 = c.put("h", "doc", second)
    assert r2.status == 201
    v2 = int(r2.h("X-Object-Version") or 0)
    ts = _timestamps(c, "h", "doc")
    assert c.request("DELETE", c.p("h", "doc")).status == 204
    after = _next_second()

    # the exact timestamp the server shows for a version names that version
    for serial, body in ((v1, first), (v2, second)):
        r = c.get("h", "doc", query=_q(ts[serial]))
        assert r.status == 200 and r.body == body, r
        assert r.h("X-Object-Version") == str(serial)
    old = c.get("h", "doc", query=_q(ts[v1]))
    assert old.h("X-Object-Meta-Color") == "red" and old.h("ETag") == r1.h("ETag")
    # a UNIX timestamp, an HTTP-date and ISO 8601 of the second between the two writes
    iso = datetime.fromtimestamp(between, UTC)
    for form in (str(between), format_http_date(between), iso.isoformat(), iso.strftime("%Y-%m-%dT%H:%M:%SZ")):
        r = c.get("h", "doc", query=_q(form))
        assert r.status == 200 and r.body == first, (form, r)
    head = c.request("HEAD", c.p("h", "doc", query=_q(str(between))))
    assert head.status == 200 and head.h("Content-Length") == str(len(first)) and not head.body
    # before it existed, and after the delete
    before = f"{float(ts[v1]) - 0.02:.6f}"
    assert c.get("h", "doc", query=_q(before)).status == 404
    assert c.get("h", "doc", query=_q(str(after))).status == 404
    assert c.get("h", "doc").status == 404
    # ranges and conditionals apply to the past version
    r = c.get("h", "doc", query=_q(str(between)), Range="bytes=0-4")
    assert r.status == 206 and r.body == b"first"
    assert c.get("h", "doc", query=_q(str(between)), **{"If-None-Match": r1.h("ETag") or ""}).status == 304

    # the container's listing and usage at each point
    def names(query: str) -> list[tuple[str, int]]:
        return [(e["name"], e["bytes"]) for e in _listing(c, "h", query) if "name" in e]

    assert names(_q(before)) == []
    assert names(_q(str(between))) == [("dir/a", 1), ("doc", len(first))]
    assert names(_q(ts[v2])) == [("dir/a", 1), ("doc", len(second))]
    assert names(_q(str(after))) == [("dir/a", 1)]
    (entry,) = [e for e in _listing(c, "h", _q(str(between))) if e.get("name") == "doc"]
    assert entry["x_object_version"] == v1 and entry["hash"] == r1.h("ETag")
    assert entry["x_object_version_timestamp"] == ts[v1]
    for until, count, size in ((str(between), 2, len(first) + 1), (ts[v2], 2, len(second) + 1), (str(after), 1, 1)):
        h = c.request("HEAD", c.p("h", query=_q(until)))
        assert h.status == 204, h
        assert (h.h("X-Container-Object-Count"), h.h("X-Container-Bytes-Used")) == (str(count), str(size))
        assert h.h("X-Container-Until-Timestamp") is not None
    assert c.request("HEAD", c.p("h")).h("X-Container-Until-Timestamp") is None
    plain = c.request("GET", c.p("h", query=_q(str(between))))
    assert plain.status == 200 and plain.body.decode().split() == ["dir/a", "doc"]
    assert plain.h("X-Container-Object-Count") == "2"

    # the version list as it was: versions written by then
    def version_list(query: str) -> list[int]:
        r = c.get("h", "doc", query="version=list&format=json&" + query)
        assert r.status == 200, r
        return [serial for serial, _ts in r.json()["versions"]]

    assert version_list(_q(str(between))) == [v1]
    assert version_list(_q(ts[v2])) == [v1, v2]
    assert version_list(_q(before)) == []


def test_hashmap_of_a_past_version(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.put_container("hm", scheme="sha256", block_size=BS).status == 201
    old, new = bytes(range(256)) * 40, b"short"
    assert c.put("hm", "blob", old).status == 201
    ts = next(iter(_timestamps(c, "hm", "blob").values()))
    assert c.put("hm", "blob", new).status == 201
    r = c.get("hm", "blob", query=_q(ts, "hashmap&format=json"))
    assert r.status == 200, r
    doc = r.json()
    assert doc["bytes"] == len(old) and doc["block_size"] == BS and doc["block_hash"] == "sha256"
    assert doc["hashes"] == [h.hex() for h in sha_hashes(old, BS)]
    assert c.get("hm", "blob", query="hashmap&format=json").json()["bytes"] == len(new)
    text = c.get("hm", "blob", query=_q(ts, "hashmap&format=text"))
    assert text.body.decode().split() == doc["hashes"]
    assert c.get("hm", "blob", query=_q("1000", "hashmap&format=json")).status == 404


def test_listings_with_prefix_and_delimiter_in_the_past(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.put_container("tree").status == 201
    for name in ("a/1", "a/2", "a/b/3", "b/4", "c"):
        assert c.put("tree", name, name.encode()).status == 201
    then = _next_second()
    assert c.request("DELETE", c.p("tree", "a/1")).status == 204
    assert c.request("DELETE", c.p("tree", "b/4")).status == 204
    assert c.put("tree", "a/new", b"n").status == 201
    assert c.put("tree", "d/5", b"5").status == 201

    def keys(query: str) -> list[str]:
        return [e.get("name") or "/" + e["subdir"] for e in _listing(c, "tree", query)]

    t = _q(str(then))
    assert keys(f"{t}&delimiter=/") == ["/a/", "/b/", "c"]
    assert keys("delimiter=/") == ["/a/", "c", "/d/"]
    assert keys(f"{t}&prefix=a/&delimiter=/") == ["a/1", "a/2", "/a/b/"]
    assert keys(f"{t}&path=a") == ["a/1", "a/2", "/a/b/"]
    assert keys(f"{t}&prefix=a/") == ["a/1", "a/2", "a/b/3"]
    assert keys(f"{t}&limit=2") == ["a/1", "a/2"]
    assert keys(f"{t}&marker=a/2&limit=2") == ["a/b/3", "b/4"]
    assert keys(f"{t}&delimiter=/&marker=a/") == ["/b/", "c"]
    assert keys(f"{t}&end_marker=b") == ["a/1", "a/2", "a/b/3"]


def test_versioning_none_shows_what_is_kept(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.put_container("flat", **{"X-Container-Policy-Versioning": "none"}).status == 201
    assert c.put("flat", "kept", b"k").status == 201
    assert c.put("flat", "rewritten", b"old").status == 201
    then = _next_second()
    assert c.put("flat", "rewritten", b"new!").status == 201
    t = _q(str(then))
    assert [e["name"] for e in _listing(c, "flat", t)] == ["kept"]  # the old version is gone
    assert c.get("flat", "kept", query=t).body == b"k"
    assert c.get("flat", "rewritten", query=t).status == 404
    assert c.get("flat", "rewritten", query=_q(str(_next_second()))).body == b"new!"


def test_account_in_the_past(daemon: Daemon) -> None:
    owner = daemon.client(daemon.new_account("historian"), account="historian")
    assert owner.put_container("one").status == 201
    assert owner.put("one", "x", b"xx").status == 201
    then = _next_second()
    assert owner.put_container("two").status == 201
    assert owner.put("two", "y", b"yyy").status == 201
    assert owner.put("one", "z", b"z").status == 201
    t = _q(str(then))
    h = owner.request("HEAD", owner.p(query=t))
    assert h.status == 204, h
    assert (h.h("X-Account-Container-Count"), h.h("X-Account-Object-Count"), h.h("X-Account-Bytes-Used")) == (
        "1", "1", "2"
    )
    assert h.h("X-Account-Until-Timestamp") is not None
    now = owner.request("HEAD", owner.p())
    assert (now.h("X-Account-Container-Count"), now.h("X-Account-Object-Count")) == ("2", "3")
    listed = owner.request("GET", owner.p(query="format=json&" + t)).json()
    assert [(e["name"], e["count"], e["bytes"]) for e in listed] == [("one", 1, 2)]
    assert owner.request("HEAD", owner.p("two", query=t)).status == 404  # created later
    assert owner.request("GET", owner.p("two", query=t)).status == 404


@pytest.fixture(scope="module")
def bad_until_target(daemon: Daemon) -> Daemon:
    """Container "bad" with object "o", made once for every bad value."""
    c = daemon.client()
    assert c.put_container("bad").status == 201
    assert c.put("bad", "o", b"o").status == 201
    return daemon


@pytest.mark.parametrize(
    "value", ["abc", "-1", "-0.5", "1e9", "99999999999999", "253402300800", "2024-13-01", "Sun, 06 Nov 1994", "%00"]
)
def test_bad_until_is_a_400_with_a_short_text(bad_until_target: Daemon, value: str) -> None:
    c = bad_until_target.client()
    query = "until=" + (value if value.startswith("%") else quote(value, safe=""))
    for method, path in (
        ("GET", c.p("bad", "o", query=query)),
        ("HEAD", c.p("bad", "o", query=query)),
        ("GET", c.p("bad", "o", query=query + "&hashmap")),
        ("GET", c.p("bad", query=query)),
        ("HEAD", c.p("bad", query=query)),
        ("GET", c.p(query=query)),
        ("HEAD", c.p(query=query)),
    ):
        r = c.request(method, path)
        assert r.status == 400, (method, path, r)
        if method == "GET":
            assert r.h("Content-Type", ).startswith("text/plain") and 0 < len(r.body) < 200, r


def test_a_manifest_object_reads_its_segments_as_they_were(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.put_container("dseg").status == 201 and c.put_container("dman").status == 201
    assert c.put("dseg", "s/0000", b"aaa").status == 201
    assert c.put("dseg", "s/0001", b"bbb").status == 201
    assert c.put("dman", "m", b"", **{"X-Object-Manifest": "dseg/s/"}).status == 201
    then = _next_second()
    assert c.put("dseg", "s/0001", b"BBBB").status == 201
    assert c.put("dseg", "s/0002", b"cc").status == 201
    assert c.request("DELETE", c.p("dseg", "s/0000")).status == 204

    assert c.get("dman", "m").body == b"BBBBcc"
    past = c.get("dman", "m", query=_q(str(then)))
    assert past.status == 200 and past.body == b"aaabbb", past
    assert past.h("Content-Length") == "6"
    r = c.get("dman", "m", query=_q(str(then)), Range="bytes=2-3")
    assert r.status == 206 and r.body == b"ab"
    head = c.request("HEAD", c.p("dman", "m", query=_q(str(then))))
    assert head.status == 200 and head.h("Content-Length") == "6"
    assert head.h("ETag") != c.request("HEAD", c.p("dman", "m")).h("ETag")  # other segments, other ETag


def test_who_may_ask_and_where(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.put_container("shared").status == 201
    assert c.put("shared", "doc", b"old").status == 201
    then = _next_second()
    assert c.put("shared", "doc", b"new").status == 201
    r = c.request("POST", c.p("shared", "doc", query="update"), headers={"X-Object-Sharing": "read=reader"})
    assert r.status == 202
    reader = daemon.client(daemon.new_account("reader"), account="demo")
    t = _q(str(then))
    assert reader.get("shared", "doc").body == b"new"
    assert reader.get("shared", "doc", query=t).status == 403  # only the owner looks into the past
    assert reader.request("GET", reader.p("shared", query=t)).status == 403
    # Swift has no until: ignored there
    assert c.get("shared", "doc", api="swift", query=t).body == b"new"
    assert c.get("shared", "doc", query="until=").body == b"new"  # empty = absent
    assert c.get("shared", "doc", query=t).body == b"old"
    # a version and a time at once is ambiguous
    serial = min(_timestamps(c, "shared", "doc"))
    assert c.get("shared", "doc", query=f"version={serial}&{t}").status == 400
    # owner-only headers (sharing) are not shown for the past
    assert c.get("shared", "doc").h("X-Object-Sharing") == "read=reader"
    assert c.get("shared", "doc", query=t).h("X-Object-Sharing") is None
