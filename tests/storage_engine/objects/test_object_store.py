"""storage_engine.objects.ObjectStore: map references stay in step with the metadata."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from storage_engine.maps.mapstore import MapKey
from storage_engine.objects.metadata import ContainerPolicy, Precondition
from storage_engine.objects.metadata import errors as merr
from storage_engine.objects.byte_sources import BytesSource
from storage_engine.objects.store import MissingBlocks, ObjectStore
from storage_engine.maps.mapstore import MapStore

BS = 4096


def source(data: bytes) -> BytesSource:
    return BytesSource(data)


async def refs_in_step(s: ObjectStore) -> None:
    want: Counter[MapKey] = Counter()
    # one reference per version row that has a map
    conn_rows = await s.meta.backend.read(
        lambda conn: conn.execute(
            "SELECT map_scheme, map_size, map_hash FROM versions WHERE map_hash IS NOT NULL"
        ).fetchall()
    )
    for scheme, size, top in conn_rows:
        want[MapKey(scheme, size, bytes(top))] += 1
    have = {k: rc for k, rc in MapStore(s.blocks.store).keys()}
    assert have == dict(want)


@pytest.mark.parametrize("versioning", ["auto", "none"])
async def test_refcounts_follow_writes(tmp_path, versioning: str) -> None:
    s = await ObjectStore.open(tmp_path, synchronous="NORMAL")
    try:
        await s.meta.accounts.ensure("a")
        c = await s.meta.containers.create(
            "a", "c", policy=ContainerPolicy(versioning=versioning, hash_scheme="sha256", block_size=BS)
        )
        data = os.urandom(BS * 2 + 5)
        await s.put_stream("a", c, "o", source(data), length=len(data), modified_by="a")
        await s.put_stream("a", c, "o", source(data), length=len(data), modified_by="a")  # same map again
        await s.put_stream("a", c, "p", source(b"other"), length=5, modified_by="a")
        await refs_in_step(s)
        await s.copy(("a", "c", "o"), ("a", "c", "o2"), modified_by="a")
        await s.copy(("a", "c", "p"), ("a", "c", "p2"), move=True, modified_by="a")
        await s.update_meta("a", "c", "o", modified_by="a", meta={"k": "v"})
        await refs_in_step(s)
        v = await s.meta.objects.get("a", "c", "o")
        await s.update_range("a", c, "o", offset=10, length=3, source=source(b"abc"), modified_by="a")
        got = b"".join([x async for x in s.read(await s.meta.objects.get("a", "c", "o"))])
        assert got == data[:10] + b"abc" + data[13:]
        # a failed commit gives its reference back
        with pytest.raises(merr.PreconditionFailed):
            await s.put_stream(
                "a", c, "o", source(b"zzz"), length=3, modified_by="a", precondition=Precondition(serial=v.serial)
            )
        with pytest.raises(MissingBlocks):
            await s.commit("a", c, "h", size=5, digests=[b"\x01" * 32], modified_by="a")
        await refs_in_step(s)
        for name in ("o", "o2", "p2"):
            await s.delete("a", "c", name, modified_by="a")
        await s.purge("a", "c", before=1e12)
        await refs_in_step(s)
        assert MapStore(s.blocks.store).keys() == []
    finally:
        await s.close()


@pytest.mark.parametrize("versioning", ["auto", "none"])
async def test_emptying_a_container_in_batches_drops_every_reference(tmp_path, versioning: str) -> None:
    s = await ObjectStore.open(tmp_path, synchronous="NORMAL")
    try:
        await s.meta.accounts.ensure("a")
        c = await s.meta.containers.create(
            "a", "c", policy=ContainerPolicy(versioning=versioning, hash_scheme="sha256", block_size=BS)
        )
        for i in range(5):
            await s.put_stream("a", c, f"o{i}", source(b"x" * i), length=i, modified_by="a")
        assert await s.delete_objects("a", "c", modified_by="a", batch=2) == 5
        assert await s.meta.listing.objects("a", "c") == []
        await refs_in_step(s)
        assert await s.delete_objects("a", "c", modified_by="a", batch=2) == 0
        await s.purge("a", "c", before=1e12)
        assert MapStore(s.blocks.store).keys() == []
    finally:
        await s.close()
