"""The workbench's commands as library calls: each one opens what it needs, runs its stage, returns a result.

The CLI only parses options, calls one of these and prints what comes back; tests and scripts call them too.
Commands that change shared state (push, pull, release) hold the project lock, so two at once cannot collide.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench import release, server
from workbench.articles import Corpus, read_corpus
from workbench.build import Build, RowBuilder, processes_for
from workbench.carry import preview_edit
from workbench.config import check_cluster_address
from workbench.errors import OutputPathError, ReleaseError, ReleaseMismatchError, UsageError
from workbench.labelstudio import LabelStudio
from workbench.labelstudio.accounts import AnnotatorLogin, create_annotator
from workbench.labelstudio.binding import bound_project
from workbench.pool import pool_keys
from workbench.preannotate import PreannotationSummary, preannotate
from workbench.project import Project, atomic_write_bytes, read_json, writable_target
from workbench.pull import PullResult, pull
from workbench.push import PushSummary, plan_for, push
from workbench.report import page, plots
from workbench.report.figures import Activity, RowShapes
from workbench.report.tables import Table, report_tables
from workbench.review import find, send
from workbench.snapshots import Snapshot, check_intact, iter_export, latest_snapshot
from workbench.train import TrainResult, list_models, train

Progress = Callable[[int], None]


def open_project(root: Path, config: Path | None = None) -> Project:
    """The project in folder `root`, with its config (configs/workbench.toml unless `config` names another)."""
    return Project.open(root, config)


def client_for(project: Project) -> LabelStudio:
    """A client for the server this project uses: LABEL_STUDIO_URL/API_KEY if set, else the local one."""
    conn = server.connection(project)
    return LabelStudio(conn.url, conn.api_key)


# ---- the local server ------------------------------------------------------------------------------------------


def server_start(project: Project, *, port: int | None = None) -> server.ServerInfo:
    return server.start(project, port=port)


def server_stop(project: Project) -> bool:
    return server.stop(project)


def server_status(project: Project) -> server.ServerStatus:
    return server.status(project)


def add_annotator(project: Project, email: str) -> tuple[AnnotatorLogin, str]:
    """An annotator account that can log in, and the URL to log in at."""
    conn = server.connection(project)
    return create_annotator(conn.url, conn.api_key, email), f"{conn.url}/user/login/"


# ---- the pipeline ----------------------------------------------------------------------------------------------


def do_preannotate(
    project: Project, *, model: str | None = None, cluster: str | None = None, progress: Progress | None = None
) -> tuple[Corpus, PreannotationSummary]:
    """Pre-annotate the seeds with the configured pipeline, or with `model` (a package or a pipeline folder, such
    as a model `workbench train` wrote) for this run; here, or on the Dask cluster at `cluster` (else
    `[model] cluster`, if set)."""
    if cluster:
        try:
            check_cluster_address(cluster)
        except ValueError as exc:
            raise UsageError(f"--cluster {exc}.") from None
    corpus = read_corpus(project.seeds_dir)
    if model:
        project = project.with_model(model)
    return corpus, preannotate(project, list(corpus.paragraphs()), cluster=cluster, progress=progress)


def do_push(
    project: Project,
    *,
    corpus: Corpus | None = None,
    next_n: int | None = None,
    retire_annotated: bool = False,
    progress: Progress | None = None,
) -> tuple[Corpus, PushSummary]:
    """Push the corpus (read from the seeds folder unless the caller has just read it); with `next_n`, only the
    `next_n` new paragraphs the model is least sure of; annotated paragraphs gone from the seeds are retired only
    with `retire_annotated`."""
    corpus = corpus or read_corpus(project.seeds_dir)
    with project.lock("workbench push"):
        return corpus, push(project, corpus, client_for(project), next_n=next_n, retire_annotated=retire_annotated,
                            progress=progress)  # fmt: skip


def do_pull(project: Project, *, full: bool = False) -> PullResult:
    """A new snapshot: the changes since the last pull merged into it, or (`full`) one export of everything."""
    with project.lock("workbench pull"):
        return pull(project, client_for(project), full=full)


@dataclass(frozen=True)
class RunResult:
    """What `workbench run` did and where annotators go next (the login only for the local server)."""

    corpus: Corpus
    preannotation: PreannotationSummary
    push: PushSummary
    url: str
    username: str | None
    password: str | None


def do_run(project: Project, *, progress: Progress | None = None) -> RunResult:
    """Start the local server (unless an external one is configured), pre-annotate and push."""
    local = server.external_connection() is None  # half of an external pair is refused here, before any start
    if local:
        server.start(project)
    corpus, summary = do_preannotate(project, progress=progress)
    _, pushed = do_push(project, corpus=corpus, progress=progress)
    username = password = None
    if local:
        credentials = read_json(project.credentials_file)
        username, password = credentials.get("username"), credentials.get("password")
    return RunResult(corpus, summary, pushed, pushed.project_url, username, password)


# ---- reports -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """The figures of the latest snapshot's build, with who annotated when and the shape of the rows."""

    snapshot: Snapshot
    build: Build
    activity: Activity
    shapes: RowShapes
    page: Path | None = None  # where the HTML page was written, when one was asked for

    def figures(self) -> dict[str, Any]:
        """What `workbench report --json` prints."""
        return {"snapshot": self.snapshot.as_dict(), **self.build.report(),
                "annotator_activity": self.activity.summary()}  # fmt: skip

    def tables(self) -> list[Table]:
        """What `workbench report` prints: every section of `figures()` as a table."""
        return report_tables(self.figures())


