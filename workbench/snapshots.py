"""The snapshot store: pulled exports kept byte for byte under `.workbench/snapshots/`, the source of truth.

A snapshot is `<time>.json` (the export exactly as Label Studio sent it) and `<time>.meta.json` (where and when
it came from, and its sha256). A snapshot counts once both are in place. Tasks are streamed and checked one by
one, so memory does not grow with the project.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson

from workbench.errors import SnapshotError
from workbench.project import Project, file_sha256, read_json


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


def snapshot_path(project: Project, pulled_at: str) -> Path:
    """Where the snapshot pulled at `pulled_at` (ISO 8601, UTC) lives: its name sorts by time."""
    return project.snapshots_dir / f"{pulled_at.replace(':', '').replace('.', '-')}.json"


def latest_snapshot(project: Project) -> Snapshot:
    """The newest snapshot, with its record. A pull renames the export into place only after its record is
    written, so an export without a readable record was damaged afterwards: that is an error naming it, never a
    silent step back to an older snapshot."""
    folder = project.snapshots_dir
    found = folder.glob("*.json") if folder.is_dir() else []
    candidates = sorted(p for p in found if not p.name.endswith(".meta.json"))
    if not candidates:
        raise SnapshotError(
            f"There is no snapshot in {folder} yet. Run `workbench pull` to fetch the annotations first."
        )
    path = candidates[-1]
    meta = meta_path_for(path)
    try:
        record = read_json(meta)
        return Snapshot(
            path=path,
            sha256=str(record["sha256"]),
            pulled_at=str(record["pulled_at"]),
            project_id=int(record["project_id"]),
            label_studio_version=str(record["label_studio_version"]),
            tasks=int(record["tasks"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        why = "is missing" if isinstance(exc, FileNotFoundError) else f"cannot be read ({type(exc).__name__}: {exc})"
        raise SnapshotError(
            f"The record of the newest snapshot {path.name}, {meta.name}, {why}, so where the snapshot came from "
            f"and whether it is intact cannot be checked. Run `workbench pull` for a new snapshot (or move "
            f"{path.name} out of {folder} to build from the one before it)."
        ) from None


def check_intact(snapshot: Snapshot) -> None:
    """The snapshot file is byte for byte what was pulled: its sha256 is the one recorded at pull."""
    try:
        digest = file_sha256(snapshot.path)
    except OSError as exc:
        raise SnapshotError(
            f"The snapshot {snapshot.path} cannot be read ({exc.strerror}). Run `workbench pull` for a new one."
        ) from None
    if digest != snapshot.sha256:
        raise SnapshotError(
            f"The snapshot {snapshot.path} was changed after it was pulled (its sha256 is {digest[:12]}..., the "
            f"pull recorded {snapshot.sha256[:12]}...), so a release built from it could not be traced to Label "
            "Studio. Run `workbench pull` for a fresh snapshot and release from that."
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
            "again; if it repeats, check the Label Studio server log."
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
