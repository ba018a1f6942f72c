"""`[labelstudio] database` and WORKBENCH_LABEL_STUDIO_DATABASE: what is accepted, what Label Studio is given, and
bad values refused through the CLI in one paragraph that never shows the password. No database here: the
real PostgreSQL is in tests/integration/test_server_postgres.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support import make_project
from tests.unit.test_cli_errors import error_of, make_root
from workbench.cli import app
from workbench.config.database import ENV_DATABASE, PostgresDatabase, parse_database
from workbench.project import atomic_write_json

SECRET = "s3cr3t-pass-word"


@pytest.mark.parametrize(
    ("description", "value", "expected"),
    [
        ("the default", "sqlite", None),
        ("case and spaces", "  SQLite ", None),
        ("a full URL", f"postgresql://wb:{SECRET}@db.example.org:5433/labelstudio",
         PostgresDatabase("db.example.org", 5433, "labelstudio", "wb", SECRET, source="env")),
        ("the default port", "postgres://wb@127.0.0.1/ls",
         PostgresDatabase("127.0.0.1", 5432, "ls", "wb", source="env")),
        ("escaped characters", "postgresql://w%40b:p%2Fw@h:1/d%20b", PostgresDatabase("h", 1, "d b", "w@b", "p/w",
                                                                                        source="env")),
        ("an SSL mode", "postgresql://wb@h/ls?sslmode=require", PostgresDatabase("h", 5432, "ls", "wb", "", "require",
                                                                                 source="env")),
    ],
)  # fmt: skip
def test_accepted_values(description: str, value: str, expected: PostgresDatabase | None) -> None:
    assert parse_database(value, allow_password=True, source="env") == expected


@pytest.mark.parametrize(
    ("description", "value", "expected"),
    [
        ("another scheme", "mysql://wb@h/ls", "neither"),
        ("no user", "postgresql://h:5432/ls", "no user"),
        ("no database", "postgresql://wb@h:5432/", "no database"),
        ("a bad port", f"postgresql://wb:{SECRET}@h:port/ls", "valid port"),
        ("an unknown setting", "postgresql://wb@h/ls?target_session_attrs=any", "only sslmode"),
    ],
)
def test_refused_values_say_why_without_the_password(description: str, value: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected) as caught:
        parse_database(value, allow_password=True)
    assert SECRET not in str(caught.value)


def test_label_studio_gets_its_own_settings_and_the_message_form_has_no_password() -> None:
    database = parse_database(f"postgresql://wb:{SECRET}@db:5433/ls?sslmode=require", allow_password=True)
    assert database is not None
    assert database.label_studio_env() == {
        "DJANGO_DB": "default", "POSTGRE_NAME": "ls", "POSTGRE_USER": "wb", "POSTGRE_PASSWORD": SECRET,
        "POSTGRE_HOST": "db", "POSTGRE_PORT": "5433", "PGSSLMODE": "require",
    }  # fmt: skip
    assert database.display == "postgresql://wb@db:5433/ls?sslmode=require"
    assert SECRET not in repr(database)


# ------------------------------------------------------------------------------------------------ the CLI


def start(root: Path, env: dict[str, str | None] | None = None):
    return CliRunner().invoke(app, ["-C", str(root), "server", "start"],
                              env={"LABEL_STUDIO_URL": None, "LABEL_STUDIO_API_KEY": None, ENV_DATABASE: None,
                                   **(env or {})})  # fmt: skip


def test_a_password_in_the_config_file_is_refused(tmp_path: Path) -> None:
    root = make_root(tmp_path, config=f'[labelstudio]\ndatabase = "postgresql://wb:{SECRET}@db/ls"\n')
    message = error_of(start(root), 2)
    assert "[labelstudio -> database]" in message and ENV_DATABASE in message and "~/.pgpass" in message
    assert SECRET not in message
    assert not (root / ".workbench").exists()


@pytest.mark.parametrize(
    ("setting", "expected"), [("workers = -1", "workers"), ('database = "postgresql://db/ls"', "no user")]
)
def test_bad_team_settings_in_the_config(tmp_path: Path, setting: str, expected: str) -> None:
    root = make_root(tmp_path, config=f"[labelstudio]\n{setting}\n")
    assert expected in error_of(start(root), 2)


def test_a_bad_url_in_the_environment_names_the_variable(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    message = error_of(start(project.root, {ENV_DATABASE: f"mysql://wb:{SECRET}@db/ls"}), 2)
    assert message.startswith(f"error: {ENV_DATABASE} is not usable") and SECRET not in message
    assert not (project.server_dir / "server.pid").exists()


def test_a_database_change_after_a_push_is_said_not_done(tmp_path: Path) -> None:
    """Another database behind the same address would hold other projects: the switch is refused, saying how."""
    project = make_project(tmp_path)
    project.state_dir.mkdir()
    atomic_write_json(project.credentials_file, {"database": "sqlite", "username": "a", "password": "b"}, mode=0o600)
    atomic_write_json(project.project_file, {"url": "http://127.0.0.1:1", "project_id": 3, "title": "T"})
    message = error_of(start(project.root, {ENV_DATABASE: f"postgresql://wb:{SECRET}@127.0.0.1:1/ls"}), 5)
    assert "kept its data in sqlite" in message and "postgresql://wb@127.0.0.1:1/ls" in message
    assert "project.json" in message and SECRET not in message
    assert not (project.server_dir / "server.pid").exists()
