"""The snapshot store: the project's every task as Label Studio exported it, under `.workbench/snapshots/`.

A snapshot is `<time>.json` and `<time>.meta.json` (where and when it came from, its sha256, the server time it
is complete up to). A snapshot counts once both are in place, and every snapshot holds the whole project: an
incremental pull writes the previous one with the changed tasks replaced (see `pull`), so a release always reads
one complete file. Pulls write the `lines` layout: a JSON list with one task per line, each task's JSON exactly as
exported (every key and value but the ages in words, `VOLATILE`) in one canonical form, `{"id":N,` first and the
other keys sorted, tasks in id order; the same tasks give the same bytes, however and whenever they were pulled.
Older snapshots (the export as the server sent it) are read as they are. Tasks are streamed and checked one by
one, so memory does not grow with the project.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import SnapshotError
from workbench.project import Project, atomic_write_json, file_sha256, read_json


@dataclass(frozen=True)
class Snapshot:
    """A pulled export and what is known about where it came from."""

    path: Path
    sha256: str
    pulled_at: str
    project_id: int
    label_studio_version: str
    tasks: int
    layout: str = ""  # LINES, or "" for an export kept as the server sent it (older pulls, hand-made files)
    watermark: str = ""  # the server's time when the export began: every change stamped earlier is in here
    project_created_at: str = ""  # which project, beyond its id (a project made again gets the same id)
    max_task_id: int = 0
    kind: str = "full"  # or "incremental": the snapshot `base` with the tasks changed since replaced
    base: str = ""
    changes: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def meta_path(self) -> Path:
        return meta_path_for(self.path)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "sha256": self.sha256,
            "pulled_at": self.pulled_at,
            "project_id": self.project_id,
            "label_studio_version": self.label_studio_version,
            "tasks": self.tasks,
            "layout": self.layout,
            "watermark": self.watermark,
            "project_created_at": self.project_created_at,
            "max_task_id": self.max_task_id,
            "kind": self.kind,
            "base": self.base,
            "changes": self.changes,
        }

    def tasks_iter(self) -> Iterator[dict[str, Any]]:
        """Stream the snapshot's tasks, checked one by one; memory does not grow with the project."""
        return iter_export(self.path)


def meta_path_for(path: Path) -> Path:
    return path.with_name(path.stem + ".meta.json")


def snapshot_path(project: Project, pulled_at: str) -> Path:
    """Where the snapshot pulled at `pulled_at` (ISO 8601, UTC) lives: its name sorts by time."""
    return project.snapshots_dir / f"{pulled_at.replace(':', '').replace('.', '-')}.json"


def note_unstamped(project: Project, what: str) -> None:
    """Record that tasks changed in a way Label Studio does not stamp on them (`updated_at` stays), such as its
    bulk predictions import: the next pull cannot find them by their stamp, so it exports every task."""
    path = _unstamped_path(project)
    before = unstamped(project)
    atomic_write_json(path, {"what": f"{before}; {what}" if before else what})


def unstamped(project: Project) -> str:
    """What changed unstamped since the last full pull ("" if nothing did)."""
    try:
        return str(read_json(_unstamped_path(project)).get("what") or "")
    except (OSError, ValueError, AttributeError):
        return "" if not _unstamped_path(project).exists() else "tasks changed without Label Studio stamping them"


def clear_unstamped(project: Project) -> None:
    """A full export holds every task as it is now: nothing unstamped is left to fetch."""
    _unstamped_path(project).unlink(missing_ok=True)


def _unstamped_path(project: Project) -> Path:
    return project.state_dir / "unstamped-changes.json"


