"""What the latest snapshot says: `report` (tables, JSON, an HTML page) and `review` (likely mistakes)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from workbench import workflow
from workbench.cli.apps import app
from workbench.cli.output import current_project, err, guarded, new_table, note, out, print_json, progress_bar, state


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
    project = current_project()
    with progress_bar("building the report") as progress:
        result = guarded(lambda: workflow.do_report(project, html=html, progress=progress))
    if as_json:
        print_json(result.figures())
    else:
        for table in result.tables():
            print_report_table(table)
    if result.page is not None:
        (err if as_json else out).print(Text.assemble(("report page written: ", "bold"), str(result.page)))


def print_report_table(table: Any) -> None:
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
    project = current_project()

    def on_fold(fold: int, folds: int) -> None:
        if not state.quiet and not as_json:
            err.print(f"model check: training fold {fold + 1} of {folds} (articles it never sees are read next)")

    with progress_bar("building rows") as progress:
        result, pushed = guarded(lambda: workflow.do_review(project, push=push, progress=progress, on_fold=on_fold))
    if as_json:
        print_json({**result.as_dict(), "pushed": dataclasses.asdict(pushed) if pushed else None})
        return
    table = new_table("reason", "score", "task", "row", "article", "¶", "chars", "text", "label -> suggestion", "why")
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
        note(result.note)
    if pushed:
        out.print(f"Label Studio: {pushed.flagged} task(s) flagged ({pushed.newly} new), {pushed.cleared} flag(s) "
                  f"taken down, {pushed.changed} task(s) updated; tab \"Needs review\" {pushed.tab} -> "
                  f"{pushed.tab_url}")
        if pushed.missing_tasks:
            note(f"{len(pushed.missing_tasks)} task(s) of the snapshot are no longer on the server and were not "
                 "flagged; run `workbench pull`.")
    elif len(result.items):
        out.print("Send them for a second look: workbench review --push")



