"""Where the model backend keeps its state (`.workbench/backend/`), and its login, in a file only its owner reads.

The login is HTTP basic auth that the workbench sets on both sides: the backend checks it on every request, and
Label Studio is given it when the backend is connected to the project (`connect`). It is generated once, kept in
`backend.json` (0600), and never passed on a command line, written to a log or put in an error message.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import BackendError
from workbench.project import Project, atomic_write_json, read_json

USERNAME = "workbench"
PORT_TAKEN = 98  # the backend's exit code when its port was taken (errno EADDRINUSE)


@dataclass(frozen=True)
class BackendFiles:
    """The backend's files under the project's `.workbench/backend/`."""

    folder: Path

    @classmethod
    def of(cls, project: Project) -> BackendFiles:
        return cls(project.state_dir / "backend")

    @property
    def login(self) -> Path:
        return self.folder / "backend.json"

    @property
    def pid(self) -> Path:
        return self.folder / "backend.pid"

    @property
    def log(self) -> Path:
        return self.folder / "backend.log"

    @property
    def job(self) -> Path:
        """The training job's record: its stage while it runs, its result once it ends."""
        return self.folder / "job.json"

    @property
    def lock(self) -> Path:
        """Serialises start and stop of the backend (not the project lock)."""
        return self.folder / "backend.lock"

    def prepare(self) -> None:
        """`.workbench/` and this folder hold the login: only their owner may enter them."""
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder.parent, 0o700)
        os.chmod(self.folder, 0o700)


@dataclass(frozen=True)
class BackendLogin:
    """Where the backend listens and the basic-auth login it checks; the password is never shown."""

    port: int
    username: str
    password: str = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def as_record(self) -> dict[str, Any]:
        return {"url": self.url, "port": self.port, "username": self.username, "password": self.password}


def read_login(files: BackendFiles) -> BackendLogin | None:
    """The recorded login, or None if there is none yet; a damaged record is an error naming the fix."""
    try:
        record = read_json(files.login)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise _damaged(files, exc) from None
    try:
        return BackendLogin(port=int(record["port"]), username=str(record["username"]),
                            password=str(record["password"]))  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise _damaged(files, exc) from None


def new_login(files: BackendFiles, port: int) -> BackendLogin:
    """The login for a backend on `port`: the recorded password kept (Label Studio holds it), else a new one."""
    previous = read_login(files)
    password = previous.password if previous else secrets.token_urlsafe(32)
    login = BackendLogin(port=port, username=USERNAME, password=password)
    atomic_write_json(files.login, login.as_record(), mode=0o600)
    return login


def _damaged(files: BackendFiles, exc: Exception) -> BackendError:
    return BackendError(
        f"The model backend's login file {files.login} cannot be read ({type(exc).__name__}). Stop the backend "
        "(`workbench backend stop`), delete the file, and start it again: a new login is made, and `workbench push` "
        "gives it to Label Studio."
    )


def log_to_stderr() -> None:
    """The backend's and the job's own lines (`workbench.*` loggers) to stderr, which is the backend's log file;
    other libraries keep their own handlers (spaCy's training lines appear once)."""
    logger = logging.getLogger("workbench")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
