"""The annotator's path in a real browser: log in, correct the model's proposals, submit; the release holds it.

A workbench project is pushed with the CLI to the session's real Label Studio. Two annotators, each with their
own account, work in headless Chromium exactly as people do (labeling stream, hotkeys, mouse selection); then
`workbench pull` and `workbench release`, and the release is loaded with `datasets.load_dataset`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pytest
from label_studio_sdk.client import LabelStudio as LabelStudioSdk
from playwright.sync_api import Page

from tests.browser import ui
from tests.support import REPO_ROOT, LabelStudioServer, run_cli
from workbench import server
from workbench.articles import read_corpus
from workbench.labelstudio import accounts
from workbench.preannotation.pool import read_predictions
from workbench.project import Project, read_json
from workbench.records import Span
from workbench.sync.interface import HOTKEYS, PALETTE, label_hints
from workbench.sync.snapshots import latest_snapshot

TITLE = "Browser test project"
# Sorted before the seed, so its paragraphs are the stream's first tasks. A flag and an emoji (astral characters:
# one code point, two UTF-16 units) precede the entities, and a paragraph holds markup that must stay text.
EMOJI_DOC = "000_0_emoji"
EMOJI_ARTICLE = (
    "Leaders meet in Rome 🇹🇷\n"
    "\n"
    "🇹🇷 Erdoğan met Biden in Rome 🙂 and talked about Daesh.\n"
    "The tag <b>x</b><script>window.__xss = 1</script> stays text, says Jake Sullivan.\n"
)
EMOJI_PARAGRAPH = EMOJI_ARTICLE.splitlines()[2]
MARKUP_PARAGRAPH = EMOJI_ARTICLE.splitlines()[3]
SEEDS = ("000_bb9e4f9b37ecf79a.txt",)


@dataclass
class Workspace:
    root: Path
    project: Project
    env: dict[str, str]
    project_id: int = 0

    def cli(self, *args: str) -> Any:
        return run_cli(self.root, self.env, "--quiet", *args)

    def predicted(self, doc_id: str, paragraph: int) -> list[Span]:
        """The model's spans of a paragraph, from the pre-annotations the workbench pushed."""
        (found,) = [
            p for p in read_corpus(self.project.seeds_dir).paragraphs() if (p.doc_id, p.index) == (doc_id, paragraph)
        ]
        (prediction,) = [p for p in read_predictions(self.project.preannotations_file) if p.key == found.text_key]
        return list(prediction.spans)

    def predicted_regions(self, doc_id: str, paragraph: int) -> list[tuple[str, str]]:
        """What the labeling view should draw for the model's spans: (text, label) each."""
        return [(s.text, s.label) for s in self.predicted(doc_id, paragraph)]

    def tasks(self) -> dict[tuple[str, int], dict[str, Any]]:
        snapshot = latest_snapshot(self.project)
        return {(t["data"]["doc_id"], int(t["data"]["paragraph"])): t for t in snapshot.tasks_iter()}


@dataclass
class Seen:
    """What the annotators saw and did, recorded on the way for the tests to check."""

    instructions: str = ""
    views: list[ui.Shown] = field(default_factory=list)
    labels: list[tuple[str, str, str]] = field(default_factory=list)
    hint: str = ""
    first_regions: list[tuple[str, str]] = field(default_factory=list)
    emoji_regions: list[tuple[str, str]] = field(default_factory=list)
    corrected_regions: list[tuple[str, str]] = field(default_factory=list)
    markup_elements: list[str] = field(default_factory=list)
    script_ran: Any = None
    second_view: ui.Shown | None = None
    second_regions: list[tuple[str, str]] = field(default_factory=list)
    first_id: int = 0
    second_id: int = 0


def make_workspace(root: Path, ls_server: LabelStudioServer, *, title: str) -> Workspace:
    (root / "seeds").mkdir(parents=True)
    (root / "configs").mkdir()
    shutil.copy(REPO_ROOT / "configs" / "guidelines.md", root / "configs" / "guidelines.md")
    # sequential sampling: the stream follows the article (uncertainty sampling is tested in test_active_learning)
    config = f'[labelstudio]\nproject_title = "{title}"\nsampling = "sequential"\n'
    (root / "configs" / "workbench.toml").write_text(config)
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    return Workspace(root=root, project=Project.open(root), env=env)


