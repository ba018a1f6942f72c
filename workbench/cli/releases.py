"""Releases: `release` (and `release verify`), `diff`, `releases`."""

from __future__ import annotations

from typing import Annotated

import typer

from workbench import workflow
from workbench.cli.apps import app
from workbench.cli.output import current_project, guarded, new_table, note, out, print_json, progress_bar
from workbench.errors import UsageError
from workbench.wording import EXCLUDED, counted


@app.command()
def release(
    version: Annotated[str, typer.Argument(help="A new semantic version (e.g. 0.1.0), or `verify`.")],
    verify_version: Annotated[str | None, typer.Argument(help="With `verify`: the version to check.")] = None,
):
    """Cut an immutable release from the latest snapshot, or verify one.

    Examples: workbench release 0.1.0 | workbench release verify 0.1.0
    """
    project = current_project()
    if version == "verify":
        if not verify_version:
            guarded(_missing_verify_version)
        guarded(lambda: workflow.verify(project, str(verify_version)))
        out.print(f"release {verify_version}: every file matches its manifest checksum")
        return
    with progress_bar("building rows from tasks") as progress:
        result = guarded(lambda: workflow.do_release(project, version, progress=progress))
    excluded = counted(result.build.excluded, EXCLUDED, none="no task")
    out.print(
        f"Release {version}: {result.build.row_count} rows from {result.snapshot.path.name} -> {result.path}\n"
        f"tasks not in the dataset: {excluded}; load it with "
        f'datasets.load_dataset("{result.path}")'
    )
    if result.reused:
        out.print(f"{result.rebuilt} task(s) built, {result.reused} unchanged since the last release reused")
    if result.note:
        out.print(f"note: {result.note}")


def _missing_verify_version() -> None:
    raise UsageError("say which release to verify, e.g. `workbench release verify 0.1.0`.")



@app.command()
def diff(
    a: Annotated[str, typer.Argument(help="The older version.")],
    b: Annotated[str, typer.Argument(help="The newer version.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Rows added, removed and changed between two releases. Example: workbench diff 0.1.0 0.2.0 --json"""
    project = current_project()
    changes = guarded(lambda: workflow.diff(project, a, b))
    if as_json:
        print_json(changes)
        return
    out.print(
        f"{a} -> {b}: {len(changes['added'])} added, {len(changes['removed'])} removed, "
        f"{len(changes['changed'])} changed"
    )
    table = new_table("label", a, b, "change")
    for label, counts in changes.get("label_counts", {}).items():
        table.add_row(label, str(counts.get("a", 0)), str(counts.get("b", 0)), f"{counts.get('delta', 0):+d}")
    out.print(table)


@app.command()
def releases():
    """List the releases with their sizes and dates. Example: workbench releases"""
    project = current_project()
    found = guarded(lambda: workflow.releases(project))
    if not found:
        out.print(f"no release yet in {project.releases_dir} (cut one with `workbench release 0.1.0`)")
        return
    table = new_table("version", "created", "rows", "size")
    for entry in found:
        if entry.get("problem"):
            table.add_row(entry["version"], "unreadable", "-", "-")
            continue
        rows = ", ".join(f"{split} {n}" for split, n in entry["rows"].items())
        table.add_row(entry["version"], str(entry["created_at"]), rows, f"{entry['size_bytes']:,} B")
    out.print(table)
    for entry in found:
        if entry.get("problem"):
            note(entry["problem"])



