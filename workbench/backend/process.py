"""The backend's lifecycle: start it detached (or find it running), stop it with its training job, report it.

Mirrors the local Label Studio's (`workbench.server`): the process is `python -m workbench.backend.serve` in its
own session, bound to 127.0.0.1, its pid file and log under `.workbench/backend/`, adopted when it runs already,
and recognised by its command line (the module and the project folder). The login it checks is made here once
(`files`). A model that cannot load stops the start with the backend's one line (exit code 4), no traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from filelock import FileLock, Timeout

from workbench.backend.files import PORT_TAKEN, BackendFiles, BackendLogin, new_login, read_login
from workbench.backend.training import JobRecord, child_environment, job_status
from workbench.errors import BackendError, ModelError, WorkbenchError
from workbench.labelstudio.client import backend_health
from workbench.project import Project, atomic_write_bytes
from workbench.server.processes import (
    alive,
    exit_code,
    free_port,
    launch_detached,
    listening_ports,
    port_free,
    reap,
    terminate,
)

SERVE_MODULE = "workbench.backend.serve"
_POLL_SECONDS = 0.2
_LOG_TAIL_LINES = 12


@dataclass(frozen=True)
class BackendInfo:
    """What `start` gives back: where the backend answers, what it serves, whether this call launched it."""

    url: str
    pid: int
    model_version: str
    log_file: Path
    launched: bool
    seconds: float


@dataclass(frozen=True)
class BackendStatus:
    """The backend as seen now, and its last training job; holds no secret."""

    running: bool
    healthy: bool
    url: str | None
    pid: int | None
    model_version: str | None
    log_file: Path
    job: JobRecord | None

    def as_dict(self) -> dict[str, Any]:
        return {"running": self.running, "healthy": self.healthy, "url": self.url, "pid": self.pid,
                "model_version": self.model_version, "log_file": str(self.log_file),
                "job": self.job.as_dict() if self.job else None}  # fmt: skip


def start(project: Project, *, port: int | None = None, config_path: Path | None = None,
          timeout: float = 180) -> BackendInfo:  # fmt: skip
    """Start the project's backend (or return the one running) serving its current model on 127.0.0.1."""
    began = time.monotonic()
    files = BackendFiles.of(project)
    files.prepare()
    with _lock(files, "workbench backend start", timeout):
        pid = _recorded_pid(project, files)
        login = read_login(files)
        if pid is not None and login is not None:
            if port is not None and port != login.port:
                raise BackendError(f"The model backend already runs on port {login.port} (pid {pid}), not on {port}. "
                                   "Run `workbench backend stop` first to move it.")  # fmt: skip
            version = _wait_healthy(files, pid, login, began + timeout)
            return BackendInfo(login.url, pid, version, files.log, False, time.monotonic() - began)
        if pid is not None:  # running, but nobody knows its login: start afresh
            terminate(pid, 15)
        _rotate_log(files)
        for attempt in (1, 2):
            chosen = _choose_port(port, login) if attempt == 1 else free_port()
            login = new_login(files, chosen)
            pid = _launch(project, files, chosen, config_path)
            try:
                version = _wait_healthy(files, pid, login, began + timeout)
            except _PortTaken:
                if port is not None or attempt == 2:
                    raise BackendError(f"Port {chosen} on 127.0.0.1 was taken while the backend started. Run "
                                       "`workbench backend start` again (with another --port, or none).") from None
                continue
            return BackendInfo(login.url, pid, version, files.log, True, time.monotonic() - began)
    raise AssertionError("unreachable")


def stop(project: Project, *, timeout: float = 15) -> bool:
    """Stop the backend and a training job it runs (one process group); True if one was running."""
    files = BackendFiles.of(project)
    if not files.pid.exists():
        return False
    with _lock(files, "workbench backend stop", timeout + 5):
        pid = _recorded_pid(project, files)
        files.pid.unlink(missing_ok=True)
        if pid is None:
            return False
        terminate(pid, timeout)
        return True


def status(project: Project) -> BackendStatus:
    """The backend as it stands, without raising: running, answering (with its login), what it serves, the job."""
    files = BackendFiles.of(project)
    pid = _recorded_pid(project, files)
    try:
        login = read_login(files)
    except BackendError:
        login = None
    health = backend_health(login.url, login.username, login.password) if pid is not None and login else None
    version = health.get("model_version") if health else None
    return BackendStatus(pid is not None, health is not None, login.url if login and pid is not None else None, pid,
                         str(version) if version else None, files.log, job_status(files))  # fmt: skip


