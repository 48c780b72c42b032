"""The engine's layers point one way, and no module uses another's private names.

Read from the source with ast (every import, also lazy and TYPE_CHECKING ones),
so a cycle cannot hide behind an import inside a function.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from source_rules import PRODUCT, REPO, imports, module_name, private_attribute_uses, py_files

#: layer -> the engine layers it may import (besides itself)
ALLOWED = {
    "blocks": set(),
    "maps": {"blocks"},
    "objects": {"blocks", "maps"},
    "volumes": {"blocks", "maps"},
}
#: packages outside the engine that nothing in it may import
OUTSIDE = ("daemons", "cli", "net", "aiohttp")


#: engine modules below every layer: the kinds of error all of them raise
SHARED = {"storage_engine.errors"}


def _layer(module: str) -> str | None:
    """The engine layer a module is in; None outside the engine and for SHARED."""
    parts = module.split(".")
    if parts[0] != "storage_engine" or len(parts) < 2 or module in SHARED:
        return None
    return parts[1] if parts[1] in ALLOWED else "<top>"


ENGINE_FILES = py_files("storage_engine")
PRODUCT_FILES = py_files(*PRODUCT)


def test_the_shared_modules_import_nothing_of_the_engine() -> None:
    for name in SHARED:
        path = REPO / (name.replace(".", "/") + ".py")
        assert [m for m, _n, _l in imports(path) if m.startswith("storage_engine")] == []


def test_the_layers_are_the_ones_documented() -> None:
    found = {p.name for p in (REPO / "storage_engine").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert found <= set(ALLOWED), found - set(ALLOWED)
    assert {"blocks", "maps", "objects"} <= found


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_engine_imports_point_down_only(path: Path) -> None:
    mine = _layer(module_name(path))
    bad = []
    for mod, _names, line in imports(path):
        if mod.split(".")[0] in OUTSIDE:
            bad.append(f"line {line}: {mod} (the engine knows no protocol nor daemon)")
            continue
        theirs = _layer(mod)
        if theirs is None or theirs == mine or mine == "<top>":
            continue
        if theirs == "<top>" or theirs not in ALLOWED.get(mine or "", set()):
            bad.append(f"line {line}: {mod} ({mine} may not import {theirs})")
    assert not bad, bad


@pytest.mark.parametrize("path", PRODUCT_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_private_name_is_imported_from_another_module(path: Path) -> None:
    bad = [
        f"line {line}: {name} from {mod}"
        for mod, names, line in imports(path)
        for name in names
        if name.startswith("_") and not name.startswith("__") and mod.split(".")[0] in PRODUCT
    ]
    assert not bad, bad


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_engine_modules_use_no_private_attribute_of_another(path: Path) -> None:
    assert not private_attribute_uses(path)


def test_the_checks_see_a_wrong_import(tmp_path: Path) -> None:
    """The parser resolves relative imports, so a blocks -> maps import is caught."""
    fake = tmp_path / "probe.py"
    fake.write_text("from ..maps import mapstore\nfrom .index import _Private\nx = other._hidden\n")
    mods = imports(fake, "storage_engine.blocks.probe")
    assert ("storage_engine.maps", ["mapstore"], 1) in mods
    assert ("storage_engine.blocks.index", ["_Private"], 2) in mods
    assert _layer("storage_engine.maps") not in ALLOWED["blocks"]
    assert private_attribute_uses(fake) == ["line 3: ._hidden"]


def _engine_graph() -> dict[str, set[str]]:
    """module -> engine modules it imports (a package's own __init__ left out)."""
    mods = {module_name(p): p for p in ENGINE_FILES}
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for mod, names, _line in imports(path):
            for target in (mod, *(f"{mod}.{n}" for n in names)):
                if target in mods and target != name and not name.startswith(target + "."):
                    deps.add(target)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_inside_the_engine() -> None:
    """Not even through an import inside a function or under TYPE_CHECKING."""
    assert _cycles(_engine_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
