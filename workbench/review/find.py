"""The review of the latest snapshot: its rows built as a release builds them, the items of every reason that can
be checked, and the ones still open."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import spacy
from spacy.tokens import Doc

from workbench.model.listing import list_models
from workbench.project import Project
from workbench.records import Row
from workbench.release.converters import row_to_doc
from workbench.review import analysis, record
from workbench.review.kfold import cross_validate
from workbench.rows.builder import RowBuilder, processes_for
from workbench.sync.snapshots import Snapshot, check_intact, latest_snapshot

ROW_BATCH = 1000


@dataclass(frozen=True)
class ReviewResult:
    """The open items of a snapshot and how they were found."""

    snapshot: Snapshot
    items: pd.DataFrame  # open items, `analysis.ITEM_COLUMNS`, reason by reason, surest first
    reviewed: int  # items left out: their task was submitted again after it was flagged
    checked: tuple[str, ...]
    model: dict[str, Any] | None = None  # how the model reason ran, when it did
    note: str = ""  # why the model reason did not run

    def counts(self) -> dict[str, int | None]:
        return analysis.counts_by_reason(self.items, self.checked)

    def as_dict(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot.as_dict(),
            "open": len(self.items),
            "by_reason": self.counts(),
            "reviewed": self.reviewed,
            "model": self.model,
            "note": self.note,
            "items": [record.plain(item) for item in self.items.to_dict(orient="records")],
        }


def review(project: Project, *, progress: Callable[[int], None] | None = None,
           on_fold: Callable[[int, int], None] | None = None) -> ReviewResult:  # fmt: skip
    """The likely mistakes in the latest snapshot, kept beside it (`record.save`) for the release to count."""
    config = project.config
    snapshot = latest_snapshot(project)
    check_intact(snapshot)
    note = model_note(project)
    builder = RowBuilder.for_config(config, project.root)
    docs: list[Doc] = []
    vocab = spacy.blank("en").vocab

    def collected(rows: Iterable[Row]) -> Iterable[Row]:
        for row in rows:
            if not note:
                docs.append(row_to_doc(vocab, row))
            if progress:
                progress(1)
            yield row

    table = _table(collected(builder.rows(snapshot.tasks_iter(), processes=processes_for(snapshot.tasks))))
    build = builder.finish()
    paragraphs, spans, found = record.cheap_items(project, table, build)
    checked, model = list(record.CHEAP_REASONS), None
    if not note and paragraphs.doc_id.nunique() < 2:
        note = "the model check needs annotated paragraphs of at least two articles"
    if not note:
        cv = cross_validate(project, docs, on_fold=on_fold)
        model = cv.as_dict()
        found = analysis.sort_items(pd.concat([found, analysis.model_items(
            paragraphs, spans, cv.predictions, confidence=config.review.confidence)], ignore_index=True))
        checked.append("model")
    record.save(project, snapshot, found, checked, model)
    opened = analysis.open_items(found, record.reviewed_ids(build))
    checked.sort(key=analysis.REASONS.index)
    return ReviewResult(snapshot, opened, len(found) - len(opened), tuple(checked), model, note)


def model_note(project: Project) -> str:
    """Why the model reason cannot run ("" when it can): folds below 2, or no trained model yet."""
    if project.config.review.folds < 2:
        return "the model check is off ([review] folds is below 2)"
    if not any(not entry.get("problem") for entry in list_models(project)):
        return "no trained model yet (`workbench train VERSION`), so the model check did not run"
    return ""


def _table(rows: Iterable[Row]) -> pa.Table:
    """The rows as Arrow columns, converted a batch at a time."""
    batch: list[Row] = []
    tables = []
    for row in rows:
        batch.append(row)
        if len(batch) == ROW_BATCH:
            tables.append(analysis.rows_table(batch))
            batch = []
    tables.append(analysis.rows_table(batch))
    return pa.concat_tables(tables)
