"""nefeli-blockd: a hashmap PUT that loses the race with GC gets the 409 list of
exactly the blocks GC removed, and no version.

The window between the missing-blocks check and the commit is a few
microseconds, too short to hit from another process; so the server runs in this
process (a real aiohttp server over a real socket and a real store) and a real
GC pass is run inside that window, by wrapping the store's missing-blocks check.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from daemons.blockd.config import BlockdConfig
from daemons.blockd.server import Server
from storage_engine.blocks.config import StoreConfig
from storage_engine.objects.store import ObjectStore

BS = 4096


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[TestClient, ObjectStore, dict[str, str]]]:
    store = await ObjectStore.open(
        tmp_path / "data", synchronous="NORMAL",
        store_config=StoreConfig(gc_grace_seconds=0, reserve_bytes=0, segment_size=1 << 20),
    )
    await store.meta.accounts.ensure("alice")
    token = (await store.meta.tokens.create("alice")).token
    server = Server(store, BlockdConfig(data=tmp_path / "data"))
    client = TestClient(TestServer(server.make_app()))
    await client.start_server()
    try:
        yield client, store, {"X-Auth-Token": token}
    finally:
        await client.close()
        await store.close()


async def test_a_hashmap_put_racing_gc_answers_409_with_the_blocks_gc_took(
    served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, store, auth = served
    r = await client.put(
        "/object-store/v1/alice/c", headers={**auth, "X-Container-Policy-Block-Size": str(BS)}
    )
    assert r.status == 201
    data = os.urandom(3 * BS)
    r = await client.post(
        "/object-store/v1/alice/c?update", data=data, headers={**auth, "Content-Type": "application/octet-stream"}
    )
    assert r.status == 202
    hashes = await r.json()
    assert len(hashes) == 3
    checked = store.missing

    async def check_then_collect(*args: Any, **kwargs: Any) -> list[bytes]:
        answer = await checked(*args, **kwargs)  # nothing missing yet...
        report = await store.blocks.gc(grace_seconds=0)  # ...then GC takes the unreferenced blocks
        assert report.blocks_removed == 3
        return answer

    monkeypatch.setattr(store, "missing", check_then_collect)
    hashmap = json.dumps({"bytes": len(data), "hashes": hashes}).encode()
    r = await client.put("/object-store/v1/alice/c/o?hashmap", data=hashmap, headers=auth)
    assert r.status == 409
    assert r.content_type == "application/json"
    assert await r.json() == hashes  # each block GC removed, in the map's order
    r = await client.head("/object-store/v1/alice/c/o", headers=auth)
    assert r.status == 404
    monkeypatch.undo()
    r = await client.put("/object-store/v1/alice/c/o?hashmap", data=hashmap, headers=auth)
    assert r.status == 409 and await r.json() == hashes  # the ordinary answer: upload them again
