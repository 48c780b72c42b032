"""Listings: Swift/Pithos semantics, a brute-force reference (hypothesis), paging,
and proof that pages come from index seeks (EXPLAIN QUERY PLAN, VM step counts)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage_engine.objects.metadata import ContainerPolicy, MetadataStore, PutItem, Subdir, SyncMetadataStore, errors
from storage_engine.objects.metadata.listing import (
    CONTAINER_QUERIES,
    CONTAINER_QUERIES_DESC,
    OBJECT_QUERIES,
    OBJECT_QUERIES_DESC,
)
from metadata_support import (  # noqa: F401
    assert_none_scans_versions,
    clock,
    keys,
    make_container,
    mapref,
    md,
    query_plan,
    reference_listing,
    selects_on_versions,
    smd,
)

A = "alice"
_counter = itertools.count()

# Few characters, so names share prefixes and contain delimiters often; plus the
# code points where "next string" arithmetic is delicate.
ALPHABET = st.sampled_from(["a", "b", "/", "-", ".", "é", "\ud7ff", "\ue000", "\U0010ffff"])
NAME = st.text(ALPHABET, min_size=1, max_size=6)
KEY = st.one_of(st.none(), st.text(ALPHABET, max_size=4))
DELIMITER = st.one_of(st.none(), st.sampled_from(["/", "-", "ab", "\U0010ffff", "//"]))
FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=120)


def _fill(smd: SyncMetadataStore, names: set[str], deleted: set[str], overwritten: set[str]) -> str:
    """A fresh container holding ``names`` as current objects, plus history and
    deleted markers that listings must not show."""
    container = f"c{next(_counter)}"
    smd.accounts.ensure(A)
    smd.containers.create(A, container)
    everything = sorted(names | deleted)
    smd.objects.put_many(A, container, [PutItem(n, mapref(n)) for n in everything], modified_by=A)
    smd.objects.put_many(A, container, [PutItem(n, mapref(n + "2")) for n in sorted(overwritten)], modified_by=A)
    for n in sorted(deleted):
        smd.objects.delete(A, container, n, modified_by=A)
    return container


@FIXTURE_OK
@given(
    names=st.sets(NAME, max_size=40),
    ghosts=st.sets(NAME, max_size=5),
    prefix=st.text(ALPHABET, max_size=3),
    delimiter=DELIMITER,
    marker=KEY,
    end_marker=KEY,
    limit=st.integers(0, 45),
    reverse=st.booleans(),
)
def test_listing_equals_brute_force(
    smd: SyncMetadataStore,
    names: set[str],
    ghosts: set[str],
    prefix: str,
    delimiter: str | None,
    marker: str | None,
    end_marker: str | None,
    limit: int,
    reverse: bool,
) -> None:
    deleted = ghosts - names
    container = _fill(smd, names, deleted, set(list(names)[::2]))
    page = smd.listing.objects(
        A, container, prefix=prefix, delimiter=delimiter, marker=marker, end_marker=end_marker, limit=limit,
        reverse=reverse,
    )
    want = reference_listing(
        names, prefix=prefix, delimiter=delimiter, marker=marker, end_marker=end_marker, limit=limit,
        reverse=reverse,
    )
    assert keys(page) == want


@FIXTURE_OK
@given(
    names=st.sets(NAME, min_size=1, max_size=40),
    prefix=st.text(ALPHABET, max_size=2),
    delimiter=DELIMITER,
    page_size=st.integers(1, 7),
)
def test_paging_never_repeats_nor_skips(
    smd: SyncMetadataStore, names: set[str], prefix: str, delimiter: str | None, page_size: int
) -> None:
    container = _fill(smd, names, set(), set())
    for reverse in (False, True):
        seen: list[tuple[str, str]] = []
        marker = None
        while True:
            page = smd.listing.objects(
                A, container, prefix=prefix, delimiter=delimiter, marker=marker, limit=page_size, reverse=reverse
            )
            seen += keys(page)
            if len(page) < page_size:
                break
            marker = page[-1].name
        assert len(set(seen)) == len(seen)
        assert seen == reference_listing(names, prefix=prefix, delimiter=delimiter, limit=10**9, reverse=reverse)


@FIXTURE_OK
@given(
    names=st.sets(st.text(st.sampled_from(["a", "b", "-", "é", "\U0010ffff"]), min_size=1, max_size=5), max_size=25),
    prefix=st.text(st.sampled_from(["a", "b", "-"]), max_size=2),
    delimiter=st.one_of(st.none(), st.just("-")),
    marker=st.one_of(st.none(), st.text(st.sampled_from(["a", "b", "-"]), max_size=3)),
    limit=st.integers(0, 30),
    reverse=st.booleans(),
)
def test_container_listing_equals_brute_force(
    smd: SyncMetadataStore, names: set[str], prefix: str, delimiter: str | None, marker: str | None, limit: int,
    reverse: bool,
) -> None:
    account = f"acct{next(_counter)}"
    smd.accounts.create(account)
    for n in names:
        smd.containers.create(account, n)
    page = smd.listing.containers(
        account, prefix=prefix, delimiter=delimiter, marker=marker, limit=limit, reverse=reverse
    )
    assert keys(page) == reference_listing(
        names, prefix=prefix, delimiter=delimiter, marker=marker, limit=limit, reverse=reverse
    )


async def _names(md: MetadataStore, names: list[str], container: str = "c") -> None:
    await make_container(md, container=container)
    await md.objects.put_many(A, container, [PutItem(n, mapref(n)) for n in names], modified_by=A)


async def test_swift_delimiter_examples(md: MetadataStore) -> None:
    await _names(md, ["a", "a/", "a/b", "a/b/c", "a/c", "b", "b/x", "c/d/e", "ca"])
    ls = md.listing.objects

    def names(page: list) -> list[str]:  # type: ignore[type-arg]
        return [("/" if isinstance(e, Subdir) else "") + e.name for e in page]

    assert names(await ls(A, "c", delimiter="/")) == ["a", "/a/", "b", "/b/", "/c/", "ca"]
    assert names(await ls(A, "c", prefix="a/", delimiter="/")) == ["a/", "a/b", "/a/b/", "a/c"]
    assert names(await ls(A, "c", delimiter="/", marker="a/")) == ["b", "/b/", "/c/", "ca"]
    assert names(await ls(A, "c", delimiter="/", limit=2)) == ["a", "/a/"]
    assert names(await ls(A, "c", delimiter="/", end_marker="b/")) == ["a", "/a/", "b"]
    assert names(await ls(A, "c", prefix="a/b")) == ["a/b", "a/b/c"]
    assert names(await ls(A, "c", limit=0)) == []


async def test_pithos_path(md: MetadataStore) -> None:
    """path=p: the objects directly under p/, no subdir entries (Pithos and Swift); p/
    itself is not listed, a marker ending in '/' just under it is."""
    await _names(md, ["photos", "photos/", "photos/a.jpg", "photos/2024/b.jpg", "photos/2025/", "photos/2025/c",
                      "photosx", "top"])
    page = await md.listing.objects(A, "c", path="photos")
    assert [(type(e).__name__, e.name) for e in page] == [
        ("ObjectVersion", "photos/2025/"),
        ("ObjectVersion", "photos/a.jpg"),
    ]
    assert await md.listing.objects(A, "c", path="photos/") == page
    top = await md.listing.objects(A, "c", path="")
    assert [e.name for e in top] == ["photos", "photos/", "photosx", "top"]
    # paging: the limit counts objects only, and a marker inside a skipped subtree works
    assert [e.name for e in await md.listing.objects(A, "c", path="photos", limit=1)] == ["photos/2025/"]
    later = await md.listing.objects(A, "c", path="photos", marker="photos/2025/")
    assert [e.name for e in later] == ["photos/a.jpg"]
    # the same without path: prefix + delimiter, with the subdir entries
    both = await md.listing.objects(A, "c", prefix="photos/", delimiter="/")
    assert [(type(e).__name__, e.name) for e in both] == [
        ("ObjectVersion", "photos/"), ("Subdir", "photos/2024/"), ("Subdir", "photos/2025/"),
        ("ObjectVersion", "photos/a.jpg"),
    ]


async def test_listing_entries_carry_what_json_listings_need(md: MetadataStore) -> None:
    await make_container(md)
    await md.objects.put(A, "c", "x", map=mapref("x"), modified_by="bob", content_type="text/plain", meta={"k": "v"})
    (e,) = await md.listing.objects(A, "c")
    assert (e.name, e.size, e.etag, e.content_type, e.modified_by, e.meta) == (
        "x", 1, mapref("x").hex, "text/plain", "bob", {"k": "v"}
    )
    assert e.serial > 0 and e.mtime > 0


async def test_listing_errors(md: MetadataStore) -> None:
    await make_container(md)
    with pytest.raises(errors.InvalidArgument):
        await md.listing.objects(A, "c", limit=10001)
    with pytest.raises(errors.InvalidArgument):
        await md.listing.objects(A, "c", prefix="a\x00")
    with pytest.raises(errors.ContainerNotFound):
        await md.listing.objects(A, "nope")


async def test_default_limit_is_10000(tmp_path: Path) -> None:
    with SyncMetadataStore(tmp_path / "m.db", synchronous="NORMAL") as s:
        s.accounts.create(A)
        s.containers.create(A, "c")
        s.objects.put_many(A, "c", [PutItem(f"{i:05d}", mapref(str(i))) for i in range(10001)], modified_by=A)
        first = s.listing.objects(A, "c")
        assert len(first) == 10000 and first[-1].name == "09999"
        assert [e.name for e in s.listing.objects(A, "c", marker=first[-1].name)] == ["10000"]


# -- served from the index, never a scan ----------------------------------------------


def test_every_listing_query_shape_searches_the_index(smd: SyncMetadataStore) -> None:
    conn = smd.connection
    for (_, bounded), sql in OBJECT_QUERIES.items():
        plan = query_plan(conn, sql, [1, "a", *(["b"] if bounded else []), 10])
        assert "SEARCH versions USING INDEX versions_current (container_id=? AND name>" in plan, plan
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    for (_, bounded), sql in CONTAINER_QUERIES.items():
        plan = query_plan(conn, sql, [1, "a", *(["b"] if bounded else []), 10])
        assert "USING INDEX containers_by_name (account_id=? AND name>" in plan, plan
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    # reverse=: the same indexes walked backwards, never a sort
    for (bounded, _), sql in OBJECT_QUERIES_DESC.items():
        plan = query_plan(conn, sql, [1, "a", *(["b"] if bounded else []), 10])
        assert "SEARCH versions USING INDEX versions_current (container_id=? AND name>" in plan, plan
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    for (bounded, _), sql in CONTAINER_QUERIES_DESC.items():
        plan = query_plan(conn, sql, [1, "a", *(["b"] if bounded else []), 10])
        assert "USING INDEX containers_by_name (account_id=? AND name>" in plan, plan
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan


def test_statements_run_by_listings_never_scan(smd: SyncMetadataStore) -> None:
    """Trace what a real paged listing executes (owner, delimiter, shared with a user)
    and EXPLAIN every SELECT: only index searches."""
    smd.accounts.create(A)
    smd.accounts.create("bob")
    smd.containers.create(A, "c")
    names = [f"d{i}/f{j}" for i in range(30) for j in range(5)] + [f"top{i}" for i in range(20)]
    smd.objects.put_many(A, "c", [PutItem(n, mapref(n)) for n in names], modified_by=A)
    smd.objects.put(A, "c", "d3", map=mapref(b""), modified_by=A, content_type="application/directory")
    smd.sharing.set(A, "c", "d3", "read=bob")
    smd.sharing.set(A, "c", "top7", "read=*")
    conn = smd.connection
    with selects_on_versions(conn) as selects:
        marker = None
        while True:
            page = smd.listing.objects(A, "c", delimiter="/", marker=marker, limit=7)
            if len(page) < 7:
                break
            marker = page[-1].name
        smd.listing.objects(A, "c", as_user="bob", limit=3)
        smd.listing.objects(A, "c", as_user="bob", delimiter="/")
        smd.listing.objects(A, "c", shared=True, public=True)
        smd.listing.containers(A, as_user="bob")
        smd.listing.containers(A, prefix="c", delimiter="-", limit=1)
        smd.listing.objects(A, "c", delimiter="/", reverse=True, limit=9)
        smd.listing.objects(A, "c", as_user="bob", delimiter="/", reverse=True)
        smd.listing.containers(A, as_user="bob", reverse=True)
    assert len(selects) > 20
    assert_none_scans_versions(conn, selects)


def test_a_page_costs_the_same_in_a_large_container(tmp_path: Path) -> None:
    """Count SQLite VM instructions: a 10-entry page deep inside a 20 000-object
    container costs about what it costs in a 200-object one, and far less than a scan."""

    def cost(n_objects: int) -> tuple[int, int]:
        with SyncMetadataStore(tmp_path / f"m{n_objects}.db", synchronous="NORMAL") as s:
            s.accounts.create(A)
            s.containers.create(A, "c", policy=ContainerPolicy())
            items = [PutItem(f"d{i % 50:02d}/{i:06d}", mapref(str(i))) for i in range(n_objects)]
            s.objects.put_many(A, "c", items, modified_by=A)
            conn = s.connection
            steps = [0]

            def tick() -> int:
                steps[0] += 1
                return 0

            conn.set_progress_handler(tick, 100)
            page = s.listing.objects(A, "c", marker="d25", limit=10)  # from the middle
            assert len(page) == 10
            paged = steps[0]
            steps[0] = 0
            s.listing.objects(A, "c", delimiter="/", limit=50)  # 50 subdirs, 50 seeks
            delimited = steps[0]
            steps[0] = 0
            conn.execute("SELECT count(*), sum(size) FROM versions NOT INDEXED").fetchone()
            scan = steps[0]
            conn.set_progress_handler(None, 0)
            return paged, delimited, scan

    small, large = cost(200), cost(20000)
    assert large[0] * 50 < large[2] and large[1] * 20 < large[2], large  # far cheaper than one scan
    assert large[0] <= small[0] * 2 + 2, (small, large)  # and independent of the container's size
    assert large[1] <= small[1] * 2 + 2, (small, large)


async def test_objects_with_extras_gives_own_sharing_and_public_tokens_of_the_page(md: MetadataStore) -> None:
    await md.accounts.ensure(A)
    await md.containers.create(A, "x")
    names = [f"d/{i:04d}" for i in range(1200)] + ["top"]  # more names than one IN list holds
    await md.objects.put_many(A, "x", [PutItem(n, mapref(n)) for n in names], modified_by=A)
    shared = {n: f"read=u{i}" for i, n in enumerate(names[::97])}
    for n, s in shared.items():
        await md.sharing.set(A, "x", n, s)
    tokens = {n: await md.public.publish(A, "x", n) for n in names[5::300]}
    page, extras = await md.listing.objects_with_extras(A, "x", limit=10000)
    assert [e.name for e in page] == names
    assert set(extras) == set(shared) | set(tokens)
    for n, e in extras.items():
        assert (e.sharing.format() if e.sharing else None) == shared.get(n)
        assert e.public_token == tokens.get(n)
    page, extras = await md.listing.objects_with_extras(A, "x", delimiter="/")
    assert page == [Subdir("d/"), await md.objects.get(A, "x", "top")] and extras == {}
    page, extras = await md.listing.objects_with_extras(A, "x", prefix="d/0000", public=True)
    assert page == [] and extras == {}


@pytest.mark.parametrize("delimiter", [None, "/"])
def test_listings_restricted_by_sharing_reverse_exactly(smd: SyncMetadataStore, delimiter: str | None) -> None:
    """reverse= over the ranges another user may see (and the owner's shared=): the
    same entries as the forward listing, backwards, page by page."""
    account = f"acct{next(_counter)}"
    smd.accounts.create(account)
    smd.accounts.ensure("bob")
    smd.containers.create(account, "c")
    names = [f"d{i}/f{j}" for i in range(6) for j in range(3)] + [f"top{i}" for i in range(6)]
    smd.objects.put_many(account, "c", [PutItem(n, mapref(n)) for n in names], modified_by=account)
    smd.sharing.set(account, "c", "d3/f1", "read=bob")
    smd.sharing.set(account, "c", "d4/f0", "read=bob")
    smd.sharing.set(account, "c", "top2", "read=*")
    for who in ({"as_user": "bob"}, {"shared": True}):
        forward = keys(smd.listing.objects(account, "c", delimiter=delimiter, **who))
        assert forward and keys(smd.listing.objects(account, "c", delimiter=delimiter, reverse=True, **who)) == forward[::-1]
        seen: list[tuple[str, str]] = []
        marker = None
        while True:
            page = smd.listing.objects(account, "c", delimiter=delimiter, marker=marker, limit=1, reverse=True, **who)
            seen += keys(page)
            if not page:
                break
            marker = page[-1].name
        assert seen == forward[::-1]
    assert keys(smd.listing.containers(account, as_user="bob", reverse=True)) == [("c", "object")]
