"""The MD5 of versions stored without one (hashmap PUTs, partial updates) is computed
in the background and recorded on every version with that content."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator

import pytest

from hashmaps import block_digests
from storage_engine.objects.md5_backfill import Md5Backfill
from storage_engine.objects.metadata import ContainerPolicy
from storage_engine.objects.metadata import errors as merr
from storage_engine.objects.metadata.records import MapRef
from storage_engine.objects.store import MD5_ATTR, ObjectStore
from test_object_store import source

BS = 4096


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[ObjectStore]:
    s = await ObjectStore.open(tmp_path, synchronous="NORMAL")
    await s.meta.accounts.ensure("a")
    for name in ("c", "d"):
        await s.meta.containers.create(
            "a", name, policy=ContainerPolicy(versioning="auto", hash_scheme="sha256", block_size=BS)
        )
    try:
        yield s
    finally:
        await s.close()


async def from_hashes(s: ObjectStore, cont: str, name: str, data: bytes):
    """What a hashmap PUT does: blocks first, then a version made of their digests."""
    c = await s.meta.containers.get("a", cont)
    await s.write_stream("sha256", BS, source(data), length=len(data), md5=False)
    digests = block_digests(data, "sha256", BS)
    return (await s.commit("a", c, name, size=len(data), digests=digests, modified_by="a")).version


async def test_record_md5_fills_every_version_of_that_content_and_keeps_known_ones(store: ObjectStore) -> None:
    data = os.urandom(3 * BS + 100)
    v1 = await from_hashes(store, "c", "o", data)
    assert MD5_ATTR not in v1.attrs
    await store.copy(("a", "c", "o"), ("a", "d", "copy"), modified_by="a")
    await store.update_meta("a", "c", "o", modified_by="a", meta={"k": "v"})  # v1 becomes history
    other = await from_hashes(store, "c", "other", os.urandom(BS))
    md5 = hashlib.md5(data).hexdigest()
    assert v1.map is not None
    assert await store.meta.objects.record_md5(v1.map, md5) == 3
    assert (await store.meta.objects.get("a", "c", "o")).attrs[MD5_ATTR] == md5
    assert (await store.meta.objects.get("a", "c", "o", serial=v1.serial)).attrs[MD5_ATTR] == md5
    copy = await store.meta.objects.get("a", "d", "copy")
    assert copy.attrs[MD5_ATTR] == md5 and copy.meta == {}  # nothing else changed
    assert MD5_ATTR not in (await store.meta.objects.get("a", "c", "other")).attrs
    assert other.map is not None
    # already known: kept, nothing written
    assert await store.meta.objects.record_md5(v1.map, "0" * 32) == 0
    assert (await store.meta.objects.get("a", "c", "o")).attrs[MD5_ATTR] == md5


@pytest.mark.parametrize("bad", ["", "A" * 32, "0" * 31, "g" * 32, "0" * 33])
async def test_record_md5_refuses_what_is_not_an_md5(store: ObjectStore, bad: str) -> None:
    v = await from_hashes(store, "c", "o", b"x")
    assert v.map is not None
    with pytest.raises(merr.InvalidArgument):
        await store.meta.objects.record_md5(v.map, bad)
    assert MD5_ATTR not in (await store.meta.objects.get("a", "c", "o")).attrs


async def test_backfill_computes_the_md5_in_the_background(store: ObjectStore) -> None:
    data = os.urandom(5 * BS + 1) + bytes(BS)  # a trailing zero block too
    v = await from_hashes(store, "c", "o", data)
    served = store.counters.bytes_served
    b = Md5Backfill(store)
    b.start()
    try:
        assert b.schedule(v)
        assert not b.schedule(v), "the same content is queued once"
        assert b.pending == 1
        await b.wait_idle()
        assert b.pending == 0 and b.counters.filled == 1 and b.counters.failed == 0
        got = await store.meta.objects.get("a", "c", "o")
        assert got.attrs[MD5_ATTR] == hashlib.md5(data).hexdigest()
        assert not b.schedule(got), "a version with an MD5 needs nothing"
        assert store.counters.bytes_served == served, "the store's own reads are not bytes served"
    finally:
        await b.close()


async def test_backfill_goes_on_after_a_content_that_is_gone(store: ObjectStore) -> None:
    data = os.urandom(2 * BS)
    v = await from_hashes(store, "c", "o", data)
    gone = await from_hashes(store, "c", "gone", os.urandom(BS))
    assert gone.map is not None
    fake = dataclasses.replace(gone, map=MapRef("sha256", BS, bytes(32)))  # a map no store holds
    b = Md5Backfill(store)
    b.start()
    try:
        assert b.schedule(fake) and b.schedule(v)
        await b.wait_idle()
        assert b.counters.failed == 1 and b.counters.filled == 1
        assert (await store.meta.objects.get("a", "c", "o")).attrs[MD5_ATTR] == hashlib.md5(data).hexdigest()
    finally:
        await b.close()


async def test_backfill_queue_is_bounded(store: ObjectStore) -> None:
    versions = [await from_hashes(store, "c", f"o{i}", os.urandom(BS)) for i in range(3)]
    b = Md5Backfill(store, max_pending=2)  # not started: nothing drains the queue
    assert [b.schedule(v) for v in versions] == [True, True, False]
    assert b.counters.dropped == 1 and b.pending == 2
    b.start()
    await b.wait_idle()
    await b.close()
    assert b.counters.filled == 2
    # the dropped one is scheduled again the next time it is met
    assert b.schedule(versions[2])


async def test_content_stored_before_takes_its_known_md5_at_once(store: ObjectStore) -> None:
    """A hashmap PUT of content some version already has an MD5 for (a re-upload under
    another name) gets that MD5 in the same commit: nothing to read later."""
    data = os.urandom(2 * BS + 9)
    c = await store.meta.containers.get("a", "c")
    plain = await store.put_stream("a", c, "plain", source(data), length=len(data), modified_by="a")
    assert plain.version.attrs[MD5_ATTR] == hashlib.md5(data).hexdigest()
    again = await from_hashes(store, "c", "again", data)
    assert again.attrs[MD5_ATTR] == hashlib.md5(data).hexdigest()
    assert (await store.meta.objects.get("a", "c", "again")).attrs[MD5_ATTR] == hashlib.md5(data).hexdigest()


async def test_backfill_takes_a_known_md5_without_reading(store: ObjectStore, monkeypatch) -> None:
    data = os.urandom(3 * BS)
    first = await from_hashes(store, "c", "first", data)  # no MD5 anywhere yet
    assert MD5_ATTR not in first.attrs
    c = await store.meta.containers.get("a", "c")
    await store.put_stream("a", c, "plain", source(data), length=len(data), modified_by="a")  # computes it
    assert await store.meta.objects.known_md5(first.map) == hashlib.md5(data).hexdigest()  # type: ignore[arg-type]

    async def no_reading(version):  # noqa: ANN001
        raise AssertionError("the content was read though its MD5 was known")

    monkeypatch.setattr(store, "md5_of", no_reading)
    b = Md5Backfill(store)
    b.start()
    try:
        assert b.schedule(first)
        await b.wait_idle()
        assert b.counters.filled == 1 and b.counters.failed == 0
    finally:
        await b.close()
    assert (await store.meta.objects.get("a", "c", "first")).attrs[MD5_ATTR] == hashlib.md5(data).hexdigest()