def latest_snapshot(project: Project) -> Snapshot:
    """The snapshot the latest pull recorded, with its record: what release, review and report read.

    The newest name among the exports, their records and the latest pull's note (`record_latest`) is the one to
    read; if its export or its record is gone or unreadable, that is an error naming it, never a silent step back
    to an older snapshot (whose release would lack the newest annotations)."""
    folder = project.snapshots_dir
    names = _snapshot_names(project)
    if not names:
        raise SnapshotError(
            f"There is no snapshot in {folder} yet. Run `workbench pull` to fetch the annotations first."
        )
    path = folder / f"{names[-1]}.json"
    meta = meta_path_for(path)
    if not path.is_file():
        raise SnapshotError(
            f"The newest snapshot {path.name} is missing from {folder} (its record {meta.name} or the latest "
            f"pull's note names it), so building from the one before it would silently leave out the newest "
            f"annotations. Run `workbench pull` for a new snapshot."
        )
    try:
        return read_snapshot(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        why = "is missing" if isinstance(exc, FileNotFoundError) else f"cannot be read ({type(exc).__name__}: {exc})"
        raise SnapshotError(
            f"The record of the newest snapshot {path.name}, {meta.name}, {why}, so where the snapshot came from "
            f"and whether it is intact cannot be checked. Run `workbench pull` for a new snapshot (or move "
            f"{path.name} out of {folder} to build from the one before it)."
        ) from None


def newest_on_disk(project: Project) -> Snapshot | None:
    """The newest snapshot in the folder, if its export and record are both readable; else None. What an
    incremental pull may build on: a damaged newest one means a full export, and a newest one removed whole means
    building on the one before it (more tasks fetched, never a different result)."""
    names = _snapshot_names(project, noted=False)
    if not names:
        return None
    path = project.snapshots_dir / f"{names[-1]}.json"
    try:
        return read_snapshot(path) if path.is_file() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_latest(project: Project, snapshot: Snapshot) -> None:
    """Note which snapshot the latest pull wrote, once it is in place (see `latest_snapshot`)."""
    atomic_write_json(_latest_path(project), {"snapshot": snapshot.path.name, "sha256": snapshot.sha256})


def _latest_path(project: Project) -> Path:
    return project.state_dir / "latest-snapshot.json"


def _snapshot_names(project: Project, *, noted: bool = True) -> list[str]:
    """Every snapshot name (a file stem, which sorts by time) that an export, a record or (`noted`) the latest
    pull's note gives, oldest first."""
    folder = project.snapshots_dir
    names = set()
    for path in folder.glob("*.json") if folder.is_dir() else []:
        names.add(path.name.removesuffix(".meta.json").removesuffix(".json"))
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError, KeyError):
        if noted:
            names.add(str(read_json(_latest_path(project))["snapshot"]).removesuffix(".json"))
    return sorted(name for name in names if name)


def read_snapshot(path: Path) -> Snapshot:
    """The snapshot at `path` with its record; OSError, ValueError, KeyError or TypeError if that cannot be read."""
    record = read_json(meta_path_for(path))
    return Snapshot(
        path=path,
        sha256=str(record["sha256"]),
        pulled_at=str(record["pulled_at"]),
        project_id=int(record["project_id"]),
        label_studio_version=str(record["label_studio_version"]),
        tasks=int(record["tasks"]),
        layout=str(record.get("layout") or ""),
        watermark=str(record.get("watermark") or ""),
        project_created_at=str(record.get("project_created_at") or ""),
        max_task_id=int(record.get("max_task_id") or 0),
        kind=str(record.get("kind") or "full"),
        base=str(record.get("base") or ""),
        changes=dict(record.get("changes") or {}),
    )


def check_intact(snapshot: Snapshot) -> None:
    """The snapshot file is byte for byte what was pulled: its sha256 is the one recorded at pull."""
    try:
        digest = file_sha256(snapshot.path)
    except OSError as exc:
        raise SnapshotError(
            f"The snapshot {snapshot.path} cannot be read ({exc.strerror}). Run `workbench pull` for a new one."
        ) from None
    _check_digest(snapshot, digest)


def check_digest(snapshot: Snapshot, digest: str) -> None:
    """SnapshotError, as `check_intact` raises it, if `digest` (the file's sha256) is not the one recorded."""
    _check_digest(snapshot, digest)


def _check_digest(snapshot: Snapshot, digest: str) -> None:
    if digest != snapshot.sha256:
        raise SnapshotError(
            f"The snapshot {snapshot.path} was changed after it was pulled (its sha256 is {digest[:12]}..., the "
            f"pull recorded {snapshot.sha256[:12]}...), so a release built from it could not be traced to Label "
            "Studio. Run `workbench pull` for a fresh snapshot and release from that."
        )


def checked_lines(snapshot: Snapshot) -> Iterator[bytes]:
    """The task lines of a `lines` snapshot (see `iter_lines`), its sha256 checked on the way: SnapshotError, as
    `check_intact` raises it, once the last line is read, if the file is not what was pulled."""
    digest = hashlib.sha256()
    yield from iter_lines(snapshot.path, digest)
    _check_digest(snapshot, digest.hexdigest())


def iter_export(path: Path) -> Iterator[dict[str, Any]]:
    """Stream the tasks of an export file, checking each one's shape and naming the first thing wrong."""
    try:
        with path.open("rb") as handle:
            yield from iter_tasks(iter(lambda: handle.read(_READ_BYTES), b""), path.name)
    except OSError as exc:
        raise SnapshotError(f"The export {path.name} cannot be read ({exc.strerror or exc}). {_AGAIN}") from None


