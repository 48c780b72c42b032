"""Reading the past (Pithos `until`): versions, listings and usage as they were at a
time, checked against a replay of the writes (hypothesis), under versioning auto and
none, and proof that the queries are index searches."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage_engine.objects.metadata import ContainerPolicy, MetadataStore, ObjectVersion, SyncMetadataStore, errors
from storage_engine.objects.metadata.history import LATEST_NAMES, LATEST_OF_NAME, USAGE_AT
from metadata_support import (  # noqa: F401
    Clock,
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
NAME = st.text(st.sampled_from(["a", "b", "/", "é"]), min_size=1, max_size=4)
# (name, size) writes a version of that size; (name, None) deletes the object
OPS = st.lists(st.tuples(NAME, st.one_of(st.none(), st.integers(0, 5))), min_size=1, max_size=25)
FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)


def _replay(smd: SyncMetadataStore, clock: Clock, versioning: str, ops: list[tuple[str, int | None]]) -> tuple[
    str, list[tuple[float, dict[str, int]]]
]:
    """Apply ``ops`` to a fresh container; returns it and [(time, {name: size})] after each op."""
    container = f"c{next(_counter)}"
    smd.accounts.ensure(A)
    smd.containers.create(A, container, policy=ContainerPolicy(versioning=versioning))
    alive: dict[str, int] = {}
    states: list[tuple[float, dict[str, int]]] = [(clock.now, {})]
    clock.advance(1)
    for i, (name, size) in enumerate(ops):
        if size is None:
            if name not in alive:
                continue
            smd.objects.delete(A, container, name, modified_by=A)
            del alive[name]
        else:
            smd.objects.put(A, container, name, map=mapref(f"{name}{i}", size), modified_by=A)
            alive[name] = size
        states.append((clock.now, dict(alive)))
        clock.advance(1)
    return container, states


@FIXTURE_OK
@given(
    ops=OPS,
    pick=st.integers(0, 1000),
    prefix=st.text(st.sampled_from(["a", "b", "/"]), max_size=2),
    delimiter=st.one_of(st.none(), st.just("/")),
    marker=st.one_of(st.none(), st.text(st.sampled_from(["a", "b", "/"]), max_size=3)),
    limit=st.integers(0, 30),
)
def test_the_past_under_auto_equals_a_replay(
    smd: SyncMetadataStore,
    clock: Clock,
    ops: list[tuple[str, int | None]],
    pick: int,
    prefix: str,
    delimiter: str | None,
    marker: str | None,
    limit: int,
) -> None:
    container, states = _replay(smd, clock, "auto", ops)
    t, alive = states[pick % len(states)]
    for until in (t, t + 0.5):  # at the write, and between two writes
        page = smd.history.objects(A, container, until=until, prefix=prefix, delimiter=delimiter, marker=marker,
                                   limit=limit)
        assert keys(page) == reference_listing(alive, prefix=prefix, delimiter=delimiter, marker=marker, limit=limit)
        for e in page:
            if isinstance(e, ObjectVersion):
                assert e.size == alive[e.name] and e.mtime <= until and e.state != "deleted"
        at = smd.history.container(A, container, until=until)
        assert (at.usage.object_count, at.usage.bytes_used) == (len(alive), sum(alive.values()))
        assert at.last_modified <= until
        for name in {n for n, _ in ops}:
            if name in alive:
                assert smd.history.object(A, container, name, until=until).size == alive[name]
            else:
                with pytest.raises(errors.ObjectNotFound):
                    smd.history.object(A, container, name, until=until)


def test_versions_across_a_write_and_a_delete(smd: SyncMetadataStore, clock: Clock) -> None:
    smd.accounts.ensure(A)
    smd.containers.create(A, "c")
    v1 = smd.objects.put(A, "c", "doc", map=mapref("one"), modified_by=A, meta={"k": "1"}).version
    clock.advance(10)
    v2 = smd.objects.put(A, "c", "doc", map=mapref("two!"), modified_by="bob").version
    clock.advance(10)
    gone = smd.objects.delete(A, "c", "doc", modified_by=A).marker
    assert gone is not None
    h = smd.history
    with pytest.raises(errors.ObjectNotFound):
        h.object(A, "c", "doc", until=v1.mtime - 0.001)
    first = h.object(A, "c", "doc", until=v1.mtime)  # written at exactly T: part of T
    assert (first.serial, first.etag, first.meta, first.uuid) == (v1.serial, v1.etag, {"k": "1"}, v1.uuid)
    assert h.object(A, "c", "doc", until=v2.mtime - 1).serial == v1.serial
    assert h.object(A, "c", "doc", until=gone.mtime - 1).modified_by == "bob"
    with pytest.raises(errors.ObjectNotFound):
        h.object(A, "c", "doc", until=gone.mtime)
    assert h.objects(A, "c", until=gone.mtime) == []
    assert [e.serial for e in h.objects(A, "c", until=gone.mtime - 1)] == [v2.serial]


def test_versioning_none_shows_what_is_kept(smd: SyncMetadataStore, clock: Clock) -> None:
    """Only current versions exist: the past holds the current objects written by then."""
    container, states = _replay(smd, clock, "none", [("old", 1), ("gone", 2), ("new", 3), ("old", 4), ("gone", None)])
    (t_old, _), (t_gone, _), (t_new, _) = states[1:4]
    assert [e.name for e in smd.history.objects(A, container, until=t_old)] == []  # "old" was rewritten later
    assert [e.name for e in smd.history.objects(A, container, until=t_gone)] == []  # deleted: no trace left
    assert [e.name for e in smd.history.objects(A, container, until=t_new)] == ["new"]
    assert [e.name for e in smd.history.objects(A, container, until=clock.now)] == ["new", "old"]
    assert smd.history.container(A, container, until=t_new).usage.bytes_used == 3


async def test_account_and_containers_at_a_time(md: MetadataStore, clock: Clock) -> None:
    await make_container(md, container="early")
    await md.objects.put(A, "early", "x", map=mapref("xx"), modified_by=A)
    t = clock.now
    clock.advance(5)
    await md.containers.create(A, "late")
    await md.objects.put(A, "late", "y", map=mapref("yyy"), modified_by=A)
    await md.objects.put(A, "early", "z", map=mapref("z"), modified_by=A)
    page = await md.history.containers(A, until=t)
    assert [(c.container.name, c.usage.object_count, c.usage.bytes_used) for c in page] == [("early", 1, 2)]
    now = await md.history.containers(A, until=clock.now)
    assert [(c.container.name, c.usage.object_count) for c in now] == [("early", 2), ("late", 1)]
    acct = await md.history.account(A, until=t)
    assert (acct.container_count, acct.usage.object_count, acct.usage.bytes_used) == (1, 1, 2)
    assert acct.last_modified == pytest.approx(t)
    with pytest.raises(errors.ContainerNotFound):
        await md.history.objects(A, "late", until=t)
    with pytest.raises(errors.ContainerNotFound):
        await md.history.container(A, "late", until=t)
    for bad in (-1.0, float("nan"), float("inf"), True):
        with pytest.raises(errors.InvalidArgument):
            await md.history.objects(A, "early", until=bad)  # type: ignore[arg-type]


def test_queries_search_the_covering_index(smd: SyncMetadataStore) -> None:
    conn = smd.connection
    for (_, bounded), sql in LATEST_NAMES.items():
        plan = query_plan(conn, sql, [1, "a", *(["b"] if bounded else []), 5.0])
        assert "SEARCH versions USING COVERING INDEX versions_at (container_id=? AND name>" in plan, plan
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    assert "COVERING INDEX versions_at (container_id=? AND name=? AND mtime<" in query_plan(conn, LATEST_OF_NAME, [1, "a", 5.0])
    assert "COVERING INDEX versions_at (container_id=?)" in query_plan(conn, USAGE_AT, [1, 5.0])


def test_statements_run_by_past_listings_never_scan(smd: SyncMetadataStore, clock: Clock) -> None:
    container, _ = _replay(smd, clock, "auto", [(f"d{i % 7}/f{i}", i % 3) for i in range(60)] + [("d1/f8", None)])
    conn = smd.connection
    with selects_on_versions(conn) as selects:
        marker = None
        while True:
            page = smd.history.objects(A, container, until=clock.now - 20, delimiter="/", marker=marker, limit=3)
            if len(page) < 3:
                break
            marker = page[-1].name
        smd.history.objects(A, container, until=clock.now, prefix="d1/", limit=5)
        smd.history.object(A, container, "d1/f8", until=clock.now - 5)
        smd.history.containers(A, until=clock.now)
        smd.history.account(A, until=clock.now)
    assert len(selects) > 10
    assert_none_scans_versions(conn, selects)


def test_a_past_page_costs_the_versions_it_passes(tmp_path: Path) -> None:
    """A delimiter page at T seeks past each subdir: a 3-entry page over 3 big
    directories reads far fewer rows than the directories hold."""
    with SyncMetadataStore(tmp_path / "m.db", synchronous="NORMAL") as s:
        s.accounts.create(A)
        s.containers.create(A, "c")
        from storage_engine.objects.metadata import PutItem

        for rnd in range(2):
            s.objects.put_many(
                A, "c", [PutItem(f"d{d}/{i:04d}", mapref(f"{rnd}{d}{i}")) for d in range(3) for i in range(2000)],
                modified_by=A,
            )
        conn = s.connection
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0

        conn.set_progress_handler(count, 100)
        try:
            page = s.history.objects(A, "c", until=9e9, delimiter="/")
        finally:
            conn.set_progress_handler(None, 0)
        assert [e.name for e in page] == ["d0/", "d1/", "d2/"]
        assert steps * 100 < 5000, steps  # 12 000 versions below: a walk would cost far more


@FIXTURE_OK
@given(st.floats(min_value=1e9, max_value=4e9, allow_nan=False), st.sampled_from(["version", "iso", "http"]))
def test_the_time_a_version_shows_finds_it(smd: SyncMetadataStore, clock: Clock, t: float, form: str) -> None:
    """`until` = the timestamp the API shows for a version (six decimals, ISO 8601 with
    microseconds, or whole seconds) finds that version, whatever the float rounding."""
    from net.http_conditional import format_http_date
    from net.pithos_listing import format_iso8601, format_version_timestamp
    from net.pithos_until import parse_until

    container = f"c{next(_counter)}"
    smd.accounts.ensure(A)
    clock.now = t - 0.1
    smd.containers.create(A, container)
    clock.now = t - 0.001  # the next call returns t (almost: the clock adds in floats)
    v = smd.objects.put(A, container, "x", map=mapref("x"), modified_by=A).version
    shown = {"version": format_version_timestamp, "iso": format_iso8601, "http": format_http_date}[form](v.mtime)
    until = parse_until(shown)
    if form == "http":  # whole seconds, truncated: the version is after it unless written on the second
        until += 1
    assert smd.history.object(A, container, "x", until=until).serial == v.serial
    assert [e.name for e in smd.history.objects(A, container, until=until)] == ["x"]
