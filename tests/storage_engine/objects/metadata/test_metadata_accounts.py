"""Accounts (metadata, groups, quota, deletion) and containers (policies, usage
counters, deletion rules)."""

from __future__ import annotations

import pytest

from storage_engine.objects.metadata import KEEP, ContainerPolicy, MetadataStore, Subdir, errors
from storage_engine import errors as kinds
from metadata_support import Clock, clock, make_container, mapref, md  # noqa: F401

A = "alice"


async def test_account_lifecycle(md: MetadataStore) -> None:
    a = await md.accounts.create(A, quota=10, meta={"Owner": "Alice A."})
    assert (a.name, a.quota, a.meta, a.container_count, a.groups) == (A, 10, {"owner": "Alice A."}, 0, {})
    with pytest.raises(errors.AccountExists) as exc:
        await md.accounts.create(A)
    assert isinstance(exc.value, kinds.Conflict)
    assert await md.accounts.ensure(A) == await md.accounts.get(A)
    assert (await md.accounts.ensure("bob")).name == "bob"
    with pytest.raises(errors.AccountNotFound):
        await md.accounts.get("carol")
    await md.accounts.delete("bob")
    with pytest.raises(errors.AccountNotFound):
        await md.accounts.delete("bob")


async def test_account_listing_pages(md: MetadataStore) -> None:
    names = [f"user{i:02d}" for i in range(25)] + ["admin"]
    for n in names:
        await md.accounts.create(n)
    got, marker = [], None
    while True:
        page = await md.accounts.list(prefix="user", marker=marker, limit=10)
        got += [a.name for a in page]
        if len(page) < 10:
            break
        marker = page[-1].name
    assert got == sorted(n for n in names if n.startswith("user"))


async def test_account_meta_merge_remove_replace(md: MetadataStore, clock: Clock) -> None:
    before = (await md.accounts.create(A, meta={"a": "1", "b": "2"})).mtime
    a = await md.accounts.update_meta(A, {"B": None, "c": "3", "a": ""})
    assert a.meta == {"c": "3"} and a.mtime > before
    a = await md.accounts.update_meta(A, {"z": "26"}, replace=True)
    assert a.meta == {"z": "26"}
    with pytest.raises(errors.InvalidMetadata):
        await md.accounts.update_meta(A, {f"k{i}": "v" for i in range(91)})
    with pytest.raises(errors.InvalidMetadata):
        await md.accounts.update_meta(A, {f"k{i}": "v" * 200 for i in range(30)})  # > 4096 bytes in all


async def test_groups(md: MetadataStore) -> None:
    await md.accounts.create(A)
    a = await md.accounts.set_groups(A, {"Friends": ["bob", "carol", "bob"], "work": ["dave"]})
    assert a.groups == {"friends": ("bob", "carol"), "work": ("dave",)}
    a = await md.accounts.set_groups(A, {"work": [], "family": ["eve"]})
    assert a.groups == {"friends": ("bob", "carol"), "family": ("eve",)}
    a = await md.accounts.set_groups(A, {"x": ["y"]}, replace=True)
    assert a.groups == {"x": ("y",)}
    with pytest.raises(errors.InvalidName):
        await md.accounts.set_groups(A, {"bad name": ["y"]})
    with pytest.raises(errors.InvalidName):
        await md.accounts.set_groups(A, {"g": ["a,b"]})


async def test_account_delete_rules(md: MetadataStore) -> None:
    await make_container(md)
    with pytest.raises(errors.AccountNotEmpty):
        await md.accounts.delete(A)
    await md.containers.delete(A, "c")
    await md.tokens.create(A)
    await md.accounts.set_groups(A, {"g": ["bob"]})
    await md.accounts.delete(A)
    assert await md.accounts.list() == []


async def test_a_recreated_account_inherits_no_shares(md: MetadataStore) -> None:
    await make_container(md, account="owner")
    await md.objects.put("owner", "c", "doc", map=mapref("d"), modified_by="owner")
    await md.accounts.ensure("bob")
    await md.accounts.set_groups("bob", {"team": ["carol"]})
    await md.sharing.set("owner", "c", "doc", "read=bob,bob:team")
    assert (await md.sharing.permission("owner", "c", "doc", "carol")).can_read
    await md.accounts.delete("bob")
    await md.accounts.create("bob")
    assert not (await md.sharing.permission("owner", "c", "doc", "bob")).can_read
    assert not (await md.sharing.permission("owner", "c", "doc", "carol")).can_read


async def test_container_create_and_policies(md: MetadataStore) -> None:
    with pytest.raises(errors.AccountNotFound):
        await md.containers.create(A, "c")
    await md.accounts.create(A)
    c = await md.containers.create(A, "c", meta={"Color": "blue"})
    assert c.policy == ContainerPolicy() and c.policy.hash_scheme == "blake3"
    assert c.policy.block_size == 4 * 1024 * 1024 and c.meta == {"color": "blue"}
    p = ContainerPolicy(versioning="none", quota=1000, block_size=1 << 20, hash_scheme="sha256")
    assert (await md.containers.create(A, "d", policy=p)).policy == p
    with pytest.raises(errors.ContainerExists):
        await md.containers.create(A, "c")
    for bad in (
        ContainerPolicy(versioning="sometimes"),
        ContainerPolicy(quota=-1),
        ContainerPolicy(quota=1 << 63),  # more than SQLite's INTEGER holds
        ContainerPolicy(block_size=1000),
        ContainerPolicy(block_size=256),
        ContainerPolicy(hash_scheme="md5"),
    ):
        with pytest.raises(errors.InvalidPolicy):
            await md.containers.create(A, "e", policy=bad)
    for bad_name in ("a/b", "", "x" * 257, "nul\x00"):
        with pytest.raises(errors.InvalidName):
            await md.containers.create(A, bad_name)
    assert (await md.accounts.get(A)).container_count == 2


