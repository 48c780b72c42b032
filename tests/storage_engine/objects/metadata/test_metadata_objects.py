"""Objects and versions: put/get, versioning auto|none, delete, purge, copy/move,
preconditions, quotas, and the map-reference bookkeeping the map store relies on."""

from __future__ import annotations

import uuid

import pytest

from storage_engine.objects.metadata import (
    ContainerPolicy,
    MetadataStore,
    Precondition,
    PutItem,
    Subdir,
    SyncMetadataStore,
    errors,
)
from storage_engine import errors as kinds
from metadata_support import Clock, clock, make_container, mapref, md, smd  # noqa: F401

A, C = "alice", "c"


async def put(md: MetadataStore, name: str, label: str, size: int | None = None, container: str = C, **kw):  # type: ignore[no-untyped-def]
    return await md.objects.put(A, container, name, map=mapref(label, size), modified_by=A, **kw)


async def test_put_and_get_roundtrip(md: MetadataStore) -> None:
    await make_container(md)
    r = await md.objects.put(
        A, C, "photos/cat.jpg", map=mapref("cat"), modified_by="bob", content_type="image/jpeg",
        meta={"Color": "black", "X": "1"}, attrs={"content-disposition": "inline"},
    )
    assert r.replaced is None and r.added_maps == (mapref("cat"),) and r.freed_maps == ()
    v = await md.objects.get(A, C, "photos/cat.jpg")
    assert v == r.version
    assert (v.size, v.content_type, v.state, v.modified_by) == (3, "image/jpeg", "normal", "bob")
    assert v.meta == {"color": "black", "x": "1"}  # keys are case-insensitive, stored lower-case
    assert v.attrs == {"content-disposition": "inline"}
    assert v.etag == mapref("cat").top_hash.hex()
    with pytest.raises(errors.ObjectNotFound):
        await md.objects.get(A, C, "photos/dog.jpg")
    with pytest.raises(errors.ContainerNotFound):
        await md.objects.get(A, "nope", "x")
    with pytest.raises(errors.AccountNotFound):
        await md.objects.get("nobody", C, "x")


async def test_serials_are_global_and_monotonic(md: MetadataStore) -> None:
    await make_container(md, container="a", versioning="none")
    await make_container(md, container="b")
    serials = []
    for i in range(5):
        serials.append((await put(md, "x", f"a{i}", container="a")).version.serial)
        serials.append((await put(md, "y", f"b{i}", container="b")).version.serial)
    assert serials == sorted(serials) and len(set(serials)) == len(serials)
    # Removing the newest row (versioning none) never lets its serial be reused.
    last = (await put(md, "z", "z", container="a")).version.serial
    await md.objects.delete(A, "a", "z", modified_by=A)
    assert (await put(md, "z", "z2", container="a")).version.serial > last


async def test_versioning_auto_keeps_history(md: MetadataStore, clock: Clock) -> None:
    await make_container(md)
    v1 = (await put(md, "o", "one")).version
    r2 = await put(md, "o", "two!")
    assert r2.replaced is not None and r2.replaced.serial == v1.serial and r2.replaced.state == "history"
    assert r2.freed_maps == ()  # history still references "one"
    v3 = (await put(md, "o", "three")).version
    assert [s for s, _ in await md.objects.versions(A, C, "o")] == [v1.serial, r2.version.serial, v3.serial]
    old = await md.objects.get(A, C, "o", serial=v1.serial)
    assert (old.state, old.size, old.map) == ("history", 3, mapref("one"))
    assert (await md.objects.get(A, C, "o")).serial == v3.serial
    c = await md.containers.get(A, C)
    assert (c.usage.object_count, c.usage.bytes_used, c.usage.history_count, c.usage.history_bytes) == (1, 5, 2, 7)


