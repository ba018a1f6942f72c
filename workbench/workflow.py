"""The workbench's commands as library calls: each one opens what it needs, runs its stage, returns a result.

The CLI only parses options, calls one of these and prints what comes back; tests and scripts call them too.
Commands that change shared state (push, pull, release) hold the project lock, so two at once cannot collide.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from workbench import __version__, server
from workbench.articles import Corpus, read_corpus
from workbench.build import PARALLEL_MIN_TASKS, Build, RowBuilder
from workbench.errors import ReleaseError
from workbench.labelstudio import LabelStudio
from workbench.parallel import choose_processes
from workbench.preannotate import PreannotationSummary, load_ner_pipeline, preannotate
from workbench.project import Project, read_json
from workbench.pull import Snapshot, check_same_project, iter_export, latest_snapshot, pull, recorded_project_id
from workbench.push import PushSummary, push
from workbench.release import ReleaseContext, check_new_version, prepare_release, write_release

Progress = Callable[[int], None]
T = TypeVar("T")


def client_for(project: Project) -> LabelStudio:
    """A client for the server this project uses: LABEL_STUDIO_URL/API_KEY if set, else the local one."""
    conn = server.connection(project)
    return LabelStudio(conn.url, conn.api_key)


def do_preannotate(project: Project, *, progress: Progress | None = None) -> tuple[Corpus, PreannotationSummary]:
    corpus = read_corpus(project.seeds_dir)
    return corpus, preannotate(project, list(corpus.paragraphs()), progress=progress)


def do_push(project: Project, *, corpus: Corpus | None = None, progress: Progress | None = None) -> PushSummary:
    """Push the corpus (read from the seeds folder unless the caller has just read it)."""
    corpus = corpus or read_corpus(project.seeds_dir)
    with project.lock("workbench push"):
        return push(project, list(corpus.paragraphs()), client_for(project), progress=progress)


def do_pull(project: Project) -> Snapshot:
    with project.lock("workbench pull"):
        return pull(project, client_for(project))


@dataclass(frozen=True)
class RunResult:
    """What `workbench run` did and where annotators go next."""

    corpus: Corpus
    preannotation: PreannotationSummary
    push: PushSummary
    url: str
    started: server.ServerInfo | None
    username: str | None
    password: str | None


def do_run(project: Project, *, progress: Progress | None = None) -> RunResult:
    """Start the local server (unless an external one is configured), pre-annotate and push."""
    started = None if _external() else server.start(project)
    corpus, summary = do_preannotate(project, progress=progress)
    pushed = do_push(project, corpus=corpus, progress=progress)
    username = password = None
    if not _external():
        credentials = read_json(project.credentials_file)
        username, password = credentials.get("username"), credentials.get("password")
    return RunResult(
        corpus=corpus,
        preannotation=summary,
        push=pushed,
        url=pushed.project_url,
        started=started,
        username=username,
        password=password,
    )


def _external() -> bool:
    return bool(os.environ.get("LABEL_STUDIO_URL") and os.environ.get("LABEL_STUDIO_API_KEY"))


def do_build(project: Project, snapshot: Snapshot | None = None) -> tuple[Snapshot, Build]:
    """Build rows and figures from a snapshot (the latest by default) without writing anything.

    Tokens come from the configured pipeline's tokenizer, so the dataset tokenizes as that model does.
    """
    snapshot = snapshot or latest_snapshot(project)
    builder, processes = _row_builder(project, snapshot)
    for _ in builder.rows(snapshot.tasks_iter(), processes=processes):
        pass
    return snapshot, builder.finish()


def _row_builder(project: Project, snapshot: Snapshot) -> tuple[RowBuilder, int]:
    """A builder with the configured pipeline's tokenizer, and how many processes the snapshot's size pays for."""
    nlp, model_version = load_ner_pipeline(project.config.model.name)
    builder = RowBuilder(project.config, nlp.tokenizer, model_version=model_version)
    return builder, choose_processes(snapshot.tasks, PARALLEL_MIN_TASKS)


@dataclass(frozen=True)
class ReleaseResult:
    path: Path
    snapshot: Snapshot
    build: Build


def do_release(project: Project, version: str, *, progress: Progress | None = None) -> ReleaseResult:
    """Cut release `version` from the latest snapshot into exports/<dataset>/<version>/.

    Rows stream from the snapshot through the build into the release's Arrow columns and are never all held as
    Python objects; the build's figures, known once every row has passed, go into the manifest."""
    config = project.config
    with project.lock("workbench release"):
        check_new_version(project.releases_dir, version)  # a bad version is said before minutes of work
        snapshot = latest_snapshot(project)
        builder, processes = _row_builder(project, snapshot)
        tasks = _counted(snapshot.tasks_iter(), progress)
        with contextlib.closing(builder.rows(tasks, processes=processes)) as rows:
            try:
                prepared = prepare_release(project.releases_dir, version, rows, config.labels, config.label_mapping)
            except ReleaseError:
                # What is wrong with the annotations says more than what is wrong with the release: read every
                # task (if the release was refused before the rows), then refuse for a bad region or no rows first.
                for _ in rows:
                    pass
                _refuse_empty(snapshot, builder.finish(), version)
                raise
        build = builder.finish()
        _refuse_empty(snapshot, build, version)
        ctx = ReleaseContext.from_config(
            config,
            version=version,
            snapshot_name=snapshot.path.name,
            snapshot_sha256=snapshot.sha256,
            snapshot_time=snapshot.pulled_at,
            labelstudio_version=snapshot.label_studio_version,
            labelstudio_project_id=snapshot.project_id,
            labelstudio_project_title=config.labelstudio.project_title,
            model_name=config.model.name,
            model_version=", ".join(build.model_versions),
            workbench_version=__version__,
            git_commit=git_commit(project.root),
            alignment_report=build.alignment.as_dict(),
            agreement=build.agreement,
            preannotation_quality=build.quality,
            excluded_no_annotation=build.excluded.get("no_annotation", 0),
            excluded_only_skipped=build.excluded.get("skipped", 0),
        )
        path = write_release(project.releases_dir, prepared, ctx)
    return ReleaseResult(path=path, snapshot=snapshot, build=build)


