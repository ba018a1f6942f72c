"""The local Label Studio server the workbench starts and stops itself, and the credentials to talk to it.

Label Studio runs from its own virtual environment (`.venv-labelstudio`), detached, bound to 127.0.0.1, with a
clean environment and its data under `.workbench/labelstudio/data`. The admin's password is generated once and,
with a personal access token minted through the login form (no UI), kept in `.workbench/labelstudio.json` (0600).
Setting LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY points the workbench at an external server instead.

The login-form flows (minting tokens, signing up annotators through the invite link) live here too: they are
HTTP form posts, not SDK calls. Secrets never appear in a message, an exception or a quoted log line.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import requests
from filelock import FileLock, Timeout

from workbench.errors import AuthError, ServerError
from workbench.project import Project, atomic_write_bytes, atomic_write_json, read_json

HOST = "127.0.0.1"
ADMIN_EMAIL = "admin@workbench.local"
ENV_URL = "LABEL_STUDIO_URL"
ENV_API_KEY = "LABEL_STUDIO_API_KEY"
CREDENTIAL_KEYS = ("url", "api_key", "username", "password", "port")

_HTTP_TIMEOUT = 30.0
_POLL_SECONDS = 0.25
_LOG_TAIL_LINES = 20

# Popen objects of servers started by this interpreter: kept so they are reaped (no zombies) and never
# garbage-collected while still running (which would warn).
_LAUNCHED: dict[int, subprocess.Popen[bytes]] = {}


# --------------------------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class ServerInfo:
    """What `start` gives back: where the server answers and whether this call launched it."""

    url: str
    port: int
    pid: int
    data_dir: Path
    log_file: Path
    launched: bool
    seconds: float


@dataclass(frozen=True)
class ServerStatus:
    """The recorded local server as seen right now; safe to print (holds no secret)."""

    running: bool
    url: str | None
    version: str | None
    healthy: bool
    pid: int | None
    data_dir: Path

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for `server status --json`; carries no password or token by construction."""
        return {
            "running": self.running,
            "url": self.url,
            "version": self.version,
            "healthy": self.healthy,
            "pid": self.pid,
            "data_dir": str(self.data_dir),
        }


@dataclass(frozen=True)
class Connection:
    """Where the Label Studio API is and the key to use; `external` when it came from the environment."""

    url: str
    api_key: str = field(repr=False)
    external: bool = False

    def __repr__(self) -> str:
        return f"Connection(url={self.url!r}, api_key='***', external={self.external})"


@dataclass(frozen=True)
class AnnotatorLogin:
    """An annotator account made through the invite link; the password is shown once by the caller."""

    email: str
    password: str = field(repr=False)
    user_id: int = 0

    def __repr__(self) -> str:
        return f"AnnotatorLogin(email={self.email!r}, password='***', user_id={self.user_id})"


# --------------------------------------------------------------------------------------------- start / stop


def start(project: Project, *, port: int | None = None, timeout: float = 180) -> ServerInfo:
    """Start the project's Label Studio (or return the one already running) and make sure we hold a token."""
    began = time.monotonic()
    _prepare_dirs(project)
    with _server_lock(project, "workbench server start", timeout):
        creds = _read_credentials(project)
        running = _recorded_pid(project)
        if running is not None:
            return _adopt_running(project, running, creds, port, began, timeout)
        binary = _labelstudio_bin(project)
        # The password is on disk before the first launch creates the account with it.
        creds["username"] = creds.get("username") or ADMIN_EMAIL
        creds["password"] = creds.get("password") or secrets.token_urlsafe(24)
        pid: int | None = None
        try:
            for attempt in (1, 2):
                chosen = _choose_port(port, creds) if attempt == 1 else _free_port()
                creds.update(url=f"http://{HOST}:{chosen}", port=chosen)
                _write_credentials(project, creds)
                pid = _launch(project, binary, chosen, creds)
                try:
                    _wait_healthy(project, pid, chosen, began + timeout, creds)
                    break
                except _PortTaken:
                    _terminate(pid, 15)
                    pid = None
                    if port is not None or attempt == 2:
                        raise ServerError(
                            f"Another program took port {chosen} while Label Studio was starting. Run "
                            "`workbench server start` again, with a free port in --port or none to let the "
                            "workbench pick one."
                        ) from None
            assert pid is not None
            _ensure_token(project, creds)
        except BaseException:
            if pid is not None:
                _terminate(pid, 15)
            _remove_pid_file(project)
            raise
        return ServerInfo(
            creds["url"], chosen, pid, _data_dir(project), _log_file(project), True, time.monotonic() - began
        )


