"""How a launched process ended is known whichever check noticed the ending first.

The model backend's start reads its child's exit code to say why it failed (exit 4 for a model that cannot load).
When `alive` happened to see the child as a zombie first, it reaped it and the code was lost, so the start said
exit 17 instead: a result that depended on who won a race (seen once in CI).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest

from workbench.server.processes import alive, exit_code, launch_detached, reap


def _launch_exiting_with(code: int, tmp_path: Path) -> int:
    command = [sys.executable, "-c", f"raise SystemExit({code})"]
    return launch_detached(command, log_file=tmp_path / "child.log", cwd=tmp_path, env={})


def _wait_until_ended(pid: int) -> None:
    """Until the child is a zombie (ended, not yet reaped); waits for a state, asserts no time."""
    while psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.01)


@pytest.mark.parametrize("first_check", ["alive", "reap"])
def test_the_exit_code_survives_whichever_check_reaped_the_process(tmp_path: Path, first_check: str) -> None:
    pid = _launch_exiting_with(4, tmp_path)
    _wait_until_ended(pid)
    if first_check == "alive":
        assert alive(pid) is False
    else:
        reap(pid)
    assert exit_code(pid) == 4
    assert exit_code(pid) == 4  # asking again gives the same answer


def test_a_running_process_has_no_exit_code_yet(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import time; time.sleep(3600)"]
    pid = launch_detached(command, log_file=tmp_path / "child.log", cwd=tmp_path, env={})
    try:
        assert exit_code(pid) is None and alive(pid)
    finally:
        psutil.Process(pid).kill()
        reap(pid)
    assert exit_code(pid) == -9