@pytest.fixture(scope="module")
def workspace(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = make_workspace(tmp_path_factory.mktemp("browser-project"), ls_server, title=TITLE)
    for name in SEEDS:
        shutil.copy(REPO_ROOT / "seeds" / name, ws.root / "seeds" / name)
    (ws.root / "seeds" / f"{EMOJI_DOC}.txt").write_text(EMOJI_ARTICLE, encoding="utf-8")
    ws.cli("run")
    ws.project_id = int(read_json(ws.project.project_file)["project_id"])
    return ws


@pytest.fixture(scope="module")
def seen(workspace: Workspace, ls_server: LabelStudioServer, new_page: Callable[[], Page], screenshots: Path) -> Seen:
    """Two annotators' sessions in the browser, then `workbench pull` and `workbench release 0.1.0`."""
    seen = Seen()
    first = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, "first.browser@example.org")
    seen.first_id = first.user_id
    page = new_page()
    ui.login(page, ls_server.url, first.email, first.password)
    seen.instructions = ui.open_stream(page, TITLE)

    # task 1, the article's title line: the proposal is right; accept it as it is
    seen.views.append(ui.shown(page))
    seen.labels = ui.labels(page)
    seen.hint = ui.label_hint(page, "GPE")
    seen.first_regions = ui.wait_for_regions(page, workspace.predicted_regions(EMOJI_DOC, 0))
    ui.submit(page)

    # task 2, the emoji paragraph: delete a wrong proposal, relabel one, add what the model missed
    page.get_by_text("paragraph 2 of 3").wait_for()
    seen.views.append(ui.shown(page))
    seen.emoji_regions = ui.wait_for_regions(page, workspace.predicted_regions(EMOJI_DOC, 1))
    page.screenshot(path=screenshots / "predicted-emoji-paragraph.png")
    ui.delete_region(page, "🇹🇷 Erdoğan")  # the flag is not part of the name
    ui.relabel_region(page, "Daesh", "ORG", _hotkey(workspace, "ORG"))  # an armed group, not a place
    ui.add_region(page, "Erdoğan", "PERSON", _hotkey(workspace, "PERSON"))  # the name alone, with the mouse
    seen.corrected_regions = ui.regions(page)
    ui.dismiss_messages(page)
    page.screenshot(path=screenshots / "labeling-view.png")
    ui.submit(page)

    # task 3: markup in a paragraph is shown as text; the annotator stops here
    page.get_by_text("paragraph 3 of 3").wait_for()
    seen.views.append(ui.shown(page))
    seen.markup_elements = page.eval_on_selector_all(
        f"{ui.TEXT} *", "els => els.map(e => e.tagName.toLowerCase() + '.' + e.className)"
    )
    seen.script_ran = page.evaluate("() => window.__xss")

    # a second person, own account: the stream gives them the next task nobody holds; they accept it
    second = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, "second.browser@example.org")
    seen.second_id = second.user_id
    page = new_page()
    ui.login(page, ls_server.url, second.email, second.password)
    ui.open_stream(page, TITLE)
    seen.second_view = ui.shown(page)
    seen.second_regions = ui.wait_for_regions(page, workspace.predicted_regions(*_task_of(seen.second_view)))
    page.screenshot(path=screenshots / "second-annotator.png")
    ui.submit(page)

    workspace.cli("pull")
    workspace.cli("release", "0.1.0")
    return seen


@pytest.fixture(scope="module")
def rows(workspace: Workspace, seen: Seen, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Any]:
    release = workspace.root / "exports" / workspace.project.config.dataset / "0.1.0"
    loaded = datasets.load_dataset(str(release), cache_dir=str(tmp_path_factory.mktemp("hf-cache")))
    return {(row["doc_id"], row["paragraph"]): row for split in loaded.values() for row in split}


def _hotkey(workspace: Workspace, label: str) -> str:
    return HOTKEYS[workspace.project.config.labels.index(label)]


def _span(text: str, piece: str, label: str) -> tuple[int, int, str, str]:
    start = text.index(piece)
    return (start, start + len(piece), label, piece)


def _position(view: ui.Shown) -> str:
    return view.headers[1].rsplit("·", 1)[-1].strip()


