"""nefeli-blockd: what Pithos clients (kamaki, the Pithos web UI) read beyond Swift:
X-Object-UUID (a real server process on loopback)."""

from __future__ import annotations

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
    assert d.stop() == 0
    log = d.log.read_text()
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]


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
