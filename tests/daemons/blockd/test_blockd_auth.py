"""nefeli-blockd: auth, sharing, public URLs, quotas, metrics, bad requests, lifecycle."""

from __future__ import annotations

import json
import os
import signal
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blockd_helpers import Client, Daemon, start_daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    d = start_daemon(tmp_path_factory.mktemp("blockd-auth"))
    c = d.client()
    assert c.put_container("c").status == 201
    yield d
    d.stop_cleanly()


def test_first_start_prints_token_and_stores_no_secret(daemon: Daemon) -> None:
    log = daemon.log.read_text()
    assert "NEFELI_URL=" in log and "NEFELI_TOKEN=" in log and "NEFELI_ACCOUNT=demo" in log
    raw = (daemon.data / "meta.db").read_bytes()
    for extra in ("meta.db-wal",):
        p = daemon.data / extra
        if p.exists():
            raw += p.read_bytes()
    assert daemon.token.encode() not in raw


def test_no_token_401(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.request("GET", c.p("c"), auth=False).status == 401
    assert c.request("GET", c.p("c"), headers={"X-Auth-Token": "nope"}).status == 401
    assert c.request("GET", c.p("c", api="swift"), auth=False).status == 401


def test_auth_v1(daemon: Daemon) -> None:
    with daemon.meta() as m:
        m.tokens.set_key("demo:swift", "demo", "a-long-enough-key-123")
    c = Client(daemon.port)
    r = c.request("GET", "/auth/v1.0", headers={"X-Auth-User": "demo:swift", "X-Auth-Key": "a-long-enough-key-123"})
    assert r.status == 200
    url, tok = r.h("X-Storage-Url"), r.h("X-Auth-Token")
    assert url.endswith("/v1/demo") and tok
    path = url.split(str(daemon.port), 1)[1]
    listing = c.request("GET", path, headers={"X-Auth-Token": tok})
    assert listing.status == 200 and b"c\n" in listing.body.splitlines(keepends=True)  # demo's containers
    bad = c.request("GET", "/auth/v1.0", headers={"X-Auth-User": "demo:swift", "X-Auth-Key": "wrong-key-wrong-key"})
    assert bad.status == 401
    assert c.request("GET", "/auth/v1.0").status == 401
    # a login while the token is valid answers the same token (no pile of tokens per call)
    again = c.request("GET", "/auth/v1.0", headers={"X-Auth-User": "demo:swift", "X-Auth-Key": "a-long-enough-key-123"})
    assert again.h("X-Auth-Token") == tok and 0 < int(again.h("X-Auth-Token-Expires") or 0) <= 86400
    with daemon.meta() as m:
        assert sum(t.description == "auth/v1.0" for t in m.tokens.list("demo")) == 1


def test_identity_v2(daemon: Daemon) -> None:
    c = Client(daemon.port)
    body = json.dumps({"auth": {"token": {"id": daemon.token}}}).encode()
    r = c.request("POST", "/identity/v2.0/tokens", body, {"Content-Type": "application/json"})
    assert r.status == 200
    access = r.json()["access"]
    assert access["token"]["id"] == daemon.token and access["user"]["id"] == "demo"
    (svc,) = [s for s in access["serviceCatalog"] if s["type"] == "object-store"]
    url = svc["endpoints"][0]["publicURL"]
    assert url.endswith("/object-store/v1")
    bad = json.dumps({"auth": {"token": {"id": "bogus"}}}).encode()
    assert c.request("POST", "/identity/v2.0/tokens", bad).status == 401
    assert c.request("POST", "/identity/v2.0/tokens", b"{not json").status == 400
    with daemon.meta() as m:
        m.tokens.set_key("kamaki-user", "demo", "another-long-key-456")
    pw = json.dumps({"auth": {"passwordCredentials": {"username": "kamaki-user", "password": "another-long-key-456"}}})
    r = c.request("POST", "/identity/v2.0/tokens", pw.encode())
    assert r.status == 200
    new = r.json()["access"]["token"]["id"]
    owner = daemon.client()
    assert owner.put_container("kamaki").status == 201 and owner.put("kamaki", "k", b"k").status == 201
    listing = Client(daemon.port, new).request("GET", "/object-store/v1/demo/kamaki")
    assert listing.status == 200 and listing.body == b"k\n"


def test_an_object_shared_with_one_user_is_refused_to_a_third(daemon: Daemon) -> None:
    """read=dave lets dave read, and nobody else: erin is refused on every path."""
    c = daemon.client()
    dave = daemon.client(daemon.new_account("dave"))
    erin = daemon.client(daemon.new_account("erin"))
    assert c.put_container("for-dave").status == 201
    assert c.put("for-dave", "note", b"for dave only", **{"X-Object-Sharing": "read=dave"}).status == 201
    assert c.put("for-dave", "other", b"not shared").status == 201
    assert dave.get("for-dave", "note").body == b"for dave only"
    assert dave.get("for-dave", "note", api="swift").body == b"for dave only"
    for api in ("pithos", "swift"):
        assert erin.get("for-dave", "note", api=api).status == 403
        assert erin.request("HEAD", erin.p("for-dave", "note", api=api)).status == 403
        assert erin.get("for-dave", "note", api=api, Range="bytes=0-3").status == 403
        assert erin.get("for-dave", "note", api=api, query="version=list").status == 403
    assert erin.get("for-dave", "note", query="hashmap&format=json").status == 403
    assert erin.request("PUT", erin.p("mine", account="erin")).status == 201
    copy = erin.request(
        "PUT", erin.p("mine", "stolen", account="erin"),
        headers={"X-Copy-From": "/for-dave/note", "X-Source-Account": "demo"},
    )
    assert copy.status == 403
    assert erin.request("GET", erin.p("mine", "stolen", account="erin")).status == 404
    # dave's listing of the container shows what is shared with him; erin's shows nothing
    assert dave.request("GET", c.p("for-dave")).body == b"note\n"
    # nothing in it is shared with erin: 403, as for a container that does not exist
    assert erin.request("GET", c.p("for-dave")).status == 403
    assert b"demo" not in erin.request("GET", "/object-store/v1").body


def test_sharing_and_groups(daemon: Daemon) -> None:
    c = daemon.client()
    bob_tok = daemon.new_account("bob")
    bob = daemon.client(bob_tok)
    c.put("c", "private", b"secret")
    assert bob.get("c", "private").status == 403
    assert bob.put("c", "private", b"overwrite").status == 403
    assert c.request("POST", c.p("c", "private", query="update"), headers={"X-Object-Sharing": "read=bob"}).status == 202
    assert bob.get("c", "private").status == 200
    assert bob.get("c", "private").body == b"secret"
    assert bob.put("c", "private", b"overwrite").status == 403
    assert c.request("HEAD", c.p("c", "private")).h("X-Object-Sharing") == "read=bob"
    # bob sees it in a listing of demo's container
    assert bob.request("GET", c.p("c")).body == b"private\n"
    # groups
    carol_tok = daemon.new_account("carol")
    carol = daemon.client(carol_tok)
    assert c.request("POST", c.p(query="update"), headers={"X-Account-Group-Team": "carol,bob"}).status == 202
    assert c.request("HEAD", c.p()).h("X-Account-Group-Team") == "bob,carol"
    c.put("c", "team-doc", b"t", **{"X-Object-Sharing": "write=demo:team"})
    assert carol.get("c", "team-doc").status == 200
    assert carol.put("c", "team-doc", b"by carol").status == 201
    assert c.get("c", "team-doc").body == b"by carol"
    assert c.get("c", "team-doc").h("X-Object-Modified-By") == "carol"
    # carol cannot change the sharing itself
    assert carol.request("POST", c.p("c", "team-doc", query="update"), headers={"X-Object-Sharing": "read=*"}).status == 403
    assert c.request("POST", c.p("c", "team-doc", query="update"), headers={"X-Object-Sharing": "read=;;"}).status == 400
    assert c.request("POST", c.p("c", "no-such", query="update"), headers={"X-Object-Sharing": "read=bob"}).status == 404
    # another account's container/account: 403, whether or not it exists (issue 11)
    assert bob.request("HEAD", c.p("c")).status == 403
    assert bob.request("PUT", c.p("newc")).status == 403
    assert c.request("GET", c.p("c", account="nosuchaccount")).status == 403
    # top level: accounts sharing with bob
    assert b"demo" in bob.request("GET", "/object-store/v1").body


def test_public_urls(daemon: Daemon) -> None:
    c = daemon.client()
    c.put("c", "pub", b"public data", **{"X-Object-Public": "true"})
    url = c.request("HEAD", c.p("c", "pub")).h("X-Object-Public")
    assert url and "/public/" in url
    path = url[url.index("/public/") :]
    anon = Client(daemon.port)
    r = anon.request("GET", path)
    assert r.status == 200 and r.body == b"public data"
    assert anon.request("GET", path, headers={"Range": "bytes=0-5"}).body == b"public"
    assert anon.request("PUT", path, b"x").status == 405
    assert anon.request("GET", "/public/doesnotexist").status == 404
    assert c.request("POST", c.p("c", "pub", query="update"), headers={"X-Object-Public": "false"}).status == 202
    assert anon.request("GET", path).status == 404


def test_quota(daemon: Daemon) -> None:
    c = daemon.client()
    assert c.put_container("q", **{"X-Container-Policy-Quota": "1000"}).status == 201
    assert c.request("HEAD", c.p("q")).h("X-Container-Policy-Quota") == "1000"
    assert c.put("q", "fits", os.urandom(600)).status == 201
    assert c.put("q", "too-big", os.urandom(600)).status == 413
    assert c.request("PUT", c.p("q", "too-big2"), [os.urandom(600)], chunked=True).status == 413
    assert c.get("q", "too-big").status == 404


BAD = [
    ("GET", "/object-store/v1/demo/c/../etc/passwd", 400),
    ("GET", "/object-store/v1/demo/c/a/./b", 400),
    ("GET", "/object-store/v1/demo/c/a%00b", 400),
    ("GET", "/object-store/v1/demo/c/" + "x" * 1025, 400),
    ("GET", "/object-store/v1/demo/c/%ff%fe", 400),
    ("GET", "/v1/demo/c/..", 400),
    ("GET", "/nothing/here", 404),
    ("GET", "/object-store/v1/demo/nocontainer/obj", 404),
    ("PUT", "/object-store/v1/demo/nocontainer/obj", 404),
    ("GET", "/object-store/v1/demo/c/obj?version=-1", 400),
    ("PATCH", "/object-store/v1/demo/c/obj", 405),
    ("DELETE", "/object-store/v1/demo", 405),
]


@pytest.mark.parametrize("method,path,status", BAD)
def test_bad_requests(daemon: Daemon, method: str, path: str, status: int) -> None:
    c = daemon.client()
    r = c.request(method, path)
    assert r.status == status, (method, path, r)
    assert r.body  # a short text body


def test_bad_headers(daemon: Daemon) -> None:
    c = daemon.client()
    c.put("c", "o", b"data")
    assert c.request("PUT", c.p("x1"), headers={"X-Container-Policy-Block-Size": "abc"}).status == 400
    assert c.request("PUT", c.p("x2"), headers={"X-Container-Policy-Block-Hash": "md5"}).status == 400
    assert c.request("PUT", c.p("x3"), headers={"X-Container-Policy-Versioning": "sometimes"}).status == 400
    assert c.request("PUT", c.p("x4"), headers={"X-Container-Policy-Bogus": "1"}).status == 400
    assert c.request("PUT", c.p("c", "o2"), headers={"X-Copy-From": "nocontainer"}).status == 400
    assert c.request("POST", c.p("c", "o"), headers={"X-Object-Bytes": "-5"}).status == 400
    assert c.request("PUT", c.p("c", "o3"), b"x", {"X-Object-Meta-" + "k" * 200: "v"}).status == 400
    assert c.request("GET", c.p("c", "o"), headers={"If-Match": '"unterminated'}).status == 400
    # any header text is a content type (as Swift and Pithos keep them), but not one past the limit
    assert c.request("PUT", c.p("c", "o4"), b"x", {"Content-Type": "t" * 300}).status == 400


def test_metrics_and_healthz(daemon: Daemon) -> None:
    c = Client(daemon.port)
    assert c.request("GET", "/healthz").json()["status"] == "ok"
    text = c.request("GET", "/metrics").body.decode()
    for name in (
        "nefeli_blockd_requests_total{",
        "nefeli_blockd_request_duration_seconds_bucket{",
        "nefeli_blockd_bytes_in_total",
        "nefeli_blockd_bytes_out_total",
        "nefeli_blockd_blocks_deduplicated_total",
    ):
        assert name in text, name
    assert 'status="401"' in text or 'status="200"' in text


METHODS = st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE", "COPY", "MOVE"])
SEGMENT = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12)
HEADER_NAMES = st.sampled_from(
    [
        "Range", "If-Match", "If-None-Match", "If-Modified-Since", "Content-Range", "X-Copy-From",
        "X-Move-From", "Destination", "X-Object-Sharing", "X-Object-Public", "X-Object-Bytes",
        "X-Source-Object", "X-Source-Version", "X-Object-Manifest", "Content-Type", "ETag",
        "X-Container-Policy-Quota", "X-Container-Policy-Block-Size", "X-Account-Group-Zz", "X-Object-Meta-A",
    ]
)
HEADER_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
QUERIES = st.sampled_from(["", "hashmap", "hashmap&format=json", "update", "version=list", "version=1",
                           "format=json", "format=xml", "delimiter=/", "limit=2", "path=a"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=METHODS,
    level=st.integers(0, 3),
    segs=st.lists(SEGMENT, min_size=3, max_size=3),
    query=QUERIES,
    headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=4),
    body=st.one_of(st.none(), st.binary(max_size=300), st.sampled_from([b'{"bytes":1,"hashes":["00"]}', b"[]"])),
)
def test_fuzz_never_500(daemon: Daemon, method: str, level: int, segs: list[str], query: str,
                        headers: dict[str, str], body: bytes | None) -> None:
    from urllib.parse import quote

    c = daemon.client()
    parts = ["demo", "c" if segs[0] == "" else segs[0], segs[1] or "o", segs[2]][: level + 1]
    if level >= 1 and len(parts) > 1 and segs[0] == "":
        parts[1] = "c"
    path = "/object-store/v1/" + "/".join(quote(p, safe="") for p in parts)
    if query:
        path += "?" + query
    r = c.request(method, path, body, headers)
    assert r.status < 500, (method, path, headers, body, r)


