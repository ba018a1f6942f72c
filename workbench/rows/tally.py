"""The figures of a build: every task's share as integer counts that add up in any grouping (`Outcome`), packed
to cross from a worker (`Chunk`), summed (`Tally`) and decoded into what a release publishes (`Build`), in one
place, whoever summed the counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import AlignmentError, SnapshotError
from workbench.records import Row
from workbench.rows.quality import AgreementTally, QualityTally
from workbench.rows.timing import annotation_time
from workbench.spans.offsets import AlignmentReport

MAX_REPORTED_PROBLEMS = 50


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
    # seconds annotators spent in the editor (`rows.timing`): totals, per annotator and per model version
    annotation_time: dict[str, Any] = field(default_factory=dict)

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
            "annotation_time": self.annotation_time,
        }


Key = tuple  # a count's name: ("tasks",), ("excluded", reason), ("align", what), ("annotator", id), ("agree", ...),
# ("untimed",) (an annotation Label Studio recorded no time for)
_ALIGN = ("regions", "kept", "trimmed", "converted", "ambiguous", "unlabelled", "split_tokens")
# What a task adds besides counts, in snapshot order: alignment conflicts, merge ties, regions that cannot be kept,
# a missing place, annotators' differing readings and review flags (see `dispute_of`, `flag_of`), and each
# prediction's (model version, score, whether annotators changed the paragraph) for the score's AUROC, and each
# annotation's time in the editor (annotator, model version seen, seconds, skipped; see `tasks.timed_of`).
LISTS = ("conflicts", "ties", "problems", "misplaced", "disputes", "flagged", "scored", "timed")


@dataclass
class Outcome:
    """What one task gives a build: its row (or None), its share of the figures as integer counts that add up in
    any grouping, and the few things named one by one (each list holds this task's entries, in LISTS order)."""

    row: Row | None = None
    counts: dict[Key, int] = field(default_factory=lambda: {("tasks",): 1})
    conflicts: list[Any] = field(default_factory=list)  # spans whose tokens overlap another span's
    ties: list[Any] = field(default_factory=list)  # annotations whose merge had no majority
    problems: list[Any] = field(default_factory=list)  # regions that cannot be kept exactly
    misplaced: list[Any] = field(default_factory=list)  # the task does not say where its paragraph is
    disputes: list[Any] = field(default_factory=list)  # annotators who read the task differently
    flagged: list[Any] = field(default_factory=list)  # the task's review flag
    scored: list[Any] = field(default_factory=list)  # (model version, score, annotators changed it) per prediction
    timed: list[Any] = field(default_factory=list)  # (annotator, model version seen, seconds, skipped) per annotation

    def add(self, key: Key, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def add_counts(self, counts: Mapping[Key, int]) -> None:
        for key, n in counts.items():
            self.add(key, n)

    def excluded(self, reason: str) -> Outcome:
        """This task gives no row, for `reason` (counted in the build's `excluded`)."""
        self.counts[("excluded", reason)] = 1
        return self

    @property
    def lists(self) -> dict[str, list[Any]]:
        """The non-empty lists by name, as a chunk packs them."""
        return {name: getattr(self, name) for name in LISTS if getattr(self, name)}


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
            raise AlignmentError(problems_message(lists["problems"]), lists["problems"])
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
            annotation_time=annotation_time(lists["timed"], counts.get(("untimed",), 0)),
        )


def count_report(outcome: Outcome, report: AlignmentReport) -> None:
    """An alignment report's counts into a task's outcome."""
    for name in _ALIGN:
        n = getattr(report, name)
        if n:
            outcome.add(("align", name), n)


def problems_message(problems: list[dict[str, Any]]) -> str:
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