def _counted(items: Iterable[T], progress: Progress | None) -> Iterator[T]:
    """`items`, reporting each one read to `progress`."""
    for item in items:
        yield item
        if progress:
            progress(1)


def _refuse_empty(snapshot: Snapshot, build: Build, version: str) -> None:
    if not build.row_count:
        raise ReleaseError(
            f"The snapshot {snapshot.path.name} has no task with a submitted annotation "
            f"({build.tasks} tasks: {dict(build.excluded)}), so release {version} would be empty. Annotate "
            "in Label Studio, run `workbench pull`, then release."
        )


def git_commit(root: Path) -> str:
    """The project's git commit, with `+dirty` when the work tree has changes; empty outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if dirty else "")


def task_status(project: Project) -> dict[str, Any]:
    """Live progress of the labeling project: tasks total, annotated, skipped, and per annotator."""
    client = client_for(project)
    project_id = recorded_project_id(project)
    check_same_project(project, client, project_id)
    totals: Counter[str] = Counter()
    per_annotator: dict[str, Counter[str]] = defaultdict(Counter)
    emails = client.user_emails()
    with tempfile.TemporaryDirectory(dir=project.state_dir) as tmp:
        path = Path(tmp) / "status.json"
        client.export_to(project_id, path)
        for task in iter_export(path):
            totals["total"] += 1
            annotations = task.get("annotations", [])
            submitted = [a for a in annotations if not a.get("was_cancelled")]
            if submitted:
                totals["annotated"] += 1
            elif annotations:
                totals["skipped"] += 1
            else:
                totals["remaining"] += 1
            for annotation in annotations:
                who = _who(annotation.get("completed_by"), emails)
                per_annotator[who]["skipped" if annotation.get("was_cancelled") else "annotated"] += 1
    return {
        "project_id": project_id,
        "url": f"{client.url}/projects/{project_id}/data",
        "tasks": {key: totals.get(key, 0) for key in ("total", "annotated", "skipped", "remaining")},
        "annotators": {who: dict(counts) for who, counts in sorted(per_annotator.items())},
    }


def _who(completed_by: Any, emails: dict[int, str]) -> str:
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return emails.get(completed_by, f"user {completed_by}") if isinstance(completed_by, int) else "unknown"
