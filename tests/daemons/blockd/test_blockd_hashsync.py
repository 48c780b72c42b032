"""nefeli-blockd: the block-hash sync protocol exactly as a Pithos client speaks it (docs/blockd.md)."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from blockd_helpers import Daemon, sha_hashes, sha_top, start_daemon

BS = 4096


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    d = start_daemon(tmp_path_factory.mktemp("blockd-hs"))
    c = d.client()
    assert c.put_container("pithos", scheme="sha256", block_size=BS).status == 201
    assert c.put_container("b3", scheme="blake3", block_size=BS).status == 201
    yield d
    d.stop_cleanly()


def test_container_head_block_policy(daemon: Daemon) -> None:
    c = daemon.client()
    r = c.request("HEAD", c.p("pithos"))
    assert r.status == 204
    assert r.h("X-Container-Block-Size") == str(BS)
    assert r.h("X-Container-Block-Hash") == "sha256"
    r = c.request("HEAD", c.p("b3"))
    assert r.h("X-Container-Block-Hash") == "blake3"
    # without a policy: sha256, what every Pithos client can compute
    assert c.put_container("plain").status == 201
    assert c.request("HEAD", c.p("plain")).h("X-Container-Block-Hash") == "sha256"


def test_hashmap_put_409_update_put_201(daemon: Daemon) -> None:
    c = daemon.client()
    data = os.urandom(BS) + os.urandom(BS) + b"tail" * 100
    hashes = sha_hashes(data, BS)
    hm = json.dumps({"bytes": len(data), "hashes": [h.hex() for h in hashes]}).encode()
    path = c.p("pithos", "synced.bin", query="hashmap&format=json")
    r = c.request("PUT", path, hm, {"Content-Type": "application/octet-stream"})
    assert r.status == 409, r
    assert sorted(r.json()) == sorted(h.hex() for h in hashes)
    # one block per POST ?update, as kamaki does
    for i, missing in enumerate(r.json()):
        idx = [h.hex() for h in hashes].index(missing)
        block = data[idx * BS : (idx + 1) * BS]
        u = c.request(
            "POST", c.p("pithos", query="update"), block, {"Content-Type": "application/octet-stream"}
        )
        assert u.status == 202, u
        assert u.json() == [missing]
    r = c.request("PUT", path, hm, {"Content-Type": "application/octet-stream"})
    assert r.status == 201, r
    top = sha_top(hashes)
    assert r.h("ETag") == top.hex()
    assert r.h("X-Object-Version")
    # three blocks: top = H(H(h0||h1) || H(h2||0^32))
    h0, h1, h2 = hashes
    expected = hashlib.sha256(
        hashlib.sha256(h0 + h1).digest() + hashlib.sha256(h2 + b"\0" * 32).digest()
    ).digest()
    assert top == expected
    g = c.get("pithos", "synced.bin")
    assert g.status == 200 and g.body == data
    assert g.h("ETag") == expected.hex() == g.h("X-Object-Hash")
    hm_get = c.get("pithos", "synced.bin", query="hashmap&format=json")
    assert hm_get.status == 200
    assert hm_get.json() == {
        "block_size": BS,
        "block_hash": "sha256",
        "bytes": len(data),
        "hashes": [h.hex() for h in hashes],
    }


def test_update_multi_block_body_and_dedup(daemon: Daemon) -> None:
    c = daemon.client()
    data = os.urandom(BS * 2 + 10)
    u = c.request("POST", c.p("pithos", query="update"), data, {"Content-Type": "application/octet-stream"})
    assert u.status == 202
    assert u.json() == [h.hex() for h in sha_hashes(data, BS)]
    hm = json.dumps({"bytes": len(data), "hashes": u.json()}).encode()
    r = c.request("PUT", c.p("pithos", "multi", query="hashmap"), hm)
    assert r.status == 201
    assert c.get("pithos", "multi").body == data
    # a second upload of the same data is a dedup hit
    before = c.request("GET", "/metrics", auth=False).body.decode()
    c.request("POST", c.p("pithos", query="update"), data, {"Content-Type": "application/octet-stream"})
    after = c.request("GET", "/metrics", auth=False).body.decode()

    def val(text: str) -> int:
        for line in text.splitlines():
            if line.startswith("nefeli_blockd_blocks_deduplicated_total "):
                return int(float(line.split()[1]))
        return 0

    assert val(after) - val(before) == 3


def test_zero_byte_and_zero_blocks(daemon: Daemon) -> None:
    c = daemon.client()
    empty = hashlib.sha256(b"").hexdigest()
    for hashes in ([], [empty]):
        r = c.request("PUT", c.p("pithos", "empty", query="hashmap"), json.dumps({"bytes": 0, "hashes": hashes}).encode())
        assert r.status == 201, r
        assert r.h("ETag") == empty
    g = c.get("pithos", "empty")
    assert g.status == 200 and g.body == b""
    # all-zero blocks are never needed: the server never asks for them
    data = bytes(BS) + b"x" + bytes(BS - 1) + bytes(100)
    hashes = sha_hashes(data, BS)
    hm = json.dumps({"bytes": len(data), "hashes": [h.hex() for h in hashes]}).encode()
    r = c.request("PUT", c.p("pithos", "zeros", query="hashmap"), hm)
    assert r.status == 409
    assert r.json() == [hashes[1].hex()]
    c.request("POST", c.p("pithos", query="update"), data[BS : 2 * BS], {"Content-Type": "application/octet-stream"})
    assert c.request("PUT", c.p("pithos", "zeros", query="hashmap"), hm).status == 201
    assert c.get("pithos", "zeros").body == data


def test_hashmap_preconditions_first(daemon: Daemon) -> None:
    c = daemon.client()
    data = os.urandom(100)
    assert c.put("pithos", "pre", data).status == 201
    hm = json.dumps({"bytes": 5, "hashes": ["ab" * 32]}).encode()  # missing block
    r = c.request("PUT", c.p("pithos", "pre", query="hashmap"), hm, {"If-None-Match": "*"})
    assert r.status == 412
    r = c.request("PUT", c.p("pithos", "pre", query="hashmap"), hm, {"If-Match": "00" * 32})
    assert r.status == 412
    r = c.request("PUT", c.p("pithos", "pre", query="hashmap"), hm, {"If-Match": sha_top(sha_hashes(data, BS)).hex()})
    assert r.status == 409


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"bytes": 5}',
        b'{"bytes": -1, "hashes": []}',
        b'{"bytes": 5, "hashes": []}',
        b'{"bytes": 5, "hashes": ["zz"]}',
        b'{"bytes": 5, "hashes": ["' + b"g" * 64 + b'"]}',
        b'{"bytes": 5, "hashes": ["' + b"a" * 62 + b'"]}',
        b'{"bytes": 5000, "hashes": ["' + b"a" * 64 + b'"]}',
        b'{"bytes": 5, "hashes": ["' + b"a" * 64 + b'", "' + b"a" * 64 + b'"]}',
        b'{"bytes": 5, "hashes": [1]}',
        b'{"bytes": "5", "hashes": []}',
        b'{"bytes": 5, "hashes": ["' + b"a" * 64 + b'"], "block_size": 7}',
    ],
)
def test_bad_hashmaps_are_400(daemon: Daemon, body: bytes) -> None:
    c = daemon.client()
    r = c.request("PUT", c.p("pithos", "bad", query="hashmap"), body)
    assert r.status == 400, (body, r)


def test_blake3_container_roundtrip(daemon: Daemon) -> None:
    from hashmaps import block_digests, top_hash

    c = daemon.client()
    data = os.urandom(BS * 3 + 1)
    r = c.put("b3", "obj", data)
    assert r.status == 201
    digests = block_digests(data, "blake3", BS)
    assert r.h("ETag") == top_hash(digests, len(data), "blake3").hex()
    hm = c.get("b3", "obj", query="hashmap&format=json").json()
    assert hm["block_hash"] == "blake3" and hm["hashes"] == [d.hex() for d in digests]
    # re-create it by hashmap only: no data needed
    r = c.request("PUT", c.p("b3", "obj2", query="hashmap"), json.dumps({"bytes": len(data), "hashes": hm["hashes"]}).encode())
    assert r.status == 201
    assert c.get("b3", "obj2").body == data


def test_policy_locked_after_objects(daemon: Daemon) -> None:
    c = daemon.client()
    r = c.request("POST", c.p("pithos"), headers={"X-Container-Policy-Block-Hash": "blake3"})
    assert r.status == 409
    assert c.put_container("fresh").status == 201
    r = c.request("POST", c.p("fresh", query="update"), headers={"X-Container-Policy-Block-Size": "8192"})
    assert r.status == 202
    assert c.request("HEAD", c.p("fresh")).h("X-Container-Block-Size") == "8192"


# --- the Swift ETag of objects made from block hashes --------------------------------


def put_by_hashes(c, cont: str, name: str, data: bytes) -> str:
    """Blocks by POST ?update, then the hashmap PUT; the object's top hash."""
    u = c.request("POST", c.p(cont, query="update"), data, {"Content-Type": "application/octet-stream"})
    assert u.status == 202, u
    hm = json.dumps({"bytes": len(data), "hashes": [h.hex() for h in sha_hashes(data, BS)]}).encode()
    r = c.request("PUT", c.p(cont, name, query="hashmap"), hm)
    assert r.status == 201, r
    return r.h("ETag") or ""