async def test_scheme_and_block_size_change_only_while_empty(md: MetadataStore, clock: Clock) -> None:
    await make_container(md)
    c = await md.containers.update(A, "c", hash_scheme="sha256", block_size=1 << 16)
    assert (c.policy.hash_scheme, c.policy.block_size) == ("sha256", 1 << 16)
    await md.objects.put(A, "c", "x", map=mapref("x", scheme="sha256"), modified_by=A)
    with pytest.raises(errors.PolicyLocked) as exc:
        await md.containers.update(A, "c", hash_scheme="blake3")
    assert isinstance(exc.value, kinds.Conflict)
    with pytest.raises(errors.PolicyLocked):
        await md.containers.update(A, "c", block_size=1 << 20)
    # Setting the same values, versioning, quota and meta are always fine.
    c = await md.containers.update(A, "c", hash_scheme="sha256", block_size=1 << 16, versioning="none",
                                   quota=5, meta={"k": "v"})
    assert (c.policy.versioning, c.policy.quota, c.meta) == ("none", 5, {"k": "v"})
    await md.containers.update(A, "c", versioning="auto", quota=KEEP)
    await md.objects.delete(A, "c", "x", modified_by=A)  # auto: history + deleted marker remain
    with pytest.raises(errors.PolicyLocked):
        await md.containers.update(A, "c", hash_scheme="blake3")
    await md.objects.purge_history(A, "c", before=clock() + 1)
    c = await md.containers.update(A, "c", hash_scheme="blake3")
    assert c.policy.hash_scheme == "blake3" and c.policy.quota == 5


async def test_container_meta(md: MetadataStore) -> None:
    await make_container(md)
    c = await md.containers.update(A, "c", meta={"a": "1", "b": "2"})
    c = await md.containers.update(A, "c", meta={"a": None})
    assert c.meta == {"b": "2"}
    c = await md.containers.update(A, "c", meta={"z": "1"}, replace_meta=True)
    assert c.meta == {"z": "1"}


async def test_usage_is_maintained_incrementally(md: MetadataStore) -> None:
    await make_container(md, container="auto")
    await make_container(md, container="none", versioning="none")
    for cont in ("auto", "none"):
        await md.objects.put(A, cont, "a", map=mapref("a", 10), modified_by=A)
        await md.objects.put(A, cont, "b", map=mapref("b", 20), modified_by=A)
        await md.objects.put(A, cont, "a", map=mapref("a2", 15), modified_by=A)
        await md.objects.delete(A, cont, "b", modified_by=A)
    auto, none = await md.containers.get(A, "auto"), await md.containers.get(A, "none")
    assert (auto.usage.object_count, auto.usage.bytes_used, auto.usage.history_count, auto.usage.history_bytes) == (
        1, 15, 2, 30)
    assert (none.usage.object_count, none.usage.bytes_used, none.usage.history_count, none.usage.history_bytes) == (
        1, 15, 0, 0)
    acct = await md.accounts.get(A)
    assert (acct.usage.object_count, acct.usage.bytes_used, acct.usage.history_bytes) == (2, 30, 30)
    assert await md.maintenance.verify() == []


async def test_container_delete(md: MetadataStore) -> None:
    await make_container(md)
    await make_container(md, container="other")
    await md.objects.put(A, "c", "a", map=mapref("a"), modified_by=A)
    await md.objects.put(A, "c", "a", map=mapref("a2"), modified_by=A)
    await md.objects.put(A, "other", "x", map=mapref("a2"), modified_by=A)
    await md.sharing.set(A, "c", "a", "read=*")
    token = await md.public.publish(A, "c", "a")
    with pytest.raises(errors.ContainerNotEmpty) as exc:
        await md.containers.delete(A, "c")
    assert isinstance(exc.value, kinds.Conflict)
    await md.objects.delete(A, "c", "a", modified_by=A)
    r = await md.containers.delete(A, "c")
    assert r.removed == 3  # a (history), a2 (history), the deleted marker
    assert r.freed_maps == (mapref("a"),)  # a2 is still used by other/x
    assert sorted(r.dropped_maps) == sorted([mapref("a"), mapref("a2")])
    assert await md.public.resolve(token) is None
    with pytest.raises(errors.ContainerNotFound):
        await md.containers.get(A, "c")
    acct = await md.accounts.get(A)
    assert acct.container_count == 1 and acct.usage.history_count == 0
    assert await md.maintenance.verify() == []


async def test_container_listing(md: MetadataStore) -> None:
    await md.accounts.create(A)
    for n in ("logs-2023", "logs-2024", "photos", "backup"):
        await md.containers.create(A, n)
    await md.objects.put(A, "photos", "p", map=mapref("p", 7), modified_by=A)
    page = await md.listing.containers(A, delimiter="-")
    assert [(type(e).__name__, e.name) for e in page] == [
        ("Container", "backup"), ("Subdir", "logs-"), ("Container", "photos")]
    assert page[2].usage.bytes_used == 7  # type: ignore[union-attr]
    assert [e.name for e in await md.listing.containers(A, marker="backup", limit=2)] == ["logs-2023", "logs-2024"]
    assert [e.name for e in await md.listing.containers(A, prefix="logs-", end_marker="logs-2024")] == ["logs-2023"]
    assert await md.listing.containers(A, prefix="zzz") == []
    assert Subdir("logs-") in await md.listing.containers(A, delimiter="-")
