"""Snapshots in the lines layout: one canonical line per task, and an incremental pull's merge of the changed tasks
into the previous snapshot (the Label Studio side is in tests/integration/test_incremental.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.errors import SnapshotError
from workbench.sync import pull as pull_module
from workbench.sync.snapshots import (
    LINES,
    LinesWriter,
    Snapshot,
    checked_lines,
    iter_export,
    iter_lines,
    line_id,
    task_line,
)


def _task(task_id: int, *annotations: tuple[int, str], text: str = "Erdoğan met Biden 🙂") -> dict[str, Any]:
    return {
        "id": task_id,
        "data": {"text": text, "doc_id": "a", "paragraph": task_id},
        "annotations": [{"id": aid, "result": [], "updated_at": stamp, "lead_time": 1.5} for aid, stamp in annotations],
        "predictions": [],
        "updated_at": "2026-11-30T10:00:00.000000Z",
    }


def _write(path: Path, tasks: list[dict[str, Any]]) -> str:
    with path.open("wb") as handle:
        writer = LinesWriter(handle)
        for task in tasks:
            writer.add(task_line(task), task["id"])
        return writer.close()


def test_a_task_line_keeps_every_key_and_value_and_names_its_id_first() -> None:
    task = {"predictions": [{"score": 0.25}], "id": 12, "data": {"z": 1, "a": "ğ"}, "annotations": []}
    line = task_line(task)
    assert line.startswith(b'{"id":12,"annotations":[]')
    assert json.loads(line) == task
    assert line_id(line) == 12
    assert task_line(json.loads(line)) == line  # the same task gives the same bytes
    assert task_line({"id": 3}) == b'{"id":3}'


@given(st.dictionaries(st.text(min_size=1), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3), max_leaves=8)))
def test_task_lines_round_trip_any_json(rest: dict[str, Any]) -> None:
    task = {**{k: v for k, v in rest.items() if k not in ("id", "predictions", "annotations", "drafts")}, "id": 7}
    line = task_line(task)
    assert b"\n" not in line
    assert json.loads(line) == task
    assert task_line(json.loads(line)) == line


def test_a_task_line_leaves_out_the_age_the_server_writes_in_words_at_each_export() -> None:
    task = _task(3, (30, "t1"))
    task["predictions"] = [{"id": 5, "created_at": "2026-11-30T10:00:00Z", "created_ago": "9\xa0minutes"}, 7]
    later = {**task, "predictions": [{**task["predictions"][0], "created_ago": "1\xa0hour"}, 7]}
    assert task_line(task) == task_line(later)
    assert json.loads(task_line(task))["predictions"] == [{"id": 5, "created_at": "2026-11-30T10:00:00Z"}, 7]


def test_a_task_without_a_numeric_id_is_not_a_label_studio_task() -> None:
    with pytest.raises(SnapshotError, match="not a number"):
        task_line({"id": "7", "data": {}})


def test_a_lines_snapshot_is_a_json_list_readable_both_ways(tmp_path: Path) -> None:
    tasks = [_task(1, (10, "t1")), _task(5), _task(9, (90, "t1"), (91, "t1"))]
    path = tmp_path / "s.json"
    sha = _write(path, tasks)
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert json.loads(path.read_bytes()) == tasks
    assert list(iter_export(path)) == tasks
    assert [line_id(line) for line in iter_lines(path)] == [1, 5, 9]
    empty = tmp_path / "empty.json"
    _write(empty, [])
    assert json.loads(empty.read_bytes()) == [] and list(iter_lines(empty)) == []


def _snapshot(path: Path) -> Snapshot:
    return Snapshot(path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), pulled_at="", project_id=1,
                    label_studio_version="", tasks=0, layout=LINES)  # fmt: skip


def test_a_lines_snapshot_edited_after_its_pull_is_named_once_read(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    _write(path, [_task(1), _task(2)])
    snapshot = _snapshot(path)
    assert [line_id(line) for line in checked_lines(snapshot)] == [1, 2]
    path.write_bytes(path.read_bytes().replace(b"Biden", b"Bidon"))
    with pytest.raises(SnapshotError, match="was changed after it was pulled"):
        list(checked_lines(snapshot))


def test_a_lines_snapshot_cut_short_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    _write(path, [_task(1), _task(2)])
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(SnapshotError, match="closing bracket"):
        list(iter_lines(path))


def test_the_merge_replaces_changed_tasks_inserts_new_ones_and_drops_deleted_ones(tmp_path: Path) -> None:
    base = [_task(1, (10, "t1")), _task(2, (20, "t1"), (21, "t1")), _task(4, (40, "t1")), _task(6), _task(8)]
    _write(tmp_path / "base.json", base)
    edited = _task(2, (20, "t2"), (22, "t2"))  # 20 edited, 21 deleted, 22 added
    refetched = _task(4, (40, "t1"))  # within the overlap, unchanged
    changed = {t["id"]: (task_line(t), t) for t in (edited, refetched, _task(3), _task(9, (90, "t2")), _task(6))}
    merged = pull_module._merge(_snapshot(tmp_path / "base.json"), changed, tmp_path / "out.json", deleted={8, 3})
    expected = [base[0], edited, refetched, _task(6), _task(9, (90, "t2"))]
    assert json.loads((tmp_path / "out.json").read_bytes()) == expected
    assert merged.tasks == 5 and merged.max_id == 9 and merged.ids == {1, 2, 4, 6, 9}
    assert merged.sha256 == hashlib.sha256((tmp_path / "out.json").read_bytes()).hexdigest()
    assert merged.changes == {
        "new_tasks": 1, "changed_tasks": 1, "refetched_unchanged": 2, "deleted_tasks": 1,
        "annotations": {"added": 1, "changed": 1, "deleted": 1},
    }  # fmt: skip
    # the same tasks give the same bytes, however they were pulled
    _write(tmp_path / "full.json", expected)
    assert (tmp_path / "full.json").read_bytes() == (tmp_path / "out.json").read_bytes()


def test_a_base_out_of_id_order_is_not_built_upon(tmp_path: Path) -> None:
    path = tmp_path / "base.json"
    path.write_bytes(b"[\n" + task_line(_task(2)) + b",\n" + task_line(_task(1)) + b"\n]\n")
    with pytest.raises(pull_module._NotIncremental, match="not in task id order"):
        pull_module._merge(_snapshot(path), {}, tmp_path / "out.json", deleted=set())


def test_a_base_edited_after_its_pull_is_not_built_upon(tmp_path: Path) -> None:
    path = tmp_path / "base.json"
    _write(path, [_task(1), _task(2)])
    base = _snapshot(path)
    path.write_bytes(path.read_bytes().replace(b"Biden", b"Bidon"))
    with pytest.raises(pull_module._NotIncremental, match="was changed after it was pulled"):
        pull_module._merge(base, {}, tmp_path / "out.json", deleted=set())


# ---- which snapshot release, review and report read --------------------------------------------------------------


def _pulled(project: Any, name: str) -> Snapshot:
    """A snapshot as a pull leaves it: export, record, and the latest pull's note."""
    from workbench.sync.snapshots import meta_path_for, read_snapshot, record_latest

    project.snapshots_dir.mkdir(parents=True, exist_ok=True)
    path = project.snapshots_dir / name
    sha = _write(path, [_task(1, (10, "PERSON"))])
    record = {"sha256": sha, "pulled_at": name, "project_id": 1, "label_studio_version": "1.23.2", "tasks": 1,
              "layout": LINES}  # fmt: skip
    meta_path_for(path).write_text(json.dumps(record))
    snapshot = read_snapshot(path)
    record_latest(project, snapshot)
    return snapshot


