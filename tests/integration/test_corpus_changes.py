"""The seed articles change after annotation, on a real Label Studio: edits inside and outside a span, a renamed
file, an inserted paragraph, a deleted file. The next release, loaded with `datasets`, holds each current paragraph
once, at its place, with its spans exact; nothing is duplicated, and nothing is lost without being named.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pytest
from typer.testing import CliRunner

from tests.integration.annotators import Annotator, browser_region
from tests.support import LabelStudioServer, run_cli
from workbench import server
from workbench.cli import app
from workbench.project import read_json

ARTICLES = {
    "alpha": ["Alpha news", "Erdoğan met Putin in Sochi on Tuesday.", "NATO allies met in Brussels after the talks.",
              "Washington said it would respond."],
    "beta": ["Beta news", "Zelensky spoke in Kyiv.", "Blinken visited Warsaw on Friday."],
    "gamma": ["Gamma news", "Turkey bought the S-400 from Russia.", "Ankara said the deal was final."],
    "delta": ["Delta news", "Macron spoke in Paris.", "Berlin stayed silent."],
}
WORDS = {"Erdoğan": "PERSON", "Putin": "PERSON", "Sochi": "GPE", "NATO": "ORG", "Brussels": "GPE",
         "Washington": "GPE", "Zelensky": "PERSON", "Kyiv": "GPE", "Blinken": "PERSON", "Warsaw": "GPE",
         "Turkey": "GPE", "Russia": "GPE", "Ankara": "GPE", "Macron": "PERSON", "Paris": "GPE", "Berlin": "GPE"}
OUTSIDE = ("Erdoğan met Putin in Sochi on Tuesday.", "President Erdoğan met Putin in Sochi on Tuesday.")
INSIDE = ("NATO allies met in Brussels after the talks.", "NATO allies met in Bruxelles after the talks.")
INSERTED = "A new paragraph about Moscow."


@dataclass
class Changed:
    root: Path
    env: dict[str, str]
    admin: Annotator
    project_id: int
    outputs: dict[str, Any] = field(default_factory=dict)

    def cli(self, *args: str) -> Any:
        return run_cli(self.root, self.env, *args)

    def release(self, version: str) -> Path:
        return self.root / "exports" / "news-ner" / version

    def live_tasks(self) -> list[dict[str, Any]]:
        tasks = self.admin.client.tasks.list(project=self.project_id, fields="all", page_size=1000)
        plain = [t.model_dump(mode="json") if hasattr(t, "model_dump") else dict(t) for t in tasks]
        return [t for t in plain if not t["data"].get("retired")]


def _write(root: Path, name: str, lines: list[str]) -> None:
    (root / "seeds" / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _annotate_all(changed: Changed) -> None:
    """The admin marks every WORDS entity in every task, as a browser sends it."""
    for task in changed.live_tasks():
        text = task["data"]["text"]
        regions = [browser_region(text, text.index(word), text.index(word) + len(word), label, f"r{i}")
                   for i, (word, label) in enumerate(WORDS.items()) if word in text]  # fmt: skip
        changed.admin.submit(task, regions)


@pytest.fixture(scope="module")
def changed(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Changed:
    root = tmp_path_factory.mktemp("corpus-changes")
    (root / "seeds").mkdir()
    for name, lines in ARTICLES.items():
        _write(root, name, lines)
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text(
        '[labelstudio]\nproject_title = "Corpus changes test"\n[split]\ntest_fraction = 0.4\n', encoding="utf-8"
    )
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    admin = Annotator.connect(ls_server.url, ls_server.connection.api_key)
    changed = Changed(root=root, env=env, admin=admin, project_id=0)
    changed.cli("run")
    changed.project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    _annotate_all(changed)
    changed.cli("pull")
    changed.cli("release", "0.1.0")

    # The articles change: edits outside and inside a span, a rename, an insertion, a deletion.
    alpha = [OUTSIDE[1] if line == OUTSIDE[0] else INSIDE[1] if line == INSIDE[0] else line
             for line in ARTICLES["alpha"]]  # fmt: skip
    _write(root, "alpha", alpha)
    shutil.move(root / "seeds" / "beta.txt", root / "seeds" / "beta-renamed.txt")
    _write(root, "gamma", [ARTICLES["gamma"][0], INSERTED, *ARTICLES["gamma"][1:]])
    (root / "seeds" / "delta.txt").unlink()

    changed.outputs["status"] = json.loads(changed.cli("status", "--json").stdout)
    changed.outputs["refused"] = CliRunner().invoke(app, ["-C", str(root), "run"], env=env)
    changed.outputs["live after refusal"] = changed.live_tasks()
    changed.outputs["push"] = changed.cli("push", "--retire-annotated").stdout
    changed.outputs["status after"] = json.loads(changed.cli("status", "--json").stdout)
    changed.cli("pull")
    changed.cli("release", "0.2.0")
    return changed


@pytest.fixture(scope="module")
def first(changed: Changed, tmp_path_factory: pytest.TempPathFactory) -> datasets.DatasetDict:
    return datasets.load_dataset(str(changed.release("0.1.0")), cache_dir=str(tmp_path_factory.mktemp("hf")))


@pytest.fixture(scope="module")
def second(changed: Changed, tmp_path_factory: pytest.TempPathFactory) -> datasets.DatasetDict:
    return datasets.load_dataset(str(changed.release("0.2.0")), cache_dir=str(tmp_path_factory.mktemp("hf")))


def _rows(release: datasets.DatasetDict) -> list[dict[str, Any]]:
    return [row for split in release.values() for row in split]


def _manifest(changed: Changed, version: str) -> dict[str, Any]:
    return json.loads((changed.release(version) / "manifest.json").read_text(encoding="utf-8"))


def test_status_says_what_changed_before_the_push(changed: Changed) -> None:
    changes = changed.outputs["status"]["corpus_changes"]
    assert changes["new"] == 1 and changes["edited"] == 2 and changes["renamed_articles"] == 1
    assert changes["retired"] == len(ARTICLES["delta"]) and changes["moved"] == 2
    assert changes["spans_carried"] == 4 and changes["to_recheck"] == 1  # Erdoğan, Putin, Sochi, NATO; Brussels held
    assert changes["renamed"] == {"beta": "beta-renamed"}
    assert changes["retiring_annotated"] == {"delta": len(ARTICLES["delta"])}
    after = changed.outputs["status after"]["corpus_changes"]
    assert [after[k] for k in ("new", "edited", "renamed_articles", "retired", "moved")] == [0, 0, 0, 0, 0]
    assert "1 new, 2 edited (4 spans carried, 1 to re-check), 1 renamed articles, 3 retired, 2 moved" in (
        changed.outputs["push"]
    )


def test_a_push_that_would_retire_annotated_paragraphs_asks_first_and_changes_nothing(changed: Changed) -> None:
    refused = changed.outputs["refused"]
    assert refused.exit_code == 15 and "Traceback" not in refused.output
    assert "3 annotated or skipped paragraph(s)" in refused.stderr and "delta (3)" in refused.stderr
    assert "--retire-annotated" in refused.stderr
    before = changed.outputs["live after refusal"]
    assert sorted(t["data"]["text"] for t in before if t["data"]["doc_id"] == "delta") == sorted(ARTICLES["delta"])
    assert not any(t["data"]["doc_id"] == "beta-renamed" for t in before)  # not even the rename was carried


def test_label_studio_holds_one_live_task_per_paragraph_in_its_place(changed: Changed) -> None:
    live = changed.live_tasks()
    seeds = {path.stem: [line for line in path.read_text(encoding="utf-8").splitlines() if line]
             for path in (changed.root / "seeds").glob("*.txt")}  # fmt: skip
    assert sorted((t["data"]["doc_id"], t["data"]["paragraph"], t["data"]["text"]) for t in live) == sorted(
        (doc, i, line) for doc, lines in seeds.items() for i, line in enumerate(lines)
    )
    for task in live:
        data = task["data"]
        assert data["position"] == f"paragraph {data['paragraph'] + 1} of {len(seeds[data['doc_id']])}"
        assert "previous_text" not in data and "carried" not in data  # no edit left half-done


def test_deleted_paragraphs_are_tagged_never_deleted(changed: Changed) -> None:
    tasks = changed.admin.client.tasks.list(project=changed.project_id, fields="all", page_size=1000)
    retired = [t for t in tasks if (t.data or {}).get("retired")]
    assert sorted(t.data["text"] for t in retired) == sorted(ARTICLES["delta"])
    assert all(t.annotations for t in retired)  # the annotations stay on the server


def test_an_edit_inside_a_span_asks_for_a_second_look_in_the_labeling_view(changed: Changed) -> None:
    (task,) = [t for t in changed.live_tasks() if t["data"]["text"] == INSIDE[1]]
    assert "'Brussels' (GPE)" in task["data"]["second_look"]
    (annotation,) = task["annotations"]
    texts = [region["value"]["text"] for region in annotation["result"]]
    assert texts == ["NATO"]  # carried; the touched span is held back, not guessed at "Bruxelles"
    value = annotation["result"][0]["value"]
    assert INSIDE[1][value["start"] : value["end"]] == "NATO"


def test_the_next_release_has_each_text_once_and_each_place_once(second: datasets.DatasetDict) -> None:
    rows = _rows(second)
    assert len({row["text"] for row in rows}) == len(rows)
    assert len({(row["doc_id"], row["paragraph"]) for row in rows}) == len(rows)


def test_spans_untouched_by_an_edit_are_at_their_exact_new_offsets(second: datasets.DatasetDict,
                                                                  first: datasets.DatasetDict) -> None:
    (row,) = [row for row in _rows(second) if row["text"] == OUTSIDE[1]]
    assert [(OUTSIDE[1][s["start"] : s["end"]], s["label"]) for s in row["spans"]] == [
        ("Erdoğan", "PERSON"), ("Putin", "PERSON"), ("Sochi", "GPE")]  # fmt: skip
    assert all(s["text"] == OUTSIDE[1][s["start"] : s["end"]] for s in row["spans"])
    before = {r["id"]: r for r in _rows(first)}
    assert before[row["id"]]["text"] == OUTSIDE[0]  # the same row, edited


def test_a_held_back_task_waits_and_is_counted(second: datasets.DatasetDict, changed: Changed) -> None:
    assert INSIDE[1] not in {row["text"] for row in _rows(second)}
    assert INSIDE[0] not in {row["text"] for row in _rows(second)}
    assert _manifest(changed, "0.2.0")["excluded_tasks"]["awaiting_check"] == 1


def test_a_renamed_article_keeps_its_row_ids_and_split(second: datasets.DatasetDict, first: datasets.DatasetDict,
                                                       changed: Changed) -> None:
    ids_before = {r["id"] for r in _rows(first) if r["doc_id"] == "beta"}
    ids_after = {r["id"] for r in _rows(second) if r["doc_id"] == "beta-renamed"}
    assert ids_after == ids_before and len(ids_after) == len(ARTICLES["beta"])
    assert not [r for r in _rows(second) if r["doc_id"] == "beta"]
    split_before = _manifest(changed, "0.1.0")["split"]["membership"]["beta"]
    manifest = _manifest(changed, "0.2.0")
    assert manifest["split"]["membership"]["beta-renamed"] == split_before
    assert manifest["changes"]["renamed"] == {"beta": "beta-renamed"}


def test_retired_paragraphs_leave_the_release_and_diff_names_them(second: datasets.DatasetDict,
                                                                   first: datasets.DatasetDict,
                                                                   changed: Changed) -> None:
    delta_ids = {r["id"] for r in _rows(first) if r["doc_id"] == "delta"}
    assert not [r for r in _rows(second) if r["doc_id"] == "delta"]
    diff = json.loads(changed.cli("diff", "0.1.0", "0.2.0", "--json").stdout)
    held = {r["id"] for r in _rows(first) if r["text"] == INSIDE[0]}
    assert set(diff["removed"]) == delta_ids | held
    assert _manifest(changed, "0.2.0")["excluded_tasks"]["retired"] == len(ARTICLES["delta"])


def test_a_second_look_submitted_brings_the_row_back_with_its_spans(changed: Changed, second: Any) -> None:
    (task,) = [t for t in changed.live_tasks() if t["data"]["text"] == INSIDE[1]]
    (annotation,) = task["annotations"]
    text = INSIDE[1]
    start = text.index("Bruxelles")
    result = [*annotation["result"], browser_region(text, start, start + len("Bruxelles"), "GPE", "again")]
    changed.admin.client.annotations.update(id=annotation["id"], result=result)
    changed.cli("push")
    (task,) = [t for t in changed.live_tasks() if t["data"]["text"] == INSIDE[1]]
    assert task["data"]["second_look"] == "" and not task["data"].get("held")
    changed.cli("pull")
    changed.cli("release", "0.3.0")
    third = datasets.load_dataset(str(changed.release("0.3.0")), cache_dir=str(changed.root / "hf"))
    (row,) = [row for row in _rows(third) if row["text"] == INSIDE[1]]
    assert [(s["text"], s["label"]) for s in row["spans"]] == [("NATO", "ORG"), ("Bruxelles", "GPE")]
    assert _manifest(changed, "0.3.0")["excluded_tasks"]["awaiting_check"] == 0


def test_a_snapshot_tampered_after_pull_is_refused(changed: Changed) -> None:
    snapshots = sorted((changed.root / ".workbench" / "snapshots").glob("*Z.json"))
    newest = snapshots[-1]
    original = newest.read_bytes()
    try:
        newest.write_bytes(original.replace(b"Zelensky", b"Zelenskyy", 1))
        result = CliRunner().invoke(app, ["-C", str(changed.root), "release", "9.0.0"], env=changed.env)
        assert result.exit_code == 6 and newest.name in result.stderr and "Traceback" not in result.output
        assert not changed.release("9.0.0").exists()
    finally:
        newest.write_bytes(original)


def test_a_label_added_in_label_studio_and_used_is_not_silently_dropped(changed: Changed) -> None:
    from workbench.sync.interface import labeling_config

    sdk = changed.admin.client
    labels = ["PERSON", "NORP", "ORG", "GPE", "LOC", "FAC", "PRODUCT", "EVENT", "LAW", "DATE", "WEAPON"]
    sdk.projects.update(id=changed.project_id, label_config=labeling_config(labels))
    (task,) = [t for t in changed.live_tasks() if t["data"]["text"] == ARTICLES["gamma"][1]]
    text = task["data"]["text"]
    start = text.index("S-400")
    changed.admin.submit(task, [browser_region(text, start, start + 5, "WEAPON", "w1")])

    result = CliRunner().invoke(app, ["-C", str(changed.root), "push"], env=changed.env)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "use the label(s) WEAPON (1 region(s))" in result.stderr and "label_mapping" in result.stderr
    assert "WEAPON" in sdk.projects.get(id=changed.project_id).label_config  # the interface was not touched

    config = changed.root / "configs" / "workbench.toml"
    config.write_text(config.read_text(encoding="utf-8") + '[label_mapping]\nWEAPON = "PRODUCT"\n', encoding="utf-8")
    changed.cli("push")  # mapped: the annotations' WEAPON becomes PRODUCT in the dataset
