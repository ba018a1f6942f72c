"""The credentials to reach Label Studio: the local server's admin login and API token (`.workbench/labelstudio.json`,
mode 0600), or an external server named by LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY. `external_connection` is
the one place that decides which; secrets never appear in a message or a repr.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import LoginRefusedError, ServerError
from workbench.labelstudio.accounts import key_works, mint_token
from workbench.labelstudio.transport import ENV_API_KEY, ENV_URL
from workbench.project import Project, atomic_write_json, read_json

ADMIN_EMAIL = "admin@workbench.local"
# `database` is the one the server was started on, without its password; `serving` how it was served.
CREDENTIAL_KEYS = ("url", "api_key", "username", "password", "port", "database", "serving")


@dataclass(frozen=True)
class Connection:
    """Where the Label Studio API is and the key to use; `external` when it came from the environment."""

    url: str
    api_key: str = field(repr=False)
    external: bool = False

    def __repr__(self) -> str:
        return f"Connection(url={self.url!r}, api_key='***', external={self.external})"


def external_connection() -> Connection | None:
    """The external server when LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY are both set, None when neither is.

    The one place that decides whether the workbench uses a server of the user's or starts its own; half of the
    pair is an error, said before anything starts."""
    url, key = os.environ.get(ENV_URL, "").strip(), os.environ.get(ENV_API_KEY, "").strip()
    if url and key:
        return Connection(url.rstrip("/"), key, external=True)
    if url or key:
        missing = ENV_API_KEY if url else ENV_URL
        raise ServerError(
            f"Only one of {ENV_URL} and {ENV_API_KEY} is set, so the workbench does not know which server to "
            f"use. Set {missing} too to use an external Label Studio, or unset both to use the local server "
            "(`workbench server start`)."
        )
    return None


def connection(project: Project) -> Connection:
    """The server to talk to: the external one (see `external_connection`), else the local one's credentials."""
    external = external_connection()
    if external is not None:
        return external
    creds = read_credentials(project)
    if not creds.get("url") or not creds.get("api_key"):
        raise ServerError(
            f"There are no Label Studio credentials for this project ({project.credentials_file} is missing or "
            f"incomplete). Run `workbench server start` to start the local server, or set {ENV_URL} and "
            f"{ENV_API_KEY} to use an external one."
        )
    return Connection(str(creds["url"]).rstrip("/"), str(creds["api_key"]), external=False)


def ensure_token(project: Project, creds: dict[str, Any]) -> None:
    """Keep the stored token if the server still accepts it; otherwise mint a new one with the stored login."""
    url = str(creds["url"])
    key = creds.get("api_key")
    if isinstance(key, str) and key and key_works(url, key):
        return
    try:
        creds["api_key"] = mint_token(url, str(creds["username"]), str(creds["password"]))
    except LoginRefusedError:
        where = creds.get("database") if creds.get("database", "sqlite") != "sqlite" else None
        raise LoginRefusedError(
            f"Label Studio's {f'database {where}' if where else f'data folder {data_dir(project)}'} holds an admin "
            f"account ({creds['username']}) whose password is not the one in {project.credentials_file}: that file "
            "was replaced or deleted after the account was made. Restore the file, or stop the server and "
            + ("point [labelstudio] database at an empty database." if where else "move the data folder away to "
               "start with an empty server (the old projects stay in the moved folder).")
        ) from None
    write_credentials(project, creds)


def data_dir(project: Project) -> Path:
    return project.server_dir / "data"


def read_credentials(project: Project, *, strict: bool = True) -> dict[str, Any]:
    """The credentials file, or {} if there is none; a damaged one is an error naming the file."""
    path = project.credentials_file
    try:
        value = read_json(path)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        if not strict:
            return {}
        raise ServerError(
            f"The Label Studio credentials file {path} is not readable JSON. Restore it, or delete it and the "
            f"data folder {data_dir(project)} to start with a new, empty server."
        ) from None
    return value if isinstance(value, dict) else {}


def write_credentials(project: Project, creds: dict[str, Any]) -> None:
    """0600 and atomic: the file holds the admin password and token."""
    value = {key: creds.get(key) for key in CREDENTIAL_KEYS}
    atomic_write_json(project.credentials_file, value, mode=0o600)
