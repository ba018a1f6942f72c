"""Where the local Label Studio keeps its data: its embedded SQLite file (the default) or a PostgreSQL database.

`[labelstudio] database` is "sqlite" or `postgresql://USER@HOST[:PORT]/NAME[?sslmode=MODE]`; the environment
variable WORKBENCH_LABEL_STUDIO_DATABASE, which wins, may also carry the password (`USER:PASSWORD@`). The config
file is committed with the project, so a password there is refused: put it in the variable or in ~/.pgpass. The
URL becomes Label Studio's own settings (DJANGO_DB=default, POSTGRE_*) in the server's environment; the password
lives only there and in the short check that the database answers, never in a message or a file of ours (`display`
names the database without it).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from workbench.errors import ConfigError, DatabaseError

SQLITE = "sqlite"
ENV_DATABASE = "WORKBENCH_LABEL_STUDIO_DATABASE"
CONFIG_KEY = "[labelstudio] database"
SCHEMES = ("postgresql", "postgres")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
CONNECT_TIMEOUT = 10

# Run by the server's own Python (psycopg is installed there, not in the workbench's environment): connect with
# libpq's PG* variables, print psycopg's reason on failure.
_PROBE = """
import sys
try:
    import psycopg
except ImportError as exc:
    print(f"psycopg is not installed in Label Studio's environment ({exc})")
    sys.exit(3)
try:
    psycopg.connect("").close()
except psycopg.Error as exc:
    print(str(exc).strip())
    sys.exit(2)
"""


@dataclass(frozen=True)
class PostgresDatabase:
    """A PostgreSQL database for Label Studio; `password` is empty when libpq should find it (~/.pgpass)."""

    host: str
    port: int
    name: str
    user: str
    password: str = field(default="", repr=False)
    sslmode: str = ""
    source: str = CONFIG_KEY

    @property
    def display(self) -> str:
        """The URL without its password: safe in messages, logs and files."""
        query = f"?sslmode={self.sslmode}" if self.sslmode else ""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.name}{query}"

    def label_studio_env(self) -> dict[str, str]:
        """Label Studio's own settings for this database (`label_studio/core/settings/base.py`)."""
        env = {
            "DJANGO_DB": "default",
            "POSTGRE_NAME": self.name,
            "POSTGRE_USER": self.user,
            "POSTGRE_PASSWORD": self.password,  # empty: psycopg leaves it out and libpq reads ~/.pgpass
            "POSTGRE_HOST": self.host,
            "POSTGRE_PORT": str(self.port),
        }
        if self.sslmode:
            env["PGSSLMODE"] = self.sslmode  # Label Studio has no setting for it; libpq reads it
        return env

    def libpq_env(self) -> dict[str, str]:
        env = {"PGHOST": self.host, "PGPORT": str(self.port), "PGDATABASE": self.name, "PGUSER": self.user,
               "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT)}  # fmt: skip
        if self.password:
            env["PGPASSWORD"] = self.password
        if self.sslmode:
            env["PGSSLMODE"] = self.sslmode
        return env


def parse_database(value: str, *, allow_password: bool, source: str = CONFIG_KEY) -> PostgresDatabase | None:
    """None for "sqlite", else the PostgreSQL database the URL names; ValueError (never quoting a password)."""
    text = value.strip()
    if text.lower() == SQLITE:
        return None
    try:
        parts = urlsplit(text)
        port = parts.port or 5432
    except ValueError:
        raise ValueError(f'"{_without_password(text)}" is not a URL with a valid port') from None
    shown = _without_password(text)
    if parts.scheme.lower() not in SCHEMES:
        raise ValueError(f'"{shown}" is neither "sqlite" nor a postgresql://USER@HOST:PORT/NAME URL')
    if not parts.hostname or not parts.username:
        raise ValueError(f'"{shown}" names no user or no host; write postgresql://USER@HOST:PORT/NAME')
    name = unquote(parts.path.lstrip("/"))
    if not name or "/" in name:
        raise ValueError(f'"{shown}" names no database; write postgresql://USER@HOST:PORT/NAME')
    if parts.password is not None and not allow_password:
        raise ValueError(
            f'"{shown}" holds a password, and the config file is committed with the project; keep the password '
            f"out of it: set the whole URL in {ENV_DATABASE} instead, or put the password in ~/.pgpass"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"sslmode"})
    sslmode = query.get("sslmode", [""])[-1]
    if unknown or (sslmode and sslmode not in SSL_MODES):
        raise ValueError(
            f'"{shown}" has query settings the workbench cannot pass to Label Studio ({", ".join(unknown) or sslmode});'
            f" only sslmode ({', '.join(SSL_MODES)}) is understood"
        )
    return PostgresDatabase(
        host=parts.hostname, port=port, name=name, user=unquote(parts.username),
        password=unquote(parts.password or ""), sslmode=sslmode, source=source,
    )  # fmt: skip


