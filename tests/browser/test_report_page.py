"""The report page in a real browser: the seed project, annotated by two people over two releases on the session's
real Label Studio, then `workbench report --html`, opened in Chromium. It renders, every figure is there and
drawn, the page fetches nothing, and nothing goes to the console as an error.

A second model version's proposals (as a trained model would send them, through Label Studio's predictions API)
arrive before the second round, so the page draws the learning curve too. The screenshot it saves is
docs/report.png when run with WORKBENCH_TEST_SCREENSHOTS=docs.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.integration.annotators import Annotator
from tests.support import REPO_ROOT, LabelStudioServer, run_cli
from workbench import server
from workbench.labelstudio import accounts
from workbench.project import read_json

TITLE = "Report page test project"
SECOND = "report.page.second@example.org"
TRAINED = "news-ner-trained-0.1"
FIGURES = {"label-distribution", "span-lengths", "entities-per-paragraph", "annotator-progress", "agreement",
           "preannotation-quality", "learning-curve", "release-rows", "release-labels", "annotation-time-annotators",
           "annotation-time-models"}  # fmt: skip


def _proposed(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The model's regions of a task, as an annotator who accepts them submits them."""
    predictions = [p for p in task.get("predictions") or [] if isinstance(p, dict)]
    return [{**region, "origin": "prediction"} for p in predictions[:1] for region in p.get("result") or []]


def _relabelled(regions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The regions with the first one's label changed: a correction, and a disagreement with who accepted."""
    if not regions:
        return regions
    first = regions[0]
    label = "ORG" if first["value"]["labels"] != ["ORG"] else "GPE"
    return [{**first, "value": {**first["value"], "labels": [label]}}, *regions[1:]]


@pytest.fixture(scope="module")
def report_page(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report-page")
    shutil.copytree(REPO_ROOT / "seeds", root / "seeds")
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text(f'[labelstudio]\nproject_title = "{TITLE}"\n')
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}

    def cli(*args: str) -> None:
        run_cli(root, env, "--quiet", *args)

    cli("run")
    project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    admin = Annotator.connect(ls_server.url, ls_server.connection.api_key)
    login = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, SECOND)
    second = Annotator.connect(ls_server.url, accounts.mint_token(ls_server.url, login.email, login.password))
    tasks = admin.tasks(project_id)
    keys = sorted(tasks)

    # Round one: the first annotator accepts or corrects 24 paragraphs; the second redoes 8 of them.
    for i, key in enumerate(keys[:24]):
        regions = _proposed(tasks[key])
        admin.submit(tasks[key], _relabelled(regions) if i % 4 == 0 else regions)
    for key in keys[:8]:
        second.submit(tasks[key], _proposed(tasks[key]))
    admin.skip(tasks[keys[24]])
    cli("pull")
    cli("release", "0.1.0")

    # A trained model proposes for the next paragraphs; round two corrects them, and the release grows.
    for key in keys[25:45]:
        admin.client.predictions.create(task=tasks[key]["id"], result=_relabelled(_proposed(tasks[key])),
                                        model_version=TRAINED)  # fmt: skip
    for key in keys[25:45]:
        admin.submit(tasks[key], _proposed(tasks[key]))
    for key in keys[25:30]:
        second.submit(tasks[key], _relabelled(_proposed(tasks[key])))
    cli("pull")
    cli("release", "0.2.0")

    path = root / "report.html"
    cli("report", "--html", str(path))
    return path


def test_the_report_page_renders_every_figure_in_chromium(
    report_page: Path, new_page: Callable[[], Page], screenshots: Path
) -> None:
    page = new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report_page.as_uri(), wait_until="load")

    for heading in ("The dataset", "The annotators", "The pre-annotation model", "The releases", "Every figure"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    images = page.evaluate(
        """() => Array.from(document.images).map(img => ({
               figure: img.closest("figure").id, scheme: img.src.slice(0, 22), complete: img.complete,
               width: img.naturalWidth, height: img.naturalHeight, shown: img.getBoundingClientRect().width}))"""
    )
    assert {image["figure"] for image in images} == {f"figure-{key}" for key in FIGURES}
    for image in images:
        assert image["scheme"] == "data:image/png;base64,", image
        assert image["complete"] and image["width"] == 900 and image["height"] > 200, image
        assert image["shown"] > 300, image  # laid out at a readable size, not collapsed
    assert requests == [report_page.as_uri()]  # the page itself, and nothing else
    assert errors == []

    expect(page.locator("#releases table")).to_contain_text("0.2.0")
    expect(page.locator("#figure-learning-curve figcaption")).to_contain_text("per label and overall")
    page.set_viewport_size({"width": 1400, "height": 2150})  # the dataset, the annotators and the model
    page.screenshot(path=screenshots / "report.png")