def swift_etag_eventually(c, cont: str, name: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        r = c.request("HEAD", c.p(cont, name, api="swift"))
        assert r.status == 200, r
        if r.h("ETag") or time.monotonic() > deadline:
            return r.h("ETag") or ""
        time.sleep(0.05)


def metric(c, name: str) -> float:
    for line in c.request("GET", "/metrics", auth=False).body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_swift_etag_of_a_hashmap_put_is_its_md5_once_computed(daemon: Daemon) -> None:
    c = daemon.client()
    data = os.urandom(3 * BS + 7)
    top = put_by_hashes(c, "pithos", "by-hashes.bin", data)
    md5 = hashlib.md5(data).hexdigest()
    assert swift_etag_eventually(c, "pithos", "by-hashes.bin") == md5
    g = c.get("pithos", "by-hashes.bin", api="swift")
    assert g.body == data and g.h("ETag") == md5 and g.h("X-Object-Hash") == top
    # the Pithos path keeps the top hash; listings say the same as each path's ETag
    assert c.get("pithos", "by-hashes.bin").h("ETag") == top
    listed = {o["name"]: o for o in c.request("GET", c.p("pithos", api="swift", query="format=json")).json()}
    assert listed["by-hashes.bin"]["hash"] == md5
    listed = {o["name"]: o for o in c.request("GET", c.p("pithos", query="format=json")).json()}
    assert listed["by-hashes.bin"]["hash"] == top
    # conditional requests on the Swift path compare with the MD5
    assert c.get("pithos", "by-hashes.bin", api="swift", **{"If-None-Match": md5}).status == 304
    assert metric(c, "nefeli_blockd_md5_backfill_filled_total") >= 1
    assert metric(c, "nefeli_blockd_md5_backfill_pending") == 0


def test_swift_etag_after_a_partial_update_is_the_new_md5(daemon: Daemon) -> None:
    c = daemon.client()
    data = os.urandom(2 * BS)
    assert c.put("pithos", "patched.bin", data, api="swift").status == 201
    r = c.request(
        "POST", c.p("pithos", "patched.bin"), b"new!",
        {"Content-Range": "bytes 100-103/*", "Content-Type": "application/octet-stream"},
    )
    assert r.status == 204, r
    want = data[:100] + b"new!" + data[104:]
    assert swift_etag_eventually(c, "pithos", "patched.bin") == hashlib.md5(want).hexdigest()
    # a metadata update keeps it
    assert c.request("POST", c.p("pithos", "patched.bin", api="swift"), headers={"X-Object-Meta-K": "v"}).status == 202
    assert c.request("HEAD", c.p("pithos", "patched.bin", api="swift")).h("ETag") == hashlib.md5(want).hexdigest()


def test_without_the_backfill_the_swift_path_sends_no_etag_and_a_restart_with_it_fills_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("blockd-no-md5")
    d = start_daemon(tmp, "--md5-backfill", "off")
    c = d.client()
    assert c.put_container("pithos", scheme="sha256", block_size=BS).status == 201
    data = os.urandom(BS + 1)
    put_by_hashes(c, "pithos", "o", data)
    time.sleep(0.3)
    assert c.request("HEAD", c.p("pithos", "o", api="swift")).h("ETag") is None
    d.stop_cleanly()
    d = start_daemon(tmp)
    try:
        c = d.client()
        # the first Swift request that meets it has no ETag yet, and queues it
        assert swift_etag_eventually(c, "pithos", "o") == hashlib.md5(data).hexdigest()
    finally:
        d.stop_cleanly()


def test_on_demand_the_md5_is_computed_once_a_swift_request_needs_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    d = start_daemon(tmp_path_factory.mktemp("blockd-md5-on-demand"), "--md5-backfill", "on-demand")
    try:
        c = d.client()
        assert c.put_container("pithos", scheme="sha256", block_size=BS).status == 201
        data = os.urandom(2 * BS + 3)
        put_by_hashes(c, "pithos", "o", data)
        time.sleep(0.3)
        assert metric(c, "nefeli_blockd_md5_backfill_filled_total") == 0  # nothing computed for Pithos clients
        assert c.get("pithos", "o").status == 200
        assert metric(c, "nefeli_blockd_md5_backfill_filled_total") == 0
        assert swift_etag_eventually(c, "pithos", "o") == hashlib.md5(data).hexdigest()
        assert metric(c, "nefeli_blockd_md5_backfill_filled_total") == 1
    finally:
        d.stop_cleanly()


def test_a_hashmap_put_of_known_content_has_its_swift_etag_at_once(daemon: Daemon) -> None:
    c = daemon.client()
    data = os.urandom(2 * BS + 1)
    assert c.put("pithos", "known-plain", data, api="swift").status == 201
    hm = json.dumps({"bytes": len(data), "hashes": [h.hex() for h in sha_hashes(data, BS)]}).encode()
    r = c.request("PUT", c.p("pithos", "known-again", api="swift", query="hashmap"), hm)
    assert r.status == 201 and r.h("ETag") == hashlib.md5(data).hexdigest(), r