def test_sigterm_clean_exit(tmp_path) -> None:
    d = start_daemon(tmp_path)
    c = d.client()
    assert c.put_container("x").status == 201
    assert d.stop(signal.SIGTERM) == 0
    # restart on the same data: no second bootstrap, the old token still works
    port = d.port
    import subprocess
    import sys
    from blockd_helpers import REPO

    log = tmp_path / "second.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemons.blockd.main", "--data", str(d.data), "--listen", f"127.0.0.1:{port}",
         "--db-synchronous", "NORMAL", "--nbd-listen", "127.0.0.1:0"],
        cwd=str(REPO), env=dict(os.environ, PYTHONPATH=str(REPO)), stderr=open(log, "wb"),
    )
    try:
        import time

        for _ in range(200):
            try:
                if Client(port).request("GET", "/healthz", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        assert Client(port, d.token).request("HEAD", "/v1/demo/x").status == 204
        assert "token:" not in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_socket_activation(tmp_path) -> None:
    """LISTEN_FDS: the daemon serves on the inherited socket instead of --listen."""
    import subprocess
    import sys
    import time
    from blockd_helpers import REPO

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    code = (
        "import os,sys;fd=int(sys.argv[1]);os.dup2(fd,3);os.environ['LISTEN_FDS']='1';"
        "os.environ['LISTEN_PID']=str(os.getpid());os.environ['LISTEN_FDNAMES']='http';"
        "os.execv(sys.executable,[sys.executable,'-m','daemons.blockd.main']+sys.argv[2:])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(sock.fileno()), "--data", str(tmp_path / "d"),
         "--listen", "127.0.0.1:1", "--db-synchronous", "NORMAL", "--nbd-listen", "127.0.0.1:0"],
        cwd=str(REPO), env=dict(os.environ, PYTHONPATH=str(REPO)), pass_fds=(sock.fileno(),),
        stderr=subprocess.DEVNULL,
    )
    sock.close()
    try:
        ok = False
        for _ in range(300):
            try:
                ok = Client(port).request("GET", "/healthz", timeout=1).status == 200
                break
            except OSError:
                time.sleep(0.05)
        assert ok
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_notify_ready_after_listening(tmp_path) -> None:
    """READY=1 goes to $NOTIFY_SOCKET only once the port accepts connections."""
    import subprocess
    import sys
    from blockd_helpers import REPO
    from free_ports import free_port

    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(str(tmp_path / "notify"))
    ns.settimeout(30)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemons.blockd.main", "--data", str(tmp_path / "d"),
         "--listen", f"127.0.0.1:{port}", "--db-synchronous", "NORMAL", "--nbd-listen", "127.0.0.1:0"],
        cwd=str(REPO), env=dict(os.environ, PYTHONPATH=str(REPO), NOTIFY_SOCKET=str(tmp_path / "notify")),
        stderr=open(tmp_path / "stderr", "wb"),
    )
    try:
        while True:
            try:
                msg = ns.recv(4096).decode()
            except TimeoutError:
                raise AssertionError(f"no READY=1; the daemon said: {(tmp_path / 'stderr').read_text()}") from None
            if "READY=1" in msg:
                break
        assert Client(port).request("GET", "/healthz").status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, (tmp_path / "stderr").read_text()
        ns.close()


def test_non_owner_cannot_share_on_put(daemon: Daemon) -> None:
    c = daemon.client()
    tok = daemon.new_account("dave")
    c.put("c", "dave-writes", b"x", **{"X-Object-Sharing": "write=dave"})
    dave = daemon.client(tok)
    r = dave.put("c", "dave-writes", b"changed", **{"X-Object-Sharing": "read=*"})
    assert r.status == 403
    assert c.get("c", "dave-writes").body == b"x"
    assert dave.put("c", "dave-writes", b"changed").status == 201
