"""Label Studio on a team's PostgreSQL: the one check that the database answers, run from the server's own
environment before the server starts, so a wrong host, password or name is one line, never a traceback in the
server log. The URL itself is parsed in `workbench.config.database`; the password is never quoted.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from workbench.config.database import CONNECT_TIMEOUT, ENV_DATABASE, PostgresDatabase
from workbench.errors import DatabaseError

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
