"""Which Label Studio project a workbench project labels in: the one reader and writer of `.workbench/project.json`.

The binding records the server URL, the project id and its title. `push` makes it (finding the project by title,
or creating it); every other command reads it, and checks that the project it names is still the same one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.errors import NotPushedError, ProjectNotFoundError
from workbench.labelstudio.client import LabelStudio
from workbench.project import Project, atomic_write_json, read_json


@dataclass(frozen=True)
class Binding:
    """The Label Studio project (on which server, under which title) this workbench project labels in."""

    url: str
    project_id: int
    title: str


def read_binding(project: Project) -> Binding | None:
    """The recorded binding, or None before the first push; a damaged record is an error naming the fix."""
    path = project.project_file
    if not path.exists():
        return None
    try:
        record = read_json(path)
        return Binding(url=str(record["url"]), project_id=int(record["project_id"]), title=str(record["title"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProjectNotFoundError(
            f"The record of this workbench's Label Studio project, {path}, cannot be read ({type(exc).__name__}: "
            f"{exc}). Remove it and run `workbench push`: it finds the project by its title (or makes it), and "
            "imports only what the project does not hold."
        ) from None


def bound_project(project: Project, client: LabelStudio) -> int:
    """The id of the project this workbench pushed to, checked to be that project on `client`'s server.

    A recorded id means something only on the server it was recorded on. On another URL (the local server
    restarted on another port, or LABEL_STUDIO_URL changed) the project there must have the recorded title, or it
    is somebody else's project that happens to have the same id."""
    binding = read_binding(project)
    if binding is None:
        raise NotPushedError(
            "This workbench has not pushed to a Label Studio project yet, so there is no project to read from. "
            "Run `workbench run` (or `workbench push`) first."
        )
    if binding.url != client.url:
        title = client.project_title(binding.project_id)
        if title != binding.title:
            raise ProjectNotFoundError(
                f"This workbench pushed to project {binding.project_id} ({binding.title!r}) at {binding.url}, "
                f"but project {binding.project_id} at {client.url} is {title!r}, another project. Point "
                "LABEL_STUDIO_URL back at the server that holds the workbench's project (or unset it for the local "
                "server); to label on this server instead, remove .workbench/project.json and run `workbench push`."
            )
    return binding.project_id


def ensure_project(project: Project, client: LabelStudio, settings: dict[str, Any]) -> int:
    """The project to push to: the recorded one, else one with the configured title (`settings["title"]`), else
    a new one made with `settings`."""
    return open_project(project, client, settings)[0]


def open_project(project: Project, client: LabelStudio, settings: dict[str, Any]) -> tuple[int, bool]:
    """`ensure_project`, and whether the project was made just now (with `settings`, and no task yet)."""
    binding = read_binding(project)
    if binding and binding.url == client.url:
        project_id = binding.project_id
        if not client.project_exists(project_id):
            raise ProjectNotFoundError(
                f"Label Studio project {project_id} ({binding.title!r}), which this workbench pushed "
                f"to, is no longer on the server at {client.url}; its annotations are gone with it unless a "
                "snapshot was pulled. To start a new project, remove .workbench/project.json and run "
                "`workbench push` again."
            )
        return project_id, False
    found = client.find_project(settings["title"])
    project_id = found or client.create_project(**settings)
    atomic_write_json(project.project_file, {"url": client.url, "project_id": project_id, "title": settings["title"]})
    return project_id, found is None