def stop(project: Project, *, timeout: float = 15) -> bool:
    """Stop the project's Label Studio if it runs; a stale pid file is only removed. True if one was stopped."""
    if not _pid_file(project).exists():
        return False
    with _server_lock(project, "workbench server stop", timeout + 5):
        pid = _recorded_pid(project)
        if pid is None:
            _remove_pid_file(project)
            return False
        _terminate(pid, timeout)
        _remove_pid_file(project)
        return True


def status(project: Project) -> ServerStatus:
    """Report the recorded local server without raising: running, reachable, which version."""
    pid = _recorded_pid(project)
    creds = _read_credentials(project, strict=False)
    url = creds.get("url") if isinstance(creds.get("url"), str) else None
    healthy = bool(pid is not None and url and _is_healthy(url))
    version = _version(url) if healthy and url else None
    return ServerStatus(pid is not None, url, version, healthy, pid, _data_dir(project))


def connection(project: Project) -> Connection:
    """The server to talk to: LABEL_STUDIO_URL + LABEL_STUDIO_API_KEY if both set, else our own credentials."""
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
    creds = _read_credentials(project)
    if not creds.get("url") or not creds.get("api_key"):
        raise ServerError(
            f"There are no Label Studio credentials for this project ({project.credentials_file} is missing or "
            f"incomplete). Run `workbench server start` to start the local server, or set {ENV_URL} and "
            f"{ENV_API_KEY} to use an external one."
        )
    return Connection(str(creds["url"]).rstrip("/"), str(creds["api_key"]), external=False)


# --------------------------------------------------------------------------------------------- accounts / tokens


def mint_token(url: str, email: str, password: str, *, revoke_existing: bool = True) -> str:
    """Log in through the form and create a personal access token, the way the UI does it, with no UI.

    Label Studio allows one live personal token per user: with `revoke_existing` the old one is revoked first,
    otherwise an existing token is an AuthError.
    """
    url = url.rstrip("/")
    with _session(url) as session:
        _form_login(session, url, email, password)
        response = _post_token(session, url)
        if response.status_code == 409 and revoke_existing:
            _revoke_tokens(session, url)
            response = _post_token(session, url)
        if response.status_code == 409:
            raise AuthError(
                f"The Label Studio user {email} already has a personal access token, and only one is allowed. "
                "Revoke it on the Account & Settings page, or mint with revoke_existing=True."
            )
        _expect(response, 201, f"creating a personal access token for {email} at {url}", secrets_=(password,))
        token = response.json().get("token")
        if not isinstance(token, str) or not token:
            raise ServerError(
                f"Label Studio at {url} answered the token request for {email} without a token. Check that "
                "the server is version 1.23 or later (`workbench server status`)."
            )
        return token


def whoami(url: str, api_key: str) -> dict[str, Any]:
    """The user an API key belongs to (GET /api/current-user/whoami), with the SDK's token handling."""
    url = url.rstrip("/")
    with _session(url) as session:
        headers = _auth_headers(session, url, api_key)
        response = _request(session, "GET", f"{url}/api/current-user/whoami", headers=headers)
        if response.status_code in (401, 403):
            raise _rejected_key(url)
        _expect(response, 200, f"asking {url} who the API key belongs to", secrets_=(api_key,))
        return dict(response.json())


