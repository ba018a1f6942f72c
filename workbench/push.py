"""Push: paragraphs with their predictions become Label Studio tasks, each exactly once.

The server does not deduplicate imports, so every task carries the paragraph's stable `key` and `push` imports
only the keys the project does not hold yet. A batch that fails is not blindly resent: the workbench asks the
server what it holds, then sends only what is still missing, in smaller batches. A task the server refuses even
alone is set aside and named at the end; the rest of the import goes on.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from more_itertools import chunked

from workbench.errors import NotPreannotatedError, ServerError
from workbench.interface import project_settings
from workbench.labelstudio import LabelStudio
from workbench.labelstudio.binding import ensure_project
from workbench.offsets import spans_to_regions
from workbench.preannotate import read_predictions
from workbench.project import Project
from workbench.records import Paragraph, Prediction

# Tasks refused one at a time before push stops sending: beyond a few, the cause is the server, not the tasks.
MAX_REFUSED = 5


@dataclass
class PushSummary:
    """What `push` did."""

    project_id: int
    project_url: str
    paragraphs: int
    already_there: int
    imported: int
    batches: int
    reconciled: int = 0
    refused: list[Paragraph] = field(default_factory=list)


def to_task(paragraph: Paragraph, prediction: Prediction) -> dict[str, Any]:
    """One Label Studio task: the paragraph's data and the model's spans as a prediction.

    Offsets are code points: Label Studio 1.23's editor draws and stores them so (checked in a real browser).
    """
    return {
        "data": paragraph.task_data(),
        "predictions": [
            {
                "model_version": prediction.model_version,
                "result": spans_to_regions(paragraph.text, prediction.spans),
            }
        ],
    }


def push(
    project: Project,
    paragraphs: Sequence[Paragraph],
    client: LabelStudio,
    *,
    progress: Callable[[int], None] | None = None,
) -> PushSummary:
    """Import every paragraph the project does not hold yet, with its prediction, in batches."""
    predictions = _predictions_for(project, paragraphs)
    model_version = next(iter(predictions.values())).model_version if predictions else "none"
    project_id = ensure_project(project, client, project_settings(project, model_version))
    held = client.task_keys(project_id)
    missing = [p for p in paragraphs if p.key not in held]
    summary = PushSummary(
        project_id=project_id,
        project_url=f"{client.url}/projects/{project_id}/data",
        paragraphs=len(paragraphs),
        already_there=len(paragraphs) - len(missing),
        imported=0,
        batches=0,
    )
    batch_size = project.config.labelstudio.batch_size
    # The predictions live until push ends: frozen, the garbage collector stops rescanning them at every batch
    # (measured: push went from 0.89 to 0.92-0.98 of a raw SDK import at 10k tasks).
    gc.freeze()
    try:
        for batch in chunked(missing, batch_size):
            _import_batch(client, project_id, batch, predictions, summary, progress)
            if len(summary.refused) >= MAX_REFUSED:
                break
    finally:
        gc.unfreeze()
    if summary.refused:
        raise _refused_error(summary, unsent=len(missing) - summary.imported - len(summary.refused))
    return summary


def _refused_error(summary: PushSummary, unsent: int) -> ServerError:
    named = "; ".join(f"paragraph {p.index} of article {p.doc_id} (key {p.key})" for p in summary.refused)
    rest = (
        f"{unsent} more tasks were not sent, because refusals this many point at the server rather than the tasks"
        if unsent
        else "every other task is in place"
    )
    return ServerError(
        f"Label Studio refused to import {len(summary.refused)} task(s) even one at a time: {named}. "
        f"{summary.imported} tasks were imported and {rest}. Check the server log (.workbench/labelstudio/server.log "
        "for the local server), fix the cause, and run `workbench push` again: it sends only what is missing."
    )


def _import_batch(
    client: LabelStudio,
    project_id: int,
    batch: list[Paragraph],
    predictions: dict[str, Prediction],
    summary: PushSummary,
    progress: Callable[[int], None] | None,
) -> None:
    """Send one batch; if it fails, learn what landed and resend only the rest, in halves."""
    try:
        client.import_tasks(project_id, [to_task(p, predictions[p.key]) for p in batch])
    except ServerError:
        held = client.task_keys(project_id)
        rest = [p for p in batch if p.key not in held]
        summary.reconciled += len(batch) - len(rest)
        summary.imported += len(batch) - len(rest)
        if not rest:
            return
        if len(rest) == 1:
            summary.refused.append(rest[0])  # named at the end; the other tasks still go in
            return
        if len(summary.refused) >= MAX_REFUSED:
            return
        half = len(rest) // 2
        _import_batch(client, project_id, rest[:half], predictions, summary, progress)
        _import_batch(client, project_id, rest[half:], predictions, summary, progress)
        return
    summary.imported += len(batch)
    summary.batches += 1
    if progress:
        progress(len(batch))


def _predictions_for(project: Project, paragraphs: Sequence[Paragraph]) -> dict[str, Prediction]:
    wanted = {p.key for p in paragraphs}
    found = {pred.key: pred for pred in read_predictions(project.preannotations_file) if pred.key in wanted}
    absent = len(wanted) - len(found)
    if absent:
        raise NotPreannotatedError(
            f"{absent} of {len(wanted)} paragraphs have no pre-annotation in {project.preannotations_file}. "
            "Run `workbench preannotate` first (or `workbench run`, which does both)."
        )
    return found
