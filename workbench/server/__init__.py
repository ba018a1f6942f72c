"""The local Label Studio the workbench starts and stops itself (127.0.0.1, SQLite under `.workbench/` or a team's
PostgreSQL), and how to reach whichever server a project uses.

Modules: `lifecycle` (start, stop, status), `credentials` (the admin's password and API token, 0600; an
external server from LABEL_STUDIO_URL/API_KEY), `serving` (development server or gunicorn workers, the clean
environment), `database` (Label Studio on PostgreSQL: the one reachability check), `processes` (detached
processes and free ports).
"""

from __future__ import annotations

from workbench.labelstudio.transport import ENV_API_KEY, ENV_URL
from workbench.server.credentials import ADMIN_EMAIL, CREDENTIAL_KEYS, Connection, connection, external_connection
from workbench.server.lifecycle import ServerInfo, ServerStatus, start, status, stop

__all__ = [
    "ADMIN_EMAIL",
    "CREDENTIAL_KEYS",
    "ENV_API_KEY",
    "ENV_URL",
    "Connection",
    "ServerInfo",
    "ServerStatus",
    "connection",
    "external_connection",
    "start",
    "status",
    "stop",
]
