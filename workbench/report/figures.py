"""The report's figures as data: what the snapshot's tasks, the build's rows and figures and the release manifests
say, counted and shaped as `Chart`s for `plots` to draw. Pure: nothing is read, written or drawn here.

Two tallies count while the build streams (`Activity` over the snapshot's tasks, `RowShapes` over the rows), so a
report costs no more memory than a release; the rest comes from `Build.report()` and the manifests as dicts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from workbench.records import Row
from workbench.rows.tasks import annotator_name
from workbench.splits import SPLITS
from workbench.sync.interface import PALETTE
from workbench.wording import natural

ChartKind = Literal["bars", "hbars", "lines", "steps"]
SPAN_WORDS_CAP = 10  # spans of this many words or more share the last bar
ENTITIES_CAP = 15  # paragraphs with this many entities or more share the last bar
METRICS = ("precision", "recall", "f1")


@dataclass(frozen=True)
class Series:
    """One named set of bars or line: a value per category (None: not measured), or points at times `x`."""

    name: str
    values: tuple[float | None, ...]
    x: tuple[datetime, ...] = ()
    colour: str = ""  # "" lets the drawing choose
    bold: bool = False  # drawn heavier than the rest (a total among its parts)


@dataclass(frozen=True)
class Chart:
    """A figure to draw: its kind, categories and series, and the words that say how to read it."""

    key: str  # a stable name: the image's id on the page, and its file name in a release
    title: str
    kind: ChartKind
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    x_label: str = ""
    y_label: str = ""
    caption: str = ""
    stacked: bool = False
    unit_range: bool = False  # scores: the value axis runs from 0 to 1


# ---- tallies while the build streams ------------------------------------------------------------------------


@dataclass
class Activity:
    """Who submitted or skipped annotations and when, and when each model version's predictions first came:
    counted task by task as the snapshot streams past."""

    submitted: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    times: dict[str, list[datetime]] = field(default_factory=dict)
    first_prediction: dict[str, datetime] = field(default_factory=dict)

    def add(self, task: Mapping[str, Any]) -> None:
        for annotation in task.get("annotations") or []:
            if not isinstance(annotation, dict):
                continue
            who = annotator_name(annotation.get("completed_by"))
            if annotation.get("was_cancelled"):
                self.skipped[who] += 1
                continue
            self.submitted[who] += 1
            when = parse_time(annotation.get("created_at") or annotation.get("updated_at"))
            if when is not None:
                self.times.setdefault(who, []).append(when)
        for prediction in task.get("predictions") or []:
            if not isinstance(prediction, dict):
                continue
            version = str(prediction.get("model_version") or "unknown")
            when = parse_time(prediction.get("created_at"))
            if when is not None and (version not in self.first_prediction or when < self.first_prediction[version]):
                self.first_prediction[version] = when

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per annotator: annotations submitted and skipped, the first and the last submission (ISO 8601)."""
        out = {}
        for who in sorted(self.submitted.keys() | self.skipped.keys(), key=natural):
            times = self.times.get(who, [])
            out[who] = {
                "submitted": self.submitted.get(who, 0),
                "skipped": self.skipped.get(who, 0),
                "first": _iso(min(times)) if times else "",
                "last": _iso(max(times)) if times else "",
            }
        return out

    def model_versions(self, measured: Iterable[str]) -> list[str]:
        """`measured` model versions in the order their predictions first came (by name when unknown)."""
        never = datetime.max.replace(tzinfo=UTC)
        return sorted(measured, key=lambda version: (self.first_prediction.get(version, never), natural(version)))


@dataclass
class RowShapes:
    """The shape of the dataset's rows: spans per label, span lengths in words, entities per paragraph."""

    labels: Counter[str] = field(default_factory=Counter)
    span_words: Counter[int] = field(default_factory=Counter)
    entities: Counter[int] = field(default_factory=Counter)

    def add(self, row: Row) -> None:
        self.entities[len(row.spans)] += 1
        for span in row.spans:
            self.labels[span.label] += 1
            self.span_words[max(1, len(span.text.split()))] += 1


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (UTC when it names no zone); None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def label_colour(label: str, labels: Sequence[str]) -> str:
    """The colour a label has in the labeling view, so a reader meets the same colour in both."""
    return PALETTE[list(labels).index(label) % len(PALETTE)] if label in labels else ""


def ordered_labels(labels: Sequence[str], found: Iterable[str]) -> list[str]:
    """The configured labels in their order, then labels met in the data but not configured, sorted."""
    return [*labels, *sorted(set(found) - set(labels))]


# ---- the dataset -------------------------------------------------------------------------------------------