def create_annotator(target: Connection | Project, email: str, *, password: str | None = None) -> AnnotatorLogin:
    """Make an account that can log in, through the organisation's invite link (the users API makes ones that
    cannot)."""
    conn = target if isinstance(target, Connection) else connection(target)
    password = password or secrets.token_urlsafe(18)
    url = conn.url
    with _session(url) as session:
        headers = _auth_headers(session, url, conn.api_key)
        invite = _request(session, "GET", f"{url}/api/invite", headers=headers)
        if invite.status_code in (401, 403):
            raise _rejected_key(url)
        _expect(invite, 200, f"getting the invite link from {url}", secrets_=(conn.api_key,))
        invite_token = invite.json().get("token")
    if not isinstance(invite_token, str) or not invite_token:
        raise ServerError(f"Label Studio at {url} returned no invite token. Check the admin account's role.")
    signup = f"{url}/user/signup/?token={invite_token}"
    try:
        return _sign_up(url, signup, email, password, invite_token)
    finally:
        _reset_invite(conn)


def _reset_invite(conn: Connection) -> None:
    """Invalidate the invite link just used: the server logs sign-up URLs, and a live link lets anyone join."""
    with _session(conn.url) as session:
        headers = _auth_headers(session, conn.url, conn.api_key)
        response = _request(session, "POST", f"{conn.url}/api/invite/reset-token", headers=headers)
        if response.status_code not in (200, 201):
            raise ServerError(
                f"Label Studio at {conn.url} answered HTTP {response.status_code} when resetting the invite link "
                "after a sign-up, so the link used may still be live. Reset it by hand under Organization -> "
                "Add People -> Reset link, and check `workbench server status`."
            )


def _sign_up(url: str, signup: str, email: str, password: str, invite_token: str) -> AnnotatorLogin:
    with _session(url) as session:
        response = _post_account_form(session, signup, email, password)
        if response.status_code != 302:
            problems = _form_errors(response.text, (password, invite_token)) or f"HTTP {response.status_code}"
            raise ServerError(
                f"Label Studio at {url} refused to sign up {email}: {problems}. Fix the e-mail address or the "
                "password and try again (an account that already exists can simply log in)."
            )
        me = _request(session, "GET", f"{url}/api/current-user/whoami")
        _expect(me, 200, f"reading the new account {email}", secrets_=(password,))
        return AnnotatorLogin(email=email, password=password, user_id=int(me.json()["id"]))


# --------------------------------------------------------------------------------------------- start helpers


def _prepare_dirs(project: Project) -> None:
    """`.workbench/` holds the credentials: only its owner may enter it."""
    project.state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(project.state_dir, 0o700)
    _data_dir(project).mkdir(parents=True, exist_ok=True)
    _ensure_secret_key(_data_dir(project))


