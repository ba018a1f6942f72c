"""Build: a snapshot's tasks become dataset rows, every submitted span checked and kept exactly.

For each task: its annotations' regions pass the offset firewall (`offsets`), several annotations are merged
(`merge`), the merged spans are aligned to tokens split at every span edge (`alignment`), and the model's
predictions are compared with the final spans (`quality`). A region that matches its text under no
interpretation, or carries a label outside the config, fails the build with a report naming each one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
from workbench.quality import AgreementTally, QualityTally, agreement_counts, quality_counts
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


Key = tuple  # a count's name: ("tasks",), ("excluded", reason), ("align", what), ("annotator", id), ("agree", ...)
_ALIGN = ("regions", "kept", "trimmed", "converted", "ambiguous", "unlabelled", "split_tokens")
# What a task adds besides counts, in snapshot order: alignment conflicts, merge ties, regions that cannot be kept,
# a missing place, annotators' differing readings and review flags (see `dispute_of`, `flag_of`), and each
# prediction's (model version, score, whether annotators changed the paragraph) for the score's AUROC.
LISTS = ("conflicts", "ties", "problems", "misplaced", "disputes", "flagged", "scored")


@dataclass
class Outcome:
    """What one task gives a build: its row (or None) and its share of the figures, as integer counts that add up
    in any grouping, plus the few things named one by one (alignment conflicts, merge ties, problems)."""

    row: Row | None
    counts: dict[Key, int]
    lists: dict[str, list[Any]] = field(default_factory=dict)  # only non-empty ones, keys from LISTS


@dataclass
class Chunk:
    """The outcomes of consecutive tasks, packed to cross from a worker process cheaply: rows, then every task's
    counts as (key number, value) runs over this chunk's own key table, and its lists (None for most tasks)."""

    rows: list[Row | None]
    keys: list[Key]
    offsets: list[int]  # task i's counts are items offsets[i]:offsets[i + 1]
    key_ids: list[int]
    values: list[int]
    lists: list[dict[str, list[Any]] | None]

    @classmethod
    def of(cls, outcomes: Iterable[Outcome]) -> Chunk:
        table: dict[Key, int] = {}
        chunk = cls(rows=[], keys=[], offsets=[0], key_ids=[], values=[], lists=[])
        for outcome in outcomes:
            chunk.rows.append(outcome.row)
            for key, value in outcome.counts.items():
                number = table.get(key)
                if number is None:
                    number = table[key] = len(chunk.keys)
                    chunk.keys.append(key)
                chunk.key_ids.append(number)
                chunk.values.append(value)
            chunk.offsets.append(len(chunk.key_ids))
            chunk.lists.append(outcome.lists or None)
        return chunk

    def totals(self) -> Counter[Key]:
        sums: Counter[Key] = Counter()
        for number, value in zip(self.key_ids, self.values, strict=True):
            sums[self.keys[number]] += value
        return sums


class Tally:
    """The sum of many tasks' outcomes: counts added up, lists joined in snapshot order. Decoded into the figures
    a release publishes by `figures`, the one place that does so, whoever summed the counts."""

    def __init__(self) -> None:
        self.counts: Counter[Key] = Counter()
        self.lists: dict[str, list[Any]] = {name: [] for name in LISTS}

    def add(self, counts: Mapping[Key, int], lists: Mapping[str, list[Any]] | None = None) -> None:
        self.counts.update(counts)
        for name, items in (lists or {}).items():
            self.lists[name] += items

    def add_chunk(self, chunk: Chunk) -> None:
        self.counts.update(chunk.totals())
        for lists in chunk.lists:
            self.add({}, lists)

    def figures(self, labels: Sequence[str], model_version: str) -> Build:
        """The build's figures; SnapshotError for tasks with no place, AlignmentError naming every region that
        could not be kept exactly."""
        counts, lists = self.counts, self.lists
        if lists["misplaced"]:
            shown = "; ".join(lists["misplaced"][:MAX_REPORTED_PROBLEMS])
            raise SnapshotError(
                f"{len(lists['misplaced'])} task(s) do not say where their paragraph is: {shown}. Every task needs "
                "data.doc_id (its article) and data.paragraph (its 0-based position, a whole number), as the "
                "workbench gives the tasks it pushes; fix or remove tasks imported by other means in Label Studio, "
                "then run `workbench pull` again. Nothing was written."
            )
        if lists["problems"]:
            raise AlignmentError(_problems_message(lists["problems"]), lists["problems"])
        agreement, quality = AgreementTally(labels), QualityTally(labels)
        agreement.add_counts(counts)
        quality.add_counts(counts)
        for version, score, changed in lists["scored"]:
            quality.add_scored(version, [(score, changed)])
        report = AlignmentReport(**{name: counts.get(("align", name), 0) for name in _ALIGN},
                                 conflicts=tuple(lists["conflicts"]))  # fmt: skip
        return Build(
            row_count=counts.get(("rows",), 0),
            alignment=report,
            excluded=Counter({key[1]: n for key, n in counts.items() if key[0] == "excluded" and n}),
            tasks=counts.get(("tasks",), 0),
            annotators={key[1] for key, n in counts.items() if key[0] == "annotator" and n},
            ties=list(lists["ties"]),
            agreement=agreement.result(),
            quality=quality.result(),
            model_versions=quality.versions() or ([model_version] if model_version else []),
            disputes=list(lists["disputes"]),
            flagged=list(lists["flagged"]),
        )