def label_distribution(parts: Mapping[str, Mapping[str, int]], labels: Sequence[str], *, title: str) -> Chart:
    """Entity spans per label, one series per part (a release's splits, or the build's rows before a release)."""
    names = ordered_labels(labels, (label for counts in parts.values() for label in counts))
    return Chart(
        key="label-distribution",
        title=title,
        kind="hbars",
        categories=tuple(names),
        series=tuple(Series(part, tuple(float(counts.get(label, 0)) for label in names))
                     for part, counts in parts.items()),  # fmt: skip
        x_label="entity spans",
        caption="Entity spans per label" + (" and split." if len(parts) > 1 else "."),
    )


def release_label_distribution(manifest: Mapping[str, Any]) -> Chart:
    """A release's label distribution from its manifest: the figure in its folder, and on the report page."""
    counts = manifest["counts"]
    return label_distribution(
        {split: dict(counts.get(split, {}).get("labels", {})) for split in SPLITS}, manifest["labels"],
        title=f"Entity spans per label and split, {manifest['dataset']} {manifest['version']}",
    )  # fmt: skip


def span_lengths(shapes: RowShapes) -> Chart:
    return _histogram(
        "span-lengths", "Span length", shapes.span_words, SPAN_WORDS_CAP, start=1,
        x_label="words in the span", y_label="entity spans",
        caption="How long the annotated entities are, in words.",
    )  # fmt: skip


def entities_per_paragraph(shapes: RowShapes) -> Chart:
    return _histogram(
        "entities-per-paragraph", "Entities per paragraph", shapes.entities, ENTITIES_CAP, start=0,
        x_label="entity spans in the paragraph", y_label="paragraphs",
        caption="How many entities the dataset's paragraphs hold (0: annotated, with no entity).",
    )  # fmt: skip


def _histogram(
    key: str, title: str, counts: Counter[int], cap: int, *, start: int, x_label: str, y_label: str, caption: str
) -> Chart:
    top = min(max(counts, default=start), cap)
    categories = [str(n) for n in range(start, top)] + [f"{top}+" if top == cap else str(top)]
    values = [counts.get(n, 0) for n in range(start, top)] + [sum(v for n, v in counts.items() if n >= top)]
    return Chart(key, title, "bars", tuple(categories), (Series(y_label, tuple(float(v) for v in values)),),
                 x_label=x_label, y_label=y_label, caption=caption)  # fmt: skip


# ---- the model and the annotators --------------------------------------------------------------------------


def quality_by_label(quality: Mapping[str, Any], version: str, labels: Sequence[str]) -> Chart | None:
    """Precision, recall and F1 of one model version's pre-annotations per label (labels never met left out)."""
    per_label = quality.get(version, {}).get("per_label", {})
    measured = [label for label in ordered_labels(labels, per_label) if (per_label.get(label) or {}).get("f1")
                is not None]  # fmt: skip
    if not measured:
        return None
    return Chart(
        key="preannotation-quality",
        title=f"Pre-annotation quality of {version}",
        kind="bars",
        categories=tuple(measured),
        series=tuple(Series(metric, tuple(per_label[label][metric] for label in measured)) for metric in METRICS),
        y_label="score",
        caption=f"How well {version}'s proposals matched the final human spans, per label (exact matches).",
        unit_range=True,
    )


def learning_curve(quality: Mapping[str, Any], versions: Sequence[str], labels: Sequence[str]) -> Chart | None:
    """F1 per label across model versions, oldest first: drawn once there are two versions to compare."""
    if len(versions) < 2:
        return None
    found = {label for version in versions for label in quality.get(version, {}).get("per_label", {})}
    series = [Series("all labels", tuple(quality.get(v, {}).get("f1") for v in versions), colour="#222222",
                     bold=True)]
    for label in ordered_labels(labels, found):
        values = tuple((quality.get(v, {}).get("per_label", {}).get(label) or {}).get("f1") for v in versions)
        if any(value is not None for value in values):
            series.append(Series(label, values, colour=label_colour(label, labels)))
    return Chart(
        key="learning-curve",
        title="Pre-annotation F1 across model versions",
        kind="lines",
        categories=tuple(versions),
        series=tuple(series),
        x_label="model version (oldest first)",
        y_label="F1",
        caption="F1 of each model version's proposals against the human spans, per label and overall.",
        unit_range=True,
    )


