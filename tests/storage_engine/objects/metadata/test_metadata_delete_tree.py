"""objects.delete_tree: Pithos' object DELETE with a delimiter, in one transaction."""

from __future__ import annotations

import pytest

from storage_engine.objects.metadata import MetadataStore, PutItem, errors
from metadata_support import clock, make_container, mapref, md  # noqa: F401

A = "alice"


async def _names(md: MetadataStore, names: list[str]) -> None:  # noqa: F811
    await make_container(md, container="c")
    await md.objects.put_many(A, "c", [PutItem(n, mapref(n)) for n in names], modified_by=A)


async def _current(md: MetadataStore) -> list[str]:  # noqa: F811
    return [e.name for e in await md.listing.objects(A, "c")]


async def test_marker_and_everything_under_it_go(md: MetadataStore) -> None:  # noqa: F811
    await _names(md, ["dir", "dir/a", "dir/sub/b", "dir/sub/c", "dirt", "dir0", "dir.x", "other"])
    result = await md.objects.delete_tree(A, "c", "dir", delimiter="/", modified_by=A)
    assert result.deleted == 4 and not result.more
    assert await _current(md) == ["dir.x", "dir0", "dirt", "other"]
    # under versioning auto the deleted ones are kept as history, as a plain DELETE keeps them
    versions = await md.objects.versions(A, "c", "dir/sub/b")
    assert versions


async def test_without_a_marker_and_with_another_delimiter(md: MetadataStore) -> None:  # noqa: F811
    await _names(md, ["p|a", "p|b|c", "p", "q|a"])
    assert (await md.objects.delete_tree(A, "c", "p", delimiter="|", modified_by=A)).deleted == 3
    assert await _current(md) == ["q|a"]
    await _names_more(md, ["x/1", "x/2"])
    assert (await md.objects.delete_tree(A, "c", "x", delimiter="/", modified_by=A)).deleted == 2  # no "x" itself


async def _names_more(md: MetadataStore, names: list[str]) -> None:  # noqa: F811
    await md.objects.put_many(A, "c", [PutItem(n, mapref(n)) for n in names], modified_by=A)


async def test_nothing_there_is_not_found_and_changes_nothing(md: MetadataStore) -> None:  # noqa: F811
    await _names(md, ["keep", "keep/a"])
    with pytest.raises(errors.ObjectNotFound):
        await md.objects.delete_tree(A, "c", "nothing", delimiter="/", modified_by=A)
    with pytest.raises(errors.InvalidArgument):
        await md.objects.delete_tree(A, "c", "keep", delimiter="", modified_by=A)
    with pytest.raises(errors.InvalidArgument):
        await md.objects.delete_tree(A, "c", "keep", delimiter="/\x00", modified_by=A)
    assert await _current(md) == ["keep", "keep/a"]