def configured_database(config_value: str, environ: Mapping[str, str] = os.environ) -> PostgresDatabase | None:
    """The database the local server uses: WORKBENCH_LABEL_STUDIO_DATABASE if set, else the config's."""
    from_env = environ.get(ENV_DATABASE, "").strip()
    if not from_env:
        return parse_database(config_value, allow_password=False)  # the config was validated on load
    try:
        return parse_database(from_env, allow_password=True, source=ENV_DATABASE)
    except ValueError as exc:
        raise ConfigError(f"{ENV_DATABASE} is not usable: {exc}. Fix or unset it, and run again.") from None


def describe(database: PostgresDatabase | None) -> str:
    return database.display if database else SQLITE


def check_reachable(database: PostgresDatabase, python: Path) -> None:
    """Connect once from the server's environment, so a wrong host, password or name is said in one line before
    Label Studio starts (and fails with a traceback in its log)."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": os.environ.get("HOME", "/"), "LANG": "C.UTF-8",
           **database.libpq_env()}  # fmt: skip
    try:
        done = subprocess.run(
            [str(python), "-c", _PROBE], env=env, capture_output=True, text=True, timeout=CONNECT_TIMEOUT + 20
        )
    except subprocess.TimeoutExpired:
        raise _unusable(database, "it did not answer in time", _fix_reach(database)) from None
    except OSError as exc:
        raise DatabaseError(
            f"The database check could not run {python} ({exc.strerror}). Rebuild Label Studio's environment with "
            "`make setup` and start again."
        ) from None
    if done.returncode == 0:
        return
    reason = " ".join(done.stdout.split()) or " ".join(done.stderr.split())[-300:]
    if database.password:
        reason = reason.replace(database.password, "***")
    raise _unusable(database, *_explain(database, reason))


def _explain(database: PostgresDatabase, reason: str) -> tuple[str, str]:
    """psycopg's reason -> (what happened, what to do), for the failures people meet."""
    lowered = reason.lower()
    where = f"{database.host}:{database.port}"
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return (
            f"PostgreSQL at {where} refused the password of user {database.user!r}",
            f"Set the right password in {ENV_DATABASE} (postgresql://{database.user}:PASSWORD@{where}/"
            f"{database.name}) or in ~/.pgpass",
        )
    if "role" in lowered and "does not exist" in lowered:
        return f"PostgreSQL at {where} has no user {database.user!r}", f"Create it, or fix it in {database.source}"
    if "database" in lowered and "does not exist" in lowered:
        return (
            f"the database {database.name!r} does not exist on {where}",
            f"Create it (`createdb -h {database.host} -p {database.port} -O {database.user} {database.name}`) or "
            f"fix the name in {database.source}",
        )
    if "psycopg is not installed" in lowered:
        return reason, "Rebuild Label Studio's environment with `make setup`"
    if any(sign in lowered for sign in ("connection refused", "translate host", "timeout", "no route", "unreachable")):
        return f"nothing answers as PostgreSQL at {where} ({reason})", _fix_reach(database)
    return reason, f"Fix the database or {database.source}"


def _fix_reach(database: PostgresDatabase) -> str:
    return f"Start the database server, or fix the host and port in {database.source}"


def _unusable(database: PostgresDatabase, what: str, fix: str) -> DatabaseError:
    return DatabaseError(
        f"Label Studio cannot use the PostgreSQL database {database.display}: {what}. {fix}, then run "
        "`workbench server start` again."
    )


def _without_password(text: str) -> str:
    """The URL as typed, minus anything between `user:` and `@` (for messages about a URL we could not parse)."""
    scheme, sep, rest = text.partition("://")
    if not sep or "@" not in rest:
        return text
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in credentials else ''}@{host}"
