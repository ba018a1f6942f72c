"""The backend in the Label Studio project: connected once, kept pointing at where it runs.

`push` (and `backend start`, once the project exists) calls `connect`: when the backend runs, the project gets one
ML backend titled "workbench" with its URL and basic-auth login. A second call finds that entry by its title and
changes it only if the URL or login moved, so the project never holds a second entry. Label Studio registers
`<url>/webhook` as a project webhook when a backend is added; the workbench removes it again, because the
backend trains only when Start training is pressed (that call carries the login; the webhook's would not).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench import server
from workbench.backend import process
from workbench.backend.process import running_login
from workbench.errors import WorkbenchError
from workbench.labelstudio.binding import bound_project, read_binding
from workbench.labelstudio.client import LabelStudio
from workbench.project import Project

TITLE = "workbench"


@dataclass(frozen=True)
class Connected:
    """The project's entry for the backend, as Label Studio reports it after connecting."""

    backend_id: int
    url: str
    state: str  # "CO" = connected
    model_version: str
    added: bool  # made by this call (False: it was there already)


def connect(project: Project, client: LabelStudio, project_id: int) -> Connected | None:
    """Connect the running backend to Label Studio project `project_id` (None when the backend does not run)."""
    login = running_login(project)
    if login is None:
        return None
    ours = [backend for backend in client.ml_backends(project_id) if backend["title"] == TITLE]
    for extra in ours[1:]:  # made by hand, or by a workbench before this one: one entry is what annotators see
        client.remove_ml_backend(extra["id"], project_id)
    if not ours:
        entry = client.add_ml_backend(project_id, url=login.url, title=TITLE, username=login.username,
                                      password=login.password)  # fmt: skip
        client.remove_webhooks(project_id, f"{login.url}/webhook")
        added = True
    else:
        entry = ours[0]
        wanted = (login.url, "BASIC_AUTH", login.username)
        moved = (entry["url"], entry["auth_method"], entry["basic_auth_user"]) != wanted
        if moved or entry["state"] != "CO":  # not connected: e.g. a new login it does not hold yet
            entry = client.update_ml_backend(entry["id"], project_id, url=login.url, username=login.username,
                                             password=login.password)  # fmt: skip
        added = False
    return Connected(entry["id"], entry["url"], str(entry["state"]), str(entry["model_version"] or ""), added)


def connect_pushed(project: Project, client: LabelStudio | None = None,
                   project_id: int | None = None) -> tuple[Connected | None, str]:  # fmt: skip
    """Connect the running backend to the project this workbench pushed to (the client and project id when the
    caller holds them). Label Studio works without the backend, so a failure is a note for the user, not an error."""
    try:
        if client is None or project_id is None:
            if read_binding(project) is None:
                return None, ""
            conn = server.connection(project)
            client = LabelStudio(conn.url, conn.api_key)
            project_id = bound_project(project, client)
        return connect(project, client, project_id), ""
    except WorkbenchError as exc:
        return None, f"the model backend is not connected to Label Studio: {exc}"


@dataclass(frozen=True)
class Started:
    """What `workbench backend start` did: the backend, and its entry in the Label Studio project (or why not)."""

    info: process.BackendInfo
    connected: Connected | None
    note: str = ""


def start_connected(project: Project, *, port: int | None = None, config: Path | None = None) -> Started:
    """Start the backend (or find it running) and, once the project was pushed, connect it there."""
    info = process.start(project, port=port, config_path=config)
    connected, note = connect_pushed(project)
    return Started(info, connected, note)
