"""The report page: which figures and tables it shows, in which sections (`plan`), and the one self-contained HTML
file they make (`render`): styles inline, every image a `data:` URI, and a Content-Security-Policy that lets the
browser load nothing else, so the page reads the same offline, attached to a mail, or years later.

Pure: the charts come in drawn (PNG bytes by chart key); reading and writing files is `workflow`'s.
"""

from __future__ import annotations

import base64
import html
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.report import figures
from workbench.report.figures import Activity, Chart, RowShapes
from workbench.report.tables import NO_OVERLAP, NO_TIME, Table, release_history, report_tables
from workbench.rows.tasks import NO_MODEL

POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@dataclass(frozen=True)
class Section:
    """One part of the page: a heading, a sentence on where its numbers come from, charts, notes and tables."""

    key: str
    title: str
    intro: str
    charts: tuple[Chart, ...] = ()
    notes: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()


def plan(
    report: Mapping[str, Any],
    activity: Activity,
    shapes: RowShapes,
    manifests: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    curves: Sequence[Mapping[str, Any]] = (),
) -> list[Section]:
    """The page's sections from a report (`workbench report --json`'s dict), the two tallies of its build, the
    readable release manifests (oldest first) and the train curves kept (`workbench train-curve`)."""
    return [
        _dataset(report, shapes, manifests, labels),
        _annotators(report, activity, labels),
        _model(report, activity, labels, curves),
        _releases(manifests, labels),
        Section("tables", "Every figure", "The tables `workbench report` prints, for the same snapshot.",
                tables=tuple(report_tables(report))),  # fmt: skip
    ]


def charts_of(sections: Sequence[Section]) -> list[Chart]:
    return [chart for section in sections for chart in section.charts]


def _dataset(report: Mapping[str, Any], shapes: RowShapes, manifests: Sequence[Mapping[str, Any]],
             labels: Sequence[str]) -> Section:  # fmt: skip
    snapshot = (report.get("snapshot") or {}).get("file", "the latest snapshot")
    if manifests:
        latest = manifests[-1]
        counts = figures.release_label_distribution(latest)  # the very figure in the release's folder
        source = f"Label counts per split are those of the latest release, {latest['version']}; "
    else:
        counts = figures.label_distribution({"all rows": dict(shapes.labels)}, labels,
                                            title="Entity spans per label (not released yet)")  # fmt: skip
        source = "No release yet, so label counts are those of the rows the snapshot gives (not yet split); "
    rows = report.get("rows", 0)
    intro = source + f"span lengths and entities per paragraph come from the {rows} rows of {snapshot}."
    return Section("dataset", "The dataset", intro,
                   charts=(counts, figures.span_lengths(shapes), figures.entities_per_paragraph(shapes)))  # fmt: skip


def _annotators(report: Mapping[str, Any], activity: Activity, labels: Sequence[str]) -> Section:
    charts, notes = [], []
    progress = figures.annotator_progress(activity)
    if progress:
        charts.append(progress)
    else:
        notes.append("No annotation was submitted yet.")
    agreement = figures.agreement_by_label(report.get("agreement") or {}, labels)
    if agreement:
        charts.append(agreement)
    else:
        notes.append(NO_OVERLAP)
    per_annotator = (report.get("annotation_time") or {}).get("per_annotator") or {}
    time = figures.time_per_task(
        per_annotator, list(per_annotator), key="annotation-time-annotators", title="Annotation time per annotator",
        x_label="annotator", caption="Seconds each annotator spent in the editor per task (submitted or skipped).",
    )  # fmt: skip
    charts += [time] if time else []
    notes += [] if time else [NO_TIME]
    intro = ("Who annotated how much and when (from the annotations' timestamps), how long a task took them, and "
             "how far annotators agree.")  # fmt: skip
    return Section("annotators", "The annotators", intro, tuple(charts), tuple(notes))


