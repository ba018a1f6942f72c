"""How the local Label Studio is served: the commands and the clean environment for each way of serving it.

One Django application, two ways to serve it, chosen by `[labelstudio] workers`:
- 0 (the default): `label-studio start`, Django's development server in one process, as Label Studio ships it.
- N: the same application under gunicorn with N worker processes (`label_studio.core.wsgi:application`), the way
  Label Studio's production images serve it (uwsgi or gunicorn, one process per request in flight). Static files
  come from the application's own URL routes, which serve the folders shipped, already collected, in the wheel
  (`core/static_build`, `web/dist`): the UI works offline as before. Label Studio's Docker image puts nginx in
  front of the same folders, a cache the workbench does without.

gunicorn runs no migrations and creates no account, and on PostgreSQL the workbench cannot tell a first start
from a later one, so in both cases `label-studio init` prepares the database first (migrations, then the admin
account if it is missing): it is the only process given the admin's password. The development server on SQLite
starts as it always has: it migrates itself and gets the password only when its database file does not exist yet.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config.database import PostgresDatabase, describe
from workbench.errors import ServerError

WSGI_APP = "label_studio.core.wsgi:application"
SETTINGS = "label_studio.core.settings.label_studio"  # what `label-studio start` uses


@dataclass(frozen=True)
class Serving:
    """Everything that decides how the server process is started."""

    binary: Path  # .venv-labelstudio/bin/label-studio
    data_dir: Path
    host: str
    workers: int
    database: PostgresDatabase | None

    @property
    def development(self) -> bool:
        return self.workers == 0

    @property
    def needs_prepare(self) -> bool:
        """gunicorn or PostgreSQL: `label-studio init` migrates and makes the admin before the server starts."""
        return not self.development or self.database is not None

    def describe(self) -> str:
        return "development server" if self.development else f"gunicorn, {self.workers} workers"

    def prepare_command(self) -> list[str]:
        return [str(self.binary), "init", "--quiet", "--data-dir", str(self.data_dir)]

    def command(self, port: int) -> list[str]:
        if self.development:
            return [str(self.binary), "start", "--no-browser", "--internal-host", self.host, "--port", str(port),
                    "--data-dir", str(self.data_dir)]  # fmt: skip
        return [
            str(self._gunicorn()), WSGI_APP,
            "--pythonpath", str(self._package_dir()),  # the app imports its parts as `core`, `projects`, ...
            "--bind", f"{self.host}:{port}",
            "--workers", str(self.workers),
            # Like the development server, no request is cut short: a bulk export of 100k tasks takes minutes.
            "--timeout", "0",
            "--graceful-timeout", "10",
            "--error-logfile", "-",
            # Also names the data folder on the command line, which is how the workbench recognises its server.
            "--env", f"LABEL_STUDIO_BASE_DATA_DIR={self.data_dir}",
        ]  # fmt: skip

    def environment(self, *, admin: Mapping[str, Any] | None) -> dict[str, str]:
        """The clean environment, the database's settings, and the admin login (`username`, `password` of the
        credentials) when given: only to the one process that may have to create the account."""
        env = clean_environment(self.data_dir, home=self.data_dir.parent)
        if self.database is not None:
            env.update(self.database.label_studio_env())
        if not self.development:
            env["DJANGO_SETTINGS_MODULE"] = SETTINGS
        if admin:
            env.update(LABEL_STUDIO_USERNAME=str(admin["username"]), LABEL_STUDIO_PASSWORD=str(admin["password"]))
        return env

    def _gunicorn(self) -> Path:
        gunicorn = self.binary.with_name("gunicorn")
        if not os.access(gunicorn, os.X_OK):
            raise ServerError(
                f"gunicorn is not installed in Label Studio's environment ({gunicorn} is missing), so the server "
                "cannot run with [labelstudio] workers. Run `make setup` (requirements/labelstudio.txt has it), or "
                "set workers = 0 for the development server."
            )
        return gunicorn

    def _package_dir(self) -> Path:
        venv = self.binary.parent.parent
        found = sorted(venv.glob("lib/python3*/site-packages/label_studio/core/wsgi.py"))
        if not found:
            raise ServerError(
                f"Label Studio's package is not in {venv}. Rebuild its environment with `make setup` and start again."
            )
        return found[-1].parent.parent


def check_same_database(recorded: object, database: PostgresDatabase | None, binding: Path) -> None:
    """Another database behind the same address would hold other projects (or another's project under the
    recorded id): once this workbench has pushed (`binding` exists), a change of database is said, not done."""
    now = describe(database)
    if isinstance(recorded, str) and recorded != now and binding.exists():
        raise ServerError(
            f"This project's Label Studio kept its data in {recorded}, and is now set to use {now} ([labelstudio] "
            "database, or WORKBENCH_LABEL_STUDIO_DATABASE), where the project this workbench pushed to is not. Set "
            f"the database back; or, to label in the new one, move {binding} away and run `workbench push` (it "
            "imports every paragraph there; snapshots and releases stay as they are)."
        )


def clean_environment(data_dir: Path, home: Path) -> dict[str, str]:
    """Only what Label Studio needs: it also reads unprefixed USERNAME/PASSWORD/HOST/PORT/DEBUG, so nothing of the
    caller's environment passes but PATH, HOME and LANG."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.environ.get("HOME", str(home)),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONUNBUFFERED": "1",  # so the log holds the last lines when it dies
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false",
        # The workbench's model backend listens on 127.0.0.1, which Label Studio refuses to call by default
        # (SSRF protection for ML backends); docs/backend.md says what this opens and why it is needed.
        "LABEL_STUDIO_ML_BLOCK_LOCAL_IP": "false",
    }
