"""The oracle annotator: a person at the Label Studio editor who always submits the gold spans; and the scorer.

The oracle works through Label Studio's own API with the SDK, as a browser does: it reads each task it is served
with the prediction the editor shows (the project's model version), submits the gold spans as regions, and sets
what the editor sets. An annotation begun from a prediction names it in `parent_prediction`; a predicted region the
annotator keeps as it is stays `origin: "prediction"` (with the prediction's region id), one they relabel or
resize becomes `"prediction-changed"` (the editor's own value, Label Studio 1.23.2's `updateOriginOnEdit`; the
workbench reads neither field), and one they draw is `"manual"`. A task whose gold is None (an article's title
line, not a tweet) is skipped, so no score and no release counts it.

What the editor showed is kept for each task (`Served`): the pre-annotation quality of a batch is those predictions
scored against gold before the oracle touched them, with spaCy's `PRFScore` on exact (start, end, label) matches,
micro-averaged, as `workbench report` scores pre-annotations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from label_studio_sdk.client import LabelStudio
from spacy.scorer import PRFScore

from bench.wnut import Span

# gold(doc_id, text): the spans to submit, or None for a task to skip (not a tweet)
GoldOf = Callable[[str, str], Sequence[Span] | None]
# lead_time(served): the seconds the annotation took, as Label Studio records them
LeadTime = Callable[["Served"], float]
ORIGINS = ("prediction", "prediction-changed", "manual")


@dataclass(frozen=True)
class Served:
    """One task as the oracle was served it: the prediction shown, and what it submitted."""

    task_id: int
    doc_id: str
    paragraph: int
    text: str
    model_version: str | None  # of the prediction shown, None without one
    predicted: tuple[Span, ...]
    gold: tuple[Span, ...] | None  # None: skipped
    annotation_id: int
    origins: tuple[str, ...] = ()  # each submitted region's origin, in submission order


def region(text: str, span: Span, region_id: str, origin: str) -> dict[str, Any]:
    """A labels region over text[span.start:span.end] as Label Studio 1.23's editor stores it (code points)."""
    if text[span.start : span.end] != span.text:
        raise ValueError(f"span {span} does not match the text {text!r}")
    return {
        "id": region_id,
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "origin": origin,
        "value": {"start": span.start, "end": span.end, "text": span.text, "labels": [span.label]},
    }


def prediction_spans(text: str, result: Iterable[Mapping[str, Any]]) -> list[tuple[str, Span]]:
    """A prediction's labels regions as (region id, span); offsets are code points (the workbench pushes them so)."""
    found = []
    for item in result:
        if item.get("type") != "labels":
            continue
        value = item["value"]
        span = Span(int(value["start"]), int(value["end"]), value["labels"][0], value["text"])
        if text[span.start : span.end] != span.text:
            raise ValueError(f"prediction region {item.get('id')} does not match its text in {text!r}")
        found.append((str(item.get("id")), span))
    return found


def gold_regions(text: str, gold: Sequence[Span], predicted: Sequence[tuple[str, Span]]) -> list[dict[str, Any]]:
    """The gold spans as the editor submits them after starting from `predicted`: a prediction kept as it is keeps
    its region id and origin "prediction"; one relabelled or moved onto a gold span (the most overlapping free one)
    keeps its id as "prediction-changed"; the rest are drawn ("manual"); unused predictions were deleted."""
    exact = {(s.start, s.end, s.label): rid for rid, s in predicted}
    used: set[str] = set()
    out: list[dict[str, Any]] = []
    pending: list[tuple[int, Span]] = []
    for n, span in enumerate(sorted(gold)):
        rid = exact.get((span.start, span.end, span.label))
        if rid is not None and rid not in used:
            used.add(rid)
            out.append(region(text, span, rid, "prediction"))
        else:
            pending.append((n, span))
    for n, span in pending:
        overlapping = sorted(
            ((min(s.end, span.end) - max(s.start, span.start), rid) for rid, s in predicted
             if rid not in used and min(s.end, span.end) > max(s.start, span.start)),
            key=lambda pair: (-pair[0], pair[1]),
        )  # fmt: skip
        if overlapping:
            rid = overlapping[0][1]
            used.add(rid)
            out.append(region(text, span, rid, "prediction-changed"))
        else:
            out.append(region(text, span, f"oracle-{n}", "manual"))
    return out


