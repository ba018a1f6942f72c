"""Incremental pull and release on a real Label Studio: every kind of change annotators and `push` make reaches the
next snapshot, an incremental snapshot is byte for byte a full export's, and a release that reuses its parent's
rows is byte for byte one rebuilt from a full export.

Changes are made as people and the workbench make them: annotators through the API with their own accounts
(browser-style regions), the corpus through `workbench push` (a new paragraph, an edit carried into a task's data
in place, an article retired), a task deleted in Label Studio. Everything runs on the embedded server (SQLite) and
on the team setup (PostgreSQL under gunicorn, marker `postgres`), where ids and commits are not in one order.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.integration.annotators import Annotator, browser_region
from tests.support import LabelStudioServer, run_cli
from workbench import server, workflow
from workbench.cli import app
from workbench.labelstudio import LabelStudio, accounts
from workbench.project import Project, read_json
from workbench.release import manifest
from workbench.sync.snapshots import latest_snapshot, meta_path_for, note_unstamped

ARTICLES = {
    "alpha": ["Alpha news", "Erdoğan met Putin in Sochi on Tuesday.", "NATO allies met in Brussels after the talks.",
              "Washington said it would respond.", "Moscow did not comment."],
    "beta": ["Beta news", "Zelensky spoke in Kyiv.", "Blinken visited Warsaw on Friday.", "Paris stayed silent."],
    "gamma": ["Gamma news", "Turkey bought the S-400 from Russia.", "Ankara said the deal was final."],
    "delta": ["Delta news", "Macron spoke in Paris on Monday.", "Berlin stayed silent.", "Scholz flew to Rome."],
    "epsilon": ["Epsilon news", "Tokyo and Seoul held talks.", "Kishida met Yoon in Tokyo.", "Beijing watched."],
}  # fmt: skip
WORDS = {"Erdoğan": "PERSON", "Putin": "PERSON", "Sochi": "GPE", "NATO": "ORG", "Brussels": "GPE",
         "Washington": "GPE", "Moscow": "GPE", "Zelensky": "PERSON", "Kyiv": "GPE", "Blinken": "PERSON",
         "Warsaw": "GPE", "Paris": "GPE", "Turkey": "GPE", "Russia": "GPE", "Ankara": "GPE", "Macron": "PERSON",
         "Berlin": "GPE", "Scholz": "PERSON", "Rome": "GPE", "Tokyo": "GPE", "Seoul": "GPE", "Kishida": "PERSON",
         "Yoon": "PERSON"}  # fmt: skip
EDITED = ("Washington said it would respond.", "Washington said on Monday it would respond.")
NEW_PARAGRAPH = "Beijing called for calm."


@dataclass
class Loop:
    root: Path
    env: dict[str, str]
    admin: Annotator
    other: Annotator
    project_id: int
    outputs: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str) -> str:
        return run_cli(self.root, self.env, *args).output

    @property
    def project(self) -> Project:
        return Project.open(self.root)

    def tasks(self) -> dict[str, dict[str, Any]]:
        """Every task by its text."""
        found = self.admin.client.tasks.list(project=self.project_id, fields="all", page_size=1000)
        plain = [t.model_dump(mode="json") if hasattr(t, "model_dump") else dict(t) for t in found]
        return {t["data"]["text"]: t for t in plain}


def _regions(text: str, prefix: str = "r") -> list[dict[str, Any]]:
    return [browser_region(text, text.index(word), text.index(word) + len(word), label, f"{prefix}{i}")
            for i, (word, label) in enumerate(WORDS.items()) if word in text]  # fmt: skip


def _write_seeds(root: Path, articles: dict[str, list[str]]) -> None:
    for path in (root / "seeds").glob("*.txt"):
        path.unlink()
    for name, lines in articles.items():
        (root / "seeds" / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


BACKENDS = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))
SERVERS = {"sqlite": "ls_server", "postgres": "ls_pg_server"}


@pytest.fixture(scope="module", params=BACKENDS)
def loop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Loop:
    ls_server: LabelStudioServer = request.getfixturevalue(SERVERS[request.param])
    root = tmp_path_factory.mktemp(f"incremental-{request.param}")
    (root / "seeds").mkdir()
    _write_seeds(root, ARTICLES)
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text(
        '[labelstudio]\nproject_title = "Incremental pull test"\npull_overlap_seconds = 0\n'
        "[split]\ntest_fraction = 0.4\n",
        encoding="utf-8",
    )
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    admin = Annotator.connect(ls_server.url, ls_server.connection.api_key)
    login = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, "incremental.second@example.org")
    other = Annotator.connect(ls_server.url, accounts.mint_token(ls_server.url, login.email, login.password))
    loop = Loop(root=root, env=env, admin=admin, other=other, project_id=0)
    loop.cli("run")
    loop.project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    tasks = loop.tasks()
    left_open = {"Moscow did not comment.", "Paris stayed silent.", "Gamma news"}
    for text, task in tasks.items():
        if text not in left_open:
            admin.submit(task, _regions(text))
    admin.skip(tasks["Ankara said the deal was final."])  # skipped now, submitted after the first pull
    loop.outputs["first pull"] = loop.cli("pull")
    loop.cli("release", "0.1.0")
    return loop


@pytest.fixture(scope="module")
def changed(loop: Loop) -> Loop:
    """A day's work after release 0.1.0: every kind of change, then an incremental pull."""
    tasks = loop.tasks()
    admin, other = loop.admin, loop.other
    # annotators: a new annotation, an edited one, a deleted one, a skip, a skip turned into a submission, a
    # relabelling by a second annotator
    admin.submit(tasks["Moscow did not comment."], _regions("Moscow did not comment."))
    edited = tasks["Erdoğan met Putin in Sochi on Tuesday."]["annotations"][0]
    admin.client.annotations.update(id=edited["id"], result=edited["result"][:-1])  # "Sochi" removed
    admin.client.annotations.delete(id=tasks["Zelensky spoke in Kyiv."]["annotations"][0]["id"])
    admin.skip(tasks["Paris stayed silent."])
    skipped = tasks["Ankara said the deal was final."]["annotations"][0]
    admin.client.annotations.update(id=skipped["id"], was_cancelled=False,
                                    result=_regions("Ankara said the deal was final."))  # fmt: skip
    blinken = "Blinken visited Warsaw on Friday."
    other.submit(tasks[blinken], [{**r, "value": {**r["value"], "labels": ["LOC"]}} for r in _regions(blinken)])
    # Label Studio: a task deleted
    admin.client.tasks.delete(id=str(tasks["Turkey bought the S-400 from Russia."]["id"]))
    # the corpus: a new paragraph, an edit outside the spans (task data updated in place), an article retired
    articles = {name: list(lines) for name, lines in ARTICLES.items() if name != "gamma"}
    articles["alpha"] = [EDITED[1] if line == EDITED[0] else line for line in articles["alpha"]]
    articles["beta"].append(NEW_PARAGRAPH)
    _write_seeds(loop.root, articles)
    loop.cli("preannotate")  # the new texts
    loop.cli("push", "--retire-annotated")  # gamma's annotated paragraph leaves on purpose
    loop.outputs["pull"] = loop.cli("pull")
    return loop