def running_login(project: Project) -> BackendLogin | None:
    """The login of the backend if it runs and answers (what `connect` gives Label Studio), else None."""
    files = BackendFiles.of(project)
    login = read_login(files) if _recorded_pid(project, files) is not None else None
    return login if login and backend_health(login.url, login.username, login.password) else None


# ---- helpers ---------------------------------------------------------------------------------------------------


class _PortTaken(Exception):
    """The chosen port was taken between choosing and binding it."""


@contextlib.contextmanager
def _lock(files: BackendFiles, what: str, timeout: float) -> Iterator[None]:
    lock = FileLock(files.lock, timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise BackendError(f"Another `{what}` of this project's model backend has not finished within {timeout:.0f} "
                           f"s. Wait for it, then run `{what}` again.") from None  # fmt: skip
    try:
        yield
    finally:
        lock.release()


def _choose_port(requested: int | None, login: BackendLogin | None) -> int:
    """A requested port must be free; otherwise the last one (Label Studio keeps its URL), or any free one."""
    if requested is not None:
        if not 1 <= requested <= 65535 or not port_free(requested):
            raise BackendError(f"Port {requested} on 127.0.0.1 is not free (or not a port). Choose another with "
                               "--port, or leave it out to let the workbench pick one.")  # fmt: skip
        return requested
    if login is not None and 1024 <= login.port <= 65535 and port_free(login.port):
        return login.port
    return free_port()


def _launch(project: Project, files: BackendFiles, port: int, config_path: Path | None) -> int:
    """The backend in its own session: it outlives the CLI, and stopping it (its group) stops its job too."""
    command = [sys.executable, "-m", SERVE_MODULE, "--project-dir", str(project.root), "--port", str(port)]
    if config_path is not None:
        command += ["--config", str(Path(config_path).resolve())]
    try:
        pid = launch_detached(command, log_file=files.log, cwd=project.root, env=child_environment())
    except OSError as exc:
        raise BackendError(f"The model backend could not be launched with {sys.executable}: {exc.strerror}.") from None
    atomic_write_bytes(files.pid, f"{pid}\n".encode(), mode=0o644)
    return pid


def _wait_healthy(files: BackendFiles, pid: int, login: BackendLogin, deadline: float) -> str:
    """Healthy = our process listens on its port and answers /health with the login; its model version."""
    while True:
        if not alive(pid):  # a zombie is reaped here and its exit code kept for `exit_code`
            code = exit_code(pid)
            files.pid.unlink(missing_ok=True)
            if code == PORT_TAKEN:
                raise _PortTaken()
            raise _failed(files, code)
        if login.port in listening_ports(pid):
            health = backend_health(login.url, login.username, login.password)
            if health is not None:
                return str(health.get("model_version") or "")
        if time.monotonic() > deadline:
            terminate(pid, 5)
            files.pid.unlink(missing_ok=True)
            raise BackendError(f"The model backend did not answer at {login.url}/health in time, so it was stopped. "
                               f"Last lines of {files.log}:\n{_log_tail(files)}")  # fmt: skip
        time.sleep(_POLL_SECONDS)


def _failed(files: BackendFiles, code: int | None) -> WorkbenchError:
    """The backend's own one-line error (`serve` writes "error: ..."), as the error it was, with its exit code."""
    said = [line.split("error: ", 1)[1] for line in _log_lines(files) if "error: " in line]
    message = said[-1] if said else f"it exited (code {code}); last lines of {files.log}:\n{_log_tail(files)}"
    text = f"The model backend could not start: {message}"
    return ModelError(text) if code == ModelError.exit_code else BackendError(text)


def _recorded_pid(project: Project, files: BackendFiles) -> int | None:
    """The pid in the pid file if it is this project's live backend; a stale file is removed."""
    try:
        pid = int(files.pid.read_text().strip())
    except FileNotFoundError:
        return None
    except ValueError:
        files.pid.unlink(missing_ok=True)
        return None
    try:
        process = psutil.Process(pid)
        ours = process.status() != psutil.STATUS_ZOMBIE and SERVE_MODULE in process.cmdline() \
            and str(project.root) in process.cmdline()  # fmt: skip
    except psutil.Error:
        ours = False
    if not ours:
        reap(pid)
        files.pid.unlink(missing_ok=True)
        return None
    return pid


def _rotate_log(files: BackendFiles) -> None:
    if files.log.exists():
        os.replace(files.log, files.log.with_suffix(".log.1"))


def _log_lines(files: BackendFiles) -> list[str]:
    try:
        return files.log.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []


def _log_tail(files: BackendFiles) -> str:
    return "\n".join(f"  {line[:300]}" for line in _log_lines(files)[-_LOG_TAIL_LINES:]) or "  (the log is empty)"
