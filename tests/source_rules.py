"""Reading the product's source with ast, for the tests of its structure rules
(layers, no private names across modules, no mixins): every import, also lazy
and TYPE_CHECKING ones, so nothing hides inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("cli", "daemons", "hashmaps", "native", "net", "storage_engine")


def py_files(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (REPO / d).rglob("*.py") if "build" not in p.parts)


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, here: str | None = None) -> list[tuple[str, list[str], int]]:
    """(absolute module, names imported from it, line) for every import in the file
    (``here``: the module's dotted name, by default from its place in the repo)."""
    tree = ast.parse(path.read_text(), str(path))
    here = here or module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out: list[tuple[str, list[str], int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name, [], node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, [a.name for a in node.names], node.lineno))
    return out


#: private attributes of a pinned library, used on purpose (the module says why)
LIBRARY_PRIVATES = {"storage_engine/objects/metadata/db.py": {"_execute", "_conn"}}


def defined_here(tree: ast.AST) -> set[str]:
    """Private names this module defines itself (functions, classes, self._x = ...)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def private_attribute_uses(path: Path) -> list[str]:
    """``x._name`` where ``_name`` is not this module's own: another module's private."""
    tree = ast.parse(path.read_text(), str(path))
    own = defined_here(tree)
    try:
        own |= LIBRARY_PRIVATES.get(str(path.relative_to(REPO)), set())
    except ValueError:
        pass
    out = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.attr not in own
        ):
            out.append(f"line {node.lineno}: .{node.attr}")
    return out
