"""Where a workbench project keeps things on disk, and the small file helpers every stage shares.

Local state (server data, credentials, snapshots, pre-annotations) lives under `.workbench/`, which git ignores.
Releases live under `exports/<dataset>/<version>/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from filelock import FileLock, Timeout

from workbench.config import DEFAULT_CONFIG, Config, load_config
from workbench.errors import BusyError, OutputPathError

# One lock object per lock file in this process: FileLock counts nested acquisitions by the same thread, so a job
# that holds the project lock for several stages (the model backend's training job) runs each stage's own
# `lock(...)` without waiting on itself; another thread or process still waits or is refused.
_LOCKS: dict[Path, FileLock] = {}


@dataclass(frozen=True)
class Project:
    """A project folder and its validated config."""

    root: Path
    config: Config

    def with_model(self, name: str) -> Project:
        """The same project, pre-annotating with pipeline `name` (a package, or a folder relative to the root)."""
        model = self.config.model.model_copy(update={"name": name})
        return Project(root=self.root, config=self.config.model_copy(update={"model": model}))

    @classmethod
    def open(cls, root: Path | str = ".", config_path: Path | str | None = None) -> Project:
        root = Path(root).resolve()
        path = Path(config_path) if config_path else root / DEFAULT_CONFIG
        return cls(root=root, config=load_config(path))

    @property
    def state_dir(self) -> Path:
        return self.root / ".workbench"

    @property
    def seeds_dir(self) -> Path:
        return self.root / self.config.seeds

    @property
    def credentials_file(self) -> Path:
        return self.state_dir / "labelstudio.json"

    @property
    def server_dir(self) -> Path:
        return self.state_dir / "labelstudio"

    @property
    def snapshots_dir(self) -> Path:
        return self.state_dir / "snapshots"

    @property
    def preannotations_file(self) -> Path:
        return self.state_dir / "preannotations.parquet"

    @property
    def seed_index_file(self) -> Path:
        """The seeds folder's index (`articles.SeedIndex`): local state, rebuilt from the seeds when missing."""
        return self.state_dir / "seed-index.arrow"

    @property
    def project_file(self) -> Path:
        """Which Label Studio project (on which server) this workbench project pushes to."""
        return self.state_dir / "project.json"

    @property
    def models_dir(self) -> Path:
        """Trained models, one folder per release they were trained on (git-ignored)."""
        return self.root / "models" / self.config.dataset

    @property
    def releases_dir(self) -> Path:
        return self.root / self.config.exports / self.config.dataset

    @property
    def labelstudio_bin(self) -> Path:
        return self.root / ".venv-labelstudio" / "bin" / "label-studio"

    def git_commit(self) -> str:
        """The project's git commit, with `+dirty` when the work tree has changes; empty outside git."""
        try:
            head = _git(self.root, "rev-parse", "HEAD")
            dirty = _git(self.root, "status", "--porcelain", "--untracked-files=no")
        except (OSError, subprocess.SubprocessError):
            return ""
        return head + ("+dirty" if dirty else "")

    @contextlib.contextmanager
    def lock(self, what: str, timeout: float = 0) -> Iterator[None]:
        """Hold the project lock so two commands never write the same state at once (held again by the same
        thread, as the training job's stages do, it is held once)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "workbench.lock"
        holder = path.with_name("workbench.lock.holder")  # not the lock file: acquiring may truncate that
        lock = _LOCKS.setdefault(path, FileLock(path))
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            try:
                other = f" (`{holder.read_text(encoding='utf-8').strip()}`)"
            except (OSError, UnicodeDecodeError):
                other = ""
            raise BusyError(
                f"Another workbench command is running on this project{other}, so `{what}` did not start. Wait "
                f"for it to finish and run `{what}` again (the lock is {path}; it is released when that command "
                "ends, even if it is killed)."
            ) from None
        try:
            if lock.lock_counter == 1:  # a nested acquisition leaves the outer holder's name
                with contextlib.suppress(OSError):
                    holder.write_text(f"{what}, pid {os.getpid()}", encoding="utf-8")
            yield
        finally:
            lock.release()


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a file so readers see the old content or the new, never half of it.

    A symbolic link is followed and its target written (the link stays a link); a path that exists and is not a
    regular file (a device, a FIFO, a socket, a folder) is refused with OutputPathError, never replaced."""
    path = writable_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def writable_target(path: Path) -> Path:
    """The file a write to `path` lands in: the target of a symbolic link (followed to the end), or `path` itself;
    OutputPathError if something that is not a regular file is there, which an atomic rename would replace."""
    target = Path(os.path.realpath(path))
    try:
        found = target.stat()
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OutputPathError(f"{path} cannot be checked ({exc.strerror or exc}); name another file.") from None
    if not stat.S_ISREG(found.st_mode):
        kind = _kind_of(found.st_mode)
        shown = f"{path} (a link to {target})" if target != Path(os.path.abspath(path)) else str(path)
        raise OutputPathError(
            f"{shown} is {kind}, not a regular file, so the workbench will not write over it. Name a regular file, "
            "e.g. report.html."
        )
    return target


def _kind_of(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return kind
    return "a special file"


def atomic_write_json(path: Path, value: Any, mode: int = 0o644) -> None:
    atomic_write_bytes(path, (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), mode)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in blocks so a large snapshot or parquet file costs no memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10)
    return done.stdout.strip()


# ---- temporary files and folders -----------------------------------------------------------------------------

# `.name.tmp-<pid>`, and `.name.<pid>.tmp` as pulls and pre-annotation named them before.
_TEMP = re.compile(r"\..+\.(?:tmp-(?P<pid>[0-9]+)|(?P<older>[0-9]+)\.tmp)")


def _running(pid: int) -> bool:
    """The process exists and has not exited (a zombie has; whoever launched it reaps it)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def temp_path(final: Path) -> Path:
    """A hidden `.<name>.tmp-<pid>` beside `final`: written first, renamed to `final` in one step when complete."""
    return final.with_name(f".{final.name}.tmp-{os.getpid()}")


def remove_stale_temps(folder: Path) -> None:
    """Delete temporary files and folders (see `temp_path`) left in `folder` by a command that was killed.

    A temp is stale once its process is gone; one of this process is left over from an earlier call that failed
    (commands hold the project lock, so nothing else of this process writes there now)."""
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        match = _TEMP.fullmatch(child.name)
        pid = int(match["pid"] or match["older"]) if match else 0
        if match and (pid == os.getpid() or not _running(pid)):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)