def _ensure_secret_key(data_dir: Path) -> None:
    """Give Label Studio its Django SECRET_KEY (which signs the API tokens) before it first starts.

    Left to itself, Label Studio 1.23 generates one at start-up in every process that loads its settings and
    appends it to `<data dir>/.env`; when two do so at once the file holds two keys, the server signs tokens
    with one and, after a restart, checks them with the other, so a stored token stops working (seen in CI).
    """
    env_file = data_dir / ".env"
    if env_file.exists() and "SECRET_KEY=" in env_file.read_text(encoding="utf-8", errors="replace"):
        return
    fd = os.open(env_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(f"SECRET_KEY={secrets.token_urlsafe(50)}\n")


@contextlib.contextmanager
def _server_lock(project: Project, what: str, timeout: float) -> Iterator[None]:
    """Serialise start/stop of one project's server (separate from the project lock the CLI may hold)."""
    project.server_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(project.server_dir / "server.lock", timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise ServerError(
            f"Another `{what.split()[-1]}` of this project's Label Studio server has not finished within "
            f"{timeout:.0f} s, so `{what}` gave up. Wait for it, then run `{what}` again."
        ) from None
    try:
        yield
    finally:
        lock.release()


def _labelstudio_bin(project: Project) -> Path:
    """The server's own venv must exist; it is built by `make setup`, never by the workbench."""
    binary = project.labelstudio_bin
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise ServerError(
            f"The Label Studio server is not installed: {binary} does not exist. Run `make setup` in the "
            "project folder (it builds .venv-labelstudio), then start the server again."
        )
    return binary


def _adopt_running(
    project: Project, pid: int, creds: dict[str, Any], port: int | None, began: float, timeout: float
) -> ServerInfo:
    """The recorded server runs: return it once healthy, so `start` can be called any number of times."""
    recorded = creds.get("port")
    if not isinstance(recorded, int) or not creds.get("password"):
        raise ServerError(
            f"This project's Label Studio runs (pid {pid}) but {project.credentials_file} does not say how to "
            "reach it. Run `workbench server stop` and then `workbench server start`."
        )
    if port is not None and port != recorded:
        raise ServerError(
            f"This project's Label Studio already runs on port {recorded} (pid {pid}), not on the requested "
            f"port {port}. Run `workbench server stop` first to move it to another port."
        )
    url = f"http://{HOST}:{recorded}"
    deadline = time.monotonic() + timeout
    while not _is_healthy(url):
        if time.monotonic() > deadline or not _alive(pid):
            raise ServerError(
                f"This project's Label Studio (pid {pid}) does not answer at {url}/health. Run "
                f"`workbench server stop` and then `workbench server start`; the log is {_log_file(project)}."
            )
        time.sleep(_POLL_SECONDS)
    creds["url"] = url
    _ensure_token(project, creds)
    return ServerInfo(url, recorded, pid, _data_dir(project), _log_file(project), False, time.monotonic() - began)


def _choose_port(requested: int | None, creds: dict[str, Any]) -> int:
    """A requested port must be free; otherwise reuse the last port (a stable URL) or take a free one."""
    if requested is not None:
        if not 1 <= requested <= 65535:
            raise ServerError(f"Port {requested} is not a TCP port number. Choose one between 1 and 65535.")
        if not _port_free(requested):
            raise ServerError(
                f"Port {requested} on {HOST} is already in use by another program, so Label Studio cannot "
                "listen there. Choose another port with --port, or leave it out to let the workbench pick a "
                "free one."
            )
        return requested
    previous = creds.get("port")
    if isinstance(previous, int) and 1024 <= previous <= 65535 and _port_free(previous):
        return previous
    return _free_port()


def _port_free(port: int) -> bool:
    """Free means nobody answers on it (Label Studio's own test) and we could bind it ourselves."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        if probe.connect_ex((HOST, port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like Django's server: connections of a stopped server lingering in TIME_WAIT do not block the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    """Let the kernel pick a port nobody holds."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if _port_free(port):
            return port
    raise ServerError(f"No free TCP port was found on {HOST}. Free some ports, or pass one with --port.")


def _server_env(project: Project, creds: dict[str, Any]) -> dict[str, str]:
    """Only what Label Studio needs: it also reads unprefixed USERNAME/PASSWORD/HOST/PORT/DEBUG.

    The admin login is passed only when the database does not exist yet (it is used once, to create the
    account), so a running server's environment does not hold the password.
    """
    first_start = not (_data_dir(project) / "label_studio.sqlite3").exists()
    admin = (
        {"LABEL_STUDIO_USERNAME": str(creds["username"]), "LABEL_STUDIO_PASSWORD": str(creds["password"])}
        if first_start
        else {}
    )
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.environ.get("HOME", str(project.server_dir)),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONUNBUFFERED": "1",  # so the log holds the last lines when it dies
        "LABEL_STUDIO_BASE_DATA_DIR": str(_data_dir(project)),
        **admin,
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false",
    }


def _launch(project: Project, binary: Path, port: int, creds: dict[str, Any]) -> int:
    """Start `label-studio start` in its own session so it outlives the CLI and can be stopped as a group."""
    log_file = _log_file(project)
    if log_file.exists():
        os.replace(log_file, log_file.with_suffix(".log.1"))
    command = [
        str(binary),
        "start",
        "--no-browser",
        "--internal-host",
        HOST,
        "--port",
        str(port),
        "--data-dir",
        str(_data_dir(project)),
    ]
    with open(log_file, "ab") as log:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=project.server_dir,
                env=_server_env(project, creds),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise ServerError(
                f"Label Studio could not be launched from {binary}: {exc.strerror}. Rebuild its environment "
                "with `make setup` and start again."
            ) from None
    _LAUNCHED[process.pid] = process
    # Atomic, so a reader never sees half a number.
    atomic_write_bytes(_pid_file(project), f"{process.pid}\n".encode(), mode=0o644)
    return process.pid


class _PortTaken(Exception):
    """Label Studio ended up on another port than the one we chose (it silently moves to port+1)."""


def _wait_healthy(project: Project, pid: int, port: int, deadline: float, creds: dict[str, Any]) -> None:
    """Healthy = our own process listens on exactly our port and answers /health with UP."""
    url = f"http://{HOST}:{port}"
    while True:
        if not _alive(pid):
            raise ServerError(
                f"Label Studio exited while starting (port {port}, data folder {_data_dir(project)}). Last lines "
                f"of {_log_file(project)}:\n{_log_tail(project, creds)}\nFix the cause shown there and run "
                "`workbench server start` again; if the data folder is damaged, move it away to start empty."
            )
        ports = _listening_ports(pid)
        if ports and port not in ports:
            raise _PortTaken()
        if port in ports and _is_healthy(url):
            return
        if time.monotonic() > deadline:
            raise ServerError(
                f"Label Studio did not become healthy at {url}/health in time, so it was stopped. Last lines of "
                f"{_log_file(project)}:\n{_log_tail(project, creds)}\nRun `workbench server start` again (a first "
                "start applies database migrations and takes longer on a slow machine)."
            )
        time.sleep(_POLL_SECONDS)


def _ensure_token(project: Project, creds: dict[str, Any]) -> None:
    """Keep the stored token if the server still accepts it; otherwise mint a new one with the stored login."""
    url = str(creds["url"])
    key = creds.get("api_key")
    if isinstance(key, str) and key and _key_works(url, key):
        return
    try:
        creds["api_key"] = mint_token(url, str(creds["username"]), str(creds["password"]))
    except AuthError:
        raise AuthError(
            f"Label Studio's data folder {_data_dir(project)} holds an admin account ({creds['username']}) whose "
            f"password is not the one in {project.credentials_file}: that file was replaced or deleted after the "
            "folder was made. Restore the file, or stop the server and move the data folder away to start "
            "with an empty server (the old projects stay in the moved folder)."
        ) from None
    _write_credentials(project, creds)


def _key_works(url: str, key: str) -> bool:
    """A revoked or foreign token is not an error here: it is replaced."""
    try:
        whoami(url, key)
    except AuthError:
        return False
    return True


# --------------------------------------------------------------------------------------------- process helpers


def _recorded_pid(project: Project) -> int | None:
    """The pid in the pid file if it is our live label-studio; a stale file (gone or reused pid) is removed."""
    try:
        pid = int(_pid_file(project).read_text().strip())
    except FileNotFoundError:
        return None
    except ValueError:
        _remove_pid_file(project)
        return None
    if _is_our_server(pid, project):
        return pid
    _remove_pid_file(project)
    return None


def _is_our_server(pid: int, project: Project) -> bool:
    """Only a live label-studio whose command line names our data folder is ours to adopt or kill."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            _reap(pid)
            return False
        cmdline = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return "label-studio" in cmdline and str(_data_dir(project)) in cmdline


def _alive(pid: int) -> bool:
    """False once the process is gone or a zombie (reaped here when it is our child)."""
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.NoSuchProcess:
        return False
    _reap(pid)
    return False


def _reap(pid: int) -> None:
    """Collect the exit status of a server this interpreter launched, so it leaves no zombie."""
    process = _LAUNCHED.pop(pid, None)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1)


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever is left after `timeout` seconds."""
    group = _group_of(pid)
    _signal(pid, group, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid) or (group is not None and _group_exists(group)):
        _signal(pid, group, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    _reap(pid)


def _group_of(pid: int) -> int | None:
    """The process group to signal: the server leads its own session, so its group is its pid."""
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return None
    return group if group == pid else None


def _group_exists(group: int) -> bool:
    """A group id stays reserved while any member lives, so it cannot have been reused."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal(pid: int, group: int | None, sig: signal.Signals) -> None:
    """Signal the group (or the lone pid); a process that is already gone is fine."""
    try:
        if group is not None:
            os.killpg(group, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        raise ServerError(
            f"The workbench may not signal Label Studio's process {pid} (it belongs to another user). Stop it as "
            "that user, or with `kill`, then run the command again."
        ) from None


def _listening_ports(pid: int) -> set[int]:
    """TCP ports the process (or its children) listens on."""
    try:
        process = psutil.Process(pid)
        processes = [process, *process.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return set()
    ports: set[int] = set()
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr:
                    ports.add(int(conn.laddr.port))
    return ports


# --------------------------------------------------------------------------------------------- files


def _data_dir(project: Project) -> Path:
    return project.server_dir / "data"


def _pid_file(project: Project) -> Path:
    return project.server_dir / "server.pid"


def _log_file(project: Project) -> Path:
    return project.server_dir / "server.log"


def _remove_pid_file(project: Project) -> None:
    with contextlib.suppress(FileNotFoundError):
        _pid_file(project).unlink()


def _read_credentials(project: Project, *, strict: bool = True) -> dict[str, Any]:
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
            f"data folder {_data_dir(project)} to start with a new, empty server."
        ) from None
    return value if isinstance(value, dict) else {}


def _write_credentials(project: Project, creds: dict[str, Any]) -> None:
    """0600 and atomic: the file holds the admin password and token."""
    value = {key: creds.get(key) for key in CREDENTIAL_KEYS}
    atomic_write_json(project.credentials_file, value, mode=0o600)


def _log_tail(project: Project, creds: dict[str, Any]) -> str:
    """The last lines of the server log, with every secret we know of blanked out."""
    try:
        lines = _log_file(project).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return "  (the log is empty)"
    tail = [line[:300] for line in lines[-_LOG_TAIL_LINES:]] or ["(the log is empty)"]
    text = "\n".join(f"  {line}" for line in tail)
    return _redact(text, (creds.get("password"), creds.get("api_key")))


def _redact(text: str, secrets_: tuple[str | None, ...]) -> str:
    for secret in secrets_:
        if secret:
            text = text.replace(secret, "***")
    return text


# --------------------------------------------------------------------------------------------- HTTP


def _session(url: str) -> requests.Session:
    """A session that never sends loopback traffic through a proxy from the environment."""
    session = requests.Session()
    host = urlsplit(url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        session.trust_env = False
    return session


def _request(session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    """One HTTP call; an unreachable server is a ServerError naming it and the fix."""
    kwargs.setdefault("timeout", _HTTP_TIMEOUT)
    try:
        return session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        base = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
        reason = type(exc).__name__
        raise ServerError(
            f"Label Studio at {base} cannot be reached ({reason}). Start it with `workbench server start`, or "
            f"check {ENV_URL} if you use an external server."
        ) from None


def _expect(response: requests.Response, code: int, doing: str, *, secrets_: tuple[str, ...] = ()) -> None:
    if response.status_code != code:
        detail = _redact(response.text[:200].strip(), secrets_).replace("\n", " ")
        raise ServerError(
            f"Label Studio answered HTTP {response.status_code} when {doing} (expected {code}): {detail!r}. "
            "Check `workbench server status` and the server log."
        )


def _is_healthy(url: str) -> bool:
    with _session(url) as session:
        try:
            response = session.get(f"{url.rstrip('/')}/health", timeout=3)
            return response.status_code == 200 and response.json().get("status") == "UP"
        except (requests.RequestException, ValueError):
            return False


def _version(url: str) -> str | None:
    """The server's release from /version (served as JSON wrapped in <pre>, so both are accepted)."""
    with _session(url) as session:
        try:
            text = session.get(f"{url.rstrip('/')}/version", timeout=10).text
        except requests.RequestException:
            return None
    text = re.sub(r"</?pre>", "", text).strip()
    try:
        release = json.loads(text).get("release")
    except (ValueError, AttributeError):
        return None
    return release if isinstance(release, str) else None


def _jwt_claims(token: str) -> dict[str, Any] | None:
    """Unverified JWT claims (to tell a personal access token from a legacy one), or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (ValueError, json.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def _auth_headers(session: requests.Session, url: str, api_key: str) -> dict[str, str]:
    """What the SDK sends: a personal (refresh) token is exchanged for a Bearer access token, a legacy one is
    sent as `Token`."""
    claims = _jwt_claims(api_key)
    if not claims or claims.get("token_type") != "refresh":
        return {"Authorization": f"Token {api_key}"}
    response = _request(session, "POST", f"{url}/api/token/refresh/", json={"refresh": api_key})
    if response.status_code in (400, 401, 403):
        raise _rejected_key(url)
    _expect(response, 200, f"exchanging the API key for an access token at {url}", secrets_=(api_key,))
    return {"Authorization": f"Bearer {response.json()['access']}"}


def _rejected_key(url: str) -> AuthError:
    return AuthError(
        f"Label Studio at {url} rejected the API key (revoked, expired, or from another server). For the local "
        f"server run `workbench server start` (it mints a new one); for an external server set {ENV_API_KEY} "
        "to a personal access token from Account & Settings."
    )


def _csrf_cookie(session: requests.Session, page: str) -> str:
    """GET a form page so Django sets the csrftoken cookie, and return it."""
    response = _request(session, "GET", page)
    _expect(response, 200, f"opening {urlsplit(page).path}")
    token = session.cookies.get("csrftoken")
    if not token:
        raise ServerError(
            f"Label Studio's page {page} set no csrftoken cookie. Check that the URL points at Label Studio."
        )
    return str(token)


def _post_account_form(session: requests.Session, page: str, email: str, password: str) -> requests.Response:
    """Submit Label Studio's login or sign-up form like a browser: csrftoken cookie first, Referer set;
    success is a 302 redirect."""
    csrf = _csrf_cookie(session, page)
    return _request(
        session,
        "POST",
        page,
        data={"email": email, "password": password, "csrfmiddlewaretoken": csrf},
        headers={"Referer": page},
        allow_redirects=False,
    )


def _form_login(session: requests.Session, url: str, email: str, password: str) -> None:
    """Log in like a browser: csrftoken cookie, then the form with Referer (-> 302 on success)."""
    response = _post_account_form(session, f"{url}/user/login/", email, password)
    if response.status_code != 302:
        raise AuthError(
            f"Label Studio at {url} did not accept the login of {email} (HTTP {response.status_code}): wrong "
            "e-mail or password. Check the account, or create it with `workbench annotators add`."
        )


def _post_token(session: requests.Session, url: str) -> requests.Response:
    """POST /api/token/ with the session; Django rotates the CSRF token at login, so read it again."""
    return _request(
        session,
        "POST",
        f"{url}/api/token/",
        headers={"X-CSRFToken": str(session.cookies.get("csrftoken") or ""), "Referer": f"{url}/user/account"},
    )


def _revoke_tokens(session: requests.Session, url: str) -> None:
    """Blacklist the user's live personal tokens (the list gives them truncated, which is what blacklist takes)."""
    listing = _request(session, "GET", f"{url}/api/token/")
    _expect(listing, 200, f"listing personal access tokens at {url}")
    for item in listing.json():
        truncated = item.get("token") if isinstance(item, dict) else None
        if truncated:
            response = _request(
                session,
                "POST",
                f"{url}/api/token/blacklist/",
                json={"refresh": truncated},
                headers={"X-CSRFToken": str(session.cookies.get("csrftoken") or ""), "Referer": f"{url}/"},
            )
            if response.status_code not in (204, 404):
                _expect(response, 204, f"revoking an old personal access token at {url}")


def _form_errors(page: str, secrets_: tuple[str, ...]) -> str:
    """The messages of a Django form's error lists, for a refusal the user can act on."""
    blocks = re.findall(r'<ul class="(?:field_errors|errorlist)[^"]*">(.*?)</ul>', page, re.S)
    items = [item for block in blocks for item in re.findall(r"<li>(.*?)</li>", block, re.S)]
    items += re.findall(r'<p class="error">(.*?)</p>', page, re.S)
    messages = (html.unescape(re.sub(r"<[^>]+>", "", item)).strip().rstrip(".") for item in items)
    text = "; ".join(message for message in messages if message)
    return _redact(text, secrets_)


__all__ = [
    "ADMIN_EMAIL",
    "AnnotatorLogin",
    "Connection",
    "ServerInfo",
    "ServerStatus",
    "connection",
    "create_annotator",
    "mint_token",
    "start",
    "status",
    "stop",
    "whoami",
]