def iter_tasks(chunks: Iterable[bytes], name: str) -> Iterator[dict[str, Any]]:
    """The tasks of an export (a JSON list of tasks) as its bytes arrive in `chunks`, each parsed and checked as
    soon as it is whole: one parse, memory per task, not per export; `name` names the export in errors."""
    for position, task in enumerate(_json_items(chunks, name)):
        yield checked_task(task, position, Path(name))


_READ_BYTES = 1 << 20
_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def _json_items(chunks: Iterable[bytes], name: str) -> Iterator[Any]:
    """The items of a JSON list whose bytes arrive in `chunks`, decoded one by one (`json`'s C scanner on a
    window of the text, refilled as it runs out; a value cut at the window's end is decoded again with more)."""
    source = iter(chunks)
    utf8 = codecs.getincrementaldecoder("utf-8")()
    text, at, ended, consumed = "", 0, False, 0

    def fill(least: int = _READ_BYTES) -> bool:
        """Add at least `least` more characters (or the rest) to the window; False once nothing is left."""
        nonlocal text, at, ended, consumed
        if ended:
            return False
        consumed += at
        parts, size = [text[at:]], 0
        while size < least:
            chunk = next(source, None)
            try:
                part = utf8.decode(chunk or b"", final=chunk is None)
            except UnicodeDecodeError as exc:
                raise _not_json(name, f"not UTF-8: {exc.reason}") from None
            parts.append(part)
            size += len(part)
            if chunk is None:
                ended = True
                break
        text, at = "".join(parts), 0
        return True

    def next_char() -> str:
        nonlocal at
        while True:
            at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
            if at < len(text):
                return text[at]
            if not fill():
                return ""

    first = next_char()
    if first != "[":
        if first == "":
            raise _not_json(name, "it is empty")
        raise SnapshotError(f"The export {name} is not a list of tasks. Run `workbench pull` again against a "
                            "Label Studio server.")  # fmt: skip
    at += 1
    if next_char() == "]":
        at += 1
    else:
        while True:
            while True:  # one item: decoded again with a larger window while it runs past the window's end
                try:
                    item, end = _DECODER.raw_decode(text, at)
                except json.JSONDecodeError as exc:
                    if not fill(max(len(text) - at, _READ_BYTES)):
                        raise _not_json(name, f"{exc.msg} at character {consumed + exc.pos:,}") from None
                    continue
                if end < len(text) or ended:
                    break
                fill()  # a number could go on in the next chunk; a task cannot, but the list may hold anything
            at = end
            yield item
            after = next_char()
            if after == "]":
                at += 1
                break
            if after != ",":
                raise _not_json(name, f"expected ',' or ']' at character {consumed + at:,}")
            at += 1
            next_char()
    if next_char() != "":
        raise _not_json(name, f"more data after the list at character {consumed + at:,}")


def _not_json(name: str, why: str) -> SnapshotError:
    return SnapshotError(
        f"The export {name} is not valid JSON ({why}). Run `workbench pull` again; if it repeats, check the Label "
        "Studio server log."
    )


def checked_task(task: Any, position: int, path: Path) -> dict[str, Any]:
    """`task` (number `position` of the file at `path`) if it has a Label Studio task's shape."""
    if not isinstance(task, dict) or "id" not in task or not isinstance(task.get("data"), dict):
        raise SnapshotError(
            f"Task #{position} of the export {path.name} has no id or data, so it is not a Label Studio "
            "task. Run `workbench pull` again against a Label Studio server."
        )
    for field in ("annotations", "predictions"):
        if not isinstance(task.get(field, []), list):
            raise SnapshotError(
                f"Task {task['id']} of the export {path.name} has malformed {field} (not a list). "
                "Run `workbench pull` again; if it repeats, the export is broken on the server."
            )
    return task


# ---- the lines layout ----------------------------------------------------------------------------------------

LINES = "lines/1"
_HEAD, _SEPARATOR, _TAIL = b"[\n", b",\n", b"\n]\n"
_LINE_ID = re.compile(rb'\{"id":(-?[0-9]+)[,}]')


# What an export says that is not about the task: Label Studio writes each prediction's (annotation's, draft's) age
# as words ("9 minutes"), worked out from its `created_at` (kept) at the moment of the export, so the same task would
# read differently in every export.
VOLATILE = {"predictions": "created_ago", "annotations": "created_ago", "drafts": "created_ago"}


