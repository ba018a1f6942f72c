"""Carrying corpus changes into Label Studio: retiring tasks, updating their data, and moving annotations through
an edit of their text (see `reconcile` for how changes are found).

A task is updated in place, never duplicated: Label Studio keeps its id, its annotations and who made them, and
the dataset keeps its row id. When a paragraph's text is edited, each submitted span is carried to its new
offsets if the edit left its characters untouched; a span the edit touches is taken out of the annotation, named
in the task's `second_look` (shown above the text in the labeling view) and held back: the task's row stays out
of releases until an annotator submits it again (`held` records each annotation's time of the change).

Every step is safe to repeat: an edit in progress keeps `previous_text` and the annotations already `carried`
in the task's data, so a push killed half-way resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from workbench.labelstudio import LabelStudio
from workbench.records import Span, confirmed
from workbench.spans.offsets import RegionMismatch, region_to_spans, spans_to_regions
from workbench.sync.reconcile import Update, reanchor

SPAN_TYPES = {"labels"}


@dataclass
class Carried:
    """What carrying one edit did: spans moved exactly, spans held back for a second look."""

    moved: int = 0
    held: int = 0


def retire(client: LabelStudio, updates: Iterable[Update], progress: Callable[[int], None] | None = None) -> int:
    """Tag tasks as retired in their data (never deleted: their annotations stay on the server)."""
    done = 0
    for update in updates:
        client.update_task_data(update.task_id, update.data)
        done += 1
        if progress:
            progress(1)
    return done


def carry_edit(client: LabelStudio, update: Update, prediction: Mapping[str, Any] | None) -> Carried:
    """Move a task to its edited text: annotations re-anchored (or held back), stale predictions replaced."""
    task = client.task(update.task_id)
    old_text = str(task["data"].get("previous_text") or update.old_text)
    new_text = str(update.data["text"])
    carried_ids = {int(a) for a in task["data"].get("carried") or []}
    held_before: dict[str, str] = dict(task["data"].get("held") or {})
    outcome = Carried()
    plans: dict[int, list[dict[str, Any]]] = {}
    held_spans: dict[int, list[Span]] = {}
    for annotation in task.get("annotations") or []:
        annotation_id = int(annotation["id"])
        if annotation_id in carried_ids or annotation.get("was_cancelled"):
            continue
        result, moved, held = reanchored_result(annotation.get("result") or [], old_text, new_text)
        plans[annotation_id] = result
        outcome.moved += moved
        if held:
            held_spans[annotation_id] = held
            outcome.held += len(held)
    data = {**update.data, "previous_text": old_text, "carried": sorted(carried_ids)}
    data.pop("held", None)
    if held_spans or held_before:
        data["held"] = {**held_before, **{str(a): "" for a in held_spans}}
        data["second_look"] = second_look_reason([s for spans in held_spans.values() for s in spans], held_before)
    client.update_task_data(update.task_id, data)  # the new text, with the edit marked as in progress
    for annotation_id, result in plans.items():
        stamp = client.update_annotation(annotation_id, result)
        data["carried"] = sorted({*data["carried"], annotation_id})
        if annotation_id in held_spans:
            data["held"][str(annotation_id)] = stamp
        client.update_task_data(update.task_id, data)
    old_predictions = [int(p["id"]) for p in task.get("predictions") or [] if isinstance(p, dict) and "id" in p]
    client.replace_predictions(update.task_id, old_predictions, dict(prediction) if prediction else None)
    for key in ("previous_text", "carried"):
        data.pop(key, None)
    client.update_task_data(update.task_id, data)
    return outcome


def preview_edit(client: LabelStudio, update: Update) -> Carried:
    """What `carry_edit` would do to a task's annotations, changing nothing (for `workbench status`)."""
    task = client.task(update.task_id)
    old_text = str(task["data"].get("previous_text") or update.old_text)
    outcome = Carried()
    for annotation in task.get("annotations") or []:
        if not annotation.get("was_cancelled"):
            _, moved, held = reanchored_result(annotation.get("result") or [], old_text, str(update.data["text"]))
            outcome.moved += moved
            outcome.held += len(held)
    return outcome


def reanchored_result(
    regions: list[dict[str, Any]], old_text: str, new_text: str
) -> tuple[list[dict[str, Any]], int, list[Span]]:
    """An annotation's regions moved from `old_text` to `new_text`: (new result, spans moved, spans held back).

    Regions that are not spans (other control tags) are kept as they are; a span region that does not fit the
    old text either is kept too, untouched, for the build to report."""
    result: list[dict[str, Any]] = []
    moved_count = 0
    held_all: list[Span] = []
    for region in regions:
        if not isinstance(region, dict) or region.get("type") not in SPAN_TYPES:
            result.append(region)
            continue
        try:
            spans, _ = region_to_spans(old_text, region.get("value"))
        except RegionMismatch:
            result.append(region)
            continue
        if not spans:  # a region with no label gives no span: nothing to carry, nothing lost
            result.append(region)
            continue
        # the spans of one region (one per label) share their offsets, so they move or are held together
        moved, held = reanchor(old_text, new_text, spans[:1])
        if held:
            held_all += spans
            continue
        moved_count += len(spans)
        (carried,) = spans_to_regions(new_text, moved)
        start, end = carried["value"]["start"], carried["value"]["end"]
        result.append({**region, "value": {**region["value"], "start": start, "end": end, "text": moved[0].text}})
    return result, moved_count, held_all


def second_look_reason(held: list[Span], held_before: Mapping[str, str]) -> str:
    """What the annotator reads above the text of a task whose edit touched annotated spans."""
    named = ", ".join(f"'{span.text}' ({span.label})" for span in held[:5])
    more = f" and {len(held) - 5} more" if len(held) > 5 else ""
    if not held and held_before:
        return "The text was edited after it was annotated: check the spans and submit again."
    return (
        f"The text was edited after it was annotated, and the edit touched {named}{more}: mark again what still "
        "applies, then submit."
    )


def clear_confirmed(client: LabelStudio, task_id: int, data: Mapping[str, Any]) -> bool:
    """Drop the second-look flag of a task whose held-back annotations were all submitted again; True if so."""
    held = dict(data.get("held") or {})
    if not held:
        return False
    annotations = {str(a["id"]): a for a in client.task(task_id).get("annotations") or []}
    still = {aid: stamp for aid, stamp in held.items() if aid in annotations and not confirmed(annotations[aid], held)}
    if still == held:
        return False
    new = {**data, "held": still}
    if not still:
        new["second_look"] = ""
        new.pop("held")
    client.update_task_data(task_id, new)
    return not still
