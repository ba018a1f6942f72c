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
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from workbench.errors import ConfigError

SQLITE = "sqlite"
ENV_DATABASE = "WORKBENCH_LABEL_STUDIO_DATABASE"
CONFIG_KEY = "[labelstudio] database"
SCHEMES = ("postgresql", "postgres")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
CONNECT_TIMEOUT = 10



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


def _without_password(text: str) -> str:
    """The URL as typed, minus anything between `user:` and `@` (for messages about a URL we could not parse)."""
    scheme, sep, rest = text.partition("://")
    if not sep or "@" not in rest:
        return text
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in credentials else ''}@{host}"