def _model(report: Mapping[str, Any], activity: Activity, labels: Sequence[str],
           curves: Sequence[Mapping[str, Any]] = ()) -> Section:  # fmt: skip
    quality = report.get("prediction_quality") or {}
    versions = activity.model_versions(quality)
    charts, notes = [], []
    latest = figures.quality_by_label(quality, versions[-1], labels) if versions else None
    if latest:
        charts.append(latest)
    curve = figures.learning_curve(quality, versions, labels)
    if curve:
        charts.append(curve)
    elif versions:
        notes.append(f"Only one model version, {versions[0]}, has proposals on annotated paragraphs: the learning "
                     "curve appears once a second one has.")  # fmt: skip
    else:
        notes.append("No annotated paragraph carries a model's proposals, so there is nothing to score.")
    per_version = (report.get("annotation_time") or {}).get("per_model_version") or {}
    time = figures.time_per_task(
        per_version, [NO_MODEL, *activity.model_versions(set(per_version) - {NO_MODEL})],
        key="annotation-time-models", title="Annotation time per model version", x_label="model version (oldest first)",
        caption="Seconds per task by the model version whose proposals the annotator saw (none: no proposal): a "
        "better model leaves less to correct.",
    )  # fmt: skip
    charts += [time] if time else []
    if curves:  # the newest release's curve: should we annotate more?
        charts.append(figures.train_curve(curves[-1], labels))
    intro = ("How well the model's proposals matched what the annotators submitted, per label: the better they are, "
             "the less there is to correct, and the less time a task takes.")  # fmt: skip
    return Section("model", "The pre-annotation model", intro, tuple(charts), tuple(notes))


def _releases(manifests: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> Section:
    charts = [chart for chart in (figures.release_rows(manifests), figures.release_labels(manifests, labels)) if chart]
    intro = "Every release, oldest first, as its manifest records it."
    return Section("releases", "The releases", intro, tuple(charts), tables=(release_history(manifests),))


# ---- HTML --------------------------------------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, from its header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def render(title: str, subtitle: str, sections: Sequence[Section], images: Mapping[str, bytes]) -> str:
    """The page as one HTML document; `images` holds every chart's PNG by its key."""
    nav = "".join(f'<a href="#{s.key}">{_e(s.title)}</a>' for s in sections)
    body = "\n".join(_section(s, images) for s in sections)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_e(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<header><h1>{_e(title)}</h1><p class="meta">{_e(subtitle)}</p><nav>{nav}</nav></header>
<main>
{body}
</main>
<footer>Written by <code>workbench report --html</code>. Everything this page shows is in this one file.</footer>
</body>
</html>
"""


def _section(section: Section, images: Mapping[str, bytes]) -> str:
    parts = [f'<section id="{section.key}">', f"<h2>{_e(section.title)}</h2>",
             f'<p class="intro">{_e(section.intro)}</p>']
    charts = [_figure(chart, images[chart.key]) for chart in section.charts]
    if charts:
        parts.append('<div class="figures">' + "".join(charts) + "</div>")
    parts += [f'<p class="note">{_e(note)}</p>' for note in section.notes]
    parts += [_table(table) for table in section.tables]
    parts.append("</section>")
    return "\n".join(parts)


def _figure(chart: Chart, png: bytes) -> str:
    width, height = png_size(png)
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return (f'<figure id="figure-{chart.key}"><img src="{source}" alt="{_e(chart.title)}" width="{width}" '
            f'height="{height}"><figcaption>{_e(chart.caption)}</figcaption></figure>')  # fmt: skip


def _table(table: Table) -> str:
    if not table.rows:
        return f'<div class="table"><h3>{_e(table.title)}</h3><p class="note">{_e(table.note)}</p></div>'
    head = "".join(f"<th>{_e(c)}</th>" for c in table.columns)
    opening = ['<td class="n">' if right else "<td>" for right in table.right_aligned()]
    rows = "".join("<tr>" + "".join(f"{td}{_e(v)}</td>" for td, v in zip(opening, row, strict=True)) + "</tr>"
                   for row in table.rows)  # fmt: skip
    note = f'<p class="note">{_e(table.note)}</p>' if table.note else ""
    return (f'<div class="table"><h3>{_e(table.title)}</h3><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>{note}</div>")  # fmt: skip


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


STYLE = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --band: #f6f8fa; --accent: #4363d8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--ink); background: #fff; }
header { padding: 24px 32px 12px; border-bottom: 1px solid var(--line); background: var(--band); }
h1 { margin: 0 0 4px; font-size: 26px; }
.meta { margin: 0 0 12px; color: var(--muted); }
nav a { margin-right: 18px; color: var(--accent); text-decoration: none; font-weight: 600; }
main { padding: 8px 32px 32px; max-width: 1500px; }
section { margin-top: 28px; }
h2 { font-size: 21px; margin: 0 0 4px; border-bottom: 2px solid var(--accent); display: inline-block; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.intro { color: var(--muted); margin: 6px 0 14px; max-width: 75em; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 18px; }
figure { margin: 0; padding: 10px; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
figure img { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
.note { color: var(--muted); font-style: italic; max-width: 75em; }
.table { display: inline-block; vertical-align: top; margin: 0 28px 8px 0; max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; font-size: 13.5px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; }
th { background: var(--band); }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
footer { padding: 16px 32px; color: var(--muted); font-size: 13px; border-top: 1px solid var(--line); }
"""
