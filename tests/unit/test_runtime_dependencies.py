"""What the product imports is installed by ``scripts/run`` (no test tools).

``scripts/run`` installs ``[project.dependencies]`` only; a module imported
by the gateway but brought in by the ``dev`` extra alone works in every test
and fails on a newcomer's machine. Each third-party import of the product's
packages must come from a runtime dependency or one of theirs.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("gateway", "channels", "normalizer", "router", "config")


def _name(requirement: str) -> str:
    found = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert found, requirement
    return re.sub(r"[-_.]+", "-", found.group(0)).lower()


@cache
def runtime_closure() -> frozenset[str]:
    """Runtime dependencies and everything they require (extras' requirements aside)."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    seen: set[str] = set()
    todo = [_name(item) for item in declared]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_name(item) for item in requires if "extra ==" not in item]
    return frozenset(seen)


def third_party_imports() -> dict[str, str]:
    """Top-level module -> a file importing it, over the product's packages."""
    found: dict[str, str] = {}
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in PRODUCT:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_module_the_product_imports_is_a_runtime_dependency() -> None:
    distributions = metadata.packages_distributions()
    closure = runtime_closure()
    missing = {
        module: where
        for module, where in third_party_imports().items()
        if not {_name(dist) for dist in distributions.get(module, [module])} & closure
    }
    assert missing == {}, f"imported but not installed by scripts/run: {missing}"
