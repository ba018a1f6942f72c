"""Push: the corpus becomes Label Studio tasks, each paragraph exactly once, and later changes follow it.

What the project holds is compared with the corpus (`reconcile`): tasks of paragraphs that are gone are retired,
tasks of paragraphs that moved, were renamed or edited are updated in place (`carry`), and only new paragraphs
are imported, with their prediction. The server does not deduplicate imports, so every task carries the
paragraph's stable `key`. A batch that fails is not blindly resent: the workbench asks the server what it holds,
then sends only what is still missing, in smaller batches. A task the server refuses even alone is set aside and
named at the end; the rest of the import goes on.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from more_itertools import chunked

from workbench.articles import Corpus, SeedIndex
from workbench.errors import ConfigError, CorpusChangeError, NotPreannotatedError, ServerError
from workbench.labelstudio import LabelStudio
from workbench.labelstudio.binding import open_project
from workbench.labelstudio.client import EncodedTasks, encode_tasks
from workbench.preannotation.pool import PoolIndex, PoolRows
from workbench.project import Project
from workbench.records import Paragraph, Prediction, text_key
from workbench.spans.offsets import spans_to_regions
from workbench.sync.carry import carry_edit, clear_confirmed, retire
from workbench.sync.interface import project_settings
from workbench.sync.plan import Fresh, plan_for
from workbench.sync.reconcile import Plan, Pushed
from workbench.sync.snapshots import note_unstamped

Progress = Callable[[int], None]
# Tasks refused one at a time before push stops sending: beyond a few, the cause is the server, not the tasks.
MAX_REFUSED = 5
# Predictions added to existing tasks per request (Label Studio takes ~1,000 in a second).
PREDICTION_BATCH = 1000


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
    changes: dict[str, int] = field(default_factory=dict)
    model_version: str = ""
    left_in_pool: int = 0  # new paragraphs not sent (push --next)
    backend_url: str = ""  # the model backend connected to the project (`workflow.do_push`), when it runs
    backend_note: str = ""  # why it is not connected, when it runs and connecting failed


def to_task(paragraph: Paragraph, prediction: Prediction) -> dict[str, Any]:
    """One Label Studio task: the paragraph's data and the model's spans as a prediction."""
    return {"data": paragraph.task_data(), "predictions": [to_prediction(paragraph.text, prediction)]}


def to_prediction(text: str, prediction: Prediction) -> dict[str, Any]:
    """The model's spans over `text` as a Label Studio prediction.

    Offsets are code points: Label Studio 1.23's editor draws and stores them so (checked in a real browser).
    """
    found = {"model_version": prediction.model_version, "result": spans_to_regions(text, prediction.spans)}
    if prediction.score is not None:  # what uncertainty sampling orders by (a prediction without one comes first)
        found["score"] = prediction.score
    return found


def push(
    project: Project,
    corpus: Corpus | SeedIndex,
    client: LabelStudio,
    *,
    next_n: int | None = None,
    retire_annotated: bool = False,
    progress: Progress | None = None,
) -> PushSummary:
    """Bring the project to the corpus: retire what is gone, update what changed, import what is new (with
    `next_n`, only the `next_n` new paragraphs the model is least sure of: the rest wait in the pool). Tasks
    someone annotated or skipped are retired only with `retire_annotated`; otherwise nothing is changed and
    CorpusChangeError names them. `corpus` may be a seed index: then only the articles a push touches are read."""
    seeds = corpus if isinstance(corpus, SeedIndex) else SeedIndex.of_corpus(corpus)
    pool = _pool_for(project, seeds)
    model_version = pool.model_version or "none"
    settings = project_settings(project, model_version)
    project_id, created = open_project(project, client, settings)
    if not created:  # a project made just now has these settings, no annotation and no task
        _check_labels_kept(project, client, project_id)
        # converge on the config: labels, guidelines, overlap; the model version once its predictions are there
        # (Label Studio refuses a model version no prediction of the project has)
        client.update_project(project_id, **{k: v for k, v in settings.items() if k != "model_version"})
    plan, pushed = plan_for(project, seeds, client, project_id, [] if created else None)
    if plan.retiring_annotated and not retire_annotated:
        raise retiring_annotated_error(plan)
    fresh: Fresh = plan.imports  # type: ignore[assignment]
    waiting = len(fresh)
    if next_n is not None:
        fresh = fresh.choose(pool.scores(fresh.rows), next_n, project.config.labelstudio.next_article_share)
        plan.imports = fresh  # type: ignore[assignment]
    summary = PushSummary(
        project_id=project_id,
        project_url=f"{client.url}/projects/{project_id}/data",
        paragraphs=len(seeds),
        already_there=len(seeds) - waiting,
        imported=0,
        batches=0,
        changes=plan.counts(),
        model_version=model_version,
        left_in_pool=waiting - len(fresh),
    )
    # The pool's rows of every text this push sends, as columns; predictions are made batch by batch.
    edited = [update for update in plan.updates if update.edited]
    newer = _lacking_newer(pushed, plan, model_version)
    rows = pool.rows_for(fresh.rows, [*(text_key(u.data["text"]) for u in edited), *(text_key(t) for _, t in newer)])
    # Retire first and import last: a push stopped half-way may leave paragraphs missing, never one twice.
    retire(client, plan.retirements)
    carried = to_recheck = 0
    for update in plan.updates:
        if update.edited:
            prediction = rows.predictions([text_key(update.data["text"])]).get(text_key(update.data["text"]))
            outcome = carry_edit(client, update, to_prediction(update.data["text"], prediction) if prediction else None)
            carried += outcome.moved
            to_recheck += bool(outcome.held)
        else:
            client.update_task_data(update.task_id, update.data)
    edited_ids = {update.task_id for update in plan.updates}
    summary.changes |= {
        "spans_carried": carried,
        "to_recheck": to_recheck,
        "rechecked": sum(clear_confirmed(client, t.task_id, t.data) for t in pushed if t.task_id not in edited_ids),
        "predictions_added": _add_newer_predictions(project, client, project_id, newer, rows),
    }
    _import(client, project_id, fresh, rows, summary, project.config.labelstudio.batch_size, progress)
    held = summary.imported or summary.changes["predictions_added"] or any(
        model_version in task.model_versions for task in pushed
    )
    if held and not created:  # annotators see the newest model's predictions (a new project was made showing it)
        client.update_project(project_id, model_version=model_version)
    return summary


def _lacking_newer(pushed: Sequence[Pushed], plan: Plan, model_version: str) -> list[tuple[int, str]]:
    """(task id, text) of every task nobody has submitted that lacks the prediction of the model pre-annotation
    used now: not retiring, not edited (edited tasks get theirs when their text moves), not already given it."""
    retiring = {update.task_id for update in plan.retirements}
    edited = {update.task_id for update in plan.updates if update.edited}
    texts = {update.task_id: str(update.data["text"]) for update in plan.updates}  # restored ones included
    lacking = []
    for task in pushed:
        gone = task.task_id in retiring or (task.retired and task.task_id not in texts)
        if task.submitted or gone or task.task_id in edited or model_version in task.model_versions:
            continue
        lacking.append((task.task_id, texts.get(task.task_id, task.text)))
    return lacking


def _add_newer_predictions(
    project: Project, client: LabelStudio, project_id: int, lacking: Sequence[tuple[int, str]], rows: PoolRows
) -> int:
    """Give every task nobody has submitted the prediction of the model pre-annotation used now, if it lacks it.

    Older predictions stay (the history of what annotators were shown); a task with a submitted annotation is
    never touched; pushing the same model again adds nothing. Edited tasks got theirs when their text moved."""
    found = rows.predictions(text_key(text) for _, text in lacking)
    items = []
    for task_id, text in lacking:
        prediction = found.get(text_key(text))
        if prediction is not None:
            items.append({"task": task_id, **to_prediction(text, prediction)})
    if items:  # Label Studio's bulk predictions import does not stamp the tasks: the next pull must export them all
        note_unstamped(project, f"push added predictions to {len(items)} task(s) in bulk")
    for batch in chunked(items, PREDICTION_BATCH):
        client.add_predictions(project_id, batch)
    return len(items)


def _import(
    client: LabelStudio,
    project_id: int,
    missing: Sequence[Paragraph],
    rows: PoolRows,
    summary: PushSummary,
    batch_size: int,
    progress: Progress | None,
) -> None:
    """Import every paragraph in `missing`, with its prediction, in batches; each batch's request body is made in
    a thread while the one before it is on the wire (the server's time, not the client's, sets the pace)."""
    # Whatever push holds lives until it ends: frozen, the garbage collector stops rescanning it at every batch
    # (measured: push went from 0.89 to 0.92-0.98 of a raw SDK import at 10k tasks).
    gc.freeze()
    try:
        for batch, body in _prepared(chunked(missing, batch_size), rows):
            _import_batch(client, project_id, batch, rows, summary, progress, body)
            if len(summary.refused) >= MAX_REFUSED:
                break
    finally:
        gc.unfreeze()
    if summary.refused:
        raise _refused_error(summary, unsent=len(missing) - summary.imported - len(summary.refused))


def _prepared(batches: Iterable[list[Paragraph]], rows: PoolRows) -> Iterator[tuple[list[Paragraph], EncodedTasks]]:
    """Each batch with its import body, the next one made in a worker thread while the caller sends this one."""

    def made(batch: list[Paragraph] | None) -> tuple[list[Paragraph], EncodedTasks] | None:
        return None if batch is None else (batch, encode_tasks(_tasks(batch, rows)))

    source = iter(batches)
    with ThreadPoolExecutor(1, thread_name_prefix="push-batches") as worker:
        ahead = worker.submit(lambda: made(next(source, None)))
        while (ready := ahead.result()) is not None:
            ahead = worker.submit(lambda: made(next(source, None)))
            yield ready


def _tasks(batch: Sequence[Paragraph], rows: PoolRows) -> list[dict[str, Any]]:
    predictions = rows.predictions(p.text_key for p in batch)
    return [to_task(p, predictions[p.text_key]) for p in batch]


def _check_labels_kept(project: Project, client: LabelStudio, project_id: int) -> None:
    """Refuse to push a labeling interface without a label that annotations use (added in Label Studio's UI,
    say): Label Studio would accept it, and the label would vanish from the annotators' view without a word."""
    config = project.config
    used = client.labels_in_use(project_id)
    lost = sorted(label for label in used if label not in config.labels and label not in config.label_mapping)
    if lost:
        counts = ", ".join(f"{label} ({used[label]} region(s))" for label in lost)
        raise ConfigError(
            f"Annotations in Label Studio project {project_id} use the label(s) {counts}, which "
            f"configs/workbench.toml does not list, so a push would take them out of the labeling interface. Add "
            f'them to labels, or map each to a listed label (label_mapping = {{ {lost[0]} = "<LABEL>" }}), and '
            "push again."
        )


