"""Facts about the real Label Studio UI the workbench relies on, seen in the browser.

- Offsets: the 1.23 editor draws (and stores) region offsets as code points. A region pushed with the browser's
  UTF-16 offsets is drawn over the wrong words after an emoji; the same region in code points is drawn exactly.
  The same on the team setup (gunicorn workers, PostgreSQL): its editor loads and draws offline as well.
- Overlap: with `annotations_per_task = 2`, a task someone has finished is still given to a second person.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from label_studio_sdk.client import LabelStudio
from playwright.sync_api import Page
from typer.testing import CliRunner

from tests.browser import ui
from tests.support import REPO_ROOT, LabelStudioServer
from workbench import server
from workbench.cli import app
from workbench.labelstudio import accounts
from workbench.sync.interface import labeling_config

TEXT = "🇹🇷 Erdoğan met Biden 🙂 in Rome"
PROBE_VERSION = "offset-probe"


def _utf16(text: str, index: int) -> int:
    return len(text[:index].encode("utf-16-le")) // 2


def _region(start: int, end: int, label: str, piece: str, region_id: str) -> dict[str, Any]:
    return {
        "id": region_id,
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "value": {"start": start, "end": end, "text": piece, "labels": [label]},
    }


@pytest.fixture(scope="module", params=["ls_server", pytest.param("ls_pg_server", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest) -> LabelStudioServer:
    """The default server, and the team's (gunicorn workers on PostgreSQL, static files from the app's own routes):
    the editor loads and draws the same on both, offline."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def probe(served: LabelStudioServer) -> Iterator[tuple[int, dict[str, int]]]:
    """A scratch project: the same paragraph twice, its prediction once in code points and once in UTF-16."""
    client = LabelStudio(base_url=served.url, api_key=served.connection.api_key)
    project = client.projects.create(title="Offset probe", label_config=labeling_config(["PERSON", "GPE"]))
    tasks = []
    for units in ("codepoints", "utf16"):
        convert = (lambda i: _utf16(TEXT, i)) if units == "utf16" else (lambda i: i)
        regions = []
        for n, (piece, label) in enumerate((("Erdoğan", "PERSON"), ("Rome", "GPE"))):
            start = TEXT.index(piece)
            regions.append(_region(convert(start), convert(start + len(piece)), label, piece, f"{units}{n}"))
        data = {"text": TEXT, "title": "Offsets", "doc_id": units, "position": "paragraph 1 of 1"}
        tasks.append({"data": data, "predictions": [{"model_version": PROBE_VERSION, "result": regions}]})
    imported = client.projects.import_tasks(id=project.id, request=tasks, return_task_ids=True)
    # The editor shows only predictions of the project's model version. Some import paths set it to the last
    # version imported when it is empty, others do not (the cause of this test's rare failure on gunicorn with
    # PostgreSQL: the first task's prediction, of another version, was not sent to the editor): one version for
    # both, set explicitly, as `workbench push` sets it.
    client.projects.update(id=project.id, model_version=PROBE_VERSION)
    yield int(project.id), dict(zip(("codepoints", "utf16"), imported.task_ids, strict=True))
    client.projects.delete(id=project.id)


@pytest.fixture(scope="module")
def probe_page(served: LabelStudioServer, new_page: Callable[[], Page]) -> Page:
    login = accounts.create_annotator(served.url, served.connection.api_key, "offsets.browser@example.org")
    page = new_page()
    ui.login(page, served.url, login.email, login.password)
    return page


def test_label_studio_draws_offsets_as_code_points_not_utf16(
    served: LabelStudioServer, probe: tuple[int, dict[str, int]], probe_page: Page, screenshots: Path
) -> None:
    project_id, task_ids = probe
    expected = {
        "codepoints": [("Erdoğan", "PERSON"), ("Rome", "GPE")],
        # UTF-16 offsets are read as code points: shifted by one per astral character before the span
        "utf16": [("doğan m", "PERSON"), ("e", "GPE")],
    }
    drawn = {}
    for units, task_id in task_ids.items():
        ui.open_task(probe_page, served.url, project_id, task_id)
        # the editor draws one region after another: wait for both (or the time a first load of the editor's
        # bundles needs on a loaded machine), then compare what is drawn
        drawn[units] = ui.wait_for_regions(probe_page, expected[units], timeout=ui.PAGE_LOAD)
        probe_page.screenshot(path=screenshots / f"offsets-{units}-{served.info.port}.png")
    assert drawn == expected


# --- overlap ---------------------------------------------------------------------------------------------------

OVERLAP_TITLE = "Browser overlap project"
OVERLAP_ARTICLE = "Leaders <i>meet</i> & talk in Rome\n\nBiden met Erdoğan in Rome on Monday.\n"


@pytest.fixture(scope="module")
def overlap_project(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser-overlap")
    (root / "seeds").mkdir()
    (root / "configs").mkdir()
    (root / "seeds" / "overlap.txt").write_text(OVERLAP_ARTICLE, encoding="utf-8")
    shutil.copy(REPO_ROOT / "configs" / "guidelines.md", root / "configs" / "guidelines.md")
    (root / "configs" / "workbench.toml").write_text(
        f'[labelstudio]\nproject_title = "{OVERLAP_TITLE}"\nannotations_per_task = 2\nsampling = "sequential"\n'
    )
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    result = CliRunner().invoke(app, ["-C", str(root), "--quiet", "run"], env=env)
    assert result.exit_code == 0, result.output
    return root


def test_with_overlap_two_a_finished_task_goes_to_a_second_person(
    ls_server: LabelStudioServer, overlap_project: Path, new_page: Callable[[], Page]
) -> None:
    views = []
    for email in ("overlap.one@example.org", "overlap.two@example.org"):
        login = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, email)
        page = new_page()
        ui.login(page, ls_server.url, login.email, login.password)
        ui.open_stream(page, OVERLAP_TITLE)
        views.append(ui.shown(page))
        ui.submit(page)
    title = OVERLAP_ARTICLE.splitlines()[0]
    assert [view.headers[:2] for view in views] == [(title, "Source: overlap · paragraph 1 of 2")] * 2
    assert [view.text for view in views] == [title, title]  # markup in a title is shown as text, too