async def test_version_of_another_object_is_not_found(md: MetadataStore) -> None:
    await make_container(md)
    v = (await put(md, "a", "a")).version
    await put(md, "b", "b")
    with pytest.raises(errors.VersionNotFound):
        await md.objects.get(A, C, "b", serial=v.serial)
    with pytest.raises(errors.VersionNotFound):
        await md.objects.get(A, C, "a", serial=10**9)
    with pytest.raises(errors.InvalidArgument):
        await md.objects.get(A, C, "a", serial="1")  # type: ignore[arg-type]


async def test_versioning_none_replaces_and_frees_maps(md: MetadataStore) -> None:
    await make_container(md, versioning="none")
    v1 = (await put(md, "o", "one")).version
    r2 = await put(md, "o", "two")
    assert r2.replaced == v1 and r2.freed_maps == (mapref("one"),)
    assert await md.objects.versions(A, C, "o") == [(r2.version.serial, r2.version.mtime)]
    with pytest.raises(errors.VersionNotFound):
        await md.objects.get(A, C, "o", serial=v1.serial)
    # Same content again: the map is still referenced by the version being replaced's successor.
    r3 = await put(md, "o", "two")
    assert r3.added_maps == () and r3.freed_maps == ()


async def test_map_refs_are_counted_across_objects_and_containers(md: MetadataStore) -> None:
    """Per-map view (added/freed) and per-version view (version.map / dropped_maps)."""
    await make_container(md, container="x", versioning="none")
    await make_container(md, container="y", versioning="none")
    first = await put(md, "a", "shared", container="x")
    assert first.added_maps == (mapref("shared"),)
    second = await put(md, "b", "shared", container="y")
    assert second.added_maps == ()  # already referenced: no second incref
    r = await put(md, "a", "other", container="x")
    assert r.freed_maps == () and r.dropped_maps == (mapref("shared"),)  # y/b still uses it
    r = await put(md, "b", "again", container="y")
    assert r.freed_maps == r.dropped_maps == (mapref("shared"),)  # that was the last version using it
    assert (await put(md, "b", "shared", container="y")).added_maps == (mapref("shared"),)
    d = await md.objects.delete(A, "y", "b", modified_by=A)
    assert d.freed_maps == (mapref("shared"),) and d.dropped_maps == (mapref("shared"),)
    assert not await md.maintenance.map_referenced(mapref("shared"))
    assert await md.maintenance.map_referenced(mapref("other"))


async def test_delete_under_auto_writes_a_marker(md: MetadataStore) -> None:
    await make_container(md)
    v1 = (await put(md, "o", "one")).version
    d = await md.objects.delete(A, C, "o", modified_by="bob")
    assert d.deleted.serial == v1.serial and d.deleted.state == "history"
    assert d.marker is not None and (d.marker.state, d.marker.modified_by, d.marker.size) == ("deleted", "bob", 0)
    assert d.freed_maps == ()
    with pytest.raises(errors.ObjectNotFound):
        await md.objects.get(A, C, "o")
    with pytest.raises(errors.VersionNotFound):
        await md.objects.get(A, C, "o", serial=d.marker.serial)
    assert [s for s, _ in await md.objects.versions(A, C, "o")] == [v1.serial]  # markers are not listed
    assert (await md.objects.get(A, C, "o", serial=v1.serial)).map == mapref("one")
    assert await md.listing.objects(A, C) == []
    with pytest.raises(errors.ObjectNotFound):
        await md.objects.delete(A, C, "o", modified_by=A)
    # Writing again after a delete works and history keeps growing.
    v2 = (await put(md, "o", "two")).version
    assert [s for s, _ in await md.objects.versions(A, C, "o")] == [v1.serial, v2.serial]


async def test_delete_under_none_removes(md: MetadataStore) -> None:
    await make_container(md, versioning="none")
    await put(md, "o", "one")
    d = await md.objects.delete(A, C, "o", modified_by=A)
    assert d.marker is None and d.freed_maps == (mapref("one"),)
    with pytest.raises(errors.ObjectNotFound):
        await md.objects.versions(A, C, "o")
    c = await md.containers.get(A, C)
    assert c.usage.object_count == 0 and c.usage.bytes_used == 0


