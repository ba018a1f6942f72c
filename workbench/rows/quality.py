"""How good the labels are (agreement between annotators) and how much the pre-annotations helped.

Scores use spaCy's `PRFScore` so they mean what spaCy's own NER scores mean: exact (start, end, label) matches,
micro-averaged; a score with nothing to count (no true or false positive, no false negative) is None, as in
spaCy's scorer. Every result is a plain JSON-able dict with floats rounded to 4 places.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy
from spacy.scorer import PRFScore

from workbench.merge import recency
from workbench.records import Annotation, Span

Key = tuple[int, int, str]
BUCKETS = ("accepted", "relabelled", "rebounded", "changed", "added", "deleted")


class AgreementTally:
    """Span-level agreement, counted one task at a time (a release streams its tasks; see `agreement`). A task's
    share is a handful of integer counts (`agreement_counts`), so tallies add up in any grouping."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.overall = PRFScore()
        self.per_label: dict[str, PRFScore] = {label: PRFScore() for label in labels}
        self.compared = self.pairs = self.identical = 0

    def add(self, task: Sequence[Annotation]) -> None:
        """Count one task's submitted annotations (see `agreement_counts`)."""
        self.add_counts(agreement_counts(task))

    def add_counts(self, counts: Mapping[tuple, int]) -> None:
        """Add counts made by `agreement_counts` (summed over any number of tasks); other keys are ignored."""
        for key, n in counts.items():
            if key[0] != "agree":
                continue
            if key[1] == "overall":
                _add(self.overall, key[2], n)
            elif key[1] == "label":
                _add(self.per_label.setdefault(key[2], PRFScore()), key[3], n)
            else:
                setattr(self, key[1], getattr(self, key[1]) + n)

    def merge(self, other: AgreementTally) -> None:
        """Add another tally's counts (of other tasks) to this one."""
        self.overall += other.overall
        for label, score in other.per_label.items():
            self.per_label[label] = self.per_label.get(label, PRFScore()) + score
        self.compared += other.compared
        self.pairs += other.pairs
        self.identical += other.identical

    def result(self) -> dict[str, Any]:
        return {
            "tasks_compared": self.compared,
            "pairs": self.pairs,
            "full_agreement": _round(self.identical / self.compared) if self.compared else None,
            **_agreement_scores(self.overall),
            "per_label": {label: _agreement_scores(score) for label, score in _ordered(self.per_label, self.labels)},
        }


def agreement_counts(task: Sequence[Annotation]) -> dict[tuple, int]:
    """One task's share of the agreement: its submitted annotations, one per annotator (the latest: an annotator
    who submitted twice does not agree with themself), every pair scored; nothing for fewer than two annotators.
    Keys are `("agree", "compared" | "pairs" | "identical")`, `("agree", "overall", "tp" | "fp" | "fn")` and
    `("agree", "label", LABEL, "tp" | "fp" | "fn")`; zero counts are left out."""
    latest: dict[object, Annotation] = {}
    for annotation in sorted((a for a in task if not a.cancelled), key=recency):
        who = annotation.annotator if annotation.annotator is not None else ("unknown", annotation.id)
        latest[who] = annotation
    usable = list(latest.values())
    if len(usable) < 2:
        return {}
    counts: dict[tuple, int] = {}
    sets = [_keys(annotation.spans) for annotation in usable]
    _count(counts, ("agree", "compared"), 1)
    _count(counts, ("agree", "identical"), int(all(keys == sets[0] for keys in sets[1:])))
    for gold, cand in combinations(sets, 2):
        _count(counts, ("agree", "pairs"), 1)
        _score(counts, ("agree", "overall"), cand, gold)
        for label in sorted({key[2] for key in gold | cand}):
            _score(counts, ("agree", "label", label), _only(cand, label), _only(gold, label))
    return counts


def agreement(tasks: Iterable[Sequence[Annotation]], labels: Sequence[str]) -> dict[str, Any]:
    """Span-level agreement over tasks with two or more submitted annotations.

    Every pair of annotations of a task is scored with exact (start, end, label) matching; pairs are summed
    (micro). Pairwise precision and recall depend on which side is called gold, F1 does not, so only F1 is
    given, overall and per label. `full_agreement` is the share of compared tasks where every annotator
    produced the same set of spans.
    """
    tally = AgreementTally(labels)
    for task in tasks:
        tally.add(task)
    return tally.result()