def test_the_first_pull_exports_everything(loop: Loop) -> None:
    assert "tasks pulled into" in loop.outputs["first pull"] and "incremental:" not in loop.outputs["first pull"]
    first = latest_snapshot(loop.project)
    assert first.kind == "full" and first.watermark.endswith("Z")


def test_a_pull_fetches_only_the_changed_tasks_and_sees_every_change(changed: Loop) -> None:
    snapshot = latest_snapshot(changed.project)
    assert snapshot.kind == "incremental" and "incremental:" in changed.outputs["pull"]
    changes = snapshot.changes
    assert changes["deleted_tasks"] == 1 and changes["new_tasks"] == 1
    assert changes["annotations"]["added"] >= 3  # Moscow, the Paris skip, the second annotator's (and the new task)
    assert changes["annotations"]["deleted"] == 2  # one deleted, one gone with its task
    assert changes["annotations"]["changed"] >= 2  # an edit, an un-skip (and spans carried through an edit)
    total = snapshot.tasks
    assert changes["fetched"] < total  # not a full export: alpha's and beta's untouched paragraphs were not fetched
    tasks = {t["data"]["text"]: t for t in _snapshot_tasks(snapshot.path)}
    assert "Turkey bought the S-400 from Russia." not in tasks
    assert NEW_PARAGRAPH in tasks and EDITED[1] in tasks and EDITED[0] not in tasks
    assert tasks["Ankara said the deal was final."]["data"]["retired"]
    assert [a["was_cancelled"] for a in tasks["Paris stayed silent."]["annotations"]] == [True]
    assert not tasks["Zelensky spoke in Kyiv."]["annotations"]
    assert len(tasks["Blinken visited Warsaw on Friday."]["annotations"]) == 2


def test_an_incremental_snapshot_is_byte_for_byte_a_full_export(changed: Loop, tmp_path: Path) -> None:
    incremental = latest_snapshot(changed.project)
    twin = _twin(changed, tmp_path / "twin")
    output = CliRunner().invoke(app, ["-C", str(twin.root), "pull", "--full"], env=changed.env)
    assert output.exit_code == 0, output.output
    full = latest_snapshot(twin)
    assert full.kind == "full" and full.tasks == incremental.tasks
    assert full.path.read_bytes() == incremental.path.read_bytes()


