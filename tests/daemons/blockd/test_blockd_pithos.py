"""nefeli-blockd: what Pithos clients (kamaki, the Pithos web UI) read beyond Swift:
X-Object-UUID, sharing and public paths in listings, emptying a container with
`DELETE ?delimiter`, the account quota (a real server process on loopback)."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from blockd_helpers import Client, Daemon, start_daemon

BS = 4096


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    d = start_daemon(tmp_path_factory.mktemp("blockd-pithos"))
    c = d.client()
    assert c.put_container("c", scheme="sha256", block_size=BS).status == 201
    yield d
    d.stop_cleanly()


def _uuid(c: Client, cont: str, name: str, api: str = "pithos") -> str:
    r = c.request("HEAD", c.p(cont, name, api=api))
    assert r.status == 200, r
    value = r.h("X-Object-UUID")
    assert value is not None and uuid.UUID(value).version == 4
    return value


def _listed(c: Client, cont: str, api: str = "pithos") -> dict[str, dict]:
    r = c.request("GET", c.p(cont, api=api, query="format=json"))
    assert r.status == 200, r
    return {e["name"]: e for e in r.json() if "name" in e}


def test_uuid_is_kept_by_versions_metadata_updates_and_partial_updates(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.put("c", "doc", b"first").status == 201
    u = _uuid(c, "c", "doc")
    assert _uuid(c, "c", "doc", api="swift") == u
    assert c.get("c", "doc").h("X-Object-UUID") == u
    assert c.put("c", "doc", b"second version").status == 201
    assert _uuid(c, "c", "doc") == u
    assert c.request("POST", c.p("c", "doc", query="update"), headers={"X-Object-Meta-Color": "red"}).status == 202
    assert c.request("POST", c.p("c", "doc", api="swift"), headers={"X-Object-Meta-Size": "big"}).status == 202
    r = c.request("POST", c.p("c", "doc"), b"!!", {"Content-Range": "bytes */*", "Content-Length": "2"})
    assert r.status == 204, r
    assert c.get("c", "doc").body == b"second version!!"
    assert _uuid(c, "c", "doc") == u
    versions = c.get("c", "doc", query="version=list&format=json").json()["versions"]
    assert len(versions) == 5
    old = c.get("c", "doc", query=f"version={versions[0][0]}")
    assert old.body == b"first" and old.h("X-Object-UUID") == u
    assert _listed(c, "c")["doc"]["x_object_uuid"] == u
    assert _listed(c, "c", api="swift")["doc"]["x_object_uuid"] == u


def test_move_keeps_the_uuid_copy_makes_a_new_one(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.put_container("other", scheme="sha256", block_size=BS).status == 201
    assert c.put_container("blake", scheme="blake3", block_size=BS * 2).status == 201
    assert c.put("c", "a", b"payload").status == 201
    u = _uuid(c, "c", "a")
    assert c.request("MOVE", c.p("c", "a"), headers={"Destination": "/c/b"}).status == 201
    assert _uuid(c, "c", "b") == u
    assert c.request("PUT", c.p("other", "c"), headers={"X-Move-From": "/c/b"}).status == 201
    assert _uuid(c, "other", "c") == u
    # through the data path (another hash scheme): still the same object
    assert c.request("MOVE", c.p("other", "c"), headers={"Destination": "/blake/d"}).status == 201
    assert _uuid(c, "blake", "d") == u and c.get("blake", "d").body == b"payload"
    assert c.request("COPY", c.p("blake", "d"), headers={"Destination": "/blake/e"}).status == 201
    assert c.request("PUT", c.p("c", "f"), headers={"X-Copy-From": "/blake/d"}).status == 201
    assert c.request("PUT", c.p("blake", "d"), headers={"X-Copy-From": "/blake/d"}).status == 201
    copies = {_uuid(c, "blake", "e"), _uuid(c, "c", "f"), _uuid(c, "blake", "d")}
    assert len(copies | {u}) == 4
    assert _listed(c, "blake")["e"]["x_object_uuid"] == _uuid(c, "blake", "e")


def test_a_deleted_name_written_again_is_a_new_object(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.put("c", "gone", b"1").status == 201
    u = _uuid(c, "c", "gone")
    assert c.request("DELETE", c.p("c", "gone")).status == 204
    assert c.put("c", "gone", b"2").status == 201
    assert _uuid(c, "c", "gone") not in (u, None)


def test_json_listings_show_own_sharing_and_public_path_to_the_owner(daemon: Daemon) -> None:
    c = daemon.client()
    bob = daemon.client(daemon.new_account("bob"), account="demo")
    assert c.put_container("s").status == 201
    for name in ("dir", "dir/inside", "plain", "pub", "shared"):
        ctype = "application/directory" if name == "dir" else "text/plain"
        assert c.put("s", name, b"" if name == "dir" else name.encode(), **{"Content-Type": ctype}).status == 201
    post = {"shared": {"X-Object-Sharing": "write=bob;read=*"}, "dir": {"X-Object-Sharing": "read=bob"},
            "pub": {"X-Object-Public": "true"}}
    for name, headers in post.items():
        assert c.request("POST", c.p("s", name, query="update"), headers=headers).status == 202
    header = c.request("HEAD", c.p("s", "pub")).h("X-Object-Public")
    assert header is not None and "/public/" in header
    public = header[header.index("/public/"):]
    listed = _listed(c, "s")
    assert listed["shared"]["x_object_sharing"] == "read=*;write=bob"
    assert listed["dir"]["x_object_sharing"] == "read=bob"
    assert listed["pub"]["x_object_public"] == public
    assert c.request("GET", public, auth=False).body == b"pub"
    for name in ("dir/inside", "plain"):  # inherited sharing is not the object's own
        assert "x_object_sharing" not in listed[name] and "x_object_public" not in listed[name]
    assert "x_object_sharing" not in listed["pub"] and "x_object_public" not in listed["shared"]
    top = c.request("GET", c.p("s", query="format=json&delimiter=/&prefix=p")).json()
    assert [(e["name"], "x_object_public" in e) for e in top] == [("plain", False), ("pub", True)]
    assert _listed(c, "s", api="swift")["shared"]["x_object_sharing"] == "read=*;write=bob"
    xml = c.request("GET", c.p("s", query="format=xml")).body
    assert b"<x_object_sharing>read=*;write=bob</x_object_sharing>" in xml
    # Another user sees what is shared with them, not how it is shared.
    theirs = bob.request("GET", bob.p("s", query="format=json")).json()
    assert sorted(e["name"] for e in theirs) == ["dir", "dir/inside", "shared"]
    assert all("x_object_sharing" not in e and "x_object_public" not in e for e in theirs)
    # Unsharing and unpublishing take the keys away again.
    for name, headers in {"shared": {"X-Object-Sharing": ""}, "pub": {"X-Object-Public": "false"}}.items():
        assert c.request("POST", c.p("s", name, query="update"), headers=headers).status == 202
    listed = _listed(c, "s")
    assert "x_object_sharing" not in listed["shared"] and "x_object_public" not in listed["pub"]


@pytest.mark.parametrize("versioning", ["auto", "none"])
def test_container_delete_with_delimiter_empties_it(daemon: Daemon, versioning: str) -> None:
    c = daemon.client()
    cont = f"empty-{versioning}"
    assert c.put_container(cont, **{"X-Container-Policy-Versioning": versioning}).status == 201
    for name in ("a", "b/c", "b/d", "e"):
        assert c.put(cont, name, name.encode()).status == 201
    assert c.put(cont, "a", b"a again").status == 201
    assert c.request("POST", c.p(cont, "e", query="update"), headers={"X-Object-Public": "true"}).status == 202
    public = c.request("HEAD", c.p(cont, "e")).h("X-Object-Public")
    assert public is not None
    public = public[public.index("/public/"):]
    assert c.request("GET", public, auth=False).status == 200
    assert c.request("DELETE", c.p(cont)).status == 409  # a plain DELETE still refuses
    assert c.request("DELETE", c.p(cont, api="swift", query="delimiter=/")).status == 409  # Swift has no such thing
    other = daemon.client(daemon.new_account(f"eve-{versioning}"), account="demo")
    assert other.request("DELETE", other.p(cont, query="delimiter=/")).status == 403
    r = c.request("DELETE", c.p(cont, query="delimiter=/"))
    assert r.status == 204 and r.body == b""
    head = c.request("HEAD", c.p(cont))
    assert head.status == 204 and head.h("X-Container-Object-Count") == "0"
    assert head.h("X-Container-Bytes-Used") == "0"
    assert c.request("GET", c.p(cont)).status == 204
    assert c.get(cont, "a").status == 404
    assert c.request("GET", public, auth=False).status == 404
    if versioning == "auto":
        # as a plain object DELETE does: history kept, the last version retrievable
        versions = c.get(cont, "a", query="version=list&format=json").json()["versions"]
        assert [c.get(cont, "a", query=f"version={s}").body for s, _ in versions] == [b"a", b"a again"]
        assert head.h("X-Container-Bytes-Stored") != "0"
    else:
        assert c.get(cont, "a", query="version=list&format=json").status == 404
        assert head.h("X-Container-Bytes-Stored") == "0"
    # emptying an empty container is fine; then it can go
    assert c.request("DELETE", c.p(cont, query="delimiter=/")).status == 204
    assert c.put(cont, "new", b"still usable").status == 201
    assert c.request("DELETE", c.p(cont, "new")).status == 204
    assert c.request("DELETE", c.p(cont)).status == 204
    assert c.request("DELETE", c.p(cont, query="delimiter=/")).status == 404


def test_account_quota_through_x_account_policy_quota(daemon: Daemon) -> None:
    c = daemon.client(daemon.new_account("quoted"), account="quoted")
    head = c.request("HEAD", c.p())
    assert head.status == 204 and head.h("X-Account-Policy-Quota") == "0"  # 0 = unlimited
    assert c.request("POST", c.p(), headers={"X-Account-Policy-Quota": "1000"}).status == 202
    assert c.request("HEAD", c.p()).h("X-Account-Policy-Quota") == "1000"
    for cont in ("one", "two"):
        assert c.put_container(cont).status == 201
    assert c.put("one", "fits", os.urandom(600)).status == 201
    over = c.put("two", "too-big", os.urandom(600))
    assert over.status == 413 and over.body  # counted over all containers
    assert c.request("PUT", c.p("two", "too-big"), [os.urandom(600)], chunked=True).status == 413
    assert c.get("two", "too-big").status == 404
    assert c.put("two", "small", os.urandom(300), api="swift").status == 201
    # a POST that replaces meta and groups leaves the policies alone unless it names them
    assert c.request("POST", c.p(), headers={"X-Account-Meta-Owner": "q"}).status == 202
    assert c.request("HEAD", c.p()).h("X-Account-Policy-Quota") == "1000"
    assert c.request("POST", c.p(api="swift"), headers={"X-Account-Policy-Quota": "2000"}).status == 204  # Swift answers an account POST with 204
    assert c.put("two", "now-fits", os.urandom(600)).status == 201
    assert c.request("POST", c.p(query="update"), headers={"X-Account-Policy-Quota": "0"}).status == 202
    assert c.request("HEAD", c.p()).h("X-Account-Policy-Quota") == "0"
    assert c.put("two", "unlimited", os.urandom(5000)).status == 201


def _answer_without_body(port: int, path: str, token: str, length: int) -> bytes:
    """Send a PUT's headers only, claiming `length` bytes; return what the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            f"PUT {path} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\nContent-Length: {length}\r\n\r\n".encode()
        )
        return s.recv(4096)  # a server waiting for the body would time out here