class QualityTally:
    """Pre-annotation quality, counted one paragraph at a time (see `prediction_quality`). A paragraph's share is a
    handful of integer counts (`quality_counts`), so tallies add up in any grouping."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.overall: dict[str, PRFScore] = {}
        self.per_label: dict[str, dict[str, PRFScore]] = {}
        self.support: dict[str, dict[str, int]] = {}
        self.counts: dict[str, dict[str, int]] = {}
        self.tasks: dict[str, int] = {}
        self.sizes: dict[str, list[int]] = {}
        self.scored: dict[str, list[tuple[float, bool]]] = {}  # (prediction score, annotator changed it)

    def _start(self, version: str) -> None:
        if version not in self.tasks:
            self.overall[version] = PRFScore()
            self.per_label[version] = {label: PRFScore() for label in self.labels}
            self.support[version] = dict.fromkeys(self.labels, 0)
            self.counts[version] = dict.fromkeys(BUCKETS, 0)
            self.tasks[version] = 0
            self.sizes[version] = [0, 0]
            self.scored[version] = []

    def add(self, version: str, predicted: Sequence[Span], human: Sequence[Span], score: float | None = None) -> None:
        """Score one paragraph's predictions (of model `version`, with the model's confidence `score`) against its
        final human spans."""
        self.add_counts(quality_counts(version, predicted, human))
        if score is not None:
            self.add_scored(version, [(float(score), _keys(predicted) != _keys(human))])

    def add_scored(self, version: str, scored: Sequence[tuple[float, bool]]) -> None:
        """Add (prediction score, annotator changed the paragraph) pairs of model `version` (not counts: floats)."""
        self._start(version)
        self.scored[version] += [(float(score), bool(changed)) for score, changed in scored]

    def add_counts(self, counts: Mapping[tuple, int]) -> None:
        """Add counts made by `quality_counts` (summed over any number of paragraphs); other keys are ignored."""
        for key, n in counts.items():
            if key[0] != "quality":
                continue
            version, what = key[1], key[2]
            self._start(version)
            if what == "tasks":
                self.tasks[version] += n
            elif what in ("predicted", "human"):
                self.sizes[version][what == "human"] += n
            elif what == "overall":
                _add(self.overall[version], key[3], n)
            elif what == "label":
                _add(self.per_label[version].setdefault(key[3], PRFScore()), key[4], n)
            elif what == "support":
                self.support[version][key[3]] = self.support[version].get(key[3], 0) + n
            else:
                self.counts[version][key[3]] += n

    def merge(self, other: QualityTally) -> None:
        """Add another tally's counts (of other paragraphs) to this one."""
        for version in other.tasks:
            self._start(version)
            self.overall[version] += other.overall[version]
            for label, score in other.per_label[version].items():
                self.per_label[version][label] = self.per_label[version].get(label, PRFScore()) + score
            for label, n in other.support[version].items():
                self.support[version][label] = self.support[version].get(label, 0) + n
            for bucket, n in other.counts[version].items():
                self.counts[version][bucket] += n
            self.tasks[version] += other.tasks[version]
            self.scored[version] += other.scored[version]
            self.sizes[version] = [a + b for a, b in zip(self.sizes[version], other.sizes[version], strict=True)]

    def versions(self) -> list[str]:
        return sorted(self.tasks)

    def result(self) -> dict[str, dict[str, Any]]:
        return {
            version: {
                "tasks": self.tasks[version],
                "predicted": self.sizes[version][0],
                "human": self.sizes[version][1],
                **_prf(self.overall[version]),
                "per_label": {
                    label: {**_prf(score), "support": self.support[version].get(label, 0)}
                    for label, score in _ordered(self.per_label[version], self.labels)
                },
                "counts": self.counts[version],
                # how well a low score finds the paragraphs annotators changed (0.5 = chance, 1 = always)
                "score_auroc": low_score_auroc(self.scored[version]),
                "scored_tasks": len(self.scored[version]),
                # what annotators did to this model's suggestions, per paragraph: the work a better model saves
                "corrections_per_task": {
                    bucket: round(n / self.tasks[version], 3) if self.tasks[version] else None
                    for bucket, n in self.counts[version].items()
                },
            }
            for version in sorted(self.tasks)
        }


