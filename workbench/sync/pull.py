"""Pull: the project's tasks into a new complete snapshot, fetching only what changed since the last pull.

The first pull, and `pull --full`, is one bulk export of every task with all its annotations (submitted, skipped,
ground truth), predictions and drafts. Later pulls are incremental: Label Studio stamps a task's `updated_at`
whenever anything in it changes (an annotation made, edited, skipped, un-skipped or deleted, a prediction added or
removed, its data edited), and its Data Manager filters on that stamp exactly. So a pull exports, through a
temporary Data Manager tab, only the tasks stamped since the last pull's export began, less an overlap
(`[labelstudio] pull_overlap_seconds`) that covers writes stamped before they were committed. Those tasks replace
their old copies, whole, in a new snapshot written from the previous one, so every snapshot is complete and a
release reads one file. Deleted tasks leave no trace on the server: the tasks up to the highest known id are
counted (one query), and only when the count differs are all task ids listed to find which are gone.

The watermark is the server's own clock (when its export began), never this machine's. A pull falls back to a
full export, and says why, whenever the previous snapshot cannot be trusted as a base: missing or damaged, edited
since it was pulled, from another project or server version, tasks that appeared behind the watermark, or tasks
changed in a way Label Studio does not stamp (`push` adding predictions in bulk notes it: `note_unstamped`). Every
file is written under a temporary name and renamed into place last, so a pull that fails leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from workbench.errors import SnapshotError
from workbench.labelstudio import LabelStudio
from workbench.labelstudio.binding import bound_project
from workbench.labelstudio.client import ExportInfo
from workbench.project import Project, atomic_write_json, file_sha256, remove_stale_temps, temp_path
from workbench.sync.snapshots import (
    LINES,
    LinesWriter,
    Snapshot,
    check_digest,
    clear_unstamped,
    iter_lines,
    iter_tasks,
    line_id,
    newest_on_disk,
    record_latest,
    snapshot_path,
    task_line,
    unstamped,
)

# The form Label Studio's Data Manager parses a time filter in (anything else is an HTTP 500).
SERVER_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class PullResult:
    """A pull: the new snapshot, whether only changes were fetched, and why not when it could have been."""

    snapshot: Snapshot
    incremental: bool
    fetched: int
    note: str = ""

    def lines(self) -> list[str]:
        """What the pull did, as the CLI says it."""
        snapshot, changes = self.snapshot, self.snapshot.changes
        said = [f"{snapshot.tasks} tasks pulled into {snapshot.path} (sha256 {snapshot.sha256[:12]})"]
        if self.incremental:
            notes = changes.get("annotations", {})
            said.append(
                f"incremental: {self.fetched} task(s) changed since {changes.get('since')} fetched "
                f"({changes.get('new_tasks', 0)} new, {changes.get('changed_tasks', 0)} changed, "
                f"{changes.get('deleted_tasks', 0)} deleted; annotations: {notes.get('added', 0)} added, "
                f"{notes.get('changed', 0)} changed, {notes.get('deleted', 0)} deleted); "
                "`workbench pull --full` exports everything"
            )
        elif self.note:
            said.append(f"full export: {self.note}")
        return said


class _NotIncremental(Exception):
    """The previous snapshot cannot be the base of this pull; the message says why (for the user)."""


@dataclass
class _Merged:
    """A snapshot written from a base and the changed tasks: what it holds and what changed."""

    sha256: str
    tasks: int
    max_id: int
    ids: set[int]
    changes: dict[str, Any] = field(default_factory=dict)


def pull(project: Project, client: LabelStudio, *, full: bool = False) -> PullResult:
    """A new snapshot of every task of the project: the changes since the last pull merged into it, or (`full`,
    or when that cannot be trusted) one export of everything."""
    project_id = bound_project(project, client)
    version = client.server_version()
    created = client.project_created_at(project_id)
    pulled_at = datetime.now(UTC).strftime(SERVER_TIME)  # names the file only; the watermark is the server's
    final = snapshot_path(project, pulled_at)
    scratch = temp_path(final.with_name(f"{final.stem}.lines"))
    tmp = temp_path(final)
    try:
        project.snapshots_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(project.snapshots_dir)
        base, note = (None, "") if full else _base_for(project, project_id, version, created)
        snapshot: Snapshot | None = None
        fetched = 0
        if base is not None:
            try:
                snapshot, fetched = _incremental(project, client, project_id, base, tmp)
            except _NotIncremental as reason:
                note = str(reason)
        if snapshot is None:
            snapshot, fetched = _full(client, project_id, tmp, scratch)
        snapshot = dataclasses.replace(snapshot, path=final, pulled_at=pulled_at, project_id=project_id,
                                       label_studio_version=version, project_created_at=created)  # fmt: skip
        atomic_write_json(snapshot.meta_path, snapshot.as_dict())
        os.replace(tmp, final)
        record_latest(project, snapshot)
        if snapshot.kind == "full":
            clear_unstamped(project)
    except OSError as exc:
        raise SnapshotError(
            f"The snapshot could not be written into {project.snapshots_dir} ({exc.strerror or exc}). Check the "
            "folder's permissions and the free space, then run `workbench pull` again; nothing was kept."
        ) from None
    finally:
        for path in (tmp, scratch):
            path.unlink(missing_ok=True)
    return PullResult(snapshot=snapshot, incremental=snapshot.kind == "incremental", fetched=fetched, note=note)


def _base_for(project: Project, project_id: int, version: str, created: str) -> tuple[Snapshot | None, str]:
    """The latest snapshot, if an incremental pull can build on it; else None and why (empty for a first pull)."""
    if not any(project.snapshots_dir.glob("*.json")):
        return None, ""  # the first pull
    changed_unstamped = unstamped(project)
    if changed_unstamped:
        return None, f"{changed_unstamped} since the last full pull, which Label Studio does not stamp on the tasks"
    base = newest_on_disk(project)
    if base is None:
        return None, "the newest snapshot's record cannot be read"
    if base.layout != LINES or not base.watermark:
        return None, f"the newest snapshot, {base.path.name}, was made by an earlier workbench"
    if base.project_id != project_id or base.project_created_at != created:
        return None, f"the newest snapshot, {base.path.name}, is of another Label Studio project"
    if base.label_studio_version != version:
        return None, f"the server changed version since the newest snapshot ({base.label_studio_version} -> {version})"
    return base, ""  # its sha256 is checked while it is merged


def _full(client: LabelStudio, project_id: int, tmp: Path, scratch: Path) -> tuple[Snapshot, int]:
    """Export every task; write them in the lines layout, in id order, as the download arrives (one parse). The
    server exports in id order; tasks out of it are put in order from a second pass over the lines written."""
    index: list[tuple[int, int, int]] = []  # (task id, offset, length) in `tmp`
    in_order = True
    with client.export_stream(project_id) as (export, chunks), tmp.open("wb") as handle:
        writer = LinesWriter(handle)
        for task in iter_tasks(chunks, f"of project {project_id}"):
            line = task_line(task)
            in_order = in_order and (not index or task["id"] > index[-1][0])
            writer.add(line, task["id"])
            index.append((task["id"], writer.offset - len(line), len(line)))
        sha = writer.close()
        handle.flush()
        _check_count(len(index), export, "export")
        if in_order:
            os.fsync(handle.fileno())
    if not in_order:
        sha = _in_id_order(tmp, scratch, index)
    return _snapshot(tmp, sha, writer.tasks, writer.max_id, export.started_at, kind="full"), len(index)


def _in_id_order(tmp: Path, scratch: Path, index: list[tuple[int, int, int]]) -> str:
    """Rewrite the lines snapshot `tmp` (whose lines `index` places) in task id order; its new sha256."""
    index.sort()
    twice = [a[0] for a, b in zip(index, index[1:], strict=False) if a[0] == b[0]]
    if twice:
        raise SnapshotError(
            f"The export holds task {twice[0]} twice, so it is not one state of the project. Run `workbench pull` "
            "again; if it repeats, check the Label Studio server log."
        )
    os.replace(tmp, scratch)
    with scratch.open("rb") as source, tmp.open("wb") as handle:
        writer = LinesWriter(handle)
        for task_id, offset, length in index:
            source.seek(offset)
            writer.add(source.read(length), task_id)
        sha = writer.close()
        handle.flush()
        os.fsync(handle.fileno())
    scratch.unlink()
    return sha


def _incremental(
    project: Project, client: LabelStudio, project_id: int, base: Snapshot, tmp: Path
) -> tuple[Snapshot, int]:
    """Export the tasks changed since `base` was pulled, merge them into a copy of it, drop deleted tasks."""
    overlap = timedelta(seconds=project.config.labelstudio.pull_overlap_seconds)
    since = (datetime.fromisoformat(base.watermark) - overlap).astimezone(UTC).strftime(SERVER_TIME)
    with client.changed_since(project_id, since) as view, client.export_stream(project_id, view=view) as (
        export, chunks
    ):
        changed = {task["id"]: (task_line(task), task) for task in iter_tasks(chunks, f"of project {project_id}")}
    if not export.started_at:
        raise _NotIncremental("the server did not say when its export began")
    _check_count(len(changed), export, "export of the changed tasks")
    merged = _merge(base, changed, tmp, deleted=set())
    if client.count_tasks(project_id, max_id=merged.max_id) != merged.tasks:
        listed = client.task_ids(project_id)
        appeared = {task_id for task_id in listed if task_id <= merged.max_id} - merged.ids
        if appeared:
            raise _NotIncremental(f"{len(appeared)} task(s) appeared behind the watermark while the pull ran")
        merged = _merge(base, changed, tmp, deleted=merged.ids - listed)
    changes = {"since": since, "fetched": len(changed), **merged.changes}
    snapshot = _snapshot(tmp, merged.sha256, merged.tasks, merged.max_id, export.started_at, kind="incremental")
    return dataclasses.replace(snapshot, base=base.path.name, changes=changes), len(changed)


def _merge(base: Snapshot, changed: dict[int, tuple[bytes, dict[str, Any]]], out: Path, deleted: set[int]) -> _Merged:
    """Write `base` with the `changed` tasks in place of their old copies (new ones at their place in id order)
    and without the `deleted` ones; count what changed, down to annotations. A base whose bytes are not the ones
    pulled is not built upon."""
    pending = sorted(changed)
    counts = dict.fromkeys(("new_tasks", "changed_tasks", "refetched_unchanged", "deleted_tasks"), 0)
    annotations = dict.fromkeys(("added", "changed", "deleted"), 0)
    ids: set[int] = set()
    at, previous = 0, None
    with out.open("wb") as handle:
        writer = LinesWriter(handle)

        def emit(line: bytes, task_id: int) -> None:
            writer.add(line, task_id)
            ids.add(task_id)

        for line in _base_lines(base):
            task_id = line_id(line)
            if previous is not None and task_id <= previous:
                raise _NotIncremental(f"the newest snapshot, {base.path.name}, is not in task id order")
            previous = task_id
            while at < len(pending) and pending[at] < task_id:
                counts["new_tasks"] += _emit_new(emit, changed[pending[at]], deleted)
                at += 1
            if task_id in deleted:
                counts["deleted_tasks"] += 1
                annotations["deleted"] += len(json.loads(line).get("annotations") or [])
                continue
            if at < len(pending) and pending[at] == task_id:
                new_line, task = changed[task_id]
                at += 1
                if new_line == line:
                    counts["refetched_unchanged"] += 1
                else:
                    counts["changed_tasks"] += 1
                    for kind, n in _annotation_changes(json.loads(line), task).items():
                        annotations[kind] += n
                emit(new_line, task_id)
                continue
            emit(line, task_id)
        for task_id in pending[at:]:
            counts["new_tasks"] += _emit_new(emit, changed[task_id], deleted)
        sha = writer.close()
        handle.flush()
        os.fsync(handle.fileno())
    return _Merged(sha, writer.tasks, writer.max_id, ids, {**counts, "annotations": annotations})


def _base_lines(base: Snapshot) -> Iterator[bytes]:
    """The base's lines; its sha256 is taken in a thread meanwhile and checked once the last line is read."""
    with ThreadPoolExecutor(1, thread_name_prefix="base-sha256") as hashing:
        whole = hashing.submit(file_sha256, base.path)
        try:
            yield from iter_lines(base.path)
            digest = whole.result()
        except (OSError, SnapshotError):
            raise _NotIncremental(f"the newest snapshot, {base.path.name}, cannot be read") from None
    try:
        check_digest(base, digest)
    except SnapshotError:
        raise _NotIncremental(f"the newest snapshot, {base.path.name}, was changed after it was pulled") from None


