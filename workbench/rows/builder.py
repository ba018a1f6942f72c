"""Build: a snapshot's tasks become dataset rows, every submitted span checked and kept exactly.

For each task (`tasks`): its annotations' regions pass the offset firewall (`spans.offsets`), several annotations
are merged (`merge`), the merged spans are aligned to tokens split at every span edge (`spans.alignment`), and the
model's predictions are compared with the final spans (`quality`). Each task's row and share of the figures is an
`Outcome`; the figures are summed and decoded in `tally`. A region that matches its text under no interpretation,
or carries a label outside the config, fails the build with a report naming each one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from more_itertools import chunked

from workbench.config import Config
from workbench.merge import merge
from workbench.parallel import choose_processes, fork_pool, ordered_map
from workbench.pipeline import load_ner_pipeline
from workbench.records import Annotation, Row, Span, confirmed
from workbench.rows.quality import agreement_counts, quality_counts
from workbench.rows.tally import Build, Chunk, Key, Outcome, Tally, count_report
from workbench.rows.tasks import dispute_of, flag_of, place_of, predictions_of, row_id_of, timed_of, to_annotation
from workbench.spans.alignment import align
from workbench.spans.offsets import AlignmentReport

# Building a row takes ~0.4 ms; below this many tasks forking workers is not worth it. A chunk is the unit
# of work a worker gets (big enough that pickling it is cheap next to building it).
PARALLEL_MIN_TASKS = 2_000
CHUNK_TASKS = 250

__all__ = ["Build", "Key", "RowBuilder", "Tally", "processes_for"]


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
        found = Outcome()
        if task["data"].get("retired") and not self.config.corpus.keep_retired:
            return found.excluded("retired")
        place, problem = place_of(task)
        if problem:
            found.misplaced.append(problem)
            return found
        text = str(task["data"].get("text", ""))
        annotations = self._annotations(task, text, found)
        if not annotations:
            return found.excluded("no_annotation")
        submitted = [a for a in annotations if not a.cancelled]
        if not submitted:
            return found.excluded("skipped")
        held = task["data"].get("held") or {}
        if held:  # annotations whose spans an edit touched count again once submitted again
            raw = {int(a.get("id", 0)): a for a in task.get("annotations", [])}
            submitted = [a for a in submitted if confirmed(raw.get(a.id, {}), held)]
            if not submitted:
                return found.excluded("awaiting_check")
        merged = merge(submitted, policy=self.config.merge.policy)
        if merged.tie:
            found.ties.append({"task_id": int(task["id"]), "annotations": [a.id for a in submitted],
                               "used": merged.rule})  # fmt: skip
        found.add_counts(agreement_counts(submitted))
        for annotator in {a.annotator for a in submitted if a.annotator is not None}:
            found.counts[("annotator", annotator)] = 1
        aligned = align(text, merged.spans, self.tokenizer, overlap=self.config.merge.overlap)
        row_id = row_id_of(task)
        found.disputes += [dispute] if (dispute := dispute_of(submitted, row_id)) else []
        found.flagged += [flag] if (flag := flag_of(task, submitted, row_id)) else []
        report = AlignmentReport.of_alignment(aligned.split_tokens, aligned.conflicts, row=row_id,
                                              task_id=int(task["id"]))  # fmt: skip
        count_report(found, report)
        found.conflicts += list(report.conflicts)
        self._score_predictions(task, text, merged.spans, found)
        found.add(("rows",))
        found.row = Row(id=row_id, doc_id=place[0], paragraph=place[1], text=text, tokens=tuple(aligned.tokens),
                        ner_tags=tuple(aligned.tags), spans=tuple(sorted(merged.spans)), task_id=int(task["id"]),
                        annotation_ids=tuple(merged.annotation_ids), annotators=tuple(merged.annotators))  # fmt: skip
        return found

    def _annotations(self, task: dict[str, Any], text: str, found: Outcome) -> list[Annotation]:
        """The task's annotations with their regions checked; what cannot be kept exactly goes to `problems`. Each
        one's time in the editor is counted, submitted or skipped, whether or not the task gives a row."""
        annotations = []
        for raw in task.get("annotations", []):
            annotation, region_report = to_annotation(raw, task, text, self.config, self.labels, found.problems)
            count_report(found, region_report)
            annotations.append(annotation)
            timed = timed_of(raw, annotation, task)
            if timed is None:
                found.add(("untimed",))
            else:
                found.timed.append(timed)
        return annotations

    def _score_predictions(self, task: dict[str, Any], text: str, final: tuple[Span, ...], found: Outcome) -> None:
        """Each prediction against the final spans (per label and model version), and whether annotators changed
        what a scored prediction proposed (for how well the score finds the paragraphs that needed work)."""
        for model_version, spans, score in predictions_of(task, text, self.config):
            found.add_counts(quality_counts(model_version, spans, final))
            if score is not None:
                found.scored.append([model_version, score, _places(spans) != _places(final)])

    def finish(self) -> Build:
        """The figures; AlignmentError naming every region that could not be kept exactly, if there was one."""
        return self.tally.figures(self.config.labels, self.model_version)


def _places(spans: Iterable[Span]) -> set[tuple[int, int, str]]:
    return {(span.start, span.end, span.label) for span in spans}


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
