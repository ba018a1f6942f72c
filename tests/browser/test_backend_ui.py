"""The model backend as a project's manager sees it in the real UI: Model settings list it, connected."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser import ui
from tests.integration.backend_support import Workbench, new_workbench
from tests.support import LabelStudioServer
from workbench.backend import process
from workbench.labelstudio import accounts
from workbench.project import Project

CARD = ".lsf-backend-card"  # Label Studio 1.23's card of an ML backend on the Model settings page


@pytest.fixture(scope="module")
def bench(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workbench]:
    root = tmp_path_factory.mktemp("backend-ui")
    made = new_workbench(ls_server, root, "Backend UI test", articles=("000_bb9e4f9b37ecf79a",))
    try:
        yield made
    finally:
        process.stop(Project.open(root))
        made.close()


def test_model_settings_show_the_backend_connected(
    ls_server: LabelStudioServer, bench: Workbench, new_page: Callable[[], Page], screenshots: Path
) -> None:
    login = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, "model.settings@example.org")
    page = new_page()
    ui.login(page, ls_server.url, login.email, login.password)
    page.goto(f"{ls_server.url}/projects/{bench.project_id}/settings/ml", timeout=ui.PAGE_LOAD)
    card = page.locator(CARD, has=page.locator(f"{CARD}__title", has_text="workbench"))
    card.first.wait_for(timeout=ui.PAGE_LOAD)  # the settings page's first load
    expect(card).to_have_count(1)  # one entry for the backend, however often it was pushed
    expect(card).to_contain_text("Connected")
    expect(card).to_contain_text(bench.login.url)
    page.screenshot(path=str(screenshots / "model-settings.png"), full_page=True)
    bench.cli("backend", "stop")
    page.reload(timeout=ui.PAGE_LOAD)  # Label Studio asks the backend's health again when the page loads
    expect(card).to_contain_text("Disconnected", timeout=ui.PAGE_LOAD)
