"""Pull: one bulk export of the project, kept byte for byte as a snapshot, the source of truth of a release.

The export holds every task with all its annotations (submitted, skipped, ground truth) and predictions. It is
downloaded to a temporary file, checked to be a JSON list of tasks, and only then renamed into
`.workbench/snapshots/`, so a pull that is interrupted or fails leaves no partial snapshot behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ijson
import psutil

from workbench.errors import ProjectNotFoundError, SnapshotError, WorkbenchError
from workbench.labelstudio import LabelStudio
from workbench.project import Project, atomic_write_json, file_sha256, read_json


@dataclass(frozen=True)
class Snapshot:
    """A pulled export and what is known about where it came from."""

    path: Path
    sha256: str
    pulled_at: str
    project_id: int
    label_studio_version: str
    tasks: int

    @property
    def meta_path(self) -> Path:
        return meta_path_for(self.path)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "sha256": self.sha256,
            "pulled_at": self.pulled_at,
            "project_id": self.project_id,
            "label_studio_version": self.label_studio_version,
            "tasks": self.tasks,
        }

    def tasks_iter(self) -> Iterator[dict[str, Any]]:
        """Stream the snapshot's tasks, checked one by one; memory does not grow with the project."""
        return iter_export(self.path)


def meta_path_for(path: Path) -> Path:
    return path.with_name(path.stem + ".meta.json")


def recorded_project_id(project: Project) -> int:
    if not project.project_file.exists():
        raise WorkbenchError(
            "This workbench has not pushed to a Label Studio project yet, so there is nothing to pull. "
            "Run `workbench run` (or `workbench push`) first."
        )
    return int(read_json(project.project_file)["project_id"])


def check_same_project(project: Project, client: LabelStudio, project_id: int) -> None:
    """A recorded project id means something only on the server it was recorded on. On another URL (the local
    server restarted on another port, or LABEL_STUDIO_URL changed) the project there must have the recorded title,
    or it is somebody else's project that happens to have the same id."""
    recorded = read_json(project.project_file)
    if recorded.get("url") == client.url:
        return
    title = client.project_info(project_id)["title"]
    if title != recorded.get("title"):
        raise ProjectNotFoundError(
            f"This workbench pushed to project {project_id} ({recorded.get('title')!r}) at {recorded.get('url')}, "
            f"but project {project_id} at {client.url} is {title!r}, another project. Point LABEL_STUDIO_URL back "
            "at the server that holds the workbench's project (or unset it for the local server); to label on "
            "this server instead, remove .workbench/project.json and run `workbench push`."
        )


def pull(project: Project, client: LabelStudio) -> Snapshot:
    """Export every task of the project into a new snapshot file."""
    project_id = recorded_project_id(project)
    check_same_project(project, client, project_id)
    version = client.whoami().version
    pulled_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    folder = project.snapshots_dir
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_downloads(folder)
    final = folder / f"{pulled_at.replace(':', '').replace('.', '-')}.json"
    tmp = folder / f".{final.name}.{os.getpid()}.tmp"
    try:
        client.export_to(project_id, tmp)
        tasks = sum(1 for _ in iter_export(tmp))
        snapshot = Snapshot(
            path=final,
            sha256=file_sha256(tmp),
            pulled_at=pulled_at,
            project_id=project_id,
            label_studio_version=version,
            tasks=tasks,
        )
        atomic_write_json(snapshot.meta_path, snapshot.as_dict())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return snapshot


def _remove_stale_downloads(folder: Path) -> None:
    """Delete half-downloaded exports left by a pull that was killed (its process is gone)."""
    for path in folder.glob(".*.tmp"):
        pid = path.name.removesuffix(".tmp").rpartition(".")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not psutil.pid_exists(int(pid)):
            path.unlink(missing_ok=True)


def latest_snapshot(project: Project) -> Snapshot:
    """The newest complete snapshot (a snapshot counts once both it and its metadata are in place)."""
    folder = project.snapshots_dir
    found = folder.glob("*.json") if folder.is_dir() else []
    candidates = sorted(p for p in found if not p.name.endswith(".meta.json"))
    for path in reversed(candidates):
        meta = meta_path_for(path)
        if meta.exists():
            record = read_json(meta)
            return Snapshot(
                path=path,
                sha256=record["sha256"],
                pulled_at=record["pulled_at"],
                project_id=int(record["project_id"]),
                label_studio_version=record["label_studio_version"],
                tasks=int(record["tasks"]),
            )
    raise SnapshotError(
        f"There is no snapshot in {folder} yet. Run `workbench pull` to fetch the annotations first."
    )


def iter_export(path: Path) -> Iterator[dict[str, Any]]:
    """Stream the tasks of an export file, checking each one's shape and naming the first thing wrong."""
    try:
        with path.open("rb") as handle:
            if handle.read(1).lstrip() not in (b"[", b""):
                raise SnapshotError(
                    f"The export {path.name} is not a list of tasks. Run `workbench pull` again against a "
                    "Label Studio server."
                )
            handle.seek(0)
            for position, task in enumerate(ijson.items(handle, "item", use_float=True)):
                yield _checked(task, position, path)
    except ijson.JSONError as exc:
        raise SnapshotError(
            f"The export {path.name} is not valid JSON ({' '.join(str(exc).split())}). Run `workbench pull` "
            "again; if it repeats, "
            "check the Label Studio server log."
        ) from None


def _checked(task: Any, position: int, path: Path) -> dict[str, Any]:
    if not isinstance(task, dict) or "id" not in task or not isinstance(task.get("data"), dict):
        raise SnapshotError(
            f"Task #{position} of the export {path.name} has no id or data, so it is not a Label Studio "
            "task. Run `workbench pull` again against a Label Studio server."
        )
    for field in ("annotations", "predictions"):
        if not isinstance(task.get(field, []), list):
            raise SnapshotError(
                f"Task {task['id']} of the export {path.name} has malformed {field} (not a list). "
                "Run `workbench pull` again; if it repeats, the export is broken on the server."
            )
    return task