@pytest.mark.parametrize("versioning", ["auto", "none"])
async def test_delete_batch_deletes_current_objects_as_delete_does(md: MetadataStore, versioning: str) -> None:
    await make_container(md, versioning=versioning)
    for name in ("a", "b/c", "d", "e"):
        await put(md, name, name)
    await put(md, "a", "a2")  # history under auto
    await md.sharing.set(A, C, "b/c", "read=*")
    await md.public.publish(A, C, "d")
    first = await md.objects.delete_batch(A, C, modified_by="bob", limit=3)
    assert (first.deleted, first.more) == (3, True)
    assert [o.name for o in await md.listing.objects(A, C)] == ["e"]
    last = await md.objects.delete_batch(A, C, modified_by="bob", limit=3)
    assert (last.deleted, last.more) == (1, False)
    assert await md.listing.objects(A, C) == []
    assert await md.sharing.get(A, C, "b/c") is None and await md.public.token(A, C, "d") is None
    c = await md.containers.get(A, C)
    assert (c.usage.object_count, c.usage.bytes_used) == (0, 0)
    if versioning == "auto":
        assert [len(await md.objects.versions(A, C, n)) for n in ("a", "b/c")] == [2, 1]
        assert first.dropped_maps == () and c.usage.history_count == 5
    else:
        assert set(first.dropped_maps + last.dropped_maps) == {mapref(n) for n in ("a2", "b/c", "d", "e")}
        assert c.usage.history_count == 0
        with pytest.raises(errors.ObjectNotFound):
            await md.objects.versions(A, C, "a")
    empty = await md.objects.delete_batch(A, C, modified_by="bob")
    assert (empty.deleted, empty.more) == (0, False)
    with pytest.raises(errors.InvalidArgument):
        await md.objects.delete_batch(A, C, modified_by="bob", limit=0)


async def test_purge_history(md: MetadataStore, clock: Clock) -> None:
    await make_container(md)
    await put(md, "o", "v1")
    await put(md, "o", "v2")
    await put(md, "p", "p1")
    await md.objects.delete(A, C, "p", modified_by=A)
    clock.advance(100)
    cutoff = clock.now
    clock.advance(100)
    await put(md, "o", "v3")  # v2 becomes history now, but was written before the cutoff
    await put(md, "o", "v4")  # v3 history, written after the cutoff: kept
    r = await md.objects.purge_history(A, C, before=cutoff)
    assert r.removed == 4  # o:v1, o:v2, p:p1, p's marker
    assert set(r.freed_maps) == {mapref("v1"), mapref("v2"), mapref("p1")}
    assert (await md.objects.get(A, C, "o")).map == mapref("v4")
    assert len(await md.objects.versions(A, C, "o")) == 2
    with pytest.raises(errors.ObjectNotFound):
        await md.objects.versions(A, C, "p")
    # One object only, everything before now.
    r = await md.objects.purge_history(A, C, before=clock() + 1, name="o")
    assert r.removed == 1 and r.freed_maps == (mapref("v3"),)
    assert await md.maintenance.verify() == []


async def test_purge_does_not_free_maps_still_current(md: MetadataStore, clock: Clock) -> None:
    await make_container(md)
    await put(md, "o", "same")
    await put(md, "o", "other")
    await put(md, "o", "same")  # current again, points at the map of the history version
    r = await md.objects.purge_history(A, C, before=clock() + 1)
    assert r.removed == 2 and r.freed_maps == (mapref("other"),)
    assert sorted(r.dropped_maps) == sorted([mapref("same"), mapref("other")])  # one per removed version


