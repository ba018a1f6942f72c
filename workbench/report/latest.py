"""The report of the latest snapshot: its rows built (nothing written), the build's figures with who annotated when
and the shape of the rows, as tables, as JSON, and as one self-contained HTML page with the plots.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import OutputPathError
from workbench.project import Project, atomic_write_bytes, writable_target
from workbench.report import page, plots
from workbench.report.figures import Activity, RowShapes
from workbench.report.tables import Table, report_tables
from workbench.rows.builder import Build, RowBuilder, processes_for
from workbench.sync.snapshots import Snapshot, check_intact, latest_snapshot

Progress = Callable[[int], None]


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


def build_report(
    project: Project,
    *,
    html: Path | None = None,
    manifests: Callable[[], Sequence[Mapping[str, Any]]] = list,
    curves: Callable[[], Sequence[Mapping[str, Any]]] = list,
    progress: Progress | None = None,
) -> Report:
    """Build the latest snapshot's figures (nothing is written); with `html`, also write the report page there:
    one self-contained HTML file with the plots, the release history from `manifests()` among them (the path is
    checked before the build, so a bad one is said at once)."""
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
        report = dataclasses.replace(report, page=_write_page(project, report, html, manifests(), curves()))
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


def _write_page(project: Project, report: Report, path: Path, manifests: Sequence[Mapping[str, Any]],
                curves: Sequence[Mapping[str, Any]]) -> Path:  # fmt: skip
    sections = page.plan(report.figures(), report.activity, report.shapes, manifests, project.config.labels, curves)
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
