"""Processes and ports on this machine: launching a detached server, stopping it as a group, finding free ports.

Used for the servers the workbench runs itself (Label Studio, and the model backend). Nothing here knows what the
process is; callers decide which pid is theirs to adopt or stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from workbench.errors import ServerError

LOOPBACK_IP = "127.0.0.1"

# Popen objects of processes started by this interpreter: kept so they are reaped (no zombies) and never
# garbage-collected while still running (which would warn).
_LAUNCHED: dict[int, subprocess.Popen[bytes]] = {}
# Exit codes of launched processes already reaped (by `alive`, `reap` or `terminate`), so `exit_code` still knows
# how a process ended whichever of them noticed it first.
_ENDED: dict[int, int] = {}


def launch_detached(command: Sequence[str], *, log_file: Path, cwd: Path, env: Mapping[str, str]) -> int:
    """Start `command` in its own session (it outlives the CLI and can be stopped as a group), output to
    `log_file`, with exactly `env` as its environment; return its pid. OSError if it cannot be started."""
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
        )
    _LAUNCHED[process.pid] = process
    _ENDED.pop(process.pid, None)  # a reused pid: the old process's ending is not this one's
    return process.pid


def run_logged(command: Sequence[str], *, log_file: Path, cwd: Path, env: Mapping[str, str], timeout: float) -> int:
    """Run `command` to its end in its own session, output appended to `log_file`, with exactly `env`; its exit
    code, or -1 if it ran past `timeout` seconds (it and its children are then stopped). OSError if it cannot start.
    """
    pid = launch_detached(command, log_file=log_file, cwd=cwd, env=env)
    process = _LAUNCHED.pop(pid)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1
    finally:  # timed out, or interrupted (Ctrl-C): nothing of it is left running
        if process.poll() is None or _group_exists(pid):
            _LAUNCHED[pid] = process
            terminate(pid, 5)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie child of this interpreter is reaped here)."""
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.Error:
        return False
    reap(pid)
    return False


def exit_code(pid: int) -> int | None:
    """The exit code of a process this interpreter launched, once it has ended (it is reaped then); None while it
    runs, or for a process launched elsewhere."""
    if pid in _ENDED:
        return _ENDED[pid]
    process = _LAUNCHED.get(pid)
    code = process.poll() if process is not None else None
    if code is not None:
        reap(pid)
    return code


def reap(pid: int) -> None:
    """Collect the exit status of a process this interpreter launched, so it leaves no zombie."""
    process = _LAUNCHED.pop(pid, None)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1)
        if process.returncode is not None:
            _ENDED[pid] = process.returncode


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM the process's group, then SIGKILL whatever is left after `timeout` seconds."""
    group = _group_of(pid)
    _signal(pid, group, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid) or (group is not None and _group_exists(group)):
        _signal(pid, group, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    reap(pid)


def listening_ports(pid: int) -> set[int]:
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


def port_free(port: int, host: str = LOOPBACK_IP) -> bool:
    """Free means nobody answers on it (Label Studio's own test) and we could bind it ourselves."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        if probe.connect_ex((host, port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like Django's server: connections of a stopped server lingering in TIME_WAIT do not block the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK_IP) -> int:
    """Let the kernel pick a port nobody holds."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port_free(port, host):
            return port
    raise ServerError(f"No free TCP port was found on {host}. Free some ports, or pass one with --port.")


def _group_of(pid: int) -> int | None:
    """The process group to signal: a detached process leads its own session, so its group is its pid."""
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
            f"The workbench may not signal process {pid} (it belongs to another user). Stop it as that user, or "
            "with `kill`, then run the command again."
        ) from None