def train_curve(curve: Mapping[str, Any], labels: Sequence[str]) -> Chart:
    """Test F1 of models trained on 25/50/75/100% of a release's train split (`workbench train-curve`), per label
    and overall: still rising at 100% means more annotation should pay."""
    points = curve["points"]
    series = [Series("all labels", tuple(p["scores"]["f1"] for p in points), colour="#222222", bold=True)]
    found = {label for p in points for label in p["scores"].get("per_label", {})}
    for label in ordered_labels(labels, found):
        values = tuple((p["scores"].get("per_label", {}).get(label) or {}).get("f1") for p in points)
        if any(value is not None for value in values):
            series.append(Series(label, values, colour=label_colour(label, labels)))
    return Chart(
        key=f"train-curve-{curve['release']}",
        title=f"Test F1 against the share of release {curve['release']}'s train split",
        kind="lines",
        categories=tuple(f"{round(p['share'] * 100)}% ({p['paragraphs']} ¶)" for p in points),
        series=tuple(series),
        x_label="share of the train split trained on (paragraphs)",
        y_label="F1",
        caption=str(curve.get("verdict") or ""),
        unit_range=True,
    )


def agreement_by_label(agreement: Mapping[str, Any], labels: Sequence[str]) -> Chart | None:
    """F1 between annotators per label, over the tasks two or more annotators submitted; None without overlap."""
    per_label = agreement.get("per_label") or {}
    measured = [label for label in ordered_labels(labels, per_label)
                if (per_label.get(label) or {}).get("f1") is not None]  # fmt: skip
    if not agreement.get("tasks_compared") or not measured:
        return None
    return Chart(
        key="agreement",
        title="Agreement between annotators",
        kind="hbars",
        categories=tuple(measured),
        series=(Series("F1", tuple(per_label[label]["f1"] for label in measured)),),
        x_label="F1 (pairs of annotations of one task, exact spans)",
        caption=f"Span agreement per label over {agreement['tasks_compared']} task(s) annotated more than once.",
        unit_range=True,
    )


def annotator_progress(activity: Activity) -> Chart | None:
    """Annotations submitted per annotator over time (cumulative), from the snapshot's timestamps."""
    series = []
    for who in sorted(activity.times, key=natural):
        times = tuple(sorted(activity.times[who]))
        series.append(Series(who, tuple(float(n) for n in range(1, len(times) + 1)), x=times))
    if not series:
        return None
    return Chart(
        key="annotator-progress",
        title="Annotator progress",
        kind="steps",
        categories=(),
        series=tuple(series),
        x_label="time (UTC)",
        y_label="annotations submitted",
        caption="Annotations each annotator submitted, counted up over time (skips not counted).",
    )


def time_per_task(groups: Mapping[str, Mapping[str, Any]], order: Sequence[str], *, key: str, title: str,
                  x_label: str, caption: str) -> Chart | None:  # fmt: skip
    """Median and 90th-percentile seconds per task for each group (annotator or model version) in `order`, from
    the report's `annotation_time`; None when no group has a timed annotation."""
    names = [name for name in order if (groups.get(name) or {}).get("annotations")]
    if not names:
        return None
    return Chart(
        key=key,
        title=title,
        kind="bars",
        categories=tuple(names),
        series=tuple(Series(name, tuple(groups[group][field] for group in names))
                     for name, field in (("median", "median_seconds"), ("90th percentile", "p90_seconds"))),
        x_label=x_label,
        y_label="seconds per task",
        caption=caption,
    )  # fmt: skip


# ---- the releases -------------------------------------------------------------------------------------------


def release_rows(manifests: Sequence[Mapping[str, Any]]) -> Chart | None:
    """Rows per split in every release, oldest first."""
    if not manifests:
        return None
    return Chart(
        key="release-rows",
        title="Rows per release",
        kind="bars",
        categories=tuple(str(m["version"]) for m in manifests),
        series=tuple(Series(split, tuple(float(m["counts"][split]["rows"]) for m in manifests)) for split in SPLITS),
        x_label="release",
        y_label="rows (paragraphs)",
        caption="The rows of each release, stacked by split.",
        stacked=True,
    )


def release_labels(manifests: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> Chart | None:
    """Entity spans per label in every release, oldest first: how each label grew."""
    if not manifests:
        return None
    found = {label for m in manifests for label in m["counts"]["total"].get("labels", {})}
    names = [label for label in ordered_labels(labels, found)
             if any(m["counts"]["total"]["labels"].get(label) for m in manifests)]  # fmt: skip
    if not names:
        return None
    return Chart(
        key="release-labels",
        title="Entity spans per label and release",
        kind="lines",
        categories=tuple(str(m["version"]) for m in manifests),
        series=tuple(Series(label, tuple(float(m["counts"]["total"]["labels"].get(label, 0)) for m in manifests),
                            colour=label_colour(label, labels)) for label in names),  # fmt: skip
        x_label="release",
        y_label="entity spans",
        caption="Spans per label in each release (both splits); the table below gives the change per version.",
    )
