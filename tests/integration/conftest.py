"""Integration fixtures: one real Label Studio server for the whole test session, in a throw-away project.

`ls_server` is generic on purpose (push, pull and browser tests reuse it): it yields the project, a Connection
and the URL. Tests that must stop or restart a server make their own project with `ls_project_factory`, so the
shared server is never disturbed. Every test in this folder is marked `integration`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from workbench import server
from workbench.project import Project

REPO_ROOT = Path(__file__).parents[2]
INTEGRATION_DIR = Path(__file__).parent


def labelstudio_venv() -> Path:
    """The real server venv built by `make setup` (WORKBENCH_TEST_LABELSTUDIO_VENV overrides it)."""
    override = os.environ.get("WORKBENCH_TEST_LABELSTUDIO_VENV")
    return Path(override).resolve() if override else (REPO_ROOT / ".venv-labelstudio").resolve()


def make_project(root: Path, *, config: str = "", link_venv: bool = True) -> Project:
    """A minimal workbench project: an (empty = all defaults) config and a link to the server's venv."""
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "configs" / "workbench.toml").write_text(config, encoding="utf-8")
    if link_venv:
        (root / ".venv-labelstudio").symlink_to(labelstudio_venv(), target_is_directory=True)
    return Project.open(root)


@dataclass(frozen=True)
class LabelStudioServer:
    """What `ls_server` yields."""

    project: Project
    connection: server.Connection
    url: str
    info: server.ServerInfo


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/integration, so `-m "not integration"` skips the server."""
    for item in items:
        if INTEGRATION_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    """A real Label Studio, started once per session with `server.start` and stopped at the end."""
    project = make_project(tmp_path_factory.mktemp("ls-project"))
    info = server.start(project)
    try:
        with pytest.MonkeyPatch.context() as env:  # the local server's key, even if the shell names another
            env.delenv(server.ENV_URL, raising=False)
            env.delenv(server.ENV_API_KEY, raising=False)
            conn = server.connection(project)
        yield LabelStudioServer(project=project, connection=conn, url=info.url, info=info)
    finally:
        server.stop(project)


@pytest.fixture
def ls_project_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Project]]:
    """Fresh projects for tests that need their own server; any server left running is stopped afterwards."""
    made: list[Project] = []

    def factory(*, config: str = "", link_venv: bool = True) -> Project:
        project = make_project(tmp_path_factory.mktemp("ls-own"), config=config, link_venv=link_venv)
        made.append(project)
        return project

    yield factory
    for project in made:
        server.stop(project)
