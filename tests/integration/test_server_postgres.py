"""Label Studio for a team: its data in PostgreSQL (the session's private cluster), served by gunicorn workers.

The same lifecycle as the development server (start, adopt, status, stop, restart on the same data, 127.0.0.1
only, a clean environment), and a wrong password, host or database name said in one paragraph before anything
starts, never quoting the password.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest
from typer.testing import CliRunner

from tests.services import PostgresCluster
from tests.support import (
    SERVER_ENV_BESIDES_LABEL_STUDIO,
    SERVER_ENV_FOR_GUNICORN,
    SERVER_ENV_FOR_POSTGRES,
    LabelStudioServer,
)
from tests.unit.test_cli_errors import error_of
from workbench import server
from workbench.cli import app
from workbench.config.database import ENV_DATABASE
from workbench.labelstudio import LabelStudio, accounts
from workbench.project import Project, read_json

ProjectFactory = Callable[..., Project]


def _processes(pid: int) -> list[psutil.Process]:
    process = psutil.Process(pid)
    return [process, *process.children(recursive=True)]


def _password(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def test_the_team_server_is_gunicorn_workers_on_postgresql(ls_pg_server: LabelStudioServer) -> None:
    now = server.status(ls_pg_server.project)
    assert now.running and now.healthy and now.version
    assert now.serving == "gunicorn, 2 workers"
    assert re.fullmatch(r"postgresql://ls_session@127\.0\.0\.1:\d+/ls_session", now.database)
    processes = _processes(ls_pg_server.info.pid)
    assert len([p for p in processes if "gunicorn" in " ".join(p.cmdline())]) == 3  # the arbiter and 2 workers
    listening = {conn.laddr for p in processes for conn in p.net_connections("inet") if conn.status == "LISTEN"}
    assert {(addr.ip, addr.port) for addr in listening} == {("127.0.0.1", ls_pg_server.info.port)}


def test_the_team_server_gets_a_clean_environment_without_the_admin_password(ls_pg_server: LabelStudioServer):
    env = psutil.Process(ls_pg_server.info.pid).environ()
    allowed = SERVER_ENV_BESIDES_LABEL_STUDIO | SERVER_ENV_FOR_GUNICORN | SERVER_ENV_FOR_POSTGRES
    assert {name for name in env if not name.startswith("LABEL_STUDIO_")} <= allowed
    assert "LABEL_STUDIO_PASSWORD" not in env and "LABEL_STUDIO_USERNAME" not in env  # init made the account
    assert env["POSTGRE_PASSWORD"] == _password(str(ls_pg_server.database_url))  # Label Studio's own setting


def test_the_password_is_in_no_file_or_log_the_workbench_wrote(ls_pg_server: LabelStudioServer) -> None:
    password = _password(str(ls_pg_server.database_url))
    project = ls_pg_server.project
    written = [p for p in project.state_dir.rglob("*") if p.is_file() and "data" not in p.relative_to(
        project.state_dir).parts[:2]]  # fmt: skip
    assert project.credentials_file in written and project.server_dir / "server.log" in written
    for path in written:
        assert password not in path.read_text(errors="replace"), path
    assert read_json(project.credentials_file)["database"] == server.status(project).database


def test_the_ui_and_its_assets_are_served_offline_by_the_workers(ls_pg_server: LabelStudioServer) -> None:
    """No nginx: Label Studio's own routes serve the collected static files shipped in its wheel."""
    with httpx.Client(base_url=ls_pg_server.url, timeout=60) as http:
        page = http.get("/user/login/")
        assert page.status_code == 200
        assets = set(re.findall(r'(?:src|href)="(/(?:static|react-app|label-studio-frontend|dm)/[^"]+)"', page.text))
        assert any(a.startswith("/static/") for a in assets) and any(a.startswith("/react-app/") for a in assets)
        for asset in assets:
            response = http.get(asset)
            assert response.status_code == 200 and response.content, asset


