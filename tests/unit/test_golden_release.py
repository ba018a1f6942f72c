"""A release is byte for byte what the workbench has always written from the same snapshot.

`tests/data/golden/snapshot.json` is a real Label Studio export (the loop test's project), with annotations added
to most tasks: several annotators, a tie, a majority, ground truth, skips, UTF-16 and whitespace-dragged regions,
and a label renamed by the config. Releases 1.0.0 (from part of it) and 1.1.0 (from all of it, with the rows of
a late second annotator changed) were cut by the workbench before the redesign of its release code (issue 11);
`release-files.json` holds the sha256 of every file they wrote. A change of any release byte fails here: if it is
meant (a new manifest field, say), say so in the commit and record the new digests with
`WORKBENCH_RECORD_GOLDEN=1 pytest tests/unit/test_golden_release.py`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support import make_project
from workbench import workflow
from workbench.project import Project
from workbench.release import manifest
from workbench.sync.snapshots import meta_path_for

GOLDEN = Path(__file__).parents[1] / "data" / "golden"
CONFIG = 'dataset = "golden"\n[label_mapping]\nNATIONALITY = "NORP"\n'


def _export_bytes(tasks: list[dict[str, Any]]) -> bytes:
    return ("[\n" + ",\n".join(json.dumps(t, ensure_ascii=False, sort_keys=True) for t in tasks) + "\n]\n").encode()


def _add_snapshot(project: Project, name: str, data: bytes) -> None:
    project.snapshots_dir.mkdir(parents=True, exist_ok=True)
    path = project.snapshots_dir / name
    path.write_bytes(data)
    meta = {"file": name, "sha256": hashlib.sha256(data).hexdigest(), "pulled_at": "2026-11-30T10:00:00.000000Z",
            "project_id": 1, "label_studio_version": "1.23.2", "tasks": len(json.loads(data))}
    meta_path_for(path).write_text(json.dumps(meta), encoding="utf-8")


def _earlier(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The project as it was at 1.0.0: the first 40 tasks, before the second annotator of each pair came."""
    return [{**t, "annotations": t["annotations"][:1] if len(t["annotations"]) == 2 else t["annotations"]}
            for t in tasks if t["id"] <= 40]


def test_releases_cut_from_the_golden_snapshot_are_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(manifest, "now", lambda: "2026-11-30T12:00:00Z")
    monkeypatch.setattr(Project, "git_commit", lambda self: "golden")
    project = make_project(tmp_path / "golden", config=CONFIG, link_venv=False)
    full = (GOLDEN / "snapshot.json").read_bytes()
    _add_snapshot(project, "2026-11-30T100000-000000Z.json", _export_bytes(_earlier(json.loads(full))))
    workflow.do_release(project, "1.0.0")
    _add_snapshot(project, "2026-11-30T110000-000000Z.json", full)
    workflow.do_release(project, "1.1.0")

    written = {path.relative_to(project.releases_dir).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
               for path in sorted(project.releases_dir.rglob("*")) if path.is_file()}
    recorded = GOLDEN / "release-files.json"
    if os.environ.get("WORKBENCH_RECORD_GOLDEN") == "1":
        recorded.write_text(json.dumps(written, indent=1) + "\n", encoding="utf-8")
    assert written == json.loads(recorded.read_text(encoding="utf-8"))
