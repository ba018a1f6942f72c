"""`workbench review --push` against a real Label Studio: the suspect tasks flagged (and only they), the "Needs
review" tab made once, a second run that changes nothing, a re-submitted task that leaves the next review, and a
release whose manifest counts the open items (or refuses, with `block_release`).

The seed articles are pushed with `workbench run`; two annotators then submit, through Label Studio's API, the
annotations of the planted corpus (`tests/data/review/planted-snapshot.json`: the same paragraphs, with known
mistakes of every kind; see make_planted.py there).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.integration.annotators import Annotator
from tests.support import REPO_ROOT, LabelStudioServer
from workbench import server
from workbench.cli import app
from workbench.errors import ReviewOpenError
from workbench.labelstudio import accounts
from workbench.project import read_json

PLANTED = REPO_ROOT / "tests" / "data" / "review" / "planted-snapshot.json"
CONFIG = '[labelstudio]\nproject_title = "Review test"\n'
PREFIX = "needs a second look: "


@dataclass
class Reviewed:
    root: Path
    env: dict[str, str]
    admin: Annotator
    project_id: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    data: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)  # task data after each step
    resubmitted: int = 0

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(app, ["-C", str(self.root), *args], env={**self.env, "COLUMNS": "200"})

    def cli(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result.stdout

    def tasks(self) -> dict[int, dict[str, Any]]:
        listed = self.admin.client.tasks.list(project=self.project_id, fields="all", page_size=1000)
        found = [t.model_dump(mode="json") if hasattr(t, "model_dump") else dict(t) for t in listed]
        return {int(t["id"]): t for t in found}

    def tab(self) -> tuple[list[int], set[int]]:
        """The ids of the project's "Needs review" tabs, and the tasks the (first) tab lists."""
        views = [v for v in self.admin.client.views.list(project=self.project_id)
                 if (v.data or {}).get("title") == "Needs review"]  # fmt: skip
        if not views:
            return [], set()
        listed = self.admin.client.tasks.list(view=views[0].id, project=self.project_id, page_size=1000)
        return [int(v.id) for v in views], {int(t.id) for t in listed}


def flagged(data: dict[int, dict[str, Any]]) -> set[int]:
    return {task_id for task_id, d in data.items() if d.get("review")}


@pytest.fixture(scope="module")
def reviewed(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Reviewed:
    root = tmp_path_factory.mktemp("review")
    shutil.copytree(REPO_ROOT / "seeds", root / "seeds")
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text(CONFIG, encoding="utf-8")
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    r = Reviewed(root=root, env=env, admin=Annotator.connect(ls_server.url, ls_server.connection.api_key))
    r.cli("run")
    r.project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    planted = {t["data"]["key"]: t for t in json.loads(PLANTED.read_text(encoding="utf-8"))}
    login = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, "reviewed.second@example.org")
    second = Annotator.connect(ls_server.url, accounts.mint_token(ls_server.url, login.email, login.password))
    tasks = r.tasks()
    assert sorted(t["data"]["key"] for t in tasks.values()) == sorted(planted)
    for task in tasks.values():
        annotations = planted[task["data"]["key"]]["annotations"]
        r.admin.submit(task, annotations[0]["result"])
        if len(annotations) > 1:
            second.submit(task, annotations[1]["result"])
    r.cli("pull")
    # A project made before reviews existed has no line for the flag in its labeling view.
    interface = r.admin.client.projects.get(id=r.project_id).label_config
    older = "\n".join(line for line in interface.splitlines() if "$review" not in line)
    r.admin.client.projects.update(id=r.project_id, label_config=older)
    r.outputs["review"] = json.loads(r.cli("review", "--json"))
    r.outputs["push"] = json.loads(r.cli("review", "--push", "--json"))
    r.data["push"] = {i: t["data"] for i, t in r.tasks().items()}
    r.outputs["tab"] = r.tab()
    r.outputs["push again"] = json.loads(r.cli("review", "--push", "--json"))
    r.data["push again"] = {i: t["data"] for i, t in r.tasks().items()}
    r.outputs["tab again"] = r.tab()

    # An annotator opens a flagged task, looks again and submits it again (same spans: they stand by them). A
    # task with one annotator, so that the row stays as it was.
    tasks = r.tasks()
    r.resubmitted = min(i for i in flagged(r.data["push"]) if len(tasks[i]["annotations"]) == 1)
    (annotation,) = tasks[r.resubmitted]["annotations"]
    r.admin.client.annotations.update(id=annotation["id"], result=annotation["result"])
    r.cli("pull")
    r.outputs["after"] = json.loads(r.cli("review", "--json"))
    r.outputs["push after"] = json.loads(r.cli("review", "--push", "--json"))
    r.data["push after"] = {i: t["data"] for i, t in r.tasks().items()}
    r.outputs["tab after"] = r.tab()
    r.outputs["release"] = r.cli("release", "0.1.0")
    return r