@pytest.mark.parametrize("which", ["account", "container"])
def test_a_body_over_quota_is_refused_before_it_is_sent(daemon: Daemon, which: str) -> None:
    """With Content-Length, a PUT that cannot fit gets 413 at once, not after 10 GiB arrived."""
    name = f"early-{which}"
    token = daemon.new_account(name)
    c = daemon.client(token, account=name)
    if which == "account":
        assert c.request("POST", c.p(), headers={"X-Account-Policy-Quota": "1000"}).status == 202
        assert c.put_container("c").status == 201
    else:
        assert c.put_container("c", **{"X-Container-Policy-Quota": "1000"}).status == 201
    assert c.put("c", "fits", os.urandom(600)).status == 201
    answer = _answer_without_body(daemon.port, c.p("c", "huge"), token, 10 << 30)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert f"{which} {name}".encode() in answer  # says which quota
    assert c.get("c", "huge").status == 404
    assert c.put("c", "small", os.urandom(300)).status == 201  # what fits still does


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Account-Policy-Quota": "lots"},
        {"X-Account-Policy-Quota": "-1"},
        {"X-Account-Policy-Quota": ""},
        {"X-Account-Policy-Quota": "1e6"},
        {"X-Account-Policy-Quota": "9" * 30},
        {"X-Account-Policy-Versioning": "auto"},
    ],
)
def test_bad_account_policies_are_400_and_change_nothing(daemon: Daemon, headers: dict[str, str]) -> None:
    c = daemon.client(daemon.new_account("strict"), account="strict")
    assert c.request("POST", c.p(), headers={"X-Account-Policy-Quota": "123"}).status == 202
    r = c.request("POST", c.p(query="update"), headers={**headers, "X-Account-Meta-Touched": "yes"})
    assert r.status == 400 and r.body and r.h("Content-Type").startswith("text/plain")
    head = c.request("HEAD", c.p())
    assert head.h("X-Account-Policy-Quota") == "123" and head.h("X-Account-Meta-Touched") is None


