"""The annotation loop's commands: `run`, `preannotate`, `push`, `pull`, `status`."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.text import Text

from workbench import workflow
from workbench.cli.apps import app
from workbench.cli.backend import report_backend
from workbench.cli.output import current_project, err, guarded, new_table, note, out, print_json, progress_bar, state
from workbench.wording import counted


# --- pipeline -------------------------------------------------------------------------------------------------
@app.command()
def preannotate(
    model: Annotated[
        str | None,
        typer.Option(help="A pipeline to pre-annotate with from now on: a package or a folder (a trained model)."),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Use --model even if it scored below the pipeline pre-annotating now.")
    ] = False,
    cluster: Annotated[
        str | None, typer.Option(help="A Dask scheduler to run on, e.g. tcp://10.0.0.5:8786 (default: [model] cluster)")
    ] = None,
):
    """Pre-annotate the seed articles with the spaCy NER pipeline in use (or --model, once it scores at least as
    well as the one pre-annotating now on a release's test split).

    Examples: workbench preannotate | workbench preannotate --model models/news-ner/0.2.0 |
    workbench preannotate --cluster tcp://10.0.0.5:8786
    """
    project = current_project()
    with progress_bar("pre-annotating") as progress:
        corpus, summary = guarded(
            lambda: workflow.do_preannotate(project, model=model, force=force, cluster=cluster, progress=progress)
        )
    report_corpus(corpus)
    where = f" on the Dask cluster at {summary.cluster} ({summary.processes} workers)" if summary.cluster else ""
    out.print(
        f"{summary.paragraphs} paragraphs pre-annotated by {summary.model_version}{where} ({summary.annotated} new, "
        f"{summary.reused} reused), {summary.entities} entities; entities of labels outside the label set dropped: "
        f"{counted(summary.dropped)}"
    )
    if summary.verdict and model:
        out.print(f"{summary.model_version} pre-annotates from now on: {summary.verdict}")


@app.command()
def push(
    next_n: Annotated[
        int | None,
        typer.Option("--next", min=1, help="Import only the N new paragraphs the model is least sure of."),
    ] = None,
    retire_annotated: Annotated[
        bool, typer.Option(help="Retire tasks someone annotated or skipped whose paragraph left the seeds.")
    ] = False,
):
    """Bring the labeling project to the seeds: new paragraphs imported with predictions, changes carried.

    Examples: workbench push | workbench push --next 200 (the pool keeps the rest)
    """
    project = current_project()
    with progress_bar("importing tasks") as progress:
        corpus, summary = guarded(lambda: workflow.do_push(project, next_n=next_n, retire_annotated=retire_annotated,
                                                            progress=progress))  # fmt: skip
    report_corpus(corpus)
    out.print(
        f"{summary.imported} tasks imported, {summary.already_there} already there "
        f"({summary.paragraphs} paragraphs) -> {summary.project_url}"
    )
    report_changes(summary.changes, "pushed")
    if summary.left_in_pool:
        out.print(f"{summary.left_in_pool} new paragraphs wait in the pool (the most informative were sent)")
    if summary.changes.get("predictions_added"):
        out.print(f"{summary.changes['predictions_added']} tasks nobody has annotated got the predictions of "
                  f"{summary.model_version} (their older predictions stay)")  # fmt: skip
    report_backend(summary)


@app.command()
def pull(
    full: Annotated[bool, typer.Option("--full", help="Export every task, not only what changed since the last pull.")]
    = False,
):
    """Fetch the tasks changed since the last pull (or, the first time and with --full, every task) into a new
    complete snapshot. Example: workbench pull"""
    project = current_project()
    with progress_bar("exporting and downloading"):  # no count to show: the server builds the export in one go
        result = guarded(lambda: workflow.do_pull(project, full=full))
    for line in result.lines():
        out.print(line)



@app.command()
def run():
    """Start the local server and the model backend, pre-annotate, push, and say where to annotate.

    Example: workbench run
    """
    project = current_project()
    with progress_bar("working") as progress:
        result = guarded(lambda: workflow.do_run(project, progress=progress, config=state.config))
    report_corpus(result.corpus)
    out.print(
        f"{result.preannotation.paragraphs} paragraphs from {len(result.corpus.doc_ids)} articles, pre-annotated "
        f"by {result.preannotation.model_version}; {result.push.imported} tasks imported, "
        f"{result.push.already_there} already there."
    )
    report_changes(result.push.changes, "pushed")
    report_backend(result.push)
    out.print(Text.assemble(("\nAnnotate at ", "bold"), result.url))
    if result.username:
        # A password goes to a person at a terminal, never into a pipe, a CI log or a file.
        secret = result.password if sys.stdout.isatty() else f"(the password is in {project.credentials_file})"
        out.print(f"  log in as {result.username} / {secret}")
        out.print("  (add an account per annotator: workbench annotators add EMAIL)")
    out.print("When done: `workbench pull`, then `workbench release VERSION`. Stop the server: workbench server stop")


def report_corpus(corpus: Any) -> None:
    for line in workflow.corpus_notes(corpus):
        note(line)


def report_changes(changes: dict[str, Any], verb: str) -> None:
    """One line on what changed in the seeds since the last push (nothing when nothing did)."""
    kinds = ("new", "edited", "renamed_articles", "retired", "moved", "restored", "moved_across_articles")
    moved = {k: changes.get(k, 0) for k in kinds}
    if not any(moved.values()):
        return
    edited = f"{moved['edited']} edited ({changes.get('spans_carried', 0)} spans carried, " \
             f"{changes.get('to_recheck', 0)} to re-check)"  # fmt: skip
    across = f", {moved['moved_across_articles']} moved to another article" if moved["moved_across_articles"] else ""
    out.print(
        f"seeds since the last push ({verb}): {moved['new']} new, {edited}, {moved['renamed_articles']} renamed "
        f"articles, {moved['retired']} retired, {moved['moved']} moved, {moved['restored']} restored{across}"
    )


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """Labeling progress: tasks total / annotated / skipped, per annotator. Example: workbench status"""
    project = current_project()
    figures = guarded(lambda: workflow.task_status(project))
    if as_json:
        print_json(figures)
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
    for line in figures["notes"]:
        note(line)
    report_changes(figures["corpus_changes"], "to push")
    retiring = figures["corpus_changes"].get("retiring_annotated") or {}
    if retiring:
        articles = ", ".join(f"{doc} ({n})" for doc, n in retiring.items())
        err.print(Text.assemble(("warning: ", "bold yellow"), f"{sum(retiring.values())} annotated or skipped "
                                f"paragraph(s) are no longer in the seeds ({articles}); `workbench push` will not "
                                "retire them unless run with --retire-annotated."))  # fmt: skip
    table = new_table("annotator", "annotated", "skipped")
    for who, counts in figures["annotators"].items():
        table.add_row(who, str(counts.get("annotated", 0)), str(counts.get("skipped", 0)))
    if figures["annotators"]:
        out.print(table)



