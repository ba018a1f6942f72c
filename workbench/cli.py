"""The `workbench` command line: parses options, calls one library function, prints the result.

Errors from the library arrive as `WorkbenchError`s and are printed as one paragraph, with a non-zero exit code
and no traceback.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from workbench import workflow
from workbench.errors import Interrupted, ServerNotRunning, UsageError, WorkbenchError
from workbench.project import Project

app = typer.Typer(
    help="Turn raw articles into a versioned NER dataset: spaCy pre-annotation, Label Studio, HF datasets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
server_app = typer.Typer(help="The local Label Studio server (127.0.0.1; SQLite under .workbench/, or PostgreSQL).")
annotators_app = typer.Typer(help="Annotator accounts on the Label Studio server.")
app.add_typer(server_app, name="server")
app.add_typer(annotators_app, name="annotators")

# Markup off: messages carry user data ("[labelstudio -> batch_size]", file names) that must print verbatim.
out = Console(soft_wrap=True, markup=False)
err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)
T = TypeVar("T")


class _State:
    root: Path = Path(".")
    config: Path | None = None
    quiet: bool = False


state = _State()


@app.callback()
def _options(
    project_dir: Annotated[Path, typer.Option("--project-dir", "-C", help="The project folder.")] = Path("."),
    config: Annotated[Path | None, typer.Option(help="Config file (default: configs/workbench.toml).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars (for scripts).")] = False,
) -> None:
    state.root, state.config, state.quiet = project_dir, config, quiet


def _guarded(action: Callable[[], T]) -> T:
    """Run a library call; turn a WorkbenchError into a one-paragraph message and its exit code."""
    try:
        return action()
    except WorkbenchError as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print(Text.assemble(("interrupted: ", "bold red"), "nothing half-written was kept; run it again."))
        raise typer.Exit(Interrupted.exit_code) from None


def _project() -> Project:
    return _guarded(lambda: workflow.open_project(state.root, state.config))


@contextmanager
def _progress(description: str, total: int | None = None) -> Iterator[Callable[[int], None] | None]:
    if state.quiet or not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.speed}/s"),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells wrap rather than being cut short, so a pipe or a narrow terminal loses nothing."""
    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