def test_start_adopts_the_running_team_server(ls_pg_server: LabelStudioServer, monkeypatch) -> None:
    monkeypatch.delenv(ENV_DATABASE, raising=False)  # a running server is adopted: no database needed for that
    again = server.start(ls_pg_server.project)
    assert (again.pid, again.url, again.launched) == (ls_pg_server.info.pid, ls_pg_server.url, False)


def test_stop_and_restart_keep_the_projects_and_the_login(
    ls_project_factory: ProjectFactory, postgres: PostgresCluster, monkeypatch
) -> None:
    monkeypatch.setenv(ENV_DATABASE, postgres.create_database("restart"))
    project = ls_project_factory(config="[labelstudio]\nworkers = 1\n")
    first = server.start(project)
    creds = read_json(project.credentials_file)
    made = LabelStudio(first.url, creds["api_key"]).create_project(title="Kept across restarts", label_config=(
        '<View><Text name="text" value="$text"/><Labels name="label" toName="text"><Label value="X"/></Labels></View>'
    ))  # fmt: skip
    assert server.stop(project) is True
    assert not server.status(project).running
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(first.data_dir) in " ".join(p.info["cmdline"] or [])]

    second = server.start(project)
    again = read_json(project.credentials_file)
    assert (again["password"], again["api_key"]) == (creds["password"], creds["api_key"])
    assert accounts.whoami(second.url, again["api_key"])["email"] == server.ADMIN_EMAIL
    assert LabelStudio(second.url, again["api_key"]).project_title(made) == "Kept across restarts"
    assert not (project.server_dir / "data" / "label_studio.sqlite3").exists()  # nothing went to SQLite


# ------------------------------------------------------------------------------------------ bad databases


def _start(project: Project, database_url: str):
    return CliRunner().invoke(app, ["-C", str(project.root), "server", "start"],
                              env={ENV_DATABASE: database_url, "LABEL_STUDIO_URL": None, "LABEL_STUDIO_API_KEY": None})


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("description", "change", "expected"),
    [
        ("a wrong password", lambda url, pg: url.replace(_password(url), "not-the-password"),
         "refused the password of user 'bad'. Set the right password in WORKBENCH_LABEL_STUDIO_DATABASE"),
        ("a database that does not exist", lambda url, pg: url.rsplit("/", 1)[0] + "/nowhere",
         "the database 'nowhere' does not exist"),
        ("nothing listening", lambda url, pg: url.replace(f":{pg.port}/", f":{_closed_port()}/"),
         "nothing answers as PostgreSQL at 127.0.0.1:"),
    ],
)  # fmt: skip
def test_an_unusable_database_is_said_in_one_paragraph_before_anything_starts(
    ls_project_factory: ProjectFactory, postgres: PostgresCluster, description: str, change, expected: str
) -> None:
    good = postgres.create_database(f"bad_{abs(hash(description)) % 10**6}", user="bad") if description == (
        "a wrong password") else postgres.create_database(f"db_{abs(hash(description)) % 10**6}")  # fmt: skip
    url = change(good, postgres)
    project = ls_project_factory(config="[labelstudio]\nworkers = 2\n")
    message = error_of(_start(project, url), 5)
    assert expected in message, message
    assert message.startswith("error: Label Studio cannot use the PostgreSQL database postgresql://")
    assert "workbench server start" in message
    assert _password(url) not in message and _password(good) not in message
    assert not (project.server_dir / "server.pid").exists()
    assert not list(Path(project.server_dir).glob("server.log*"))  # nothing was launched


def test_the_development_server_runs_on_postgresql_too(
    ls_project_factory: ProjectFactory, postgres: PostgresCluster, monkeypatch
) -> None:
    monkeypatch.setenv(ENV_DATABASE, postgres.create_database("devserver"))
    project = ls_project_factory()  # workers = 0: `label-studio start`
    info = server.start(project)
    now = server.status(project)
    assert now.healthy and now.serving == "development server" and now.database.endswith("/devserver")
    env = psutil.Process(info.pid).environ()
    assert env["DJANGO_DB"] == "default" and "LABEL_STUDIO_PASSWORD" not in env
    assert not (project.server_dir / "data" / "label_studio.sqlite3").exists()
