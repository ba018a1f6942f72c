"""The local Label Studio lifecycle against a real server: start, reuse, status, credentials, stop, faults."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from label_studio_sdk.client import LabelStudio

from tests.support import SERVER_ENV_BESIDES_LABEL_STUDIO
from workbench import server
from workbench.errors import AuthError, ServerError
from workbench.labelstudio import accounts
from workbench.project import Project, read_json

ProjectFactory = Callable[..., Project]


def _creds(project: Project) -> dict:
    return read_json(project.credentials_file)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


# ----------------------------------------------------------------------------------------- the shared server


def test_start_is_idempotent(ls_server) -> None:
    again = server.start(ls_server.project)
    assert (again.pid, again.url, again.port) == (ls_server.info.pid, ls_server.info.url, ls_server.info.port)
    assert again.launched is False
    assert again.seconds < 5


def test_start_refuses_to_move_a_running_server(ls_server, busy_port: int) -> None:
    with pytest.raises(ServerError, match=rf"already runs on port {ls_server.info.port}"):
        server.start(ls_server.project, port=busy_port)


def test_status_reports_a_healthy_server_and_holds_no_secret(ls_server) -> None:
    now = server.status(ls_server.project)
    assert now.running and now.healthy
    assert now.pid == ls_server.info.pid
    assert now.url == ls_server.url
    assert now.version is not None and re.fullmatch(r"\d+\.\d+\.\d+.*", now.version)
    dumped = json.dumps(now.as_dict())
    creds = _creds(ls_server.project)
    assert creds["password"] not in dumped and creds["api_key"] not in dumped
    assert set(now.as_dict()) == {"running", "url", "version", "healthy", "pid", "data_dir", "database", "serving"}
    assert (now.database, now.serving) == ("sqlite", "development server")


def test_credentials_file_is_private_and_complete(ls_server) -> None:
    project = ls_server.project
    assert stat.S_IMODE(project.credentials_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(project.state_dir.stat().st_mode) == 0o700
    creds = _creds(project)
    assert set(creds) == {"url", "api_key", "username", "password", "port", "database", "serving"}
    assert creds["url"] == ls_server.url and creds["port"] == ls_server.info.port
    assert creds["username"] == server.ADMIN_EMAIL
    assert len(creds["password"]) >= 24 and creds["password"] not in {"admin", "password", "workbench"}


def test_token_works_with_the_sdk(ls_server) -> None:
    conn = ls_server.connection
    assert conn.external is False
    ls = LabelStudio(base_url=conn.url, api_key=conn.api_key)
    assert isinstance(list(ls.projects.list()), list)
    assert ls.users.whoami().email == server.ADMIN_EMAIL


def test_connection_repr_hides_the_key(ls_server) -> None:
    assert ls_server.connection.api_key not in repr(ls_server.connection)
    assert "***" in repr(ls_server.connection)


def test_connection_prefers_an_external_server_from_the_environment(ls_server, monkeypatch) -> None:
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://ls.example.org:8080/")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "external-key-123")
    conn = server.connection(ls_server.project)
    assert (conn.url, conn.api_key, conn.external) == ("http://ls.example.org:8080", "external-key-123", True)
    assert "external-key-123" not in repr(conn)


def test_connection_with_half_the_environment_is_an_error(ls_server, monkeypatch) -> None:
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://ls.example.org:8080")
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(ServerError, match="LABEL_STUDIO_API_KEY"):
        server.connection(ls_server.project)


def test_connection_without_credentials_says_to_start_the_server(ls_project_factory: ProjectFactory, monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(ServerError, match="workbench server start"):
        server.connection(ls_project_factory())


def test_create_annotator_gives_an_account_that_mints_its_own_token(ls_server) -> None:
    email = f"annotator-{uuid.uuid4().hex[:8]}@example.org"
    login = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, email)
    assert login.email == email and login.user_id > 0
    assert login.password not in repr(login)

    token = accounts.mint_token(ls_server.url, email, login.password)
    me = LabelStudio(base_url=ls_server.url, api_key=token).users.whoami()
    assert (me.email, me.id) == (email, login.user_id)
    assert accounts.whoami(ls_server.url, token)["email"] == email

    # One live personal token per user: minting again revokes the first.
    second = accounts.mint_token(ls_server.url, email, login.password)
    assert accounts.whoami(ls_server.url, second)["email"] == email
    with pytest.raises(AuthError):
        accounts.whoami(ls_server.url, token)
    # The admin's stored token is untouched by all this.
    assert accounts.whoami(ls_server.url, ls_server.connection.api_key)["email"] == server.ADMIN_EMAIL


def test_create_annotator_twice_is_a_clear_error(ls_server) -> None:
    email = f"twice-{uuid.uuid4().hex[:8]}@example.org"
    first = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, email)
    with pytest.raises(ServerError, match=re.escape(email)) as caught:
        accounts.create_annotator(
            ls_server.url, ls_server.connection.api_key, email, password="another-long-password-42"
        )
    assert first.password not in str(caught.value) and "another-long-password-42" not in str(caught.value)


def test_mint_token_with_a_wrong_password_is_an_auth_error(ls_server) -> None:
    with pytest.raises(AuthError, match=re.escape(server.ADMIN_EMAIL)) as caught:
        accounts.mint_token(ls_server.url, server.ADMIN_EMAIL, "not-the-password-at-all")
    assert "not-the-password-at-all" not in str(caught.value)


# ----------------------------------------------------------------------------------------- own servers


def test_stop_stale_pid_and_restart_reuse_the_data_and_the_login(
    ls_project_factory: ProjectFactory, ls_server
) -> None:
    project = ls_project_factory()
    first = server.start(project)
    creds = _creds(project)
    assert creds["password"] != _creds(ls_server.project)["password"]  # generated, never a constant
    # one signing key, given before the first start, private: tokens signed now are still valid after a restart
    env_file = first.data_dir / ".env"
    assert env_file.read_text().count("SECRET_KEY=") == 1
    assert env_file.stat().st_mode & 0o777 == 0o600

    assert server.stop(project) is True
    after = server.status(project)
    assert not after.running and not after.healthy and after.pid is None
    assert not (project.server_dir / "server.pid").exists()
    assert server.stop(project) is False

    # A stale pid file naming a live process that is not our label-studio (this test run): never killed.
    pid_file = project.server_dir / "server.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    assert server.status(project).running is False
    assert server.stop(project) is False
    assert not pid_file.exists()

    # The same again, then a start: the stale file is cleaned up and the old data folder reused.
    pid_file.write_text(f"{os.getpid()}\n")
    second = server.start(project)
    assert second.launched is True and second.pid != os.getpid()
    assert second.port == first.port  # the URL stays the same across restarts when the port is free
    again = _creds(project)
    assert (again["password"], again["api_key"]) == (creds["password"], creds["api_key"])
    assert accounts.whoami(second.url, again["api_key"])["email"] == server.ADMIN_EMAIL
    assert server.stop(project) is True


def test_a_busy_requested_port_is_refused(ls_project_factory: ProjectFactory, busy_port: int) -> None:
    project = ls_project_factory()
    with pytest.raises(ServerError, match=rf"Port {busy_port} .* already in use"):
        server.start(project, port=busy_port)
    assert not (project.server_dir / "server.pid").exists()


def test_a_missing_server_venv_says_run_make_setup(ls_project_factory: ProjectFactory) -> None:
    project = ls_project_factory(link_venv=False)
    with pytest.raises(ServerError, match="make setup"):
        server.start(project)


def _fake_server(project: Project, script: str) -> Path:
    """A stand-in executable that dies at once: the launcher's fault path, not Label Studio's behaviour."""
    binary = project.labelstudio_bin
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    binary.chmod(0o755)
    return binary


def test_a_server_that_dies_while_starting_is_reported_with_a_redacted_log(
    ls_project_factory: ProjectFactory, monkeypatch
) -> None:
    for leaky in ("USERNAME", "PASSWORD", "HOST", "PORT", "DEBUG", "LOG_LEVEL", "SECRET_KEY"):
        monkeypatch.setenv(leaky, "from-the-shell")
    project = ls_project_factory(link_venv=False)
    env_dump = project.root / "env.txt"
    _fake_server(
        project,
        f'env > "{env_dump}"\n'
        'echo "creating user $LABEL_STUDIO_USERNAME with $LABEL_STUDIO_PASSWORD"\n'
        'echo "django.db.utils.OperationalError: database is locked" >&2\n'
        "exit 3\n",
    )
    with pytest.raises(ServerError) as caught:
        server.start(project, timeout=30)
    message = str(caught.value)
    password = _creds(project)["password"]
    assert "database is locked" in message and "***" in message
    assert password not in message
    assert "workbench server start" in message
    assert not (project.server_dir / "server.pid").exists()

    names = {line.split("=", 1)[0] for line in env_dump.read_text().splitlines() if "=" in line}
    shell_own = {"PWD", "SHLVL", "_", "OLDPWD"}
    assert {n for n in names - shell_own if not n.startswith("LABEL_STUDIO_")} <= SERVER_ENV_BESIDES_LABEL_STUDIO
    assert {
        "LABEL_STUDIO_BASE_DATA_DIR",
        "LABEL_STUDIO_USERNAME",
        "LABEL_STUDIO_PASSWORD",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK",
    } <= names
    assert "from-the-shell" not in env_dump.read_text()
