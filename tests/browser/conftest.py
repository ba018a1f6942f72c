"""Browser fixtures: Debian's Chromium, driven by Playwright, against the session's real Label Studio.

The server is the integration suite's session fixture `ls_server`, imported here so pytest registers it for this
folder too. Every test in this folder is marked `browser` (and `integration`: it needs the real server, so
`-m "not integration"` skips it as well) and gets a per-test timeout.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

BROWSER_DIR = Path(__file__).parent
TEST_TIMEOUT = 300  # seconds per test, server start-up included (the first test pays for it)
UI_TIMEOUT = 20_000  # milliseconds for one UI element or change to appear
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/browser, so `-m browser` / `-m "not browser"` select it."""
    for item in items:
        if BROWSER_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.integration)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(TEST_TIMEOUT))


def chromium_path() -> str:
    """Debian's Chromium (`make browser-deps` installs it); WORKBENCH_TEST_CHROMIUM overrides the path."""
    path = os.environ.get("WORKBENCH_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            f"Chromium is not installed at {path}: the browser tests drive Debian's Chromium. Run "
            "`make browser-deps` (apt-get install chromium), or set WORKBENCH_TEST_CHROMIUM to a Chromium binary.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session; each annotator gets a fresh context (own cookies, own login)."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def new_page(browser: Browser) -> Iterator[Callable[[], Page]]:
    """Pages in fresh browser contexts (one per person), closed at the end of the module."""
    contexts = []

    def factory() -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-US")
        context.set_default_timeout(UI_TIMEOUT)
        contexts.append(context)
        return context.new_page()

    yield factory
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests save screenshots: WORKBENCH_TEST_SCREENSHOTS if set, else a temporary folder."""
    chosen = os.environ.get("WORKBENCH_TEST_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
