"""Small helpers shared by test modules."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from workbench import server
from workbench.cli import app
from workbench.project import Project

REPO_ROOT = Path(__file__).parents[1]
# What the server process may see besides LABEL_STUDIO_* variables, written out here (not read from the code
# under test), so the tests fail if the server is given anything more.
SERVER_ENV_BESIDES_LABEL_STUDIO = frozenset(
    {"PATH", "HOME", "LANG", "PYTHONUNBUFFERED", "SENTRY_DSN", "FRONTEND_SENTRY_DSN", "LATEST_VERSION_CHECK",
     "COLLECT_ANALYTICS"}
)
# What gunicorn (the settings module) and PostgreSQL (Label Studio's own database settings) add to that.
SERVER_ENV_FOR_GUNICORN = frozenset({"DJANGO_SETTINGS_MODULE"})
SERVER_ENV_FOR_POSTGRES = frozenset({"DJANGO_DB", "POSTGRE_NAME", "POSTGRE_USER", "POSTGRE_PASSWORD", "POSTGRE_HOST",
                                     "POSTGRE_PORT"})  # fmt: skip


def run_cli(root: Path, env: Mapping[str, str], *args: str) -> Result:
    """`workbench -C ROOT ARGS` in this process; the calling test fails with the command's output unless it
    succeeded."""
    result = CliRunner().invoke(app, ["-C", str(root), *args], env=dict(env))
    assert result.exit_code == 0, result.output
    return result


def tree_digest(root: Path) -> str:
    """Every path under root (hidden ones too) and every file's bytes: equal digests mean nothing changed."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


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
    database_url: str | None = None  # a PostgreSQL URL with its password, or None for SQLite
