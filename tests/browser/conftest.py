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


# Every page a module opened, so a failure can leave what the browser showed behind (`_keep_evidence`).
_OPEN_PAGES: list[Page] = []


@pytest.fixture(scope="module")
def new_page(browser: Browser) -> Iterator[Callable[[], Page]]:
    """Pages in fresh browser contexts (one per person), closed at the end of the module."""
    contexts = []

    def factory() -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-US")
        context.set_default_timeout(UI_TIMEOUT)
        contexts.append(context)
        page = context.new_page()
        _OPEN_PAGES.append(page)
        return page

    yield factory
    _OPEN_PAGES.clear()
    for context in contexts:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """When a browser test or its set-up fails, save a screenshot and the HTML of every open page beside the other
    screenshots, and name them in the report: a flaky step is then seen, not guessed at."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and BROWSER_DIR in Path(item.path).parents and _OPEN_PAGES:
        folder = Path(os.environ.get("WORKBENCH_TEST_SCREENSHOTS") or BROWSER_DIR.parent.parent / ".pytest-browser")
        folder.mkdir(parents=True, exist_ok=True)
        saved = []
        for n, page in enumerate(_OPEN_PAGES):
            stem = folder / f"failed-{item.name}-{report.when}-{n}"
            try:
                page.screenshot(path=f"{stem}.png", full_page=True)
                Path(f"{stem}.html").write_text(page.content(), encoding="utf-8")
                saved.append(f"{stem}.png ({page.url})")
            except Exception as exc:  # a closed page or a dead browser: say so and go on
                saved.append(f"{stem}: not saved ({type(exc).__name__})")
        report.sections.append(("what the browser showed", "\n".join(saved)))


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests save screenshots: WORKBENCH_TEST_SCREENSHOTS if set, else a temporary folder."""
    chosen = os.environ.get("WORKBENCH_TEST_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
