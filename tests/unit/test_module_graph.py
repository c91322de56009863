"""The product's modules form no cycle, counting every way one module reaches another.

import-linter (run by ``scripts/test``) checks that dependencies point down
between layers; this test looks inside the layers too, and counts what no
import tool sees: modules named in strings (the component tables'
``"channels.email:SMTP"``, the OCR child's ``python -m`` name). Top-level,
function-local and ``TYPE_CHECKING`` imports all count, and so does a name
taken from a package's ``__init__``. A logger's name or a data folder's
package is not an import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "normalizer", "router", "gateway", "channels")


def product_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module ``name`` is, or lies in (``a.b.func`` -> ``a.b``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _named(node: ast.AST, module: str, is_package: bool, modules: dict[str, Path]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = module.split(".")
            keep = len(parts) - node.level + (1 if is_package else 0)
            base = ".".join([*parts[:keep], *([node.module] if node.module else [])])
        for alias in node.names:
            # ``from package import module`` needs the module; any other name, the package.
            submodule = f"{base}.{alias.name}"
            yield submodule if submodule in modules else base
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value.partition(":")[0]
        if text.split(".")[0] in PACKAGES and text.replace(".", "").replace("_", "").isalnum():
            yield text


# Calls whose string argument names a package without importing it.
NOT_IMPORTS = frozenset({"getLogger", "files"})


def _not_imports(tree: ast.AST) -> set[int]:
    """The string constants that name a logger or a data folder, not a module to load."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else None
            called = called or (node.func.id if isinstance(node.func, ast.Name) else None)
            if called in NOT_IMPORTS:
                skipped.update(id(arg) for arg in node.args)
    return skipped


def module_graph() -> dict[str, set[str]]:
    modules = product_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _not_imports(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            for target in _named(node, name, path.name == "__init__.py", modules):
                owner = _owner(target, modules)
                if owner and owner != name:
                    graph[name].add(owner)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_module_graph_has_no_cycle() -> None:
    assert cycles(module_graph()) == []


def test_a_name_taken_from_a_package_counts_as_an_edge_to_the_package() -> None:
    graph = module_graph()

    # ``from channels.email.cli import ...`` inside channels/email/__init__.py, and
    # ``from gateway.store import StoreUnavailable`` in a module of the store's.
    assert "channels.email.cli" in graph["channels.email"]
    assert "gateway.store" in graph["gateway.lib.http.errors"]


def test_a_module_named_in_a_string_counts_as_an_edge() -> None:
    graph = module_graph()

    assert "channels.email" in graph["channels"]
    assert "gateway.acks" in graph["gateway.components"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