def quality_counts(version: str, predicted: Sequence[Span], human: Sequence[Span]) -> dict[tuple, int]:
    """One paragraph's share of the quality of model `version`: its predictions scored against its final human
    spans. Keys start `("quality", version, ...)`: `"tasks"`, `"predicted"`, `"human"`, `("overall", tp|fp|fn)`,
    `("label", LABEL, tp|fp|fn)`, `("support", LABEL)` and `("bucket", BUCKET)`; zero counts are left out, but
    `tasks` is always there."""
    cand, gold = _keys(predicted), _keys(human)
    head = ("quality", version)
    counts: dict[tuple, int] = {(*head, "tasks"): 1}
    _count(counts, (*head, "predicted"), len(cand))
    _count(counts, (*head, "human"), len(gold))
    _score(counts, (*head, "overall"), cand, gold)
    for label in sorted({key[2] for key in cand | gold}):
        _score(counts, (*head, "label", label), _only(cand, label), _only(gold, label))
    for key in gold:
        _count(counts, (*head, "support", key[2]), 1)
    for bucket, found in match_spans(predicted, human).items():
        _count(counts, (*head, "bucket", bucket), len(found))
    return counts


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
    tally = QualityTally(labels)
    for version, predicted, human in pairs:
        tally.add(version, predicted, human)
    return tally.result()


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
    by_key = {_key(span): span for span in predicted}
    human_by_key = {_key(span): span for span in human}
    buckets: dict[str, list[Any]] = {bucket: [] for bucket in BUCKETS}
    # Exact matches pair one to one whatever the order (keys are unique on each side), so they are found by key;
    # only what is left goes through the pairwise steps (most paragraphs: a handful of spans or none).
    buckets["accepted"] = [(by_key[key], human_by_key[key]) for key in sorted(by_key.keys() & human_by_key.keys())]
    preds = sorted(span for key, span in by_key.items() if key not in human_by_key)
    humans = sorted(span for key, span in human_by_key.items() if key not in by_key)
    steps: list[tuple[str, Callable[[Span, Span], bool]]] = [
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


def low_score_auroc(scored: Sequence[tuple[float, bool]]) -> float | None:
    """The area under the ROC curve of "a lower score means the annotator changed the paragraph": the chance
    that a changed paragraph scored below an unchanged one (ties count half); None without both kinds."""
    scores = numpy.array([score for score, _ in scored], dtype=float)
    was_changed = numpy.array([changed for _, changed in scored], dtype=bool)
    n_changed, n_kept = int(was_changed.sum()), int((~was_changed).sum())
    if not n_changed or not n_kept:
        return None
    # Mann-Whitney: 1-based ranks by score, ties sharing their average rank
    _, inverse, counts = numpy.unique(scores, return_inverse=True, return_counts=True)
    ranks = (numpy.cumsum(counts) - (counts - 1) / 2)[inverse]
    kept_above = ranks[~was_changed].sum() - n_kept * (n_kept + 1) / 2
    return _round(float(kept_above) / (n_changed * n_kept))


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


def _count(counts: dict[tuple, int], key: tuple, n: int) -> None:
    if n:
        counts[key] = counts.get(key, 0) + n


def _score(counts: dict[tuple, int], head: tuple, cand: set[Key], gold: set[Key]) -> None:
    """What `PRFScore.score_set(cand, gold)` counts, as counts under `head`."""
    _count(counts, (*head, "tp"), len(cand & gold))
    _count(counts, (*head, "fp"), len(cand - gold))
    _count(counts, (*head, "fn"), len(gold - cand))


def _add(score: PRFScore, what: str, n: int) -> None:
    setattr(score, what, getattr(score, what) + n)


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
