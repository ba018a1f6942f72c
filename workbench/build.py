"""Build: a snapshot's tasks become dataset rows, every submitted span checked and kept exactly.

For each task: its annotations' regions pass the offset firewall (`offsets`), several annotations are merged
(`merge`), the merged spans are aligned to tokens split at every span edge (`alignment`), and the model's
predictions are compared with the final spans (`quality`). A region that matches its text under no
interpretation, or carries a label outside the config, fails the build with a report naming each one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from more_itertools import chunked

from workbench.alignment import align
from workbench.config import Config
from workbench.errors import AlignmentError, SnapshotError
from workbench.merge import latest_per_annotator, merge
from workbench.offsets import AlignmentReport, RegionMismatch, region_to_spans
from workbench.parallel import choose_processes, fork_pool, ordered_map
from workbench.pipeline import load_ner_pipeline
from workbench.quality import AgreementTally, QualityTally
from workbench.reconcile import confirmed
from workbench.records import Annotation, Row, Span, stable_hash

# Regions of these control tags are spans; anything else in a result (a comment box, say) is not ours.
SPAN_TYPES = {"labels"}
MAX_REPORTED_PROBLEMS = 50
# Building a row takes ~0.4 ms; below this many tasks forking workers is not worth it. A chunk is the unit
# of work a worker gets (big enough that pickling it is cheap next to building it).
PARALLEL_MIN_TASKS = 2_000
CHUNK_TASKS = 250


@dataclass
class Build:
    """Every figure a release publishes about the rows of a snapshot (the rows themselves stream past)."""

    row_count: int
    alignment: AlignmentReport
    excluded: Counter[str]
    tasks: int
    annotators: set[int]
    ties: list[dict[str, Any]]
    agreement: dict[str, Any]
    quality: dict[str, Any]
    model_versions: list[str] = field(default_factory=list)
    # for `review`: tasks whose annotators read them differently, and tasks flagged for a second look
    disputes: list[dict[str, Any]] = field(default_factory=list)
    flagged: list[dict[str, Any]] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """The figures of this build, as published in manifests, cards and `workbench report`."""
        return {
            "tasks": self.tasks,
            "rows": self.row_count,
            "excluded": dict(sorted(self.excluded.items())),
            "annotators": len(self.annotators),
            "merge_ties": self.ties,
            "alignment": self.alignment.as_dict(),
            "agreement": self.agreement,
            "prediction_quality": self.quality,
        }


@dataclass
class Tally:
    """What a build counts while rows pass; plain data, so a worker process can send its share back to be merged."""

    agreement: AgreementTally
    quality: QualityTally
    report: AlignmentReport = field(default_factory=AlignmentReport)
    excluded: Counter[str] = field(default_factory=Counter)
    problems: list[dict[str, Any]] = field(default_factory=list)
    misplaced: list[str] = field(default_factory=list)  # tasks with no usable article or position
    annotators: set[int] = field(default_factory=set)
    ties: list[dict[str, Any]] = field(default_factory=list)
    disputes: list[dict[str, Any]] = field(default_factory=list)  # see `dispute_of`
    flagged: list[dict[str, Any]] = field(default_factory=list)  # see `flag_of`
    tasks: int = 0
    row_count: int = 0

    def merge(self, other: Tally) -> None:
        """Add the tally of the tasks that came after this one's (lists keep snapshot order)."""
        self.agreement.merge(other.agreement)
        self.quality.merge(other.quality)
        self.report = self.report.merge(other.report)
        self.excluded.update(other.excluded)
        self.problems += other.problems
        self.misplaced += other.misplaced
        self.annotators |= other.annotators
        self.ties += other.ties
        self.disputes += other.disputes
        self.flagged += other.flagged
        self.tasks += other.tasks
        self.row_count += other.row_count


