"""Reading one exported task: its place in the article, its annotations as checked spans, its predictions, the
time annotators spent on it, and what `review` needs from it (annotators who read it differently, a review flag).
Pure: a task dict in, records out; a region that cannot be kept exactly is named, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from workbench.config import Config
from workbench.merge import latest_per_annotator
from workbench.records import Annotation, Span, stable_hash, stamp_time
from workbench.spans.offsets import AlignmentReport, RegionMismatch, region_to_spans

# Regions of these control tags are spans; anything else in a result (a comment box, say) is not ours.
SPAN_TYPES = {"labels"}
# The model version of an annotation made when the task showed no model's proposals.
NO_MODEL = "none"


def place_of(task: dict[str, Any]) -> tuple[tuple[str, int], str]:
    """The task's article and paragraph position, or why it has none."""
    data = task["data"]
    doc_id, paragraph = data.get("doc_id"), data.get("paragraph")
    if isinstance(paragraph, str) and paragraph.strip().isdigit():
        paragraph = int(paragraph)
    if not isinstance(doc_id, str) or not doc_id:
        return ("", 0), f"task {task['id']} has no data.doc_id"
    if not isinstance(paragraph, int) or isinstance(paragraph, bool) or paragraph < 0:
        return ("", 0), f"task {task['id']} has data.paragraph {paragraph!r}, not a whole number"
    return (doc_id, paragraph), ""


def row_id_of(task: dict[str, Any]) -> str:
    """The row id: the paragraph's stable key, the same in every release."""
    data = task["data"]
    key = data.get("key")
    return str(key) if key else stable_hash(data.get("doc_id"), data.get("text"))


def to_annotation(
    raw: dict[str, Any],
    task: dict[str, Any],
    text: str,
    config: Config,
    labels: set[str],
    problems: list[dict[str, Any]],
) -> tuple[Annotation, AlignmentReport]:
    """One exported annotation as checked spans; what cannot be kept exactly is appended to `problems`."""
    report = AlignmentReport()
    spans: list[Span] = []
    annotator = _annotator_id(raw.get("completed_by"))
    for region in _span_regions(raw.get("result") or []):
        where = {
            "task_id": int(task["id"]),
            "annotation_id": raw.get("id"),
            "annotator": annotator,
            "region_id": region.get("id"),
            "region": region.get("value"),
        }
        try:
            found, fix = region_to_spans(text, region.get("value"))
        except RegionMismatch as exc:
            problems.append({**where, "reason": exc.reason})
            continue
        report = report.merge(AlignmentReport.of_region(fix))
        for span in found:
            label = config.label_mapping.get(span.label, span.label)
            if label not in labels:
                problems.append(
                    {**where, "reason": f"label {span.label!r} is not in the config's label set {sorted(labels)}"}
                )
                continue
            spans.append(Span(span.start, span.end, label, span.text))
    annotation = Annotation(
        id=int(raw.get("id", 0)),
        task_id=int(task["id"]),
        annotator=annotator,
        spans=tuple(dict.fromkeys(spans)),
        cancelled=bool(raw.get("was_cancelled")),
        ground_truth=bool(raw.get("ground_truth")),
        updated_at=str(raw.get("updated_at") or raw.get("created_at") or ""),
        created_at=str(raw.get("created_at") or ""),
        lead_time=_seconds(raw.get("lead_time")),
    )
    return annotation, report


def timed_of(raw: dict[str, Any], annotation: Annotation, task: dict[str, Any]) -> list[Any] | None:
    """An annotation's time as the build counts it: [annotator's name, the model version whose proposals they saw,
    seconds, skipped]; None when Label Studio recorded no time for it."""
    if annotation.lead_time is None:
        return None
    seen = seen_version(task, annotation.created_at)
    return [annotator_name(raw.get("completed_by")), seen, annotation.lead_time, annotation.cancelled]


def seen_version(task: dict[str, Any], created_at: str) -> str:
    """The model version that pre-annotated the task as the annotator saw it: the newest prediction made at or
    before the annotation (a later one came after their work); NO_MODEL when there was none."""
    when = stamp_time(created_at)
    seen, newest = NO_MODEL, None
    for prediction in task.get("predictions", []):
        if not isinstance(prediction, dict):
            continue
        made = stamp_time(prediction.get("created_at"))
        if made <= when and (newest is None or made >= newest):
            seen, newest = str(prediction.get("model_version") or "unknown"), made
    return seen


def annotator_name(completed_by: Any) -> str:
    """How an annotator is named in reports: their e-mail when the export has it, else their user id."""
    if isinstance(completed_by, dict):
        email = completed_by.get("email")
        if isinstance(email, str) and email:
            return email
        completed_by = completed_by.get("id")
    return f"annotator {completed_by}" if isinstance(completed_by, int) else "unknown annotator"


def predictions_of(
    task: dict[str, Any], text: str, config: Config
) -> Iterator[tuple[str, tuple[Span, ...], float | None]]:
    """Each prediction's spans in code points; a prediction region that does not fit is skipped, not fatal.

    Predictions are the model's, not the annotators': a broken one cannot lose human work, and quality figures
    are computed on the ones that fit.
    """
    for prediction in task.get("predictions", []):
        if not isinstance(prediction, dict):
            continue  # an export without `only_id: False` lists prediction ids only
        spans: list[Span] = []
        for region in _span_regions(prediction.get("result") or []):
            try:
                found, _ = region_to_spans(text, region.get("value"))
            except RegionMismatch:
                continue
            spans.extend(s for s in found if s.label in config.labels)
        score = prediction.get("score")
        score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None
        yield str(prediction.get("model_version") or "unknown"), tuple(spans), score


def dispute_of(submitted: Sequence[Annotation], row_id: str) -> dict[str, Any] | None:
    """The readings of a task whose annotators disagree (each annotator's latest annotation), or None."""
    readings = latest_per_annotator(submitted)
    if len(readings) < 2 or len({frozenset((s.start, s.end, s.label) for s in a.spans) for a in readings}) == 1:
        return None
    return {
        "task_id": readings[0].task_id,
        "row_id": row_id,
        "annotations": [{"id": a.id, "annotator": a.annotator,
                         "spans": [[s.start, s.end, s.label, s.text] for s in sorted(a.spans)]}
                        for a in readings],
    }  # fmt: skip


def flag_of(task: dict[str, Any], submitted: Sequence[Annotation], row_id: str) -> dict[str, Any] | None:
    """A task's review flag (`data.review_flag`, set by `review --push`) and when its annotations were last
    submitted, so `review` can tell a flagged task that was submitted again since; None when it has no flag."""
    flag = task["data"].get("review_flag")
    if not isinstance(flag, dict) or not flag:
        return None
    return {"task_id": int(task["id"]), "row_id": row_id, "flag": flag, "stamps": [a.updated_at for a in submitted]}


def _span_regions(result: Sequence[Any]) -> Iterator[dict[str, Any]]:
    for region in result:
        if isinstance(region, dict) and region.get("type") in SPAN_TYPES:
            yield region


def _seconds(value: Any) -> float | None:
    """A lead_time as seconds; None for a missing, negative or non-numeric one (no time is better than a wrong one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _annotator_id(completed_by: Any) -> int | None:
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return int(completed_by) if isinstance(completed_by, int) else None