def _task_of(view: ui.Shown) -> tuple[str, int]:
    """(doc_id, paragraph index) of the task on screen, read from its "Source: DOC · paragraph N of M" line."""
    doc_id = view.headers[1].removeprefix("Source: ").split(" · ")[0]
    return doc_id, int(_position(view).split()[1]) - 1


# --- what the annotator sees --------------------------------------------------------------------------------


def test_the_view_shows_the_article_title_source_place_and_model(workspace: Workspace, seen: Seen) -> None:
    title, source, proposals, second_look, review = seen.views[0].headers
    assert second_look == review == ""  # nothing to look at twice: the notes above the text are empty
    assert title == "Leaders meet in Rome 🇹🇷"
    assert source == f"Source: {EMOJI_DOC} · paragraph 1 of 3"
    model_version = workspace.tasks()[(EMOJI_DOC, 0)]["predictions"][0]["model_version"]
    assert model_version in proposals


def test_with_sequential_sampling_tasks_come_in_article_order(seen: Seen) -> None:
    assert [_position(view) for view in seen.views] == ["paragraph 1 of 3", "paragraph 2 of 3", "paragraph 3 of 3"]
    assert [view.text for view in seen.views[1:]] == [EMOJI_PARAGRAPH, MARKUP_PARAGRAPH]


def test_every_label_has_its_own_colour_hotkey_and_guideline(workspace: Workspace, seen: Seen) -> None:
    labels = workspace.project.config.labels
    assert seen.labels == [(label, HOTKEYS[i], PALETTE[i]) for i, label in enumerate(labels)]
    assert len({colour for _, _, colour in seen.labels}) == len(labels)
    guidelines = (REPO_ROOT / "configs" / "guidelines.md").read_text(encoding="utf-8")
    assert seen.hint == label_hints(guidelines, labels)["GPE"]


def test_the_guidelines_are_the_projects_instructions(seen: Seen) -> None:
    assert "What to label" in seen.instructions
    assert "Select the name only" in seen.instructions
    assert "PERSON: people, real or fictional" in seen.instructions


def test_the_first_task_shows_the_models_proposals(workspace: Workspace, seen: Seen) -> None:
    assert seen.first_regions == workspace.predicted_regions(EMOJI_DOC, 0) == [("Rome", "GPE")]


def test_predictions_on_an_emoji_paragraph_highlight_exactly_the_entities(workspace: Workspace, seen: Seen) -> None:
    """Pushed predictions must be drawn over their own words, even after a flag and an emoji (astral chars)."""
    predicted = workspace.predicted(EMOJI_DOC, 1)
    assert sorted(seen.emoji_regions) == sorted((s.text, s.label) for s in predicted)
    assert ("🇹🇷 Erdoğan", "PERSON") in seen.emoji_regions and ("Daesh", "GPE") in seen.emoji_regions
    after_astral = [s for s in predicted if any(ord(c) > 0xFFFF for c in EMOJI_PARAGRAPH[: s.start])]
    assert after_astral  # code points and UTF-16 units differ for these: the check means something


def test_task_text_is_shown_as_text_never_html(seen: Seen) -> None:
    assert seen.views[2].text == MARKUP_PARAGRAPH
    assert seen.script_ran is None
    tags = {element.split(".")[0] for element in seen.markup_elements}
    assert tags <= {"span"}, seen.markup_elements  # the line and highlight spans only: no <b>, no <script>


# --- what the server stored and the release holds -------------------------------------------------------------


def test_the_editor_stores_code_point_offsets(workspace: Workspace, seen: Seen) -> None:
    """Label Studio 1.23's editor counts code points, not the browser's UTF-16 units, in what it stores."""
    task = workspace.tasks()[(EMOJI_DOC, 1)]
    (annotation,) = task["annotations"]
    manual = [r["value"] for r in annotation["result"] if r.get("origin") == "manual"]
    start = EMOJI_PARAGRAPH.index("Erdoğan")
    assert manual == [{"start": start, "end": start + 7, "text": "Erdoğan", "labels": ["PERSON"]}]
    assert start == 3 and len(EMOJI_PARAGRAPH[:start].encode("utf-16-le")) // 2 == 5  # UTF-16 would say 5