def do_report(project: Project, *, html: Path | None = None, progress: Progress | None = None) -> Report:
    """Build the latest snapshot's figures (nothing is written); with `html`, also write the report page there:
    one self-contained HTML file with the plots (the path is checked before the build, so a bad one is said at
    once)."""
    if html is not None:
        _check_writable(html)
    snapshot = latest_snapshot(project)
    check_intact(snapshot)  # figures of a snapshot edited after its pull could not be traced to Label Studio
    builder = RowBuilder.for_config(project.config, project.root)
    activity, shapes = Activity(), RowShapes()
    for row in builder.rows(_observed(snapshot.tasks_iter(), activity.add, progress),
                            processes=processes_for(snapshot.tasks)):  # fmt: skip
        shapes.add(row)
    report = Report(snapshot, builder.finish(), activity, shapes)
    if html is not None:
        report = dataclasses.replace(report, page=_write_page(project, report, html))
    return report


def _observed(tasks: Iterable[dict[str, Any]], observe: Callable[[dict[str, Any]], None],
              progress: Progress | None) -> Iterator[dict[str, Any]]:  # fmt: skip
    for task in tasks:
        observe(task)
        yield task
        if progress:
            progress(1)


def _check_writable(path: Path) -> None:
    """A file can be written at `path`, or OutputPathError saying why not (before any work is done). A link is
    judged by its target; a device, FIFO or socket is refused (see `writable_target`)."""
    if path.is_dir():
        why = "it is a folder"
    else:
        target = writable_target(path)
        if not target.parent.is_dir():
            why = "the folder does not exist"
        elif not os.access(target.parent, os.W_OK):
            why = "the folder is not writable"
        elif target.exists() and not os.access(target, os.W_OK):
            why = "the file exists and is not writable"
        else:
            return
    raise OutputPathError(
        f"The report page cannot be written to {path}: {why}. Name a file in a folder you can write to, "
        "e.g. `workbench report --html report.html`."
    )


def _write_page(project: Project, report: Report, path: Path) -> Path:
    manifests = []
    for entry in release.list_releases(project.releases_dir):
        if not entry.get("problem"):
            try:
                manifests.append(release.read_manifest(project.releases_dir, entry["version"]))
            except ReleaseError:
                continue  # `workbench releases` names an unreadable release; the page shows the others
    sections = page.plan(report.figures(), report.activity, report.shapes, manifests, project.config.labels)
    images = {chart.key: plots.draw(chart) for chart in page.charts_of(sections)}
    snap = report.snapshot
    subtitle = (f"Snapshot {snap.path.name}, pulled {snap.pulled_at} from Label Studio {snap.label_studio_version} "
                f"(project {snap.project_id}): {report.build.tasks} tasks, {report.build.row_count} rows.")  # fmt: skip
    text = page.render(f"{project.config.dataset}: report", subtitle, sections, images)
    try:
        atomic_write_bytes(path, text.encode("utf-8"))
    except OSError as exc:
        raise OutputPathError(
            f"The report page could not be written to {path} ({exc.strerror or exc}). Check the folder's "
            "permissions and free space, or name another file."
        ) from None
    return path