def test_review_push_flags_exactly_the_suspect_tasks(reviewed: Reviewed) -> None:
    items = reviewed.outputs["review"]["items"]
    data = reviewed.data["push"]
    assert items and flagged(data) == {item["task_id"] for item in items}
    for task_id in flagged(data):
        shown = data[task_id]["review"]
        assert shown.startswith(PREFIX)
        assert items_of(items, task_id)[0]["detail"] in shown
        assert data[task_id]["review_flag"]["items"] == sorted(i["item_id"] for i in items_of(items, task_id))
    assert all(d["review"] == "" for i, d in data.items() if i not in flagged(data))
    pushed = reviewed.outputs["push"]["pushed"]
    assert pushed["flagged"] == pushed["newly"] == pushed["changed"] == len(flagged(data))
    assert pushed["tab"] == "created"


def items_of(items: list[dict[str, Any]], task_id: int) -> list[dict[str, Any]]:
    return [item for item in items if item["task_id"] == task_id]


def test_the_needs_review_tab_lists_the_flagged_tasks(reviewed: Reviewed) -> None:
    views, listed = reviewed.outputs["tab"]
    assert len(views) == 1 and listed == flagged(reviewed.data["push"])
    assert f"?tab={views[0]}" in reviewed.outputs["push"]["pushed"]["tab_url"]


def test_the_labeling_view_shows_the_flag_above_the_text(reviewed: Reviewed) -> None:
    project = reviewed.admin.client.projects.get(id=reviewed.project_id)
    assert '<Header value="$review"' in project.label_config
    assert reviewed.outputs["push"]["pushed"]["interface_updated"] is True  # the project had no such line
    assert reviewed.outputs["push again"]["pushed"]["interface_updated"] is False


def test_a_second_push_adds_no_flag_and_no_tab(reviewed: Reviewed) -> None:
    again = reviewed.outputs["push again"]["pushed"]
    assert again["changed"] == again["newly"] == again["cleared"] == 0 and again["tab"] == "kept"
    assert reviewed.data["push again"] == reviewed.data["push"]
    assert reviewed.outputs["tab again"] == reviewed.outputs["tab"]


def test_a_task_submitted_again_after_its_flag_leaves_the_next_review(reviewed: Reviewed) -> None:
    task_id, before, after = reviewed.resubmitted, reviewed.outputs["review"], reviewed.outputs["after"]
    assert task_id not in {item["task_id"] for item in after["items"]}
    assert after["reviewed"] == len(items_of(before["items"], task_id))
    assert len(after["items"]) == len(before["items"]) - after["reviewed"]
    data = reviewed.data["push after"][task_id]
    assert data["review"] == "" and data["review_flag"] == {"reviewed": sorted(
        i["item_id"] for i in items_of(before["items"], task_id))}  # fmt: skip
    assert reviewed.outputs["push after"]["pushed"]["cleared"] == 1
    assert reviewed.outputs["tab after"][1] == flagged(reviewed.data["push"]) - {task_id}


def test_the_release_manifest_counts_the_open_items(reviewed: Reviewed) -> None:
    manifest = json.loads((reviewed.root / "exports" / "news-ner" / "0.1.0" / "manifest.json").read_text())
    after = reviewed.outputs["after"]
    assert manifest["review"] == {"open": len(after["items"]), "by_reason": after["by_reason"],
                                  "reviewed": after["reviewed"], "model_checked": False,
                                  "block_release": False}  # fmt: skip
    assert after["by_reason"]["model"] is None and all(after["by_reason"][r] for r in ("label", "missing",
                                                                                        "disagreement"))


def test_a_release_waits_for_the_open_items_when_block_release_is_set(reviewed: Reviewed) -> None:
    (reviewed.root / "configs" / "workbench.toml").write_text(CONFIG + "[review]\nblock_release = true\n")
    try:
        refused = reviewed.run("release", "0.2.0")
    finally:
        (reviewed.root / "configs" / "workbench.toml").write_text(CONFIG)
    assert refused.exit_code == ReviewOpenError.exit_code
    message = " ".join(refused.stderr.split())
    assert f"error: {len(reviewed.outputs['after']['items'])} review item(s) are open" in message
    assert "`workbench review`" in message and "Traceback" not in refused.output
    assert not (reviewed.root / "exports" / "news-ner" / "0.2.0").exists()
