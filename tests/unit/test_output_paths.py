"""Files the workbench writes where a user points it: a link is followed, a device, FIFO or socket is refused and
left as it was; `workbench report --html` says so before any work (the snapshot never needs to be read)."""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support import make_project
from workbench.cli import app
from workbench.errors import OutputPathError
from workbench.project import atomic_write_bytes, writable_target


def _special_files(tmp_path: Path) -> list[tuple[str, Path]]:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sock = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    server.close()
    found = [("a FIFO (named pipe)", fifo), ("a socket", sock), ("a folder", tmp_path)]
    if os.geteuid() == 0:  # only root may make a device node; it is a copy of /dev/null's, in a temporary folder
        device = tmp_path / "null"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        found.append(("a character device", device))
    return found


def test_what_is_not_a_regular_file_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    for kind, path in _special_files(tmp_path):
        before = path.lstat()
        with pytest.raises(OutputPathError, match=re.escape(f"is {kind}, not a regular file")):
            atomic_write_bytes(path, b"<html></html>")
        after = path.lstat()
        assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino), kind


def test_a_link_is_followed_and_its_target_written_the_link_kept(tmp_path: Path) -> None:
    target = tmp_path / "real" / "report.html"
    target.parent.mkdir()
    target.write_text("old", encoding="utf-8")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"new"
    dangling = tmp_path / "dangling.html"
    dangling.symlink_to(tmp_path / "real" / "not-yet.html")
    atomic_write_bytes(dangling, b"made")
    assert dangling.is_symlink() and (tmp_path / "real" / "not-yet.html").read_bytes() == b"made"


def test_a_link_to_a_device_is_refused_naming_both(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "page.html"
    link.symlink_to(fifo)
    with pytest.raises(OutputPathError, match=r"page\.html \(a link to .*fifo\) is a FIFO"):
        writable_target(link)
    assert link.is_symlink()


def test_report_refuses_a_fifo_before_reading_anything(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", link_venv=False)  # no snapshot: the path is checked first
    fifo = tmp_path / "fifo.html"
    os.mkfifo(fifo)
    result = CliRunner().invoke(app, ["-C", str(project.root), "report", "--html", str(fifo)])
    assert result.exit_code == 2 and "is a FIFO (named pipe), not a regular file" in result.stderr
    assert "Traceback" not in result.output and stat.S_ISFIFO(fifo.lstat().st_mode)
