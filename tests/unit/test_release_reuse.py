"""A release reuses its parent's rows for the tasks that did not change, and is byte for byte the release a full
rebuild writes: with one process or several, in shards, down a chain of releases, from either snapshot layout.

The tasks are the golden snapshot's (a real Label Studio export with several annotators, ties, ground truth,
skips and UTF-16 regions); each change below is one a pull brings (tests/integration/test_incremental.py makes
them on a real server)."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support import make_project, tree_digest
from workbench import workflow
from workbench.errors import SnapshotError
from workbench.project import Project
from workbench.release import manifest, writer
from workbench.release.rowcache import cache_path
from workbench.rows import builder as build
from workbench.sync.snapshots import LINES, LinesWriter, meta_path_for, task_line

GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "snapshot.json"
CONFIG = 'dataset = "golden"\n[label_mapping]\nNATIONALITY = "NORP"\n'
STAMP = "2026-12-01T09:00:00.000000Z"


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifest, "now", lambda: "2026-12-01T12:00:00Z")
    monkeypatch.setattr(Project, "git_commit", lambda self: "test")


def golden() -> list[dict[str, Any]]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


def by_id(tasks: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {task["id"]: task for task in tasks}


def changed(tasks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], set[int]]:
    """The project a day later: every kind of change a pull brings; returns the tasks and the ids that changed."""
    tasks = copy.deepcopy(tasks)
    task = by_id(tasks)
    touched = set()

    def touch(task_id: int) -> dict[str, Any]:
        touched.add(task_id)
        task[task_id]["updated_at"] = STAMP
        return task[task_id]

    touch(3)["annotations"][0]["result"].pop()  # an annotation edited: a region deleted
    touch(13)["annotations"].pop()  # one of two annotations deleted
    skipped = touch(9)["annotations"][0]  # a submission turned into a skip
    skipped.update(was_cancelled=True, result=[])
    unskipped = touch(16)["annotations"][0]  # a skip turned into a submission
    unskipped.update(was_cancelled=False, result=copy.deepcopy(task[16]["predictions"][0]["result"]))
    region = touch(21)["annotations"][0]["result"][0]  # a region relabelled
    region["value"]["labels"] = ["ORG" if region["value"]["labels"] != ["ORG"] else "PERSON"]
    other = copy.deepcopy(task[29]["annotations"][0])  # a second annotator's annotation added
    touch(29)["annotations"].append({**other, "id": 900, "completed_by": 7, "updated_at": STAMP})
    touch(45)["data"]["title"] = "A renamed title"  # task data edited in place (a push of issue 12)
    touch(46)["data"]["retired"] = "retired"  # a paragraph retired
    touch(58)["annotations"].append({**copy.deepcopy(task[57]["annotations"][0]), "id": 901, "task": 58,
                                     "result": copy.deepcopy(task[58]["predictions"][0]["result"])})  # fmt: skip
    tasks = [t for t in tasks if t["id"] != 47]  # a task deleted
    new = copy.deepcopy(task[30])  # a new task, at a new place
    new.update(id=70, updated_at=STAMP)
    new["data"].update(key="new-paragraph-key", paragraph=99)
    for n, annotation in enumerate(new["annotations"]):
        annotation.update(id=950 + n, task=70)
    tasks.append(new)
    return tasks, touched | {47, 70}


def add_snapshot(project: Project, name: str, tasks: list[dict[str, Any]], *, lines: bool = True) -> None:
    project.snapshots_dir.mkdir(parents=True, exist_ok=True)
    path = project.snapshots_dir / name
    if lines:
        with path.open("wb") as handle:
            out = LinesWriter(handle)
            for task in sorted(tasks, key=lambda t: t["id"]):
                out.add(task_line(task), task["id"])
            out.close()
    else:
        path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    meta = {"file": name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "pulled_at": name[:17],
            "project_id": 1, "label_studio_version": "1.23.2", "tasks": len(tasks), "layout": LINES if lines else ""}
    meta_path_for(path).write_text(json.dumps(meta), encoding="utf-8")  # fmt: skip


def twin(project: Project, root: Path) -> Project:
    """A copy of the project with its snapshots and releases, but no row cache: everything is built again."""
    shutil.copytree(project.root, root, ignore=shutil.ignore_patterns("release-cache"))
    return Project.open(root)


@pytest.fixture
def released(tmp_path: Path) -> Project:
    """Release 1.0.0 cut from the golden tasks, then a snapshot with every kind of change."""
    project = make_project(tmp_path / "incremental", config=CONFIG, link_venv=False)
    add_snapshot(project, "2026-11-30T100000-000000Z.json", golden())
    first = workflow.do_release(project, "1.0.0")
    assert (first.reused, first.rebuilt, first.note) == (0, 69, "")
    add_snapshot(project, "2026-12-01T100000-000000Z.json", changed(golden())[0])
    return project


def test_only_changed_tasks_are_built_and_the_release_equals_a_full_rebuild(released: Project, tmp_path: Path):
    full = twin(released, tmp_path / "full")
    tasks, touched = changed(golden())
    again = workflow.do_release(released, "1.1.0")
    assert (again.reused, again.rebuilt, again.note) == (len(tasks) - len(touched - {47}), len(touched - {47}), "")
    rebuilt = workflow.do_release(full, "1.1.0")
    assert rebuilt.reused == 0 and "row cache" in rebuilt.note
    assert tree_digest(released.releases_dir) == tree_digest(full.releases_dir)
    assert again.build.report() == rebuilt.build.report()
    diff = json.loads((again.path / "manifest.json").read_text())["changes"]
    assert (diff["added"], diff["removed"]) == (3, 3)  # tasks 16, 58, 70 | 9, 46, 47
    assert diff["changed"] == 3  # an edit, a deleted annotation, a relabel (the rest say what they said)


def test_workers_and_shards_give_the_same_release(released: Project, tmp_path: Path, monkeypatch):
    full = workflow.do_release(twin(released, tmp_path / "full"), "1.1.0", reuse=False)  # one process, one shard
    assert full.note == "a full rebuild was asked for"
    monkeypatch.setattr(build, "PARALLEL_MIN_TASKS", 1)
    monkeypatch.setattr(build, "CHUNK_TASKS", 2)
    monkeypatch.setattr(writer, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(writer, "SHARD_ROWS", 4)
    parallel = workflow.do_release(released, "1.1.0")
    assert parallel.reused > 0
    assert tree_digest(released.releases_dir) == tree_digest(full.path.parent)


def test_a_chain_of_releases_reuses_the_last_one_and_stays_equal_to_full_rebuilds(released: Project, tmp_path):
    workflow.do_release(released, "1.1.0")
    tasks = [t for t in changed(golden())[0] if t["id"] != 12]  # one more deletion, one more edit
    by_id(tasks)[63]["annotations"][0]["result"].pop()
    add_snapshot(released, "2026-12-02T100000-000000Z.json", tasks)
    third = workflow.do_release(released, "1.2.0")
    assert third.rebuilt == 1 and third.reused == len(tasks) - 1
    full = twin(released, tmp_path / "full")
    shutil.rmtree(full.releases_dir / "1.2.0")
    assert workflow.do_release(full, "1.2.0", reuse=False).rebuilt == len(tasks)
    assert tree_digest(released.releases_dir / "1.2.0") == tree_digest(full.releases_dir / "1.2.0")
    kept = sorted(p.name for p in cache_path(released, "1.2.0").parent.iterdir())
    assert kept == ["1.2.0.arrow", "1.2.0.pieces.arrow"]  # older ones go


def test_a_snapshot_as_the_server_sent_it_is_reused_from_too(tmp_path: Path):
    project = make_project(tmp_path / "raw", config=CONFIG, link_venv=False)
    add_snapshot(project, "2026-11-30T100000-000000Z.json", golden(), lines=False)
    workflow.do_release(project, "1.0.0")
    add_snapshot(project, "2026-12-01T100000-000000Z.json", changed(golden())[0], lines=False)
    full = twin(project, tmp_path / "full")
    assert workflow.do_release(project, "1.1.0").reused > 0
    workflow.do_release(full, "1.1.0")
    assert tree_digest(project.releases_dir) == tree_digest(full.releases_dir)


@pytest.mark.parametrize(
    ("spoil", "why"),
    [
        (lambda p: cache_path(p, "1.0.0").unlink(), "no readable row cache"),
        (lambda p: cache_path(p, "1.0.0").write_bytes(b"not arrow"), "no readable row cache"),
        (lambda p: (p.root / "configs" / "workbench.toml").write_text(CONFIG + "[merge]\npolicy = \"latest\"\n"),
         "config or the spaCy pipeline changed"),
        (lambda p: (p.releases_dir / "1.0.0" / "train.conll").write_text("edited\n"), "not the file its manifest"),
        (lambda p: (p.releases_dir / "1.0.0" / "test.spacy").write_bytes(b"x"), "not the file its manifest"),
    ],
    ids=["cache missing", "cache damaged", "config changed", "parent conll edited", "parent docbin edited"],
)
def test_what_cannot_be_trusted_is_built_again_and_said(released: Project, tmp_path: Path, spoil, why: str):
    spoil(released)
    project = Project.open(released.root)
    full = workflow.do_release(twin(project, tmp_path / "full"), "1.1.0", reuse=False)
    result = workflow.do_release(project, "1.1.0")
    assert result.reused == 0 and why in result.note
    assert tree_digest(result.path) == tree_digest(full.path)


def test_a_snapshot_edited_after_its_pull_is_refused_and_nothing_is_written(released: Project) -> None:
    newest = sorted(released.snapshots_dir.glob("2026-12-01*.json"))[0]
    newest.write_bytes(newest.read_bytes().replace(b"Kal\xc4\xb1n", b"Kalin", 1))
    before = tree_digest(released.releases_dir)
    with pytest.raises(SnapshotError, match="was changed after it was pulled"):
        workflow.do_release(released, "1.1.0")
    assert tree_digest(released.releases_dir) == before