# ---- models ----------------------------------------------------------------------------------------------------


def do_train(
    project: Project, version: str, *, force: bool = False, on_evaluation: Callable[[int, float], None] | None = None
) -> TrainResult:
    """Train a spaCy NER pipeline on release `version` into models/<dataset>/<version>/."""
    with project.lock("workbench train"):
        return train(project, version, force=force, on_evaluation=on_evaluation)


def models(project: Project) -> list[dict[str, Any]]:
    return list_models(project)


# ---- review -----------------------------------------------------------------------------------------------------


def do_review(
    project: Project,
    *,
    push: bool = False,
    progress: Progress | None = None,
    on_fold: Callable[[int, int], None] | None = None,
) -> tuple[find.ReviewResult, send.FlagSummary | None]:
    """The likely mistakes in the latest snapshot; with `push`, flagged in Label Studio for a second look."""
    with project.lock("workbench review"):
        result = find.review(project, progress=progress, on_fold=on_fold)
        return result, send.push_flags(project, client_for(project), result) if push else None


# ---- releases --------------------------------------------------------------------------------------------------


def do_release(project: Project, version: str, *, progress: Progress | None = None) -> release.ReleaseResult:
    """Cut release `version` from the latest snapshot into exports/<dataset>/<version>/."""
    return release.cut(project, version, progress=progress)


def verify(project: Project, version: str) -> None:
    """Recompute every checksum of a release; ReleaseMismatchError naming each file that differs."""
    problems = release.verify_release(project.releases_dir, version)
    if problems:
        raise ReleaseMismatchError(version, problems)


def diff(project: Project, a: str, b: str) -> dict[str, Any]:
    return release.diff_releases(project.releases_dir, a, b)


def releases(project: Project) -> list[dict[str, Any]]:
    return release.list_releases(project.releases_dir)


# ---- progress --------------------------------------------------------------------------------------------------


def task_status(project: Project) -> dict[str, Any]:
    """Live progress of the labeling project: tasks total, annotated, skipped, and per annotator; and what
    changed in the seeds since the last push (what the next push will do)."""
    client = client_for(project)
    project_id = bound_project(project, client)
    corpus = read_corpus(project.seeds_dir)
    plan, pushed = plan_for(project, corpus, client, project_id)
    previews = [preview_edit(client, update) for update in plan.edited]
    live = [task for task in pushed if not task.retired]
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
            if task["data"].get("retired"):
                totals["retired"] += 1
                continue
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
        "tasks": {key: totals.get(key, 0) for key in ("total", "annotated", "skipped", "remaining", "retired")},
        "annotators": {who: dict(counts) for who, counts in sorted(per_annotator.items())},
        "corpus_changes": plan.counts() | {
            "spans_carried": sum(p.moved for p in previews),
            "to_recheck": sum(1 for p in previews if p.held),
            "renamed": dict(plan.renamed),
            "retiring_annotated": dict(sorted(plan.retiring_annotated.items())),
        },
        "notes": corpus_notes(corpus),
        "pool": {
            "paragraphs": pooled_paragraphs(project, corpus),
            "in_label_studio": len(live),
            "annotated": sum(1 for task in live if task.submitted),
            "waiting": len(plan.imports),
        },
    }


def pooled_paragraphs(project: Project, corpus: Corpus) -> int:
    """How many of the seeds' paragraphs the pool holds a pre-annotation of."""
    held = pool_keys(project.preannotations_file)
    return sum(1 for paragraph in corpus.paragraphs() if paragraph.text_key in held)


def corpus_notes(corpus: Corpus) -> list[str]:
    """What a user should know about the seeds folder that is not an error."""
    notes = [f"article {duplicate} repeats {original} word for word; it was not imported."
             for duplicate, original in corpus.duplicates]  # fmt: skip
    notes += [f"{name} in the seeds folder is not read: only .txt files are articles." for name in corpus.ignored]
    return notes


def _who(completed_by: Any, emails: dict[int, str]) -> str:
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return emails.get(completed_by, f"user {completed_by}") if isinstance(completed_by, int) else "unknown"