async def test_copy_shares_the_map(md: MetadataStore) -> None:
    await make_container(md)
    await make_container(md, container="d")
    src = (await put(md, "a", "data", content_type="text/plain", meta={"k": "v", "drop": "me"})).version
    r = await md.objects.copy((A, C, "a"), (A, "d", "b"), modified_by="bob", meta={"drop": None, "new": "1"})
    assert r.added_maps == () and r.freed_maps == ()
    assert r.version.map == src.map and r.version.content_type == "text/plain"
    assert r.version.meta == {"k": "v", "new": "1"} and r.version.modified_by == "bob"
    r = await md.objects.copy((A, C, "a"), (A, "d", "c"), modified_by=A, meta={"only": "this"}, replace_meta=True,
                              content_type="application/x-thing")
    assert r.version.meta == {"only": "this"} and r.version.content_type == "application/x-thing"
    assert (await md.objects.get(A, C, "a")).serial == src.serial  # source untouched


async def test_copy_from_an_old_version(md: MetadataStore) -> None:
    await make_container(md)
    v1 = (await put(md, "a", "old")).version
    await put(md, "a", "new")
    r = await md.objects.copy((A, C, "a"), (A, C, "restored"), modified_by=A, serial=v1.serial)
    assert r.version.map == mapref("old")
    # Restoring in place: copy an old version onto the object itself.
    r = await md.objects.copy((A, C, "a"), (A, C, "a"), modified_by=A, serial=v1.serial)
    assert (await md.objects.get(A, C, "a")).map == mapref("old")
    assert r.replaced is not None and r.replaced.map == mapref("new")


async def test_copy_between_incompatible_containers_is_refused(md: MetadataStore) -> None:
    await make_container(md, container="b3")
    await make_container(md, container="sha", hash_scheme="sha256")
    await make_container(md, container="small", block_size=1 << 20)
    await put(md, "a", "x", container="b3")
    for dst in ("sha", "small"):
        with pytest.raises(errors.PolicyMismatch) as exc:
            await md.objects.copy((A, "b3", "a"), (A, dst, "a"), modified_by=A)
        assert isinstance(exc.value, kinds.Conflict)
    with pytest.raises(errors.PolicyMismatch):  # a map in the wrong scheme
        await md.objects.put(A, "sha", "x", map=mapref("x"), modified_by=A)


async def test_move(md: MetadataStore) -> None:
    await make_container(md)
    await make_container(md, container="none", versioning="none")
    await put(md, "a", "data", meta={"k": "v"})
    r = await md.objects.move((A, C, "a"), (A, C, "b"), modified_by=A)
    assert r.version.meta == {"k": "v"} and r.freed_maps == ()
    with pytest.raises(errors.ObjectNotFound):
        await md.objects.get(A, C, "a")
    assert len(await md.objects.versions(A, C, "a")) == 1  # auto: the moved-away version is history
    r = await md.objects.move((A, C, "b"), (A, "none", "b"), modified_by=A)
    r = await md.objects.move((A, "none", "b"), (A, "none", "c"), modified_by=A)
    with pytest.raises(errors.ObjectNotFound):
        await md.objects.versions(A, "none", "b")  # none: gone without a trace
    assert r.freed_maps == () and (await md.objects.get(A, "none", "c")).map == mapref("data")
    # Moving onto itself keeps the object.
    await md.objects.move((A, "none", "c"), (A, "none", "c"), modified_by=A)
    assert (await md.objects.get(A, "none", "c")).map == mapref("data")
    assert await md.maintenance.verify() == []


async def test_move_within_a_full_container(md: MetadataStore) -> None:
    await make_container(md, versioning="none", quota=10)
    await put(md, "a", "x" * 10)
    await md.objects.move((A, C, "a"), (A, C, "b"), modified_by=A)  # net zero: allowed
    await make_container(md, container="other", quota=5, versioning="none")
    with pytest.raises(errors.QuotaExceeded):
        await md.objects.move((A, C, "b"), (A, "other", "b"), modified_by=A)
    assert (await md.objects.get(A, C, "b")).size == 10  # the failed move changed nothing


