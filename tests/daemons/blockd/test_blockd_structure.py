"""blockd's handlers are separate typed objects, and engine errors meet HTTP in one table.

The source is read with ast: no handler class inherits from another (no
mixins), nothing in blockd silences the type checker, and no blockd module uses
another's private names. The status table is checked kind by kind, and with the
engine's real errors, so an error that changes kind changes its answer here.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from daemons.blockd.errors import ENGINE_STATUS, ErrorMiddleware, engine_status
from net.http_errors import PayloadTooLarge
from source_rules import imports, private_attribute_uses, py_files
from storage_engine import errors as kinds
from storage_engine.blocks.errors import CorruptBlock, MapNotFound, StoreFull
from storage_engine.objects.metadata import errors as merr
from storage_engine.objects.store import BadHashmap, ChecksumMismatch, MissingBlocks, ShortBody

BLOCKD = py_files("daemons/blockd")


@pytest.mark.parametrize("path", BLOCKD, ids=lambda p: p.name)
def test_no_class_in_blockd_is_a_mixin(path: Path) -> None:
    """Every class has no base but object, a dataclass, or a library's (aiohttp, Exception)."""
    tree = ast.parse(path.read_text())
    local = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    imported = {name for mod, names, _ in imports(path) if mod.startswith("daemons.blockd") for name in names}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
            assert not bases & (local | imported) - {"HTTPError"}, f"{node.name} inherits {bases}"


@pytest.mark.parametrize("path", BLOCKD, ids=lambda p: p.name)
def test_blockd_silences_no_type_check(path: Path) -> None:
    assert "type: ignore" not in path.read_text()


@pytest.mark.parametrize("path", BLOCKD, ids=lambda p: p.name)
def test_blockd_uses_no_private_name_of_another_module(path: Path) -> None:
    assert private_attribute_uses(path) == []
    assert [n for _m, names, _l in imports(path) for n in names if n.startswith("_") and n != "__future__"] == []


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (merr.InvalidName("x"), 400),
        (BadHashmap("x"), 400),
        (merr.ObjectNotFound("x"), 404),
        (merr.ContainerNotEmpty("x"), 409),
        (merr.PolicyMismatch("x"), 409),
        (MissingBlocks([bytes(32)]), 409),
        (merr.PreconditionFailed("x"), 412),
        (merr.QuotaExceeded("x"), 413),
        (ChecksumMismatch("x"), 422),
        (ShortBody("x"), 499),
        (merr.Busy("x"), 503),
        (StoreFull("x"), 507),
        (kinds.PermissionDenied("x"), 403),
        (kinds.TooLarge("x"), 413),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_each_engine_error_has_its_one_status(error: Exception, status: int) -> None:
    assert engine_status(error) == status


@pytest.mark.parametrize(
    "error",
    [
        CorruptBlock("blake3", bytes(32), "checksum mismatch"),  # the store failing, not the client
        MapNotFound("gone"),
        merr.SchemaTooNew("newer"),
        kinds.EngineError("no kind"),
        RuntimeError("a bug"),
        PayloadTooLarge("a codec's own refusal carries its status"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_of_no_kind_are_not_in_the_table(error: Exception) -> None:
    assert engine_status(error) is None


def test_every_kind_of_the_engine_is_in_the_table_once() -> None:
    kinds_defined = {
        cls for _n, cls in inspect.getmembers(kinds, inspect.isclass)
        if issubclass(cls, kinds.EngineError) and cls is not kinds.EngineError
    }
    listed = [kind for kind, _status in ENGINE_STATUS]
    assert len(listed) == len(set(listed))
    assert set(listed) == kinds_defined


def test_no_engine_error_carries_a_status() -> None:
    import storage_engine.blocks.errors as berr
    import storage_engine.objects.store as ostore

    for module in (kinds, berr, merr, ostore):
        for _n, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, kinds.EngineError):
                assert not hasattr(cls, "status"), cls


def test_the_middleware_answers_an_engine_error_with_its_status_and_text() -> None:
    class FakeRequest(dict[str, object]):
        method = "GET"
        raw_path = "/v1/a/c/o"

    resp = ErrorMiddleware.error_response(FakeRequest(), merr.ContainerNotFound("no container c"))
    assert (resp.status, resp.body) == (404, b"no container c\n")
    resp = ErrorMiddleware.error_response(FakeRequest(), StoreFull("ENOSPC on segment 7"))
    assert (resp.status, resp.body) == (507, b"insufficient storage\n")
