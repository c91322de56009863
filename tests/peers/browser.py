"""A real headless browser for page tests: Debian's chromium driven by Playwright.

Playwright's own browser download cannot work here; Debian's ``chromium``
(installed by ``scripts/setup --dev``) is launched instead, with the flags
that keep it off the network. Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A Playwright ``Browser`` on Debian's chromium, for the whole session."""
    if not shutil.which(CHROMIUM):
        pytest.fail("chromium is not installed (scripts/setup --dev installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A fresh page (own context: no cookies shared between tests)."""
    context = browser.new_context(locale="fr-MA")  # type: ignore[attr-defined]
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: object, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
