"""How good the labels are (agreement between annotators) and how much the pre-annotations helped.

Scores use spaCy's `PRFScore` so they mean what spaCy's own NER scores mean: exact (start, end, label) matches,
micro-averaged; a score with nothing to count (no true or false positive, no false negative) is None, as in
spaCy's scorer. Every result is a plain JSON-able dict with floats rounded to 4 places.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from itertools import combinations
from typing import Any

from spacy.scorer import PRFScore

from workbench.records import Annotation, Span

Key = tuple[int, int, str]
BUCKETS = ("accepted", "relabelled", "rebounded", "changed", "added", "deleted")


def agreement(tasks: Iterable[Sequence[Annotation]], labels: Sequence[str]) -> dict[str, Any]:
    """Span-level agreement over tasks with two or more submitted annotations.

    Every pair of annotations of a task is scored with exact (start, end, label) matching; pairs are summed
    (micro). Pairwise precision and recall depend on which side is called gold, F1 does not, so only F1 is
    given, overall and per label. `full_agreement` is the share of compared tasks where every annotator
    produced the same set of spans.
    """
    overall = PRFScore()
    per_label: dict[str, PRFScore] = {label: PRFScore() for label in labels}
    compared = pairs = identical = 0
    for task in tasks:
        usable = [annotation for annotation in task if not annotation.cancelled]
        if len(usable) < 2:
            continue
        compared += 1
        sets = [_keys(annotation.spans) for annotation in usable]
        identical += all(keys == sets[0] for keys in sets[1:])
        for gold, cand in combinations(sets, 2):
            pairs += 1
            overall.score_set(cand, gold)
            for label in sorted({key[2] for key in gold | cand}):
                per_label.setdefault(label, PRFScore()).score_set(_only(cand, label), _only(gold, label))
    return {
        "tasks_compared": compared,
        "pairs": pairs,
        "full_agreement": _round(identical / compared) if compared else None,
        **_agreement_scores(overall),
        "per_label": {label: _agreement_scores(score) for label, score in _ordered(per_label, labels)},
    }


def prediction_quality(
    pairs: Iterable[tuple[str, Sequence[Span], Sequence[Span]]], labels: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Pre-annotation quality per model version: predictions scored against the final human spans.

    Each pair is `(model_version, predicted, human)` for one paragraph. Per label and overall (micro):
    precision, recall, F1 on exact (start, end, label) matches; `support` = human spans of that label.
    `counts` sorts every span into exactly one bucket (see `match_spans` for the precedence), so
    accepted + relabelled + rebounded + changed + added == human spans and
    accepted + relabelled + rebounded + changed + deleted == predicted spans.
    """
    overall: dict[str, PRFScore] = defaultdict(PRFScore)
    per_label: dict[str, dict[str, PRFScore]] = defaultdict(lambda: {label: PRFScore() for label in labels})
    support: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(labels, 0))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(BUCKETS, 0))
    tasks: dict[str, int] = defaultdict(int)
    sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for version, predicted, human in pairs:
        cand, gold = _keys(predicted), _keys(human)
        tasks[version] += 1
        sizes[version][0] += len(cand)
        sizes[version][1] += len(gold)
        overall[version].score_set(cand, gold)
        for label in sorted({key[2] for key in cand | gold}):
            per_label[version].setdefault(label, PRFScore()).score_set(_only(cand, label), _only(gold, label))
        for key in gold:
            support[version][key[2]] = support[version].get(key[2], 0) + 1
        for bucket, found in match_spans(predicted, human).items():
            counts[version][bucket] += len(found)
    return {
        version: {
            "tasks": tasks[version],
            "predicted": sizes[version][0],
            "human": sizes[version][1],
            **_prf(overall[version]),
            "per_label": {
                label: {**_prf(score), "support": support[version].get(label, 0)}
                for label, score in _ordered(per_label[version], labels)
            },
            "counts": counts[version],
        }
        for version in sorted(tasks)
    }


def match_spans(predicted: Sequence[Span], human: Sequence[Span]) -> dict[str, list[Any]]:
    """Sort one paragraph's predicted and human spans into buckets; every span lands in exactly one.

    Precedence (each step pairs one prediction with one human span, neither used again):
    1. accepted: same start, end and label;
    2. relabelled: same start and end, another label;
    3. rebounded: same label, overlapping, other boundaries;
    4. changed: overlapping, other label and other boundaries;
    then `added` = human spans left unpaired (no free overlapping prediction; usually none overlaps at all, but
    also the second half of a prediction the human split in two) and `deleted` = predictions left unpaired.
    Within a step, pairs with the larger character overlap go first, then by position. Duplicates count once.
    Pair buckets hold `(predicted, human)` tuples; `added` holds human spans, `deleted` predicted ones.
    """
    preds = sorted({_key(span): span for span in predicted}.values())
    humans = sorted({_key(span): span for span in human}.values())
    buckets: dict[str, list[Any]] = {bucket: [] for bucket in BUCKETS}
    steps: list[tuple[str, Callable[[Span, Span], bool]]] = [
        ("accepted", lambda p, h: _key(p) == _key(h)),
        ("relabelled", lambda p, h: (p.start, p.end) == (h.start, h.end) and p.label != h.label),
        ("rebounded", lambda p, h: p.label == h.label and _overlap(p, h) > 0),
        ("changed", lambda p, h: _overlap(p, h) > 0),
    ]
    for bucket, fits in steps:
        candidates = sorted(
            ((p, h) for p in preds for h in humans if fits(p, h)),
            key=lambda pair: (-_overlap(*pair), pair[1], pair[0]),
        )
        used_p: set[Span] = set()
        used_h: set[Span] = set()
        for p, h in candidates:
            if p not in used_p and h not in used_h:
                used_p.add(p)
                used_h.add(h)
                buckets[bucket].append((p, h))
        preds = [p for p in preds if p not in used_p]
        humans = [h for h in humans if h not in used_h]
    buckets["added"] = humans
    buckets["deleted"] = preds
    return buckets


def _key(span: Span) -> Key:
    return span.start, span.end, span.label


def _keys(spans: Iterable[Span]) -> set[Key]:
    return {_key(span) for span in spans}


def _only(keys: set[Key], label: str) -> set[Key]:
    return {key for key in keys if key[2] == label}


def _overlap(a: Span, b: Span) -> int:
    return max(0, min(a.end, b.end) - max(a.start, b.start))


def _ordered(scores: dict[str, PRFScore], labels: Sequence[str]) -> list[tuple[str, PRFScore]]:
    """Configured labels first, in their order; labels met in the data but not configured after, sorted."""
    extra = sorted(set(scores) - set(labels))
    return [(label, scores[label]) for label in [*labels, *extra]]


def _round(value: float) -> float:
    return round(value, 4)


def _prf(score: PRFScore) -> dict[str, float | None]:
    if len(score) == 0:
        return {"precision": None, "recall": None, "f1": None}
    return {"precision": _round(score.precision), "recall": _round(score.recall), "f1": _round(score.fscore)}


def _agreement_scores(score: PRFScore) -> dict[str, Any]:
    return {
        "f1": _round(score.fscore) if len(score) else None,
        "matched": score.tp,
        "unmatched": score.fp + score.fn,
    }