# --- server ---------------------------------------------------------------------------------------------------
@server_app.command("start")
def server_start(port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (default: a free one).")] = None):
    """Start the local Label Studio (or find it running) and mint an API token. Example: workbench server start"""
    project = _project()
    info = _guarded(lambda: workflow.server_start(project, port=port))
    verb = "started" if info.launched else "already running"
    out.print(f"Label Studio {verb} at {info.url} (pid {info.pid}, {info.seconds:.1f} s)")


@server_app.command("stop")
def server_stop():
    """Stop the local Label Studio. Example: workbench server stop"""
    project = _project()
    stopped = _guarded(lambda: workflow.server_stop(project))
    out.print("Label Studio stopped." if stopped else "Label Studio was not running.")


@server_app.command("status")
def server_status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """Show the local server's URL, version and health. Example: workbench server status --json"""
    project = _project()
    status = _guarded(lambda: workflow.server_status(project))
    if as_json:
        _print_json(status.as_dict())
    elif status.running:
        out.print(
            f"running at {status.url}, Label Studio {status.version}, healthy: {status.healthy} "
            f"({status.serving}, database {status.database})"
        )
    else:
        out.print("not running (start it with `workbench server start`)")
    if not status.running:
        raise typer.Exit(ServerNotRunning.exit_code)


# --- pipeline -------------------------------------------------------------------------------------------------
@app.command()
def preannotate(
    model: Annotated[
        str | None,
        typer.Option(help="A pipeline to use instead of [model] name: a package or a folder (a trained model)."),
    ] = None,
    cluster: Annotated[
        str | None, typer.Option(help="A Dask scheduler to run on, e.g. tcp://10.0.0.5:8786 (default: [model] cluster)")
    ] = None,
):
    """Pre-annotate the seed articles with the spaCy NER pipeline.

    Examples: workbench preannotate | workbench preannotate --model models/news-ner/0.2.0 |
    workbench preannotate --cluster tcp://10.0.0.5:8786
    """
    project = _project()
    with _progress("pre-annotating") as progress:
        corpus, summary = _guarded(
            lambda: workflow.do_preannotate(project, model=model, cluster=cluster, progress=progress)
        )
    _report_corpus(corpus)
    where = f" on the Dask cluster at {summary.cluster} ({summary.processes} workers)" if summary.cluster else ""
    out.print(
        f"{summary.paragraphs} paragraphs pre-annotated by {summary.model_version}{where} ({summary.annotated} new, "
        f"{summary.reused} reused), {summary.entities} entities; dropped labels outside the label set: "
        f"{dict(summary.dropped) or 'none'}"
    )


@app.command()
def push(
    next_n: Annotated[
        int | None,
        typer.Option("--next", min=1, help="Import only the N new paragraphs the model is least sure of."),
    ] = None,
):
    """Bring the labeling project to the seeds: new paragraphs imported with predictions, changes carried.

    Examples: workbench push | workbench push --next 200 (the pool keeps the rest)
    """
    project = _project()
    with _progress("importing tasks") as progress:
        corpus, summary = _guarded(lambda: workflow.do_push(project, next_n=next_n, progress=progress))
    _report_corpus(corpus)
    out.print(
        f"{summary.imported} tasks imported, {summary.already_there} already there "
        f"({summary.paragraphs} paragraphs) -> {summary.project_url}"
    )
    _report_changes(summary.changes, "pushed")
    if summary.left_in_pool:
        out.print(f"{summary.left_in_pool} new paragraphs wait in the pool (the most informative were sent)")
    if summary.changes.get("predictions_added"):
        out.print(f"{summary.changes['predictions_added']} tasks nobody has annotated got the predictions of "
                  f"{summary.model_version} (their older predictions stay)")  # fmt: skip


@app.command()
def pull(
    full: Annotated[bool, typer.Option("--full", help="Export every task, not only what changed since the last pull.")]
    = False,
):
    """Fetch the tasks changed since the last pull (or, the first time and with --full, every task) into a new
    complete snapshot. Example: workbench pull"""
    project = _project()
    with _progress("exporting and downloading"):  # no count to show: the server builds the export in one go
        result = _guarded(lambda: workflow.do_pull(project, full=full))
    for line in result.lines():
        out.print(line)


@app.command()
def release(
    version: Annotated[str, typer.Argument(help="A new semantic version (e.g. 0.1.0), or `verify`.")],
    verify_version: Annotated[str | None, typer.Argument(help="With `verify`: the version to check.")] = None,
):
    """Cut an immutable release from the latest snapshot, or verify one.

    Examples: workbench release 0.1.0 | workbench release verify 0.1.0
    """
    project = _project()
    if version == "verify":
        if not verify_version:
            _guarded(_missing_verify_version)
        _guarded(lambda: workflow.verify(project, str(verify_version)))
        out.print(f"release {verify_version}: every file matches its manifest checksum")
        return
    with _progress("building rows from tasks") as progress:
        result = _guarded(lambda: workflow.do_release(project, version, progress=progress))
    excluded = dict(result.build.excluded)
    out.print(
        f"Release {version}: {result.build.row_count} rows from {result.snapshot.path.name} -> {result.path}\n"
        f"not in the dataset: {excluded or 'none'}; load it with "
        f'datasets.load_dataset("{result.path}")'
    )
    if result.reused:
        out.print(f"{result.rebuilt} task(s) built, {result.reused} unchanged since the last release reused")
    if result.note:
        out.print(f"note: {result.note}")


def _missing_verify_version() -> None:
    raise UsageError("say which release to verify, e.g. `workbench release verify 0.1.0`.")


@app.command()
def train(
    version: Annotated[str, typer.Argument(help="The release to train on, e.g. 0.2.0.")],
    force: Annotated[bool, typer.Option(help="Replace a model already trained on this release.")] = False,
):
    """Train a spaCy NER pipeline on a release's train split and score it on its test split.

    The model goes to models/<dataset>/<VERSION>/ with a model card. Example: workbench train 0.2.0
    """
    project = _project()
    steps = project.config.train.max_steps
    with _progress("training (dev F1 at each evaluation)", total=steps) as progress:
        last = [0]

        def on_evaluation(step: int, score: float) -> None:
            if progress:
                progress(step - last[0])
            last[0] = step

        result = _guarded(lambda: workflow.do_train(project, version, force=force, on_evaluation=on_evaluation))
    table = _table("label", "base F1", "trained F1", "support", title=f"test split of release {version}")
    for label, base in result.base_scores.per_label.items():
        trained = result.trained.per_label[label]
        table.add_row(label, _score(base["f1"]), _score(trained["f1"]), str(base["support"]))
    table.add_row("all", _score(result.base_scores.f1), _score(result.trained.f1), "")
    out.print(table)
    out.print(
        f"{result.model_version} ({result.base}) -> {result.path}; trained on {result.paragraphs['train']} "
        f"paragraphs (dev {result.paragraphs['dev']}), scored on {result.paragraphs['test']} it never saw.\n"
        f"Pre-annotate with it: workbench preannotate --model {result.path}, then workbench push."
    )


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """List the trained models: release, base, test F1, size, date. Example: workbench models"""
    project = _project()
    found = _guarded(lambda: workflow.models(project))
    if as_json:
        _print_json(found)
        return
    if not found:
        out.print(f"no model yet in {project.models_dir} (train one with `workbench train VERSION`)")
        return
    table = _table("model version", "release", "base", "test F1", "base F1", "size", "trained")
    for entry in found:
        if entry.get("problem"):
            table.add_row(entry["path"], "unreadable", "-", "-", "-", "-", "-")
            continue
        table.add_row(
            entry["model_version"], entry["release"], entry["base"], _score(entry["f1"]), _score(entry["base_f1"]),
            f"{entry['size_bytes'] / 2**20:.1f} MB", entry["trained_at"],
        )  # fmt: skip
    out.print(table)


def _score(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


@app.command()
def run():
    """Start the local server, pre-annotate, push, and say where to annotate. Example: workbench run"""
    project = _project()
    with _progress("working") as progress:
        result = _guarded(lambda: workflow.do_run(project, progress=progress))
    _report_corpus(result.corpus)
    out.print(
        f"{result.preannotation.paragraphs} paragraphs from {len(result.corpus.articles)} articles, pre-annotated "
        f"by {result.preannotation.model_version}; {result.push.imported} tasks imported, "
        f"{result.push.already_there} already there."
    )
    _report_changes(result.push.changes, "pushed")
    out.print(Text.assemble(("\nAnnotate at ", "bold"), result.url))
    if result.username:
        # A password goes to a person at a terminal, never into a pipe, a CI log or a file.
        secret = result.password if sys.stdout.isatty() else f"(the password is in {project.credentials_file})"
        out.print(f"  log in as {result.username} / {secret}")
        out.print("  (add an account per annotator: workbench annotators add EMAIL)")
    out.print("When done: `workbench pull`, then `workbench release VERSION`. Stop the server: workbench server stop")


def _report_corpus(corpus: Any) -> None:
    for note in workflow.corpus_notes(corpus):
        err.print(Text.assemble(("note: ", "yellow"), note))


def _report_changes(changes: dict[str, Any], verb: str) -> None:
    """One line on what changed in the seeds since the last push (nothing when nothing did)."""
    moved = {k: changes.get(k, 0) for k in ("new", "edited", "renamed_articles", "retired", "moved", "restored")}
    if not any(moved.values()):
        return
    edited = f"{moved['edited']} edited ({changes.get('spans_carried', 0)} spans carried, " \
             f"{changes.get('to_recheck', 0)} to re-check)"  # fmt: skip
    out.print(
        f"seeds since the last push ({verb}): {moved['new']} new, {edited}, {moved['renamed_articles']} renamed "
        f"articles, {moved['retired']} retired, {moved['moved']} moved, {moved['restored']} restored"
    )


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """Labeling progress: tasks total / annotated / skipped, per annotator. Example: workbench status"""
    project = _project()
    figures = _guarded(lambda: workflow.task_status(project))
    if as_json:
        _print_json(figures)
        return
    tasks = figures["tasks"]
    out.print(
        f"{tasks['total']} tasks: {tasks['annotated']} annotated, {tasks['skipped']} skipped, "
        f"{tasks['remaining']} remaining, {tasks['retired']} retired -> {figures['url']}"
    )
    pool = figures["pool"]
    out.print(
        f"pool: {pool['paragraphs']} paragraphs pre-annotated, {pool['in_label_studio']} in Label Studio, "
        f"{pool['annotated']} annotated, {pool['waiting']} waiting to be sent"
    )
    for note in figures["notes"]:
        err.print(Text.assemble(("note: ", "yellow"), note))
    _report_changes(figures["corpus_changes"], "to push")
    table = _table("annotator", "annotated", "skipped")
    for who, counts in figures["annotators"].items():
        table.add_row(who, str(counts.get("annotated", 0)), str(counts.get("skipped", 0)))
    if figures["annotators"]:
        out.print(table)


@app.command()
def report(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", metavar="PATH", help="Also write the report as one HTML page with plots.")
    ] = None,
):
    """Labeling progress, alignment, agreement and pre-annotation quality of the latest snapshot, as tables.

    Examples: workbench report | workbench report --json | workbench report --html report.html
    """
    project = _project()
    with _progress("building the report") as progress:
        result = _guarded(lambda: workflow.do_report(project, html=html, progress=progress))
    if as_json:
        _print_json(result.figures())
    else:
        for table in result.tables():
            _print_table(table)
    if result.page is not None:
        (err if as_json else out).print(Text.assemble(("report page written: ", "bold"), str(result.page)))


def _print_table(table: Any) -> None:
    """A report table (`workbench.report.tables.Table`): a rich table, then its note; only the note without rows."""
    if not table.rows:
        out.print(Text.assemble((f"{table.title}: ", "bold"), table.note))
        return
    shown = Table(title=table.title, title_justify="left", title_style="bold")
    for column, right in zip(table.columns, table.right_aligned(), strict=True):
        shown.add_column(column, justify="right" if right else "left", overflow="fold")  # nothing elided
    for row in table.rows:
        shown.add_row(*row)
    out.print(shown)
    if table.note:
        out.print(Text(table.note, style="dim"))


@app.command()
def review(
    push: Annotated[
        bool, typer.Option("--push", help="Flag the suspect tasks in Label Studio for a second look.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """List the annotations of the latest snapshot that look like mistakes, with a reason, a score and where.

    Reasons: label (labelled otherwise elsewhere), missing (annotated elsewhere, not here), model (a model that
    never saw the article disagrees; needs a trained model), disagreement (the task's annotators disagree).
    --push flags each suspect task (shown above its text) and keeps a "Needs review" tab in the Data Manager.
    Examples: workbench review | workbench review --json | workbench review --push
    """
    project = _project()

    def on_fold(fold: int, folds: int) -> None:
        if not state.quiet and not as_json:
            err.print(f"model check: training fold {fold + 1} of {folds} (articles it never sees are read next)")

    with _progress("building rows") as progress:
        result, pushed = _guarded(lambda: workflow.do_review(project, push=push, progress=progress, on_fold=on_fold))
    if as_json:
        _print_json({**result.as_dict(), "pushed": dataclasses.asdict(pushed) if pushed else None})
        return
    table = _table("reason", "score", "task", "row", "article", "¶", "chars", "text", "label -> suggestion", "why")
    for item in result.items.to_dict(orient="records"):
        change = f"{item['label'] or '-'} -> {item['suggestion'] or '?'}"
        table.add_row(item["reason"], f"{item['score']:.2f}", str(item["task_id"]), item["row_id"], item["doc_id"],
                      str(item["paragraph"]), f"{item['start']}-{item['end']}", item["text"], change, item["detail"])
    if len(result.items):
        out.print(table)
    counts = ", ".join(f"{reason} {'not checked' if n is None else n}" for reason, n in result.counts().items())
    out.print(f"{len(result.items)} open review item(s) in {result.snapshot.path.name}: {counts}; "
              f"{result.reviewed} reviewed (their task was submitted again after it was flagged)")
    if result.note:
        err.print(Text.assemble(("note: ", "yellow"), result.note))
    if pushed:
        out.print(f"Label Studio: {pushed.flagged} task(s) flagged ({pushed.newly} new), {pushed.cleared} flag(s) "
                  f"taken down, {pushed.changed} task(s) updated; tab \"Needs review\" {pushed.tab} -> "
                  f"{pushed.tab_url}")
        if pushed.missing_tasks:
            err.print(Text.assemble(("note: ", "yellow"), f"{len(pushed.missing_tasks)} task(s) of the snapshot are "
                                    "no longer on the server and were not flagged; run `workbench pull`."))
    elif len(result.items):
        out.print("Send them for a second look: workbench review --push")


@app.command()
def diff(
    a: Annotated[str, typer.Argument(help="The older version.")],
    b: Annotated[str, typer.Argument(help="The newer version.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Rows added, removed and changed between two releases. Example: workbench diff 0.1.0 0.2.0 --json"""
    project = _project()
    changes = _guarded(lambda: workflow.diff(project, a, b))
    if as_json:
        _print_json(changes)
        return
    out.print(
        f"{a} -> {b}: {len(changes['added'])} added, {len(changes['removed'])} removed, "
        f"{len(changes['changed'])} changed"
    )
    table = _table("label", a, b, "change")
    for label, counts in changes.get("label_counts", {}).items():
        table.add_row(label, str(counts.get("a", 0)), str(counts.get("b", 0)), f"{counts.get('delta', 0):+d}")
    out.print(table)


@app.command()
def releases():
    """List the releases with their sizes and dates. Example: workbench releases"""
    project = _project()
    found = _guarded(lambda: workflow.releases(project))
    if not found:
        out.print(f"no release yet in {project.releases_dir} (cut one with `workbench release 0.1.0`)")
        return
    table = _table("version", "created", "rows", "size")
    for entry in found:
        if entry.get("problem"):
            table.add_row(entry["version"], "unreadable", "-", "-")
            continue
        rows = ", ".join(f"{split} {n}" for split, n in entry["rows"].items())
        table.add_row(entry["version"], str(entry["created_at"]), rows, f"{entry['size_bytes']:,} B")
    out.print(table)
    for entry in found:
        if entry.get("problem"):
            err.print(Text.assemble(("note: ", "yellow"), entry["problem"]))


@annotators_app.command("add")
def annotators_add(email: Annotated[str, typer.Argument(help="The annotator's e-mail (their login).")]):
    """Create an annotator account that can log in; prints its one-time login.

    Example: workbench annotators add ann@example.org
    """
    project = _project()
    login, url = _guarded(lambda: workflow.add_annotator(project, email))
    out.print(f"Annotator account created: log in at {url} as {login.email} / {login.password}")
    out.print("This password is shown once; ask the annotator to change it under Account & Settings.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
