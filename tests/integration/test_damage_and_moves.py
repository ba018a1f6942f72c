"""What a careless or unlucky user can do to a project, against a real Label Studio (issue 22): articles renamed
and edited at once, split into two files, merged into one; snapshot and release files deleted or changed; a report
page pointed at something that is not a file. Nothing annotated is lost, nothing damaged is used, and every refusal
is one paragraph naming the thing and the fix.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.integration.annotators import Annotator, browser_region
from tests.support import LabelStudioServer, run_cli
from workbench import server
from workbench.cli import app
from workbench.project import read_json

ARTICLES = {
    "alpha": ["Alpha news", "Erdoğan met Putin in Sochi on Tuesday.", "NATO allies met in Brussels.",
              "Washington said it would respond."],
    "beta": ["Beta news", "Zelensky spoke in Kyiv.", "Blinken visited Warsaw on Friday.",
             "Macron called Scholz from Paris.", "Berlin and Rome agreed."],
    "gamma": ["Gamma news", "Turkey bought the S-400 from Russia.", "Ankara said the deal was final."],
    "delta": ["Delta news", "Tokyo and Seoul held talks.", "Beijing stayed silent."],
    "epsilon": ["Epsilon news", "Cairo hosted the summit.", "Riyadh sent a minister."],
}
WORDS = {"Erdoğan": "PERSON", "Putin": "PERSON", "Sochi": "GPE", "NATO": "ORG", "Brussels": "GPE",
         "Washington": "GPE", "Zelensky": "PERSON", "Kyiv": "GPE", "Blinken": "PERSON", "Warsaw": "GPE",
         "Macron": "PERSON", "Scholz": "PERSON", "Paris": "GPE", "Berlin": "GPE", "Rome": "GPE", "Turkey": "GPE",
         "Russia": "GPE", "Ankara": "GPE", "Tokyo": "GPE", "Seoul": "GPE", "Beijing": "GPE", "Cairo": "GPE",
         "Riyadh": "GPE"}  # fmt: skip
SKIPPED = ("NATO allies met in Brussels.", "Beijing stayed silent.")
EDITED = ("Erdoğan met Putin in Sochi on Tuesday.", "Erdoğan met Putin in Sochi on Tuesday morning.")


@dataclass
class Moved:
    root: Path
    env: dict[str, str]
    admin: Annotator
    project_id: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)

    def cli(self, *args: str) -> str:
        return run_cli(self.root, self.env, *args).stdout

    def attempt(self, root: Path, *args: str) -> Result:
        result = CliRunner().invoke(app, ["-C", str(root), *args], env=self.env)
        assert "Traceback" not in result.output
        return result

    def release(self, version: str, root: Path | None = None) -> Path:
        return (root or self.root) / "exports" / "news-ner" / version

    def rows(self, version: str, root: Path | None = None) -> dict[str, dict[str, Any]]:
        loaded = datasets.load_dataset(str(self.release(version, root)), cache_dir=str(self.root / "hf"))
        return {row["id"]: row for split in loaded.values() for row in split}

    def manifest(self, version: str, root: Path | None = None) -> dict[str, Any]:
        return json.loads((self.release(version, root) / "manifest.json").read_text(encoding="utf-8"))

    def twin(self, name: str) -> Path:
        """A copy of the project folder bound to the same Label Studio project (snapshots and releases too)."""
        root = self.root.parent / name
        shutil.copytree(self.root, root, ignore=shutil.ignore_patterns("*.lock*", "hf"))
        return root


def _write(root: Path, name: str, lines: list[str]) -> None:
    (root / "seeds" / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def moved(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Moved:
    root = tmp_path_factory.mktemp("damage") / "project"
    (root / "seeds").mkdir(parents=True)
    for name, lines in ARTICLES.items():
        _write(root, name, lines)
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text('[labelstudio]\nproject_title = "Damage and moves test"\n',
                                                     encoding="utf-8")  # fmt: skip
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    moved = Moved(root=root, env=env, admin=Annotator.connect(ls_server.url, ls_server.connection.api_key))
    moved.cli("run")
    moved.project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    for task in moved.admin.client.tasks.list(project=moved.project_id, fields="all", page_size=1000):
        text = task.data["text"]
        if text in SKIPPED:
            moved.admin.skip({"id": task.id})
            continue
        regions = [browser_region(text, text.index(word), text.index(word) + len(word), label, f"r{i}")
                   for i, (word, label) in enumerate(WORDS.items()) if word in text]  # fmt: skip
        moved.admin.submit({"id": task.id}, regions)
    moved.cli("pull")
    moved.cli("release", "0.1.0")

    # At once: alpha renamed and edited, beta split into two files, delta merged into gamma.
    (root / "seeds" / "alpha.txt").unlink()
    _write(root, "alpha-2026", [EDITED[1] if line == EDITED[0] else line for line in ARTICLES["alpha"]])
    (root / "seeds" / "beta.txt").unlink()
    _write(root, "beta-1", ARTICLES["beta"][:3])
    _write(root, "beta-2", ["Beta, continued", *ARTICLES["beta"][3:]])
    (root / "seeds" / "delta.txt").unlink()
    _write(root, "gamma", ARTICLES["gamma"] + ARTICLES["delta"])
    moved.outputs["status"] = json.loads(moved.cli("status", "--json"))
    moved.outputs["push"] = moved.cli("run")  # pre-annotates the two new texts, then pushes
    moved.cli("pull")
    moved.cli("release", "0.2.0")
    return moved


# ---- corpus changes: nothing annotated is lost --------------------------------------------------------------


def test_status_before_the_push_sees_moves_not_retirements(moved: Moved) -> None:
    changes = moved.outputs["status"]["corpus_changes"]
    assert changes["retired"] == 0 and changes["retiring_annotated"] == {}
    assert changes["renamed"] == {"alpha": "alpha-2026", "beta": "beta-1"}
    assert changes["new"] == 1 and changes["edited"] == 1  # "Beta, continued"; the edited alpha paragraph
    assert changes["moved_across_articles"] == len(ARTICLES["beta"][3:]) + len(ARTICLES["delta"])


def test_every_annotated_row_keeps_its_id_and_spans(moved: Moved) -> None:
    first, second = moved.rows("0.1.0"), moved.rows("0.2.0")
    assert set(first) <= set(second)
    for row_id, row in first.items():
        again = second[row_id]
        assert [(s["text"], s["label"]) for s in again["spans"]] == [(s["text"], s["label"]) for s in row["spans"]]
        assert all(again["text"][s["start"] : s["end"]] == s["text"] for s in again["spans"])
    where = {row["text"]: row["doc_id"] for row in second.values()}
    assert where[EDITED[1]] == "alpha-2026" and where[ARTICLES["beta"][4]] == "beta-2"
    assert where[ARTICLES["delta"][1]] == "gamma"


def test_skips_stay_skips_and_nothing_is_retired(moved: Moved) -> None:
    excluded = moved.manifest("0.2.0")["excluded_tasks"]
    assert excluded["only_skipped"] == len(SKIPPED) and excluded["retired"] == 0


def test_paragraphs_that_moved_files_keep_their_split(moved: Moved) -> None:
    before = moved.manifest("0.1.0")["split"]["membership"]
    after = moved.manifest("0.2.0")["split"]["membership"]
    assert after["alpha-2026"] == before["alpha"]
    assert after["beta-1"] == after["beta-2"] == before["beta"]
    first, second = moved.rows("0.1.0"), moved.rows("0.2.0")
    split_of = {row_id: moved.manifest("0.1.0")["split"]["membership"][row["doc_id"]] for row_id, row in first.items()}
    leaked = [row_id for row_id, row in second.items()
              if split_of.get(row_id) == "train" and after[row["doc_id"]] == "test"]  # fmt: skip
    assert leaked == []  # nothing trained on in 0.1.0 is test data in 0.2.0


# ---- damaged files: refused, never used -------------------------------------------------------------------


def test_a_missing_newest_snapshot_is_refused_by_release_review_and_report(moved: Moved) -> None:
    root = moved.twin("no-newest-snapshot")
    newest = sorted((root / ".workbench" / "snapshots").glob("*Z.json"))[-1]
    newest.unlink()  # its record stays
    for args in (("release", "0.3.0"), ("review",), ("report",)):
        refused = moved.attempt(root, *args)
        assert refused.exit_code == 6 and newest.name in refused.stderr and "workbench pull" in refused.stderr, args
    assert not moved.release("0.3.0", root).exists()


def test_a_snapshot_changed_after_its_pull_is_refused_by_the_report(moved: Moved) -> None:
    root = moved.twin("changed-snapshot")
    newest = sorted((root / ".workbench" / "snapshots").glob("*Z.json"))[-1]
    newest.write_bytes(newest.read_bytes().replace(b"Zelensky", b"Zelenskyy", 1))
    refused = moved.attempt(root, "report")
    assert refused.exit_code == 6 and "was changed after it was pulled" in refused.stderr


def test_a_parent_release_missing_a_file_is_not_reused_and_the_release_says_why(moved: Moved) -> None:
    root = moved.twin("parent-missing-file")
    (moved.release("0.2.0", root) / "test.conll").unlink()
    made = moved.attempt(root, "release", "0.3.0")
    assert made.exit_code == 0, made.output
    assert "every row was built: test.conll of release 0.2.0 cannot be read" in made.stdout
    assert moved.attempt(root, "release", "verify", "0.3.0").exit_code == 0
    assert set(moved.rows("0.3.0", root)) == set(moved.rows("0.2.0"))


@pytest.mark.parametrize(
    ("description", "damage", "named"),
    [
        ("train.spacy replaced by test.spacy", lambda f: shutil.copy(f / "test.spacy", f / "train.spacy"),
         "changed: train.spacy"),
        ("the manifest edited", lambda f: (f / "manifest.json").write_text(
            (f / "manifest.json").read_text(encoding="utf-8").replace('"news-ner"', '"news-ner-x"', 1),
            encoding="utf-8"), "manifest"),
    ],
)
def test_train_refuses_a_release_that_fails_its_checksums(moved: Moved, description: str, damage: Any,
                                                          named: str) -> None:
    root = moved.twin(f"tampered-{description.split()[0]}")
    damage(moved.release("0.2.0", root))
    refused = moved.attempt(root, "train", "0.2.0")
    assert refused.exit_code == 12 and "does not match its manifest" in refused.stderr, description
    assert named in refused.stderr and not (root / "models" / "news-ner" / "0.2.0").exists()


def test_the_report_page_never_replaces_what_is_not_a_file(moved: Moved, tmp_path: Path) -> None:
    fifo = tmp_path / "page.fifo"
    os.mkfifo(fifo)
    refused = moved.attempt(moved.root, "report", "--html", str(fifo))
    assert refused.exit_code == 2 and "is a FIFO (named pipe)" in refused.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    target = tmp_path / "pages" / "report.html"
    target.parent.mkdir()
    link = tmp_path / "report.html"
    link.symlink_to(target)
    moved.cli("report", "--html", str(link))
    assert link.is_symlink() and target.read_text(encoding="utf-8").startswith("<!doctype html>")
