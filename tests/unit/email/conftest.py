"""Shared helpers for the e-mail normalizer unit tests: fixture files and media bytes."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

MAIL_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "mail"


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(MAIL_DIR))
    spec = importlib.util.spec_from_file_location(name, MAIL_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def media() -> ModuleType:
    return _load("media")


@pytest.fixture(scope="session")
def builder() -> ModuleType:
    return _load("build_fixtures")


@pytest.fixture(scope="session")
def eml() -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        return (MAIL_DIR / name).read_bytes()

    return read