def test_a_release_from_the_incremental_chain_equals_one_from_a_full_export(
    changed: Loop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain, full = _twin(changed, tmp_path / "chain"), _twin(changed, tmp_path / "full")
    output = changed.cli("release", "0.2.0")
    assert "task(s) built" in output and "unchanged since the last release reused" in output
    monkeypatch.setattr(manifest, "now", lambda: "2026-12-01T12:00:00Z")
    monkeypatch.setattr(Project, "git_commit", lambda self: "test")
    assert CliRunner().invoke(app, ["-C", str(full.root), "pull", "--full"], env=changed.env).exit_code == 0
    made = workflow.do_release(chain, "0.2.0")  # from the incremental snapshot, reusing 0.1.0's unchanged rows
    rebuilt = workflow.do_release(full, "0.2.0", reuse=False)  # from a full export, every row built
    assert made.reused > 0 and made.rebuilt < len(_snapshot_tasks(latest_snapshot(chain).path))
    for path in sorted(made.path.rglob("*")):
        if path.is_file() and path.name not in ("manifest.json", "manifest.sha256", "README.md"):
            assert path.read_bytes() == (rebuilt.path / path.relative_to(made.path)).read_bytes(), path.name
    manifests = [json.loads((result.path / "manifest.json").read_text()) for result in (made, rebuilt)]
    assert manifests[0]["source"]["sha256"] == manifests[1]["source"]["sha256"]  # the same snapshot bytes
    for record in manifests:
        del record["source"], record["files"]["README.md"]  # the snapshot's name and time, quoted by the card
    assert manifests[0] == manifests[1]


def test_a_snapshot_edited_after_its_pull_is_not_built_upon(changed: Loop, tmp_path: Path) -> None:
    twin = _twin(changed, tmp_path / "twin")
    newest = latest_snapshot(twin)
    newest.path.write_bytes(newest.path.read_bytes().replace(b"Moscow", b"Moskva", 1))
    output = CliRunner().invoke(app, ["-C", str(twin.root), "pull"], env=changed.env)
    assert output.exit_code == 0, output.output
    assert "full export: the newest snapshot" in output.output and "changed after it was pulled" in output.output
    assert latest_snapshot(twin).kind == "full"


def test_without_the_newest_snapshot_the_pull_builds_on_the_one_before_it(changed: Loop, tmp_path: Path) -> None:
    twin = _twin(changed, tmp_path / "twin")
    newest = latest_snapshot(twin)
    expected = newest.path.read_bytes()
    newest.path.unlink()
    meta_path_for(newest.path).unlink()
    output = CliRunner().invoke(app, ["-C", str(twin.root), "pull"], env=changed.env)
    assert output.exit_code == 0, output.output
    again = latest_snapshot(twin)
    assert again.kind == "incremental" and again.path.read_bytes() == expected


def test_a_snapshot_without_its_record_means_a_full_export(changed: Loop, tmp_path: Path) -> None:
    twin = _twin(changed, tmp_path / "twin")
    meta_path_for(latest_snapshot(twin).path).unlink()
    output = CliRunner().invoke(app, ["-C", str(twin.root), "pull"], env=changed.env)
    assert output.exit_code == 0, output.output
    assert "full export: the newest snapshot's record cannot be read" in output.output


def _twin(loop: Loop, root: Path) -> Project:
    """A copy of the project folder (not of the server's data): same binding, snapshots and releases."""
    shutil.copytree(loop.root, root, ignore=shutil.ignore_patterns("labelstudio", "*.lock*"))
    return Project.open(root)


def _snapshot_tasks(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_bytes())


def test_changes_label_studio_does_not_stamp_mean_a_full_export(changed: Loop, tmp_path: Path) -> None:
    """Label Studio's bulk predictions import leaves `updated_at` alone; `push` notes when it used it (tested with
    a trained model in test_model_loop.py), and the next pull exports everything. Last in this module: it changes
    the server's project without a stamp."""
    twin = _twin(changed, tmp_path / "twin")
    task = changed.tasks()["Moscow did not comment."]
    prediction = {"task": task["id"], "model_version": "bulk-model", "score": 0.5,
                  "result": [{**_regions("Moscow did not comment.")[0], "origin": "prediction"}]}  # fmt: skip
    with LabelStudio(changed.env[server.ENV_URL], changed.env[server.ENV_API_KEY]) as client:
        client.add_predictions(changed.project_id, [prediction])
    stale = CliRunner().invoke(app, ["-C", str(changed.root), "pull"], env=changed.env)  # nothing noted here
    assert "incremental:" in stale.output and b"bulk-model" not in latest_snapshot(changed.project).path.read_bytes()
    note_unstamped(twin, "push added predictions to 1 task(s) in bulk")
    output = CliRunner().invoke(app, ["-C", str(twin.root), "pull"], env=changed.env)
    assert "full export: push added predictions to 1 task(s) in bulk since the last full pull" in output.output
    assert b"bulk-model" in latest_snapshot(twin).path.read_bytes()
    again = CliRunner().invoke(app, ["-C", str(twin.root), "pull"], env=changed.env)
    assert "incremental:" in again.output  # a full export holds it all: the note is done with