def test_only_the_account_itself_sets_its_quota(daemon: Daemon) -> None:
    owner = daemon.client(daemon.new_account("guarded"), account="guarded")
    assert owner.request("POST", owner.p(), headers={"X-Account-Policy-Quota": "100"}).status == 202
    intruder = daemon.client(daemon.new_account("intruder"), account="guarded")
    assert intruder.request("POST", intruder.p(), headers={"X-Account-Policy-Quota": "0"}).status == 403
    assert owner.request("HEAD", owner.p()).h("X-Account-Policy-Quota") == "100"


def test_an_object_over_the_largest_size_is_refused_before_it_is_sent(daemon: Daemon) -> None:
    from net.pithos_hashmap import MAX_OBJECT_SIZE

    c = daemon.client()
    assert c.put_container("huge").status == 201
    answer = _answer_without_body(daemon.port, c.p("huge", "o", api="swift"), daemon.token, MAX_OBJECT_SIZE + 1)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert c.get("huge", "o").status == 404


def test_info_lists_what_the_server_supports(daemon: Daemon) -> None:
    """Swift's capability discovery: no token, at the root of both prefixes."""
    c = daemon.client()
    for path in ("/info", "/object-store/info"):
        r = c.request("GET", path, auth=False)
        assert r.status == 200 and r.h("Content-Type").startswith("application/json"), r
        info = r.json()
        assert info["swift"]["max_file_size"] == 5 * 2**40
        assert info["swift"]["max_object_name_length"] == 1024
        assert info["swift"]["container_listing_limit"] == 10000
        assert info["slo"] == {"max_manifest_segments": 1000, "max_manifest_size": 8 * 2**20, "min_segment_size": 1}
        assert info["bulk_delete"] == {"max_deletes_per_request": 10000, "max_failed_deletes": 1000}
        assert info["nefeli"]["hash_schemes"] == ["blake3", "sha256"]
    assert c.request("HEAD", "/info", auth=False).status == 200
    assert c.request("POST", "/info", auth=False).status == 405
