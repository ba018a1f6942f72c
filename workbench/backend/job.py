"""The training job behind Label Studio's "Start training": the frame it runs in, its record, and what it trains on.

The backend (`training.Trainer`) starts the job as `workbench backend job --job-id ID`, a hidden command: like
every command it calls one `workflow` function (`do_training_job`), which composes the stages from the commands'
own calls (pull, release, train, the guard as `preannotate --model` runs it, pre-annotate, push) and runs them in
the frame `run` gives here:

- it begins only once the backend has written its record (a line on stdin), then keeps that record up to date at
  every stage, atomically (`JobLog`);
- it holds the project lock for its whole run, as a command does, waiting up to LOCK_WAIT seconds for a command
  that holds it (the workflow calls inside take the same lock again, held once);
- any failure ends it with one paragraph in its record (the stage's own error, with its exit code); SIGTERM
  (`workbench backend stop`) ends it as "stopped". Every stage writes atomically (a temporary file or folder,
  then one rename), so a job stopped or killed anywhere leaves no half-written release, model or pool.

What it trains on (`release_to_train_on`): the next patch version, cut first, when the annotations or the config
changed since the latest release (`changed_since`); otherwise the latest release.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from workbench.backend.files import BackendFiles, log_to_stderr
from workbench.backend.training import JobRecord, now, read_job, write_job
from workbench.errors import BusyError, WorkbenchError
from workbench.model.deployed import current_model
from workbench.pipeline import resolve
from workbench.project import Project
from workbench.release import read_manifest
from workbench.release.versions import existing_versions, next_patch
from workbench.sync.snapshots import Snapshot, latest_snapshot, read_snapshot

LOCK_WAIT = 600.0  # seconds the job waits for a command that holds the project lock
WHAT = "the training job (Start training)"
log = logging.getLogger("workbench.backend")


class JobLog:
    """The job's record, kept up to date on disk (atomically) as the stages go."""

    def __init__(self, files: BackendFiles, record: JobRecord) -> None:
        self.files = files
        self.record = record

    def update(self, **changes: Any) -> None:
        self.record = dataclasses.replace(self.record, **changes)
        write_job(self.files, self.record)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        self.update(stage=name)
        log.info("job %s: %s", self.record.id, name)
        yield
        seconds = round(time.monotonic() - began, 2)
        self.update(stages=[*self.record.stages, {"stage": name, "seconds": seconds}])


# The job's stages: the project and the record to keep -> the job's message (one paragraph) and its result.
Stages = Callable[[Project, JobLog], tuple[str, dict[str, Any]]]


def run(root: Path, config: Path | None, job_id: str, stages: Stages) -> int:
    """Job `job_id` of the project at `root`, from the backend's go to its end; its exit code (the failure's own,
    0 when done). Everything it says goes to the backend's log (stderr) and its record."""
    log_to_stderr()
    if sys.stdin.readline().strip() != "go":  # the backend went away before the job's record was written
        return 1
    signal.signal(signal.SIGTERM, _stopped)
    files = BackendFiles(Path(root).resolve() / ".workbench" / "backend")
    record = read_job(files)
    if record is None or record.id != job_id:
        log.error("error: the record of job %s is not in %s", job_id, files.job)
        return 1
    job = JobLog(files, record)
    code, state = 0, "done"
    try:
        message, result = _locked(Project.open(root, config), job, stages)
        job.update(result=result)
    except WorkbenchError as exc:
        message, code, state = " ".join(str(exc).split()), exc.exit_code, "failed"
    except SystemExit as exc:
        message, code, state = (f"Stopped at its {job.record.stage} stage (the backend was stopped); nothing "
                                "half-written was kept. Press Start training again.", int(exc.code or 1), "stopped")
    except Exception as exc:  # a bug: the record says so in one line, the log has the traceback
        log.exception("job %s failed", job.record.id)
        message, code, state = f"The training job failed unexpectedly ({type(exc).__name__}: {exc}); see the log.", 1, \
            "failed"  # fmt: skip
    job.update(state=state, finished_at=now(), message=message, **({"stage": "finished"} if state == "done" else {}))
    log.info("job %s %s: %s", job.record.id, state, message)
    return code


def _locked(project: Project, job: JobLog, stages: Stages) -> tuple[str, dict[str, Any]]:
    """The stages under the project lock, waited for when a command holds it."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(project.lock(WHAT))
        except BusyError:
            job.update(stage="waiting for the project lock")
            log.info("job %s: waiting for the project lock", job.record.id)
            held.enter_context(project.lock(WHAT, timeout=LOCK_WAIT))
        return stages(project, job)


def _stopped(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


# ---- what the job trains on ------------------------------------------------------------------------------------


def release_to_train_on(project: Project) -> tuple[str, bool]:
    """The release to train on, and whether it must be cut first: the next patch version (0.1.0 for the first)
    when anything a release is built from changed since the latest one, else the latest."""
    versions = existing_versions(project.releases_dir)
    if versions and not changed_since(project, str(versions[-1])):
        return str(versions[-1]), False
    return next_patch(versions), True


def candidate(project: Project, version: str) -> str | None:
    """The model trained on release `version` (as the project names it, relative to its root), unless there is
    none or it is the pipeline pre-annotating now: the model the job offers to the guard."""
    folder = project.models_dir / version
    if not folder.is_dir():
        return None
    name = folder.relative_to(project.root).as_posix()
    return None if resolve(name, project.root) == resolve(current_model(project), project.root) else name


def changed_since(project: Project, version: str) -> bool:
    """Whether a release cut now could differ from release `version`: the config changed, or the latest snapshot
    holds other task data or annotations than the one the release was cut from (predictions do not count)."""
    record = read_manifest(project.releases_dir, version).record
    latest = latest_snapshot(project)
    source = record.get("source") or {}
    if record.get("config_hash") != project.config.fingerprint():
        return True
    if source.get("sha256") == latest.sha256:
        return False
    path = project.snapshots_dir / str(source.get("name") or "")
    try:
        cut_from = read_snapshot(path)
    except (OSError, ValueError, KeyError, TypeError):  # gone or damaged: cannot tell, so release
        return True
    return labelled_content(cut_from) != labelled_content(latest)


def labelled_content(snapshot: Snapshot) -> str:
    """A digest of what a release is built from: each task's id, data and annotations (not its predictions)."""
    per_task = {}
    for task in snapshot.tasks_iter():
        annotations = [{key: annotation.get(key) for key in ("id", "result", "was_cancelled", "ground_truth",
                                                             "completed_by", "updated_at")}
                       for annotation in task.get("annotations", [])]  # fmt: skip
        text = json.dumps([task.get("data"), annotations], sort_keys=True, ensure_ascii=False, default=str)
        per_task[int(task["id"])] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return hashlib.sha256(json.dumps(sorted(per_task.items())).encode()).hexdigest()