async def test_update_meta_makes_a_version(md: MetadataStore) -> None:
    await make_container(md)
    v1 = (await put(md, "a", "data", meta={"a": "1", "b": "2"})).version
    r = await md.objects.update_meta(A, C, "a", modified_by=A, meta={"b": "", "c": "3"})
    assert r.version.meta == {"a": "1", "c": "3"} and r.version.serial > v1.serial
    assert r.version.map == v1.map and r.added_maps == ()
    r = await md.objects.update_meta(A, C, "a", modified_by=A, meta={"z": "9"}, replace_meta=True,
                                     content_type="text/plain; charset=utf-8")
    assert r.version.meta == {"z": "9"} and r.version.content_type == "text/plain; charset=utf-8"


async def test_an_object_keeps_its_uuid_until_deleted_and_a_copy_gets_a_new_one(md: MetadataStore) -> None:
    await make_container(md)
    await make_container(md, container="other")
    first = (await put(md, "doc", "v1")).version
    assert uuid.UUID(first.uuid).version == 4
    assert (await put(md, "doc", "v2")).version.uuid == first.uuid  # a new version
    posted = (await md.objects.update_meta(A, C, "doc", modified_by=A, meta={"k": "v"})).version
    assert posted.uuid == first.uuid
    copied = (await md.objects.copy((A, C, "doc"), (A, C, "copy"), modified_by=A)).version
    onto_itself = (await md.objects.copy((A, C, "doc"), (A, C, "doc"), modified_by=A)).version
    assert len({first.uuid, copied.uuid, onto_itself.uuid}) == 3
    moved = (await md.objects.move((A, C, "copy"), (A, "other", "moved"), modified_by=A)).version
    assert moved.uuid == copied.uuid
    marker = (await md.objects.delete(A, C, "doc", modified_by=A)).marker
    assert marker is not None and marker.uuid == onto_itself.uuid  # the marker ends that object
    again = (await put(md, "doc", "v3")).version
    assert again.uuid not in (first.uuid, onto_itself.uuid)
    chosen = str(uuid.uuid4())
    assert (await put(md, "given", "g", uuid=chosen)).version.uuid == chosen
    assert (await md.objects.get(A, C, "given")).uuid == chosen
    with pytest.raises(errors.InvalidArgument):
        await put(md, "given", "g", uuid="not-a-uuid")
    assert [o.uuid for o in await md.listing.objects(A, C)] == [again.uuid, chosen]


async def test_preconditions(md: MetadataStore) -> None:
    await make_container(md)
    star = Precondition(if_none_match="*")
    v = (await put(md, "a", "one", precondition=star)).version
    with pytest.raises(errors.PreconditionFailed) as exc:
        await put(md, "a", "two", precondition=star)
    assert isinstance(exc.value, kinds.PreconditionFailed)
    with pytest.raises(errors.PreconditionFailed):
        await put(md, "new", "x", precondition=Precondition(if_match="*"))
    with pytest.raises(errors.PreconditionFailed):
        await put(md, "a", "x", precondition=Precondition(if_match=frozenset({"00" * 32})))
    await put(md, "a", "two", precondition=Precondition(if_match=frozenset({v.etag})))
    with pytest.raises(errors.PreconditionFailed):
        await put(md, "a", "x", precondition=Precondition(if_none_match=frozenset({mapref("two").hex})))
    cur = await md.objects.get(A, C, "a")
    with pytest.raises(errors.PreconditionFailed):
        await put(md, "a", "x", precondition=Precondition(serial=v.serial))
    await put(md, "a", "three", precondition=Precondition(serial=cur.serial))
    assert [s for s, _ in await md.objects.versions(A, C, "a")][-1] > cur.serial


