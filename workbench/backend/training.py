"""The training job's record, and the button that starts the job: one job at a time.

Label Studio's "Start training" (POST /api/ml/<id>/train) reaches the backend as a START_TRAINING webhook (the
legacy POST /train when that feature flag is off). `Trainer.press` starts the job, `workbench backend job` (a
hidden command, `job` and `workflow.do_training_job`), as a child of the backend, in its process group (stopping
the backend stops the job), unless a job runs: that press is answered "already training". The job keeps its
record (`.workbench/backend/job.json`) up to date at every stage, written atomically, so `workbench backend
status` shows it even when the backend is down; a record left "running" by a job that is gone reads "interrupted".
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

import workbench
from workbench.backend.files import BackendFiles
from workbench.config.database import ENV_DATABASE
from workbench.errors import BackendError
from workbench.labelstudio.binding import read_binding
from workbench.project import Project, atomic_write_json, read_json

CLI_MODULE = "workbench.cli"  # the job is a command: `python -m workbench.cli -C DIR backend job --job-id ID`
ACTIVE = ("running",)
log = logging.getLogger("workbench.backend")


@dataclass(frozen=True)
class JobRecord:
    """One training job: its stage while it runs, its outcome and result once it ends."""

    id: str
    state: str  # running, done, failed, stopped (by a signal), interrupted (gone without a word)
    stage: str
    pid: int | None = None
    started_at: str = ""
    finished_at: str = ""
    message: str = ""  # one paragraph: what the job did, or why it failed and what to do
    result: dict[str, Any] = field(default_factory=dict)
    stages: list[dict[str, Any]] = field(default_factory=list)  # each stage done: name and seconds

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def child_environment() -> dict[str, str]:
    """The environment for the backend's and the job's processes: this one's, with the folder this very workbench
    was imported from first on PYTHONPATH, so a child runs the same code as its starter, and without the Label
    Studio database's URL (it may hold a password, and only the server needs it)."""
    source = str(Path(workbench.__file__).resolve().parents[1])
    parts = (source, *os.environ.get("PYTHONPATH", "").split(os.pathsep))
    path = os.pathsep.join(dict.fromkeys(part for part in parts if part))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
    env.pop(ENV_DATABASE, None)
    return env


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_job(files: BackendFiles) -> JobRecord | None:
    """The last job's record as written (None if no job ever ran or the record is unreadable)."""
    try:
        return JobRecord(**read_json(files.job))
    except (OSError, ValueError, TypeError):
        return None


def write_job(files: BackendFiles, record: JobRecord) -> None:
    atomic_write_json(files.job, record.as_dict())


def job_status(files: BackendFiles) -> JobRecord | None:
    """The last job as it stands now: a record that says "running" for a process that is gone is "interrupted"."""
    record = read_job(files)
    if record is not None and record.state in ACTIVE and not job_alive(record):
        return dataclasses.replace(record, state="interrupted", message=(
            f"The training job stopped at its {record.stage} stage without finishing (its process is gone: the "
            "backend was killed or the machine restarted). Every stage writes atomically, so nothing half-written "
            "was kept; press Start training again."))  # fmt: skip
    return record


def job_alive(record: JobRecord) -> bool:
    """The record's process lives and is that job (its command line names the job id, so a reused pid is not)."""
    if record.pid is None:
        return False
    try:
        process = psutil.Process(record.pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return record.id in process.cmdline()
    except psutil.Error:
        return False


class Trainer:
    """Starts the training job when Label Studio's Start training is pressed; one job at a time."""

    def __init__(self, project: Project, config_path: Path | None = None) -> None:
        self.project = project
        self.files = BackendFiles.of(project)
        self.config_path = config_path
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None

    def press(self, project_id: int | None) -> tuple[int, dict[str, Any]]:
        """Start the job for Label Studio project `project_id` (None: the one this workbench pushed to): 201 and
        the job's id, or 200 and why not ("already training", or another project's button)."""
        with self._lock:
            self._reap()
            running = job_status(self.files)
            if running is not None and running.state in ACTIVE:
                log.info("Start training pressed while job %s is at its %s stage: already training", running.id,
                         running.stage)  # fmt: skip
                return 200, {"status": "already training", "job": running.id, "stage": running.stage}
            binding = read_binding(self.project)
            if binding is None:
                return 200, {"status": "ignored", "reason": "this workbench has not pushed to Label Studio yet"}
            if project_id is not None and project_id != binding.project_id:
                log.info("Start training pressed for Label Studio project %s (not this workbench's): ignored",
                         project_id)
                return 200, {"status": "ignored", "reason": "not the Label Studio project this workbench pushed to"}
            record = JobRecord(id=f"{now().replace(':', '').replace('-', '')}-{uuid.uuid4().hex[:6]}",
                               state="running", stage="starting", started_at=now())  # fmt: skip
            self._child = self._spawn(record)
            log.info("Start training pressed: job %s started (pid %d)", record.id, self._child.pid)
            return 201, {"status": "ok", "result": {"job": record.id}}

    def _spawn(self, record: JobRecord) -> subprocess.Popen[bytes]:
        """The job waits for a line on its stdin before it begins, so its record (with its pid) is written here
        first and the job's own updates always come after."""
        command = [sys.executable, "-m", CLI_MODULE, "-C", str(self.project.root), "--quiet"]
        if self.config_path is not None:
            command += ["--config", str(Path(self.config_path).resolve())]
        command += ["backend", "job", "--job-id", record.id]
        try:
            with open(self.files.log, "ab") as output:
                child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT,
                                         cwd=self.project.root, env=child_environment(), close_fds=True)  # fmt: skip
        except OSError as exc:
            raise BackendError(f"The training job could not start ({exc.strerror}); see {self.files.log}.") from None
        write_job(self.files, dataclasses.replace(record, pid=child.pid))
        assert child.stdin is not None
        with contextlib.suppress(OSError):  # a job that died at once is seen as interrupted
            child.stdin.write(b"go\n")
            child.stdin.close()
        return child

    def _reap(self) -> None:
        """Collect the exit status of a job that ended (no zombie is left behind)."""
        if self._child is not None and self._child.poll() is not None:
            self._child = None