def task_line(task: dict[str, Any]) -> bytes:
    """A task's JSON in the one form a `lines` snapshot holds: on one line, `{"id":N,` first, every other key
    sorted (at every depth), no spaces, non-ASCII as is. Every key and value is kept but the VOLATILE ages; equal
    tasks give equal bytes, whenever they were exported."""
    task_id = task["id"]
    if not isinstance(task_id, int) or isinstance(task_id, bool):
        raise SnapshotError(
            f"A task of the export has the id {task_id!r}, not a number, so it is not a Label Studio task. Run "
            "`workbench pull` again against a Label Studio server."
        )
    rest = {k: v for k, v in task.items() if k != "id"}
    for field, volatile in VOLATILE.items():
        if isinstance(rest.get(field), list):
            rest[field] = [{k: v for k, v in item.items() if k != volatile} if isinstance(item, dict) else item
                           for item in rest[field]]  # fmt: skip
    try:
        body = json.dumps(rest, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (a broken UTF-16 pair) stays as its \u escape
        body = json.dumps(rest, sort_keys=True, separators=(",", ":")).encode("ascii")
    return b'{"id":%d' % task_id + (b"," + body[1:] if body != b"{}" else b"}")


def line_id(line: bytes) -> int:
    """The task id at the head of a `task_line`."""
    found = _LINE_ID.match(line)
    if not found:
        raise ValueError("not a task line")
    return int(found[1])


def iter_lines(path: Path, digest: Any = None) -> Iterator[bytes]:
    """The task lines of a `lines` snapshot, in order, each without its separator (see `task_line`); every byte
    read goes into `digest` (a hashlib object), if given."""
    with path.open("rb") as handle:
        head = handle.readline()
        if digest is not None:
            digest.update(head)
        if head != _HEAD:
            raise SnapshotError(f"The snapshot {path.name} is not in the lines layout its record names. {_AGAIN}")
        for raw in handle:
            if digest is not None:
                digest.update(raw)
            line = raw.rstrip(b"\n")
            if line == b"]":
                if digest is not None:
                    digest.update(handle.read())
                return
            yield line[:-1] if line.endswith(b",") else line
        raise SnapshotError(f"The snapshot {path.name} ends before its closing bracket. {_AGAIN}")


def iter_placed_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """`iter_lines`, each line with the byte offset it starts at (for `lines_at`)."""
    offset = len(_HEAD)
    with path.open("rb") as handle:
        if handle.readline() != _HEAD:
            raise SnapshotError(f"The snapshot {path.name} is not in the lines layout its record names. {_AGAIN}")
        for raw in handle:
            line = raw.rstrip(b"\n")
            if line == b"]":
                return
            yield offset, line[:-1] if line.endswith(b",") else line
            offset += len(raw)
        raise SnapshotError(f"The snapshot {path.name} ends before its closing bracket. {_AGAIN}")


def lines_at(path: Path, offsets: Iterable[int]) -> Iterator[bytes]:
    """The task lines of a `lines` snapshot that start at `offsets` (as `iter_placed_lines` gives them)."""
    with path.open("rb") as handle:
        for offset in offsets:
            handle.seek(offset)
            line = handle.readline().rstrip(b"\n")
            yield line[:-1] if line.endswith(b",") else line


_AGAIN = "Run `workbench pull --full` for a fresh snapshot."


class LinesWriter:
    """Writes a `lines` snapshot task by task, counting the tasks and hashing the bytes on the way: a megabyte at a
    time, hashed and written by a thread while the next one is gathered (hashlib and the file let go of the GIL)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.tasks = 0
        self.max_id = 0
        self.offset = 0  # bytes written so far
        self._digest = hashlib.sha256()
        self._pending: list[bytes] = []
        self._size = 0
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="snapshot-writer")
        self._last: Future[None] | None = None
        self._write(_HEAD)

    def add(self, line: bytes, task_id: int) -> None:
        if self.tasks:
            self._write(_SEPARATOR)
        self._write(line)
        self.tasks += 1
        self.max_id = max(self.max_id, task_id)

    def close(self) -> str:
        """End the list, once every byte is written; return the file's sha256."""
        self._write(_TAIL if self.tasks else b"]\n")
        try:
            self._flush()
            if self._last is not None:
                self._last.result()
        finally:
            self._worker.shutdown()
        return self._digest.hexdigest()

    def _write(self, data: bytes) -> None:
        self._pending.append(data)
        self._size += len(data)
        self.offset += len(data)
        if self._size >= _BLOCK:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        block = b"".join(self._pending)
        self._pending, self._size = [], 0
        if self._last is not None:
            self._last.result()  # one block in the thread at most (and its failure raised here)
        self._last = self._worker.submit(self._store, block)

    def _store(self, block: bytes) -> None:
        self._digest.update(block)
        self.handle.write(block)


_BLOCK = 1 << 20