async def test_container_quota(md: MetadataStore) -> None:
    await make_container(md, quota=100)
    await put(md, "a", "a", size=60)
    with pytest.raises(errors.QuotaExceeded) as exc:
        await put(md, "b", "b", size=41)
    assert isinstance(exc.value, kinds.QuotaExceeded)
    await put(md, "b", "b", size=40)  # exactly full
    with pytest.raises(errors.QuotaExceeded):  # auto: the replaced version stays as history
        await put(md, "a", "a2", size=60)
    await md.containers.update(A, C, versioning="none")
    await put(md, "a", "a2", size=60)  # none: replaces 60 with 60
    await md.containers.update(A, C, quota=10)
    await put(md, "a", "a3", size=5)  # over quota, but shrinking is always allowed
    c = await md.containers.get(A, C)
    assert (c.usage.bytes_used, c.usage.history_bytes) == (45, 0)
    await md.containers.update(A, C, quota=None)
    await put(md, "c", "c", size=10**12)


async def test_account_quota(md: MetadataStore) -> None:
    await make_container(md, container="x")
    await make_container(md, container="y")
    await md.accounts.set_quota(A, 50)
    await put(md, "a", "a", size=30, container="x")
    with pytest.raises(errors.QuotaExceeded):
        await put(md, "b", "b", size=30, container="y")
    await put(md, "b", "b", size=20, container="y")
    assert (await md.accounts.get(A)).usage.stored_bytes == 50


async def test_directory_objects_are_ordinary(md: MetadataStore) -> None:
    await make_container(md)
    r = await md.objects.put(A, C, "docs", map=mapref(b""), modified_by=A, content_type="application/directory")
    assert r.version.is_directory and r.version.size == 0
    await put(md, "docs/a", "a")
    page = await md.listing.objects(A, C, delimiter="/")
    assert [(type(e).__name__, e.name) for e in page] == [("ObjectVersion", "docs"), ("Subdir", "docs/")]


async def test_put_many_is_one_transaction(md: MetadataStore) -> None:
    await make_container(md, quota=100)
    items = [PutItem(f"o{i}", mapref(f"m{i}", 10)) for i in range(10)]
    results = await md.objects.put_many(A, C, items, modified_by=A)
    assert [r.version.name for r in results] == [f"o{i}" for i in range(10)]
    with pytest.raises(errors.QuotaExceeded):
        await md.objects.put_many(A, C, [PutItem("p0", mapref("p0", 0)), PutItem("p1", mapref("p1", 1))],
                                  modified_by=A)
    with pytest.raises(errors.ObjectNotFound):  # the first item was rolled back with the second
        await md.objects.get(A, C, "p0")


async def test_invalid_input_is_rejected_before_touching_the_db(md: MetadataStore) -> None:
    await make_container(md)
    bad = [
        dict(name="", ),
        dict(name="a\x00b"),
        dict(name="x" * 1025),
        dict(name="ok", content_type="no\ncontrol"),
        dict(name="ok", meta={"bad key": "v"}),
        dict(name="ok", meta={"k": "line\nbreak"}),
    ]
    for kw in bad:
        name = kw.pop("name")
        with pytest.raises(errors.InvalidArgument) as exc:
            await md.objects.put(A, C, name, map=mapref("x"), modified_by=A, **kw)  # type: ignore[arg-type]
        assert isinstance(exc.value, kinds.InvalidArgument)
    assert await md.listing.objects(A, C) == []


def test_sync_api(smd: SyncMetadataStore) -> None:
    smd.accounts.create(A)
    smd.containers.create(A, C, policy=ContainerPolicy(versioning="none"))
    r = smd.objects.put(A, C, "dir/x", map=mapref("x"), modified_by=A)
    assert r.version.serial == 1
    assert smd.objects.get(A, C, "dir/x").map == mapref("x")
    assert smd.listing.objects(A, C, delimiter="/") == [Subdir("dir/")]
    assert smd.objects.delete(A, C, "dir/x", modified_by=A).freed_maps == (mapref("x"),)
    with pytest.raises(errors.ObjectNotFound):
        smd.objects.get(A, C, "dir/x")
    assert "put" in dir(smd.objects)
