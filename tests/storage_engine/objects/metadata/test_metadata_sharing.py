"""Sharing, permission resolution (owner, users, groups, '*', inheritance from the
nearest shared directory), shared listings, and public URLs."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage_engine.objects.metadata import (
    EffectiveSharing,
    MetadataStore,
    Permission,
    PublicTarget,
    PutItem,
    Sharing,
    SyncMetadataStore,
    errors,
)
from metadata_support import clock, keys, make_container, mapref, md, reference_listing, smd  # noqa: F401

O, C = "owner", "c"  # noqa: E741
R, W, N = Permission.READ, Permission.WRITE, Permission.NONE


async def _obj(md: MetadataStore, name: str, directory: bool = False) -> None:
    ctype = "application/directory" if directory else "application/octet-stream"
    await md.objects.put(O, C, name, map=mapref(name), modified_by=O, content_type=ctype)


async def _setup(md: MetadataStore) -> None:
    await make_container(md, account=O)
    for user in ("bob", "carol", "dave", "eve"):
        await md.accounts.ensure(user)
    await md.accounts.set_groups(O, {"team": ["carol", "dave"]})


async def test_direct_group_and_public_permissions(md: MetadataStore) -> None:
    await _setup(md)
    await _obj(md, "doc")
    perm = md.sharing.permission
    assert await perm(O, C, "doc", "bob") == N
    assert await perm(O, C, "doc", O) == W  # the owner, always
    await md.sharing.set(O, C, "doc", "read=bob;write=owner:team")
    assert await md.sharing.get(O, C, "doc") == Sharing(frozenset({"bob"}), frozenset({"owner:team"}))
    assert [await perm(O, C, "doc", u) for u in ("bob", "carol", "dave", "eve")] == [R, W, W, N]
    await md.sharing.set(O, C, "doc", "read=*")
    assert await perm(O, C, "doc", "eve") == R and await perm(O, C, "doc", "carol") == R
    await md.sharing.set(O, C, "doc", None)
    assert await md.sharing.get(O, C, "doc") is None and await perm(O, C, "doc", "eve") == N
    with pytest.raises(errors.ObjectNotFound):
        await md.sharing.set(O, C, "missing", "read=bob")
    assert await perm(O, "no-such-container", "x", "bob") == N


async def test_inheritance_from_the_nearest_shared_directory(md: MetadataStore) -> None:
    await _setup(md)
    await _obj(md, "docs", directory=True)
    await _obj(md, "docs/a.txt")
    await _obj(md, "docs/private", directory=True)
    await _obj(md, "docs/private/b.txt")
    await _obj(md, "plain")  # not a directory: shares nothing below it
    await _obj(md, "plain/c.txt")
    await md.sharing.set(O, C, "docs", "read=bob,carol;write=dave")
    await md.sharing.set(O, C, "docs/private", "read=carol")
    await md.sharing.set(O, C, "plain", "read=bob")
    perm = md.sharing.permission
    assert await perm(O, C, "docs/a.txt", "bob") == R
    assert await perm(O, C, "docs/a.txt", "dave") == W
    assert await perm(O, C, "docs/not/yet/written", "dave") == W  # may create below a shared dir
    assert await perm(O, C, "docs/private/b.txt", "bob") == N  # the nearest share overrides
    assert await perm(O, C, "docs/private/b.txt", "carol") == R
    assert await perm(O, C, "plain/c.txt", "bob") == N
    assert await perm(O, C, "docsx", "bob") == N
    eff = await md.sharing.effective(O, C, "docs/private/b.txt")
    assert eff == EffectiveSharing("docs/private", Sharing(frozenset({"carol"})))
    assert await md.sharing.effective(O, C, "plain/c.txt") is None


async def test_directory_markers_with_a_trailing_slash(md: MetadataStore) -> None:
    await _setup(md)
    await _obj(md, "photos/", directory=True)
    await md.sharing.set(O, C, "photos/", "read=bob")
    assert await md.sharing.permission(O, C, "photos/2024/x.jpg", "bob") == R
    assert await md.sharing.permission(O, C, "photos/", "bob") == R


async def test_delete_clears_sharing_but_overwrite_keeps_it(md: MetadataStore) -> None:
    await _setup(md)
    await _obj(md, "doc")
    await md.sharing.set(O, C, "doc", "read=bob")
    await md.objects.put(O, C, "doc", map=mapref("v2"), modified_by=O)
    assert await md.sharing.permission(O, C, "doc", "bob") == R
    await md.objects.delete(O, C, "doc", modified_by=O)
    await _obj(md, "doc")
    assert await md.sharing.permission(O, C, "doc", "bob") == N


async def test_listing_as_another_user(md: MetadataStore) -> None:
    await _setup(md)
    for n in ("a", "b", "docs/1", "docs/2", "docs/private/3", "z"):
        await _obj(md, n)
    await _obj(md, "docs", directory=True)
    await _obj(md, "docs/private", directory=True)
    await md.sharing.set(O, C, "docs", "read=owner:team")
    await md.sharing.set(O, C, "docs/private", "read=eve")
    await md.sharing.set(O, C, "b", "write=carol")
    names = lambda page: [e.name for e in page]  # noqa: E731
    assert names(await md.listing.objects(O, C, as_user="carol")) == ["b", "docs", "docs/1", "docs/2"]
    assert names(await md.listing.objects(O, C, as_user="carol", delimiter="/")) == ["b", "docs", "docs/"]
    assert names(await md.listing.objects(O, C, as_user="eve")) == ["docs/private", "docs/private/3"]
    assert names(await md.listing.objects(O, C, as_user="bob")) == []
    assert len(await md.listing.objects(O, C, as_user=O)) == 8  # the owner sees everything
    assert names(await md.listing.objects(O, C, shared=True)) == [
        "b", "docs", "docs/1", "docs/2", "docs/private", "docs/private/3"]
    await md.public.publish(O, C, "z")
    assert names(await md.listing.objects(O, C, public=True)) == ["z"]
    assert names(await md.listing.objects(O, C, public=True, shared=True, limit=2)) == ["b", "docs"]


async def test_shared_with_me_accounts_and_containers(md: MetadataStore) -> None:
    await _setup(md)
    await make_container(md, account="other")
    await md.containers.create(O, "empty")
    await _obj(md, "doc")
    await md.objects.put("other", C, "x", map=mapref("x"), modified_by="other")
    await md.sharing.set(O, C, "doc", "read=owner:team")
    await md.sharing.set("other", C, "x", "read=*")
    assert await md.sharing.accounts_sharing_with("carol") == ["other", "owner"]
    assert await md.sharing.accounts_sharing_with("bob") == ["other"]
    assert await md.sharing.accounts_sharing_with("other") == []  # not oneself
    assert [c.name for c in await md.listing.containers(O, as_user="carol")] == [C]
    assert await md.listing.containers(O, as_user="bob") == []


async def test_public_urls(md: MetadataStore) -> None:
    await _setup(md)
    await _obj(md, "pic.jpg")
    with pytest.raises(errors.ObjectNotFound):
        await md.public.publish(O, C, "missing")
    t = await md.public.publish(O, C, "pic.jpg")
    assert len(t) >= 20 and await md.public.publish(O, C, "pic.jpg") == t  # stable
    assert await md.public.token(O, C, "pic.jpg") == t
    assert await md.public.resolve(t) == PublicTarget(O, C, "pic.jpg")
    await md.objects.put(O, C, "pic.jpg", map=mapref("v2"), modified_by=O)
    assert await md.public.resolve(t) == PublicTarget(O, C, "pic.jpg")  # survives new versions
    assert await md.public.unpublish(O, C, "pic.jpg") and not await md.public.unpublish(O, C, "pic.jpg")
    assert await md.public.resolve(t) is None and await md.public.resolve("") is None
    t2 = await md.public.publish(O, C, "pic.jpg")
    assert t2 != t
    await md.objects.delete(O, C, "pic.jpg", modified_by=O)
    assert await md.public.resolve(t2) is None


# -- property: a shared listing is the owner's listing filtered by permission() --------

_n = itertools.count()
PATH = st.text(st.sampled_from(["a", "b", "/"]), min_size=1, max_size=5)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(
    names=st.sets(PATH, min_size=1, max_size=25),
    dirs=st.sets(PATH, max_size=6),
    shares=st.lists(st.tuples(PATH, st.sampled_from(["read=bob", "write=bob", "read=carol", "read=owner:g", "read=*"])),
                    max_size=6),
    delimiter=st.sampled_from([None, "/"]),
    page=st.integers(1, 6),
)
def test_shared_listing_equals_filtered_listing(
    smd: SyncMetadataStore,
    names: set[str],
    dirs: set[str],
    shares: list[tuple[str, str]],
    delimiter: str | None,
    page: int,
) -> None:
    cont = f"c{next(_n)}"
    smd.accounts.ensure(O)
    smd.accounts.ensure("bob")
    smd.accounts.set_groups(O, {"g": ["bob"]})
    smd.containers.create(O, cont)
    items = [PutItem(n, mapref(n), content_type="application/directory" if n in dirs else "text/plain")
             for n in sorted(names | dirs)]
    smd.objects.put_many(O, cont, items, modified_by=O)
    for path, spec in shares:
        if path in names | dirs:
            smd.sharing.set(O, cont, path, spec)
    readable = {n for n in names | dirs if smd.sharing.permission(O, cont, n, "bob").can_read}
    got, marker = [], None
    while True:
        entries = smd.listing.objects(O, cont, as_user="bob", delimiter=delimiter, marker=marker, limit=page)
        got += keys(entries)
        if len(entries) < page:
            break
        marker = entries[-1].name
    assert got == reference_listing(readable, delimiter=delimiter, limit=10**9)


async def test_owner_view_reads_version_sharing_and_public_token_together(md: MetadataStore) -> None:
    await _setup(md)
    await _obj(md, "docs", directory=True)
    await _obj(md, "docs/a.txt")
    first = (await md.objects.get(O, C, "docs/a.txt")).serial
    await md.objects.put(O, C, "docs/a.txt", map=mapref("v2"), modified_by=O)
    view = await md.objects.get_for_owner(O, C, "docs/a.txt")
    assert view.version == await md.objects.get(O, C, "docs/a.txt")
    assert view.sharing is None and view.public_token is None
    await md.sharing.set(O, C, "docs", "read=bob")
    token = await md.public.publish(O, C, "docs/a.txt")
    view = await md.objects.get_for_owner(O, C, "docs/a.txt", serial=first)
    assert view.version.serial == first  # an older version, with today's sharing and token
    assert view.sharing == await md.sharing.effective(O, C, "docs/a.txt")
    assert view.sharing is not None and view.sharing.path == "docs"
    assert view.public_token == token
    with pytest.raises(errors.ObjectNotFound):
        await md.objects.get_for_owner(O, C, "missing")
