"""Session fixtures: one real Label Studio for the whole test run, shared by integration and browser tests.

`ls_server` is started once with `server.start` in a throw-away project and stopped at the end; tests that must
stop or restart a server make their own project with `ls_project_factory`, so the shared one is never disturbed.

The team setup has its own session services, each started once and only when a test asks for it: a private
PostgreSQL cluster (`postgres`), Label Studio on it served by gunicorn (`ls_pg_server`), and a Dask cluster of one
scheduler and two workers (`dask_cluster`). Tests that use them are marked `postgres` / `distributed`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.services import DaskCluster, PostgresCluster, postgres_bindir
from tests.support import LabelStudioServer, make_project
from workbench import server, workflow
from workbench.config.database import ENV_DATABASE
from workbench.project import Project

# A test that uses one of these fixtures (directly or through another) gets the marker.
MARKED_BY_FIXTURE = {"postgres": "postgres", "dask_cluster": "distributed"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in MARKED_BY_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(scope="session", autouse=True)
def _no_database_from_the_shell() -> Iterator[None]:
    """Tests choose their database themselves: a WORKBENCH_LABEL_STUDIO_DATABASE in the shell must not move the
    default server (or any test's) onto somebody's PostgreSQL."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv(ENV_DATABASE, raising=False)
        yield


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
        workflow.server_stop(project)  # and the model backend, which `run` starts with a local server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster on a free port of 127.0.0.1, for the whole session."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed here: `make test` installs Debian's postgresql package")
    cluster = PostgresCluster(bindir).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def ls_pg_server(postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    """Label Studio for a team: its data in the session's PostgreSQL, served by gunicorn with two workers. The
    database URL (with its password) comes from WORKBENCH_LABEL_STUDIO_DATABASE, as a team would pass it."""
    url = postgres.create_database("ls_session")
    project = make_project(tmp_path_factory.mktemp("ls-pg-project"), config="[labelstudio]\nworkers = 2\n")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(ENV_DATABASE, url)
        env.delenv(server.ENV_URL, raising=False)
        env.delenv(server.ENV_API_KEY, raising=False)
        info = server.start(project)
        conn = server.connection(project)
    try:
        yield LabelStudioServer(project=project, connection=conn, url=info.url, info=info, database_url=url)
    finally:
        server.stop(project)


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[DaskCluster]:
    """A real `dask scheduler` and two `dask worker` processes (one thread each) on 127.0.0.1."""
    cluster = DaskCluster(workers=2).start()
    try:
        yield cluster
    finally:
        cluster.stop()
