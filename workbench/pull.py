"""Pull: one bulk export of the project, kept byte for byte as a snapshot, the source of truth of a release.

The export holds every task with all its annotations (submitted, skipped, ground truth) and predictions. It is
downloaded to a temporary file, checked to be a JSON list of tasks, and only then renamed into the snapshot
store (`snapshots`), so a pull that is interrupted or fails leaves no partial snapshot behind.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from workbench.errors import SnapshotError
from workbench.labelstudio import LabelStudio
from workbench.labelstudio.binding import bound_project
from workbench.project import Project, atomic_write_json, file_sha256, remove_stale_temps, temp_path
from workbench.snapshots import Snapshot, iter_export, snapshot_path


def pull(project: Project, client: LabelStudio) -> Snapshot:
    """Export every task of the project into a new snapshot file."""
    project_id = bound_project(project, client)
    version = client.server_version()
    pulled_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    final = snapshot_path(project, pulled_at)
    tmp = temp_path(final)
    try:
        project.snapshots_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(project.snapshots_dir)
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
    except OSError as exc:
        raise SnapshotError(
            f"The snapshot could not be written into {project.snapshots_dir} ({exc.strerror or exc}). Check the "
            "folder's permissions and the free space, then run `workbench pull` again; nothing was kept."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return snapshot