def retiring_annotated_error(plan: Plan) -> CorpusChangeError:
    """What a push says instead of retiring annotated paragraphs nobody asked it to retire."""
    counts = plan.retiring_annotated
    articles = ", ".join(f"{doc} ({n})" for doc, n in sorted(counts.items())[:8])
    more = f" and {len(counts) - 8} more articles" if len(counts) > 8 else ""
    return CorpusChangeError(
        f"{sum(counts.values())} annotated or skipped paragraph(s) are no longer in the seeds, in article(s) "
        f"{articles}{more}: a push would retire their tasks, and their annotations would leave the next release. "
        "Nothing was changed. If the text was only moved or edited, check that it is in the seeds (a paragraph is "
        "found again in any file, edits included, while it stays similar); if removing it is what you want, run "
        "`workbench push --retire-annotated`."
    )


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
    rows: PoolRows,
    summary: PushSummary,
    progress: Callable[[int], None] | None,
    body: EncodedTasks | None = None,
) -> None:
    """Send one batch; if it fails, learn what landed and resend only the rest, in halves."""
    try:
        client.import_tasks(project_id, body or _tasks(batch, rows))
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
        _import_batch(client, project_id, rest[:half], rows, summary, progress)
        _import_batch(client, project_id, rest[half:], rows, summary, progress)
        return
    summary.imported += len(batch)
    summary.batches += 1
    if progress:
        progress(len(batch))


def _pool_for(project: Project, seeds: SeedIndex) -> PoolIndex:
    """The pool's keys and scores for every paragraph text; every text must have a prediction."""
    pool = PoolIndex(project.preannotations_file, seeds.paragraphs["text_key"])
    if pool.absent:
        raise NotPreannotatedError(
            f"{pool.absent} of {pool.wanted} paragraph texts have no pre-annotation in {project.preannotations_file}. "
            "Run `workbench preannotate` first (or `workbench run`, which does both)."
        )
    return pool
