"""Several annotations of one task -> the one set of spans a dataset row carries, and why.

Ground truth (an adjudicated annotation) beats everything; a single annotation is used as is; several are
merged by span-level majority. A tied span (exactly half the votes) has no majority, so rather than invent
one the row falls back to the latest annotation and says so (`tie=True`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from workbench.records import Annotation, Span

Rule = Literal["single", "ground_truth", "majority", "latest"]


@dataclass(frozen=True)
class Merged:
    """A row's merged spans with their provenance: which annotations and annotators, by which rule."""

    spans: tuple[Span, ...]
    annotation_ids: tuple[int, ...]
    annotators: tuple[int, ...]
    rule: Rule
    tie: bool = False


# The merge policies by name: `[merge] policy` picks one. Each gets a task's submitted annotations, oldest first
# (at least one), and says which spans the row carries.
POLICIES: dict[str, Callable[[list[Annotation]], Merged]] = {}
DEFAULT_POLICY = "ground_truth_majority_latest"


def policy(name: str) -> Callable[[Callable[[list[Annotation]], Merged]], Callable[[list[Annotation]], Merged]]:
    """Register a merge policy under `name` (the config's word for it)."""

    def register(function: Callable[[list[Annotation]], Merged]) -> Callable[[list[Annotation]], Merged]:
        POLICIES[name] = function
        return function

    return register


def merge(annotations: Sequence[Annotation], *, policy: str = DEFAULT_POLICY) -> Merged:
    """Merge the non-cancelled `annotations` of one task under the policy named `policy` (see `POLICIES`).
    Latest = greatest `updated_at`, then greatest id. Raises ValueError when none is left or the policy is
    unknown."""
    usable = sorted((a for a in annotations if not a.cancelled), key=recency)
    if not usable:
        raise ValueError("no submitted (non-cancelled) annotation to merge")
    if policy not in POLICIES:
        raise ValueError(f"unknown merge policy {policy!r}; use one of {', '.join(sorted(POLICIES))}")
    return POLICIES[policy](usable)


@policy("latest")
def _latest(usable: list[Annotation]) -> Merged:
    """The latest annotation (a lone one gives rule "single")."""
    return _one(usable[-1], "single" if len(usable) == 1 else "latest")


@policy("ground_truth_majority_latest")
def _ground_truth_majority_latest(usable: list[Annotation]) -> Merged:
    """The latest ground-truth annotation if any; else the only annotation; else every span (start, end, label)
    found in more than half the annotations; if any span has exactly half, the latest annotation (`tie=True`)."""
    ground_truth = [a for a in usable if a.ground_truth]
    if ground_truth:
        return _one(ground_truth[-1], "ground_truth")
    if len(usable) == 1:
        return _one(usable[-1], "single")
    votes: Counter[tuple[int, int, str]] = Counter()
    by_key: dict[tuple[int, int, str], Span] = {}
    for annotation in usable:
        keys = {_key(span) for span in annotation.spans}
        votes.update(keys)
        for span in annotation.spans:
            by_key.setdefault(_key(span), span)
    if any(2 * count == len(usable) for count in votes.values()):
        return _one(usable[-1], "latest", tie=True)
    kept = tuple(sorted(by_key[key] for key, count in votes.items() if 2 * count > len(usable)))
    return Merged(spans=kept, annotation_ids=tuple(sorted(a.id for a in usable)), annotators=_annotators(usable),
                  rule="majority")  # fmt: skip


def latest_per_annotator(annotations: Sequence[Annotation]) -> list[Annotation]:
    """Each annotator's latest submitted annotation (an annotator who submitted twice is one reading, not two)."""
    latest: dict[object, Annotation] = {}
    for annotation in sorted((a for a in annotations if not a.cancelled), key=recency):
        who = annotation.annotator if annotation.annotator is not None else ("unknown", annotation.id)
        latest[who] = annotation
    return list(latest.values())


def _one(annotation: Annotation, rule: Rule, *, tie: bool = False) -> Merged:
    return Merged(
        spans=tuple(sorted({_key(span): span for span in annotation.spans}.values())),
        annotation_ids=(annotation.id,),
        annotators=_annotators([annotation]),
        rule=rule,
        tie=tie,
    )


def _key(span: Span) -> tuple[int, int, str]:
    return span.start, span.end, span.label


def _annotators(annotations: Sequence[Annotation]) -> tuple[int, ...]:
    return tuple(sorted({a.annotator for a in annotations if a.annotator is not None}))


_EPOCH = datetime.min.replace(tzinfo=UTC)


def recency(annotation: Annotation) -> tuple[datetime, int]:
    """Sort key: parsed `updated_at` (ISO 8601; missing or unreadable sorts first, naive taken as UTC), then id."""
    try:
        moment = datetime.fromisoformat(annotation.updated_at) if annotation.updated_at else _EPOCH
    except ValueError:
        moment = _EPOCH
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment, annotation.id