@dataclass
class Oracle:
    """One annotator account that answers every task it is served from `gold`."""

    client: LabelStudio
    gold: GoldOf
    lead_time: LeadTime | None = None
    workers: int = 1  # submissions in flight at once (like several people; results keep the tasks' order)

    @classmethod
    def connect(cls, url: str, api_key: str, gold: GoldOf, *, lead_time: LeadTime | None = None,
                workers: int = 1) -> Oracle:  # fmt: skip
        return cls(LabelStudio(base_url=url, api_key=api_key, timeout=300), gold, lead_time, workers)

    def open_tasks(self, project_id: int) -> list[dict[str, Any]]:
        """The project's tasks nobody has annotated or skipped yet, as plain dicts, in id order."""
        listed = self.client.tasks.list(project=project_id, fields="all", page_size=1000)
        plain = [t.model_dump(mode="json") if hasattr(t, "model_dump") else dict(t) for t in listed]
        return sorted((t for t in plain if not t.get("annotations") and not t["data"].get("retired")),
                      key=lambda t: t["id"])  # fmt: skip

    def annotate(self, project_id: int) -> list[Served]:
        """Answer every open task of the project; what the editor showed and what was submitted, per task."""
        shown_version = self.client.projects.get(id=project_id).model_version or None
        tasks = self.open_tasks(project_id)
        if self.workers <= 1:
            return [self.answer(task, shown_version) for task in tasks]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(lambda task: self.answer(task, shown_version), tasks))

    def answer(self, task: dict[str, Any], shown_version: str | None) -> Served:
        data = task["data"]
        text, doc_id = data["text"], str(data["doc_id"])
        prediction = shown_prediction(task.get("predictions") or [], shown_version)
        predicted = prediction_spans(text, prediction["result"] or []) if prediction else []
        gold = self.gold(doc_id, text)
        base = Served(int(task["id"]), doc_id, int(data["paragraph"]), text,
                      prediction.get("model_version") if prediction else None,
                      tuple(s for _, s in predicted), None if gold is None else tuple(sorted(gold)), 0)  # fmt: skip
        options: dict[str, Any] = {}
        if prediction and prediction.get("id") is not None:
            options["parent_prediction"] = int(prediction["id"])
        if self.lead_time is not None:
            options["lead_time"] = float(self.lead_time(base))
        if gold is None:
            created = self.client.annotations.create(id=base.task_id, result=[], was_cancelled=True, **options)
            return _with(base, int(created.id), ())
        regions = gold_regions(text, gold, predicted)
        created = self.client.annotations.create(id=base.task_id, result=regions, **options)
        return _with(base, int(created.id), tuple(r["origin"] for r in regions))


def _with(served: Served, annotation_id: int, origins: tuple[str, ...]) -> Served:
    return Served(served.task_id, served.doc_id, served.paragraph, served.text, served.model_version,
                  served.predicted, served.gold, annotation_id, origins)  # fmt: skip


def shown_prediction(predictions: Sequence[Mapping[str, Any]], version: str | None) -> Mapping[str, Any] | None:
    """The prediction the editor shows: the newest of the project's model version (else the newest)."""
    if not predictions:
        return None
    ordered = sorted(predictions, key=lambda p: (str(p.get("created_at") or ""), int(p.get("id") or 0)))
    same = [p for p in ordered if version and p.get("model_version") == version]
    return (same or ordered)[-1]


# ---- scoring ---------------------------------------------------------------------------------------------------


def score_spans(pairs: Iterable[tuple[Sequence[Span], Sequence[Span]]], labels: Sequence[str]) -> dict[str, Any]:
    """Predicted against gold spans, one (predicted, gold) pair per paragraph: spaCy's PRFScore on exact
    (start, end, label) matches, micro-averaged, overall and per label (`support` = gold spans of the label).
    A score with nothing to count is None, as in `workbench report`."""
    overall = PRFScore()
    per_label: dict[str, PRFScore] = {label: PRFScore() for label in labels}
    support: dict[str, int] = dict.fromkeys(labels, 0)
    tasks = predicted_n = gold_n = 0
    for predicted, gold in pairs:
        cand = {(s.start, s.end, s.label) for s in predicted}
        true = {(s.start, s.end, s.label) for s in gold}
        tasks, predicted_n, gold_n = tasks + 1, predicted_n + len(cand), gold_n + len(true)
        overall.score_set(cand, true)
        for label in sorted({key[2] for key in cand | true}):
            per_label.setdefault(label, PRFScore()).score_set({k for k in cand if k[2] == label},
                                                              {k for k in true if k[2] == label})  # fmt: skip
        for key in true:
            support[key[2]] = support.get(key[2], 0) + 1
    return {
        "tasks": tasks,
        "predicted": predicted_n,
        "gold": gold_n,
        **_prf(overall),
        "per_label": {label: {**_prf(score), "support": support.get(label, 0)} for label, score in per_label.items()},
    }


def score_served(batch: Iterable[Served], labels: Sequence[str]) -> dict[str, Any]:
    """The pre-annotations of a served batch against gold (skipped tasks left out)."""
    return score_spans(((s.predicted, s.gold) for s in batch if s.gold is not None), labels)


def _prf(score: PRFScore) -> dict[str, Any]:
    if len(score) == 0:
        return {"precision": None, "recall": None, "f1": None}
    return {"precision": round(score.precision, 4), "recall": round(score.recall, 4), "f1": round(score.fscore, 4)}
