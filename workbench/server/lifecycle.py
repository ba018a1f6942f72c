"""The local Label Studio server's lifecycle: started, found running, stopped, its status.

Label Studio runs from its own virtual environment (`.venv-labelstudio`), detached, bound to 127.0.0.1, with a
clean environment and its data under `.workbench/labelstudio/data` (or in a PostgreSQL database, checked first:
`server.database`), served by its development server or by gunicorn workers (`server.serving`). The admin's
password and the API token are kept by `server.credentials`. This module speaks no HTTP itself: health checks and
tokens go through `workbench.labelstudio`. Secrets never appear in a message, an exception or a quoted log line.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from filelock import FileLock, Timeout

from workbench.config.database import configured_database, describe
from workbench.errors import ServerError
from workbench.labelstudio.probes import is_healthy, release_of
from workbench.labelstudio.transport import redact
from workbench.project import Project, atomic_write_bytes
from workbench.server.credentials import (
    ADMIN_EMAIL,
    data_dir,
    ensure_token,
    read_credentials,
    write_credentials,
)
from workbench.server.database import check_reachable
from workbench.server.processes import (
    LOOPBACK_IP,
    alive,
    free_port,
    launch_detached,
    listening_ports,
    port_free,
    reap,
    run_logged,
    terminate,
)
from workbench.server.serving import Serving, check_same_database

HOST = LOOPBACK_IP

_POLL_SECONDS = 0.25
_LOG_TAIL_LINES = 20


# --------------------------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class ServerInfo:
    """What `start` gives back: where the server answers and whether this call launched it."""

    url: str
    port: int
    pid: int
    data_dir: Path
    log_file: Path
    launched: bool
    seconds: float


@dataclass(frozen=True)
class ServerStatus:
    """The recorded local server as seen right now; safe to print (holds no secret)."""

    running: bool
    url: str | None
    version: str | None
    healthy: bool
    pid: int | None
    data_dir: Path
    database: str = "sqlite"
    serving: str = "development server"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for `server status --json`; carries no password or token by construction."""
        return {
            "running": self.running,
            "url": self.url,
            "version": self.version,
            "healthy": self.healthy,
            "pid": self.pid,
            "data_dir": str(self.data_dir),
            "database": self.database,
            "serving": self.serving,
        }


# --------------------------------------------------------------------------------------------- start / stop


def start(project: Project, *, port: int | None = None, timeout: float = 180) -> ServerInfo:
    """Start the project's Label Studio (or return the one already running) and make sure we hold a token."""
    began = time.monotonic()
    _prepare_dirs(project)
    with _server_lock(project, "workbench server start", timeout):
        creds = read_credentials(project)
        running = _recorded_pid(project)
        if running is not None:
            return _adopt_running(project, running, creds, port, began, timeout)
        serving = _serving(project, creds)
        # The password is on disk before the first launch creates the account with it.
        creds["username"] = creds.get("username") or ADMIN_EMAIL
        creds["password"] = creds.get("password") or secrets.token_urlsafe(24)
        creds.update(database=describe(serving.database), serving=serving.describe())
        creds["database_password"] = serving.database.password if serving.database else None  # never written
        pid: int | None = None
        try:
            if serving.database is not None:
                check_reachable(serving.database, serving.binary.with_name("python"))
            _rotate_log(project)
            if serving.needs_prepare:
                write_credentials(project, creds)
                _prepare(project, serving, creds, began + timeout)
            for attempt in (1, 2):
                chosen = _choose_port(port, creds) if attempt == 1 else free_port()
                creds.update(url=f"http://{HOST}:{chosen}", port=chosen)
                write_credentials(project, creds)
                pid = _launch(project, serving, chosen, creds)
                try:
                    _wait_healthy(project, pid, chosen, began + timeout, creds)
                    break
                except _PortTaken:
                    terminate(pid, 15)
                    pid = None
                    if port is not None or attempt == 2:
                        raise ServerError(
                            f"Another program took port {chosen} while Label Studio was starting. Run "
                            "`workbench server start` again, with a free port in --port or none to let the "
                            "workbench pick one."
                        ) from None
            assert pid is not None
            ensure_token(project, creds)
        except BaseException:
            if pid is not None:
                terminate(pid, 15)
            _remove_pid_file(project)
            raise
        return ServerInfo(
            creds["url"], chosen, pid, data_dir(project), _log_file(project), True, time.monotonic() - began
        )


def stop(project: Project, *, timeout: float = 15) -> bool:
    """Stop the project's Label Studio if it runs; a stale pid file is only removed. True if one was stopped."""
    if not _pid_file(project).exists():
        return False
    with _server_lock(project, "workbench server stop", timeout + 5):
        pid = _recorded_pid(project)
        if pid is None:
            _remove_pid_file(project)
            return False
        terminate(pid, timeout)
        _remove_pid_file(project)
        return True


