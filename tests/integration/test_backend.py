"""The model backend with a real Label Studio: `push` connects it once and the project's Model settings show it
connected; "Retrieve predictions" on a task Label Studio imported itself gives exactly what `preannotate` gives its
text; nothing is answered without the backend's login; and Label Studio keeps working when the backend is down.
(The last test stops the backend: it runs last.)"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.backend_support import BASE, Workbench, new_workbench
from tests.support import LabelStudioServer
from workbench import workflow
from workbench.backend import process
from workbench.preannotation.pool import read_predictions
from workbench.project import Project
from workbench.records import text_key
from workbench.sync.push import to_prediction

UPLOADED = "Olaf Scholz flew to Washington on Friday to meet the President of the United States at the White House."


@pytest.fixture(scope="module")
def bench(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workbench]:
    root = tmp_path_factory.mktemp("backend")
    made = new_workbench(ls_server, root, "Backend test", articles=("000_bb9e4f9b37ecf79a", "001_7bfbf6bffcecbea4"))
    try:
        yield made
    finally:
        process.stop(Project.open(root))
        made.close()


def preannotated(text: str, tmp: Path, model: str | None = None) -> dict[str, Any]:
    """What `preannotate` gives `text`, in a project of its own, as `push` would send it."""
    (tmp / "configs").mkdir(parents=True)
    (tmp / "configs" / "workbench.toml").write_text(f'[model]\nname = "{model}"\n' if model else "", encoding="utf-8")
    (tmp / "seeds").mkdir()
    (tmp / "seeds" / "one.txt").write_text(f"A title\n{text}\n", encoding="utf-8")
    workflow.do_preannotate(Project.open(tmp))
    pool = tmp / ".workbench" / "preannotations.parquet"
    (prediction,) = [found for found in read_predictions(pool) if found.key == text_key(text)]
    return to_prediction(text, prediction)


def test_push_connects_the_running_backend_once(bench: Workbench) -> None:
    (entry,) = bench.backends()
    login = bench.login
    assert (entry["title"], entry["url"], entry["state"]) == ("workbench", login.url, "CO")
    assert (entry["auth_method"], entry["basic_auth_user"], entry["model_version"]) == ("BASIC_AUTH", "workbench", BASE)
    assert "already running" in bench.cli("backend", "start")
    assert f"model backend {login.url} connected" in bench.cli("push")
    assert [backend["id"] for backend in bench.backends()] == [entry["id"]]  # never a second entry
    hooks = bench.api("GET", "api/webhooks/", params={"project": bench.project_id}).json()
    assert [hook["url"] for hook in hooks if hook["url"].startswith(login.url)] == []


def test_retrieve_predictions_gives_an_uploaded_task_what_preannotate_gives_its_text(
    bench: Workbench, tmp_path: Path
) -> None:
    uploaded = bench.upload(UPLOADED, 0)
    pushed = next(task for task in bench.tasks() if task["data"].get("key"))
    assert bench.task(uploaded)["predictions"] == []
    response = bench.retrieve_predictions([uploaded, pushed["id"]])
    assert response.status_code == 200, response.text
    (got,) = bench.task(uploaded)["predictions"]
    expected = preannotated(UPLOADED, tmp_path)
    assert {key: got[key] for key in ("model_version", "score", "result")} == expected
    assert {region["value"]["text"] for region in got["result"]} >= {"Olaf Scholz", "Washington"}
    # the workbench's task already holds the current version's prediction: Label Studio does not ask again
    assert [p["model_version"] for p in bench.task(pushed["id"])["predictions"]] == [BASE]
    assert bench.retrieve_predictions([uploaded]).status_code == 200
    assert len(bench.task(uploaded)["predictions"]) == 1


def test_opening_an_uploaded_task_asks_the_backend_too(bench: Workbench) -> None:
    """What the editor does when an annotator opens a task without predictions (show_collab_predictions)."""
    uploaded = bench.upload("Emmanuel Macron arrived in Berlin on Tuesday.", 2)
    opened = bench.api("GET", f"api/tasks/{uploaded}").json()
    assert [p["model_version"] for p in opened["predictions"]] == [BASE]
    assert [p["model_version"] for p in bench.task(uploaded)["predictions"]] == [BASE]


def test_the_backend_answers_nothing_without_its_login(bench: Workbench) -> None:
    login = bench.login
    task = {"tasks": [{"id": 1, "data": {"text": UPLOADED}}]}
    assert httpx.post(f"{login.url}/predict", json=task).status_code == 401
    assert httpx.post(f"{login.url}/predict", json=task, auth=(login.username, "wrong")).status_code == 401
    assert httpx.get(f"{login.url}/health", auth=("admin", login.password)).status_code == 401
    assert httpx.post(f"{login.url}/predict", json=task, auth=(login.username, login.password)).status_code == 200
    assert stat.S_IMODE(bench.files.login.stat().st_mode) == 0o600
    status = bench.cli("backend", "status", "--json")
    shown = json.loads(status)
    assert shown["running"] and shown["healthy"] and shown["model_version"] == BASE
    for text in (status, bench.files.log.read_text(encoding="utf-8"), bench.cli("push")):
        assert login.password not in text


def test_label_studio_keeps_working_while_the_backend_is_down(bench: Workbench) -> None:
    assert bench.cli("backend", "stop").strip() == "Model backend stopped."
    down = bench.cli_result("backend", "status")
    assert down.exit_code == 3 and down.stdout.startswith("not running")
    (entry,) = bench.backends()
    assert entry["state"] == "DI"  # Label Studio's own health check found it down, and says so on the card
    uploaded = bench.upload("Rishi Sunak spoke in London.", 1)
    response = bench.retrieve_predictions([uploaded])
    assert response.status_code == 200, response.text
    assert bench.task(uploaded)["predictions"] == []
    assert bench.api("GET", f"api/tasks/{uploaded}").status_code == 200  # the editor opens it, without a proposal
    pushed = bench.cli("push")
    assert "0 tasks imported" in pushed and "model backend" not in pushed