def _emit_new(emit: Any, entry: tuple[bytes, dict[str, Any]], deleted: set[int]) -> int:
    line, task = entry
    if task["id"] in deleted:
        return 0
    emit(line, task["id"])
    return 1


def _annotation_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, int]:
    """Annotations added, changed (result, skip, ground truth, ...) and deleted between two copies of a task."""
    before = {a.get("id"): json.dumps(a, sort_keys=True) for a in old.get("annotations") or []}
    after = {a.get("id"): json.dumps(a, sort_keys=True) for a in new.get("annotations") or []}
    return {
        "added": len(after.keys() - before.keys()),
        "changed": sum(1 for key in after.keys() & before.keys() if after[key] != before[key]),
        "deleted": len(before.keys() - after.keys()),
    }


def _check_count(found: int, export: ExportInfo, what: str) -> None:
    """The download holds as many tasks as the server says it exported (a download cut short between two tasks
    is still valid JSON)."""
    if export.tasks is not None and export.tasks != found:
        raise SnapshotError(
            f"The {what} holds {found} tasks, but the server counted {export.tasks} in it, so the download was cut "
            "short. Run `workbench pull` again; nothing was kept."
        )


def _snapshot(path: Path, sha: str, tasks: int, max_id: int, watermark: str, *, kind: str) -> Snapshot:
    """A snapshot's record, the rest (name, project, server) filled in by `pull`."""
    return Snapshot(path=path, sha256=sha, pulled_at="", project_id=0, label_studio_version="", tasks=tasks,
                    layout=LINES, watermark=watermark, max_task_id=max_id, kind=kind)  # fmt: skip
