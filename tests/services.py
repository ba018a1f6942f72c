"""Real services the tests (and `bench/`) start on 127.0.0.1 for themselves: a private PostgreSQL cluster and a
local Dask cluster (one scheduler, worker processes). Each is started once, used, and stopped with everything it
started; nothing here is a mock.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited ({process.returncode}); its log {log}:\n{_tail(log)}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((LOOPBACK, port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listened on port {port} after {timeout:.0f} s; log {log}:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# --------------------------------------------------------------------------------------------- PostgreSQL


def postgres_bindir() -> Path | None:
    """Debian's PostgreSQL server binaries (the newest major version installed), or None if there are none."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


@dataclass
class PostgresCluster:
    """A throw-away PostgreSQL cluster: initdb into a temporary folder, a free port on 127.0.0.1, no other socket.

    initdb refuses to run as root, so as root the cluster belongs to Debian's `postgres` user (its folder lives
    outside pytest's 0700 temporary tree, which that user cannot enter)."""

    bindir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="workbench-pg-")))
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def _as_owner(self, *command: str | Path) -> list[str]:
        args = [str(part) for part in command]
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args

    def start(self) -> PostgresCluster:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.root.chmod(0o700)
        subprocess.run(
            self._as_owner(self.bindir / "initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust",
                           "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"),
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        options = f"-c listen_addresses={LOOPBACK} -p {self.port} -k {self.root} -c fsync=off"
        subprocess.run(
            self._as_owner(self.bindir / "pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "start"),
            check=True, capture_output=True, timeout=120,
        )
        return self

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement as the superuser over the cluster's own socket (trusted: only its owner reaches it)."""
        done = subprocess.run(
            self._as_owner(self.bindir / "psql", "-h", self.root, "-p", str(self.port), "-U", "postgres",
                           "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", statement),
            check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return done.stdout.strip()

    def create_database(self, name: str, user: str | None = None) -> str:
        """A new role (random password) owning a new database; returns its URL for `[labelstudio] database`."""
        user = user or name
        password = secrets.token_urlsafe(18)
        self.sql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        self.sql(f"CREATE DATABASE {name} OWNER {user}")
        return f"postgresql://{user}:{password}@{LOOPBACK}:{self.port}/{name}"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                self._as_owner(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"),
                capture_output=True, timeout=60,
            )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


# --------------------------------------------------------------------------------------------- Dask


@dataclass
class DaskCluster:
    """`dask scheduler` and `dask worker` processes (one thread each) from the workbench's environment, as a team
    would start them on their machines; workers import this checkout's `workbench`."""

    workers: int = 2
    env: Mapping[str, str] = field(default_factory=dict)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="workbench-dask-")))
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"tcp://{LOOPBACK}:{self.port}"

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        dask = Path(sys.executable).with_name("dask")
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **self.env}
        with open(self.root / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                [str(dask), *args], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                env=env, start_new_session=True,
            )  # fmt: skip
        self.processes.append(process)
        return process

    def start(self) -> DaskCluster:
        scheduler = self._spawn("scheduler", "scheduler", "--host", LOOPBACK, "--port", str(self.port),
                                "--no-dashboard", "--no-show")  # fmt: skip
        _wait_for_port(self.port, scheduler, self.root / "scheduler.log", 60)
        for number in range(1, self.workers + 1):
            self.add_worker(f"worker-{number}")
        return self

    def add_worker(self, name: str) -> subprocess.Popen[bytes]:
        return self._spawn(name, "worker", self.address, "--host", LOOPBACK, "--nthreads", "1", "--name", name,
                           "--no-dashboard", "--local-directory", str(self.root / name))  # fmt: skip

    def stop(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