@pytest.mark.parametrize(
    ("description", "damage", "message"),
    [
        ("the newest export gone, its record kept", lambda s: s.path.unlink(), "is missing from"),
        ("the newest export and record gone, the pull's note kept",
         lambda s: (s.path.unlink(), s.meta_path.unlink()), "is missing from"),
        ("the newest record gone", lambda s: s.meta_path.unlink(), "record of the newest snapshot"),
    ],
)
def test_a_missing_newest_snapshot_is_refused_never_an_older_one_used(tmp_path: Path, description: str, damage: Any,
                                                                      message: str) -> None:
    from tests.support import make_project
    from workbench.sync.snapshots import latest_snapshot, newest_on_disk

    project = make_project(tmp_path, link_venv=False)
    older = _pulled(project, "2026-12-01T100000-000000Z.json")
    newest = _pulled(project, "2026-12-02T100000-000000Z.json")
    assert latest_snapshot(project).path == newest.path
    damage(newest)
    with pytest.raises(SnapshotError, match=message) as refused:
        latest_snapshot(project)
    assert newest.path.name in str(refused.value) and "workbench pull" in str(refused.value), description
    on_disk = newest_on_disk(project)  # what a pull may build on: the one before, only when the newest is gone whole
    assert on_disk is None or on_disk.path == older.path
