"""Session fixtures: one real Label Studio for the whole test run, shared by integration and browser tests.

`ls_server` is started once with `server.start` in a throw-away project and stopped at the end; tests that must
stop or restart a server make their own project with `ls_project_factory`, so the shared one is never disturbed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support import LabelStudioServer, make_project
from workbench import server
from workbench.project import Project


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