def test_the_release_holds_exactly_the_corrections(workspace: Workspace, seen: Seen, rows) -> None:
    assert sorted(seen.corrected_regions) == sorted(
        [("Erdoğan", "PERSON"), ("Biden", "PERSON"), ("Rome", "GPE"), ("Daesh", "ORG")]
    )
    title_line = EMOJI_ARTICLE.splitlines()[0]
    expected = {
        (EMOJI_DOC, 0): [_span(title_line, "Rome", "GPE")],
        (EMOJI_DOC, 1): [
            _span(EMOJI_PARAGRAPH, "Erdoğan", "PERSON"),
            _span(EMOJI_PARAGRAPH, "Biden", "PERSON"),
            _span(EMOJI_PARAGRAPH, "Rome", "GPE"),
            _span(EMOJI_PARAGRAPH, "Daesh", "ORG"),
        ],
    }
    for key, spans in expected.items():
        got = [(s["start"], s["end"], s["label"], s["text"]) for s in rows[key]["spans"]]
        assert sorted(got) == sorted(spans), key


def test_a_second_annotator_works_on_their_own_task(workspace: Workspace, seen: Seen, rows) -> None:
    assert seen.second_view is not None
    doc_id, paragraph = _task_of(seen.second_view)
    assert (doc_id, paragraph) not in {(EMOJI_DOC, 0), (EMOJI_DOC, 1)}  # not a task the first person finished
    predicted = workspace.predicted(doc_id, paragraph)
    assert sorted(seen.second_regions) == sorted((s.text, s.label) for s in predicted)
    row = rows[(doc_id, paragraph)]
    assert sorted((s["start"], s["end"], s["label"], s["text"]) for s in row["spans"]) == sorted(
        (s.start, s.end, s.label, s.text) for s in predicted
    )


def test_each_annotation_is_attributed_to_the_person_who_made_it(seen: Seen, rows) -> None:
    assert seen.first_id != seen.second_id
    assert rows[(EMOJI_DOC, 0)]["annotators"] == [seen.first_id]
    assert rows[(EMOJI_DOC, 1)]["annotators"] == [seen.first_id]
    others = [row for key, row in rows.items() if key[0] != EMOJI_DOC]
    assert len(others) == 1 and others[0]["annotators"] == [seen.second_id]
    assert len(rows) == 3


def test_the_stored_annotations_say_who_made_them(workspace: Workspace, seen: Seen) -> None:
    annotated = {key: t["annotations"] for key, t in workspace.tasks().items() if t["annotations"]}
    by = {key: [_who(a["completed_by"]) for a in annotations] for key, annotations in annotated.items()}
    assert by[(EMOJI_DOC, 0)] == by[(EMOJI_DOC, 1)] == [seen.first_id]
    assert sorted(by.values()).count([seen.second_id]) == 1


def _who(completed_by: Any) -> int:
    return int(completed_by["id"] if isinstance(completed_by, dict) else completed_by)


def test_status_counts_each_annotators_work(workspace: Workspace, seen: Seen) -> None:
    figures = json.loads(workspace.cli("status", "--json").output)
    assert figures["annotators"]["first.browser@example.org"] == {"annotated": 2}
    assert figures["annotators"]["second.browser@example.org"] == {"annotated": 1}


def test_a_task_flagged_for_a_second_look_says_why_above_the_text(
    workspace: Workspace, seen: Seen, ls_server: LabelStudioServer, new_page: Callable[[], Page], screenshots: Path
) -> None:
    """The notes the workbench writes into a task's data (an edit that touched a span, a review item) are what
    the annotator reads above the paragraph."""
    (task,) = [t for t in workspace.tasks().values() if t["data"]["doc_id"] == SEEDS[0][:-4] and
               t["data"]["paragraph"] == 5]  # fmt: skip
    edited = "The text was edited after it was annotated, and the edit touched 'Kyiv' (GPE): mark it again."
    review = "needs a second look: 'Kyiv' is labelled GPE 12 times and PERSON here [label]"
    sdk = LabelStudioSdk(base_url=ls_server.url, api_key=ls_server.connection.api_key)
    sdk.tasks.update(id=str(task["id"]), data={**task["data"], "second_look": edited, "review": review})
    login = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, "flags.browser@example.org")
    page = new_page()
    ui.login(page, ls_server.url, login.email, login.password)
    ui.open_task(page, ls_server.url, workspace.project_id, task["id"])
    page.get_by_text(edited).wait_for()
    headers = ui.shown(page).headers
    assert edited in headers and review in headers
    page.screenshot(path=screenshots / "second-look.png")