class RowBuilder:
    """Turns exported tasks into rows one at a time while counting the figures, so that rows can stream into a
    release: memory does not grow with the snapshot. Iterate `rows(tasks)` to the end, then call `finish()`."""

    def __init__(self, config: Config, tokenizer: Any, *, model_version: str = "") -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.model_version = model_version  # named in the figures when no task carries a prediction
        self.labels = set(config.labels)
        self.tally = Tally()

    @classmethod
    def for_config(cls, config: Config, root: Path | None = None) -> RowBuilder:
        """A builder with the configured pipeline's tokenizer (a folder relative to the project `root`), so the
        dataset tokenizes as that model does."""
        nlp, model_version = load_ner_pipeline(config.model.name, root)
        return cls(config, nlp.tokenizer, model_version=model_version)

    def rows(self, tasks: Iterable[dict[str, Any]], *, processes: int = 1) -> Iterator[Row]:
        """The row of every task with a submitted annotation, in snapshot order, counted into `tally`."""
        for chunk in self.chunks(tasks, processes=processes):
            self.tally.add_chunk(chunk)
            yield from (row for row in chunk.rows if row is not None)

    def chunks(self, tasks: Iterable[dict[str, Any]], *, processes: int = 1) -> Iterator[Chunk]:
        """Every task's outcome, in snapshot order, CHUNK_TASKS at a time.

        With `processes` > 1, chunks of tasks are built in forked worker processes (each with this builder's
        tokenizer) while this one reads the snapshot; a few chunks are in flight at a time, so memory stays flat.
        """
        if processes <= 1:
            for part in chunked(tasks, CHUNK_TASKS):
                yield Chunk.of(map(self.outcome, part))
            return
        with fork_pool(processes, _start_worker, (self.config, self.tokenizer)) as pool:
            yield from ordered_map(pool, _build_chunk, chunked(tasks, CHUNK_TASKS), processes)

    def row(self, task: dict[str, Any]) -> Row | None:
        """One task's row (its outcome counted into `tally`), or None when it gives none."""
        outcome = self.outcome(task)
        self.tally.add(outcome.counts, outcome.lists)
        return outcome.row

    def outcome(self, task: dict[str, Any]) -> Outcome:
        """One task's row and share of the figures. No row when no annotation was submitted, the paragraph was
        retired from the seeds, or an edit of its text is waiting for an annotator's check (each counted in
        `excluded`), or the task does not say where its paragraph is, or a region cannot be kept exactly."""
        config = self.config
        counts: dict[Key, int] = {("tasks",): 1}
        lists: dict[str, list[Any]] = {}

        def excluded(reason: str) -> Outcome:
            counts[("excluded", reason)] = 1
            return Outcome(None, counts, lists)

        if task["data"].get("retired") and not config.corpus.keep_retired:
            return excluded("retired")
        place, problem = _place_of(task)
        if problem:
            return Outcome(None, counts, {"misplaced": [problem]})
        text = str(task["data"].get("text", ""))
        annotations = []
        problems: list[dict[str, Any]] = []
        for raw in task.get("annotations", []):
            annotation, region_report = to_annotation(raw, task, text, config, self.labels, problems)
            _count_report(counts, region_report)
            annotations.append(annotation)
        if problems:
            lists["problems"] = problems
        submitted = [a for a in annotations if not a.cancelled]
        if not annotations:
            return excluded("no_annotation")
        if not submitted:
            return excluded("skipped")
        held = task["data"].get("held") or {}
        if held:  # annotations whose spans an edit touched count again once submitted again
            raw = {int(a.get("id", 0)): a for a in task.get("annotations", [])}
            submitted = [a for a in submitted if confirmed(raw.get(a.id, {}), held)]
            if not submitted:
                return excluded("awaiting_check")
        merged = merge(submitted, policy=config.merge.policy)
        if merged.tie:
            tie = {"task_id": int(task["id"]), "annotations": [a.id for a in submitted], "used": merged.rule}
            lists["ties"] = [tie]
        for key, n in agreement_counts(submitted).items():
            counts[key] = counts.get(key, 0) + n
        for annotator in {a.annotator for a in submitted if a.annotator is not None}:
            counts[("annotator", annotator)] = 1
        aligned = align(text, merged.spans, self.tokenizer, overlap=config.merge.overlap)
        row_id = row_id_of(task)
        dispute, flag = dispute_of(submitted, row_id), flag_of(task, submitted, row_id)
        if dispute:
            lists["disputes"] = [dispute]
        if flag:
            lists["flagged"] = [flag]
        report = AlignmentReport.of_alignment(
            aligned.split_tokens, aligned.conflicts, row=row_id, task_id=int(task["id"])
        )
        _count_report(counts, report)
        if report.conflicts:
            lists["conflicts"] = list(report.conflicts)
        for model_version, spans, score in predictions_of(task, text, config):
            for key, n in quality_counts(model_version, spans, merged.spans).items():
                counts[key] = counts.get(key, 0) + n
            if score is not None:  # did the annotators change what the model proposed, and how sure was it
                changed = _places(spans) != _places(merged.spans)
                lists.setdefault("scored", []).append([model_version, score, changed])
        counts[("rows",)] = 1
        row = Row(
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
        return Outcome(row, counts, lists)

    def finish(self) -> Build:
        """The figures; AlignmentError naming every region that could not be kept exactly, if there was one."""
        return self.tally.figures(self.config.labels, self.model_version)


def _places(spans: Iterable[Span]) -> set[tuple[int, int, str]]:
    return {(span.start, span.end, span.label) for span in spans}


def _count_report(counts: dict[Key, int], report: AlignmentReport) -> None:
    for name in _ALIGN:
        n = getattr(report, name)
        if n:
            counts[("align", name)] = counts.get(("align", name), 0) + n


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


def _build_chunk(tasks: list[dict[str, Any]]) -> Chunk:
    assert _worker_settings is not None
    return Chunk.of(map(RowBuilder(*_worker_settings).outcome, tasks))


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