def status(project: Project) -> ServerStatus:
    """Report the recorded local server without raising: running, reachable, which version."""
    pid = _recorded_pid(project)
    creds = read_credentials(project, strict=False)
    url = creds.get("url") if isinstance(creds.get("url"), str) else None
    healthy = bool(pid is not None and url and is_healthy(url))
    version = release_of(url) if healthy and url else None
    shown = {key: str(creds[key]) for key in ("database", "serving") if isinstance(creds.get(key), str)}
    return ServerStatus(pid is not None, url, version, healthy, pid, data_dir(project), **shown)


# --------------------------------------------------------------------------------------------- start helpers


def _prepare_dirs(project: Project) -> None:
    """`.workbench/` holds the credentials: only its owner may enter it."""
    project.state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(project.state_dir, 0o700)
    data_dir(project).mkdir(parents=True, exist_ok=True)
    _ensure_secret_key(data_dir(project))


def _ensure_secret_key(data_dir: Path) -> None:
    """Give Label Studio its Django SECRET_KEY (which signs the API tokens) before it first starts.

    Left to itself, Label Studio 1.23 generates one at start-up in every process that loads its settings and
    appends it to `<data dir>/.env`; when two do so at once the file holds two keys, the server signs tokens
    with one and, after a restart, checks them with the other, so a stored token stops working (seen in CI).
    """
    env_file = data_dir / ".env"
    if env_file.exists() and "SECRET_KEY=" in env_file.read_text(encoding="utf-8", errors="replace"):
        return
    fd = os.open(env_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(f"SECRET_KEY={secrets.token_urlsafe(50)}\n")


@contextlib.contextmanager
def _server_lock(project: Project, what: str, timeout: float) -> Iterator[None]:
    """Serialise start/stop of one project's server (separate from the project lock the CLI may hold)."""
    project.server_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(project.server_dir / "server.lock", timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise ServerError(
            f"Another `{what.split()[-1]}` of this project's Label Studio server has not finished within "
            f"{timeout:.0f} s, so `{what}` gave up. Wait for it, then run `{what}` again."
        ) from None
    try:
        yield
    finally:
        lock.release()


def _serving(project: Project, creds: dict[str, Any]) -> Serving:
    """How to serve, from the config (and WORKBENCH_LABEL_STUDIO_DATABASE); the server's venv must exist (it is
    built by `make setup`, never by the workbench)."""
    binary = project.labelstudio_bin
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise ServerError(
            f"The Label Studio server is not installed: {binary} does not exist. Run `make setup` in the "
            "project folder (it builds .venv-labelstudio), then start the server again."
        )
    settings = project.config.labelstudio
    database = configured_database(settings.database)
    check_same_database(creds.get("database"), database, project.project_file)
    return Serving(binary, data_dir(project), HOST, settings.workers, database)


def _adopt_running(
    project: Project, pid: int, creds: dict[str, Any], port: int | None, began: float, timeout: float
) -> ServerInfo:
    """The recorded server runs: return it once healthy, so `start` can be called any number of times."""
    recorded = creds.get("port")
    if not isinstance(recorded, int) or not creds.get("password"):
        raise ServerError(
            f"This project's Label Studio runs (pid {pid}) but {project.credentials_file} does not say how to "
            "reach it. Run `workbench server stop` and then `workbench server start`."
        )
    if port is not None and port != recorded:
        raise ServerError(
            f"This project's Label Studio already runs on port {recorded} (pid {pid}), not on the requested "
            f"port {port}. Run `workbench server stop` first to move it to another port."
        )
    url = f"http://{HOST}:{recorded}"
    deadline = time.monotonic() + timeout
    while not is_healthy(url):
        if time.monotonic() > deadline or not alive(pid):
            raise ServerError(
                f"This project's Label Studio (pid {pid}) does not answer at {url}/health. Run "
                f"`workbench server stop` and then `workbench server start`; the log is {_log_file(project)}."
            )
        time.sleep(_POLL_SECONDS)
    creds["url"] = url
    ensure_token(project, creds)
    return ServerInfo(url, recorded, pid, data_dir(project), _log_file(project), False, time.monotonic() - began)


def _choose_port(requested: int | None, creds: dict[str, Any]) -> int:
    """A requested port must be free; otherwise reuse the last port (a stable URL) or take a free one."""
    if requested is not None:
        if not 1 <= requested <= 65535:
            raise ServerError(f"Port {requested} is not a TCP port number. Choose one between 1 and 65535.")
        if not port_free(requested):
            raise ServerError(
                f"Port {requested} on {HOST} is already in use by another program, so Label Studio cannot "
                "listen there. Choose another port with --port, or leave it out to let the workbench pick a "
                "free one."
            )
        return requested
    previous = creds.get("port")
    if isinstance(previous, int) and 1024 <= previous <= 65535 and port_free(previous):
        return previous
    return free_port()


def _rotate_log(project: Project) -> None:
    log_file = _log_file(project)
    if log_file.exists():
        os.replace(log_file, log_file.with_suffix(".log.1"))


def _prepare(project: Project, serving: Serving, creds: dict[str, Any], deadline: float) -> None:
    """`label-studio init`: migrations, then the admin account if it is missing (see `serving`)."""
    env = serving.environment(admin=creds)
    try:
        code = run_logged(serving.prepare_command(), log_file=_log_file(project), cwd=project.server_dir, env=env,
                          timeout=max(deadline - time.monotonic(), 30))  # fmt: skip
    except OSError as exc:
        raise _cannot_launch(serving, exc) from None
    if code != 0:
        what = "did not finish in time" if code == -1 else f"failed (exit code {code})"
        raise ServerError(
            f"Label Studio could not prepare its database {describe(serving.database)}: `label-studio init` {what}. "
            f"Last lines of {_log_file(project)}:\n{_log_tail(project, creds)}\nFix the cause shown there and run "
            "`workbench server start` again."
        )


def _launch(project: Project, serving: Serving, port: int, creds: dict[str, Any]) -> int:
    """Start the server in its own session so it outlives the CLI and can be stopped as a group.

    The admin login is passed only when the database does not exist yet and nothing prepared it (it is used
    once, to create the account), so a running server's environment does not hold the password."""
    first_start = not serving.needs_prepare and not (data_dir(project) / "label_studio.sqlite3").exists()
    env = serving.environment(admin=creds if first_start else None)
    try:
        pid = launch_detached(serving.command(port), log_file=_log_file(project), cwd=project.server_dir, env=env)
    except OSError as exc:
        raise _cannot_launch(serving, exc) from None
    # Atomic, so a reader never sees half a number.
    atomic_write_bytes(_pid_file(project), f"{pid}\n".encode(), mode=0o644)
    return pid


def _cannot_launch(serving: Serving, exc: OSError) -> ServerError:
    return ServerError(
        f"Label Studio could not be launched from {serving.binary}: {exc.strerror}. Rebuild its environment "
        "with `make setup` and start again."
    )


class _PortTaken(Exception):
    """Label Studio ended up on another port than the one we chose (it silently moves to port+1)."""


def _wait_healthy(project: Project, pid: int, port: int, deadline: float, creds: dict[str, Any]) -> None:
    """Healthy = our own process listens on exactly our port and answers /health with UP."""
    url = f"http://{HOST}:{port}"
    while True:
        if not alive(pid):
            raise ServerError(
                f"Label Studio exited while starting (port {port}, data folder {data_dir(project)}). Last lines "
                f"of {_log_file(project)}:\n{_log_tail(project, creds)}\nFix the cause shown there and run "
                "`workbench server start` again; if the data folder is damaged, move it away to start empty."
            )
        ports = listening_ports(pid)
        if ports and port not in ports:
            raise _PortTaken()
        if port in ports and is_healthy(url):
            return
        if time.monotonic() > deadline:
            raise ServerError(
                f"Label Studio did not become healthy at {url}/health in time, so it was stopped. Last lines of "
                f"{_log_file(project)}:\n{_log_tail(project, creds)}\nRun `workbench server start` again (a first "
                "start applies database migrations and takes longer on a slow machine)."
            )
        time.sleep(_POLL_SECONDS)


# --------------------------------------------------------------------------------------------- process helpers


def _recorded_pid(project: Project) -> int | None:
    """The pid in the pid file if it is our live label-studio; a stale file (gone or reused pid) is removed."""
    try:
        pid = int(_pid_file(project).read_text().strip())
    except FileNotFoundError:
        return None
    except ValueError:
        _remove_pid_file(project)
        return None
    if _is_our_server(pid, project):
        return pid
    _remove_pid_file(project)
    return None


def _is_our_server(pid: int, project: Project) -> bool:
    """Only a live label-studio whose command line names our data folder is ours to adopt or kill."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            reap(pid)
            return False
        cmdline = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return ("label-studio" in cmdline or "label_studio" in cmdline) and str(data_dir(project)) in cmdline


# --------------------------------------------------------------------------------------------- files


def _pid_file(project: Project) -> Path:
    return project.server_dir / "server.pid"


def _log_file(project: Project) -> Path:
    return project.server_dir / "server.log"


def _remove_pid_file(project: Project) -> None:
    with contextlib.suppress(FileNotFoundError):
        _pid_file(project).unlink()


def _log_tail(project: Project, creds: dict[str, Any]) -> str:
    """The last lines of the server log, with every secret we know of blanked out."""
    try:
        lines = _log_file(project).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return "  (the log is empty)"
    tail = [line[:300] for line in lines[-_LOG_TAIL_LINES:]] or ["(the log is empty)"]
    text = "\n".join(f"  {line}" for line in tail)
    return redact(text, (creds.get("password"), creds.get("api_key"), creds.get("database_password")))