class RowBuilder:
    """Turns exported tasks into rows one at a time while counting the figures, so that rows can stream into a
    release: memory does not grow with the snapshot. Iterate `rows(tasks)` to the end, then call `finish()`."""

    def __init__(self, config: Config, tokenizer: Any, *, model_version: str = "") -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.model_version = model_version  # named in the figures when no task carries a prediction
        self.labels = set(config.labels)
        self.tally = Tally(agreement=AgreementTally(config.labels), quality=QualityTally(config.labels))

    @classmethod
    def for_config(cls, config: Config, root: Path | None = None) -> RowBuilder:
        """A builder with the configured pipeline's tokenizer (a folder relative to the project `root`), so the
        dataset tokenizes as that model does."""
        nlp, model_version = load_ner_pipeline(config.model.name, root)
        return cls(config, nlp.tokenizer, model_version=model_version)

    def rows(self, tasks: Iterable[dict[str, Any]], *, processes: int = 1) -> Iterator[Row]:
        """The row of every task with a submitted annotation, in snapshot order.

        With `processes` > 1, chunks of tasks are built in forked worker processes (each with this builder's
        tokenizer) while this one reads the snapshot; a few chunks are in flight at a time, so memory stays flat.
        """
        if processes <= 1:
            for task in tasks:
                row = self.row(task)
                if row is not None:
                    yield row
            return
        with fork_pool(processes, _start_worker, (self.config, self.tokenizer)) as pool:
            for rows, tally in ordered_map(pool, _build_chunk, chunked(tasks, CHUNK_TASKS), processes):
                self.tally.merge(tally)
                yield from rows

    def row(self, task: dict[str, Any]) -> Row | None:
        """One task's row, or None when it gives none (counted in `excluded`): no annotation was submitted,
        the paragraph was retired from the seeds, or an edit of its text is waiting for an annotator's check."""
        config, tally = self.config, self.tally
        tally.tasks += 1
        if task["data"].get("retired") and not config.corpus.keep_retired:
            tally.excluded["retired"] += 1
            return None
        place, problem = _place_of(task)
        if problem:
            tally.misplaced.append(problem)
            return None
        text = str(task["data"].get("text", ""))
        annotations = []
        for raw in task.get("annotations", []):
            annotation, region_report = to_annotation(raw, task, text, config, self.labels, tally.problems)
            tally.report = tally.report.merge(region_report)
            annotations.append(annotation)
        submitted = [a for a in annotations if not a.cancelled]
        if not annotations:
            tally.excluded["no_annotation"] += 1
            return None
        if not submitted:
            tally.excluded["skipped"] += 1
            return None
        held = task["data"].get("held") or {}
        if held:  # annotations whose spans an edit touched count again once submitted again
            raw = {int(a.get("id", 0)): a for a in task.get("annotations", [])}
            submitted = [a for a in submitted if confirmed(raw.get(a.id, {}), held)]
            if not submitted:
                tally.excluded["awaiting_check"] += 1
                return None
        merged = merge(submitted, policy=config.merge.policy)
        if merged.tie:
            tally.ties.append(
                {"task_id": int(task["id"]), "annotations": [a.id for a in submitted], "used": merged.rule}
            )
        tally.agreement.add(submitted)
        tally.annotators.update(a.annotator for a in submitted if a.annotator is not None)
        aligned = align(text, merged.spans, self.tokenizer, overlap=config.merge.overlap)
        row_id = row_id_of(task)
        dispute, flag = dispute_of(submitted, row_id), flag_of(task, submitted, row_id)
        if dispute:
            tally.disputes.append(dispute)
        if flag:
            tally.flagged.append(flag)
        tally.report = tally.report.merge(
            AlignmentReport.of_alignment(aligned.split_tokens, aligned.conflicts, row=row_id, task_id=int(task["id"]))
        )
        for model_version, spans, score in predictions_of(task, text, config):
            tally.quality.add(model_version, spans, merged.spans, score)
        tally.row_count += 1
        return Row(
            id=row_id,
            doc_id=place[0],
            paragraph=place[1],
            text=text,
            tokens=tuple(aligned.tokens),
            ner_tags=tuple(aligned.tags),
            spans=tuple(sorted(merged.spans)),
            task_id=int(task["id"]),
            annotation_ids=tuple(merged.annotation_ids),
            annotators=tuple(merged.annotators),
        )

    def finish(self) -> Build:
        """The figures; AlignmentError naming every region that could not be kept exactly, if there was one."""
        tally = self.tally
        if tally.misplaced:
            shown = "; ".join(tally.misplaced[:MAX_REPORTED_PROBLEMS])
            raise SnapshotError(
                f"{len(tally.misplaced)} task(s) do not say where their paragraph is: {shown}. Every task needs "
                "data.doc_id (its article) and data.paragraph (its 0-based position, a whole number), as the "
                "workbench gives the tasks it pushes; fix or remove tasks imported by other means in Label Studio, "
                "then run `workbench pull` again. Nothing was written."
            )
        if tally.problems:
            raise AlignmentError(_problems_message(tally.problems), tally.problems)
        return Build(
            row_count=tally.row_count,
            alignment=tally.report,
            excluded=tally.excluded,
            tasks=tally.tasks,
            annotators=tally.annotators,
            ties=tally.ties,
            agreement=tally.agreement.result(),
            quality=tally.quality.result(),
            model_versions=tally.quality.versions() or ([self.model_version] if self.model_version else []),
            disputes=tally.disputes,
            flagged=tally.flagged,
        )


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


def processes_for(tasks: int) -> int:
    """How many processes building `tasks` rows pays for."""
    return choose_processes(tasks, PARALLEL_MIN_TASKS)


# A forked worker's builder settings, set once per worker by `_start_worker`.
_worker_settings: tuple[Config, Any] | None = None


def _start_worker(config: Config, tokenizer: Any) -> None:
    global _worker_settings
    _worker_settings = (config, tokenizer)


def _build_chunk(tasks: list[dict[str, Any]]) -> tuple[list[Row], Tally]:
    assert _worker_settings is not None
    builder = RowBuilder(*_worker_settings)
    rows = [row for row in map(builder.row, tasks) if row is not None]
    return rows, builder.tally


def _place_of(task: dict[str, Any]) -> tuple[tuple[str, int], str]:
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
    )
    return annotation, report


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


def _span_regions(result: Sequence[Any]) -> Iterator[dict[str, Any]]:
    for region in result:
        if isinstance(region, dict) and region.get("type") in SPAN_TYPES:
            yield region


def _annotator_id(completed_by: Any) -> int | None:
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id")
    return int(completed_by) if isinstance(completed_by, int) else None


def _problems_message(problems: list[dict[str, Any]]) -> str:
    shown = problems[:MAX_REPORTED_PROBLEMS]
    lines = [
        f"task {p['task_id']}, annotation {p['annotation_id']} by annotator {p['annotator']}, region "
        f"{p['region_id']}: {p['reason']}"
        for p in shown
    ]
    more = f" (and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
    return (
        f"{len(problems)} annotated region(s) cannot be kept exactly, so no dataset was built{more}: "
        + "; ".join(lines)
        + ". Fix these regions in Label Studio (or add the label to the config's labels / label_mapping), "
        "then run `workbench pull` and build again. Nothing was written."
    )
