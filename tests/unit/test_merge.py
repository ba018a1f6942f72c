"""Merging several annotations of one task: ground truth, single, majority, ties, latest."""

from __future__ import annotations

import pytest

from workbench.merge import Merged, merge
from workbench.records import Annotation, Span

TEXT = "Erdoğan met Biden in Rome"
ERDOGAN = Span(0, 7, "PERSON", "Erdoğan")
BIDEN = Span(12, 17, "PERSON", "Biden")
BIDEN_ORG = Span(12, 17, "ORG", "Biden")
ROME = Span(21, 25, "GPE", "Rome")


def ann(
    id: int,
    *spans: Span,
    annotator: int | None = None,
    at: str = "2026-01-01T10:00:00Z",
    cancelled: bool = False,
    ground_truth: bool = False,
) -> Annotation:
    return Annotation(
        id=id,
        task_id=1,
        annotator=id * 10 if annotator is None else annotator,
        spans=spans,
        cancelled=cancelled,
        ground_truth=ground_truth,
        updated_at=at,
    )


CASES = [
    (
        "one annotation is used as is",
        [ann(1, ROME, BIDEN)],
        "ground_truth_majority_latest",
        Merged(spans=(BIDEN, ROME), annotation_ids=(1,), annotators=(10,), rule="single"),
    ),
    (
        "cancelled annotations do not count",
        [ann(1, ROME), ann(2, cancelled=True, at="2026-01-02T00:00:00Z")],
        "ground_truth_majority_latest",
        Merged(spans=(ROME,), annotation_ids=(1,), annotators=(10,), rule="single"),
    ),
    (
        "ground truth beats a majority against it",
        [ann(1, ROME), ann(2, ROME), ann(3, BIDEN, ground_truth=True, at="2025-01-01T00:00:00Z")],
        "ground_truth_majority_latest",
        Merged(spans=(BIDEN,), annotation_ids=(3,), annotators=(30,), rule="ground_truth"),
    ),
    (
        "several ground truths: the latest",
        [
            ann(1, ROME, ground_truth=True, at="2026-01-03T00:00:00Z"),
            ann(2, BIDEN, ground_truth=True, at="2026-01-02T00:00:00Z"),
        ],
        "ground_truth_majority_latest",
        Merged(spans=(ROME,), annotation_ids=(1,), annotators=(10,), rule="ground_truth"),
    ),
    (
        "a lone ground truth is ground truth",
        [ann(1, ROME, ground_truth=True)],
        "ground_truth_majority_latest",
        Merged(spans=(ROME,), annotation_ids=(1,), annotators=(10,), rule="ground_truth"),
    ),
    (
        "a cancelled ground truth does not count",
        [ann(1, ROME, ground_truth=True, cancelled=True), ann(2, BIDEN)],
        "ground_truth_majority_latest",
        Merged(spans=(BIDEN,), annotation_ids=(2,), annotators=(20,), rule="single"),
    ),
    (
        "majority: spans in 2 of 3 annotations are kept, 1 of 3 dropped",
        [ann(1, ERDOGAN, BIDEN), ann(2, ERDOGAN, BIDEN_ORG, ROME), ann(3, ERDOGAN, BIDEN, ROME)],
        "ground_truth_majority_latest",
        Merged(spans=(ERDOGAN, BIDEN, ROME), annotation_ids=(1, 2, 3), annotators=(10, 20, 30), rule="majority"),
    ),
    (
        "two annotators who agree: majority of both",
        [ann(1, ROME, BIDEN), ann(2, BIDEN, ROME)],
        "ground_truth_majority_latest",
        Merged(spans=(BIDEN, ROME), annotation_ids=(1, 2), annotators=(10, 20), rule="majority"),
    ),
    (
        "two annotators who both found nothing: an empty majority",
        [ann(1), ann(2)],
        "ground_truth_majority_latest",
        Merged(spans=(), annotation_ids=(1, 2), annotators=(10, 20), rule="majority"),
    ),
    (
        "tie, 1 of 2: the latest annotation, flagged",
        [ann(1, ROME, BIDEN, at="2026-01-02T00:00:00Z"), ann(2, ROME, at="2026-01-01T00:00:00Z")],
        "ground_truth_majority_latest",
        Merged(spans=(BIDEN, ROME), annotation_ids=(1,), annotators=(10,), rule="latest", tie=True),
    ),
    (
        "tie on a relabel, 2 of 4: the latest annotation, flagged",
        [
            ann(1, BIDEN, at="2026-01-01T00:00:00Z"),
            ann(2, BIDEN, at="2026-01-02T00:00:00Z"),
            ann(3, BIDEN_ORG, at="2026-01-04T00:00:00Z"),
            ann(4, BIDEN_ORG, at="2026-01-03T00:00:00Z"),
        ],
        "ground_truth_majority_latest",
        Merged(spans=(BIDEN_ORG,), annotation_ids=(3,), annotators=(30,), rule="latest", tie=True),
    ),
    (
        "latest policy: greatest updated_at, whatever the majority",
        [ann(1, ROME), ann(2, ROME), ann(3, BIDEN, at="2026-01-05T00:00:00Z")],
        "latest",
        Merged(spans=(BIDEN,), annotation_ids=(3,), annotators=(30,), rule="latest"),
    ),
    (
        "latest policy ignores ground truth",
        [ann(1, ROME, ground_truth=True), ann(2, BIDEN, at="2026-01-05T00:00:00Z")],
        "latest",
        Merged(spans=(BIDEN,), annotation_ids=(2,), annotators=(20,), rule="latest"),
    ),
    (
        "latest policy with one annotation: single",
        [ann(1, ROME)],
        "latest",
        Merged(spans=(ROME,), annotation_ids=(1,), annotators=(10,), rule="single"),
    ),
    (
        "equal updated_at: the greater id is the latest",
        [ann(7, ROME), ann(3, BIDEN)],
        "latest",
        Merged(spans=(ROME,), annotation_ids=(7,), annotators=(70,), rule="latest"),
    ),
    (
        "timestamps compare as times, not strings (fraction vs none, offsets)",
        [
            ann(1, ROME, at="2026-01-01T10:00:00.500000Z"),
            ann(2, BIDEN, at="2026-01-01T10:00:00Z"),
            ann(3, ERDOGAN, at="2026-01-01T11:00:00+02:00"),
        ],
        "latest",
        Merged(spans=(ROME,), annotation_ids=(1,), annotators=(10,), rule="latest"),
    ),
    (
        "a missing or unreadable updated_at sorts first",
        [ann(1, ROME, at=""), ann(2, BIDEN, at="yesterday"), ann(3, ERDOGAN, at="2020-01-01T00:00:00")],
        "latest",
        Merged(spans=(ERDOGAN,), annotation_ids=(3,), annotators=(30,), rule="latest"),
    ),
    (
        "annotators without a user id are left out of the provenance",
        [ann(1, ROME, annotator=None), ann(2, ROME, annotator=5)],
        "ground_truth_majority_latest",
        Merged(spans=(ROME,), annotation_ids=(1, 2), annotators=(5, 10), rule="majority"),
    ),
    (
        "a span listed twice in one annotation is one vote",
        [ann(1, ROME, ROME), ann(2), ann(3)],
        "ground_truth_majority_latest",
        Merged(spans=(), annotation_ids=(1, 2, 3), annotators=(10, 20, 30), rule="majority"),
    ),
]


@pytest.mark.parametrize(("description", "annotations", "policy", "expected"), CASES)
def test_merge(description: str, annotations: list[Annotation], policy: str, expected: Merged) -> None:
    assert merge(annotations, policy=policy) == expected  # type: ignore[arg-type]


def test_merge_does_not_depend_on_input_order() -> None:
    annotations = [ann(1, ERDOGAN, BIDEN), ann(2, ERDOGAN, ROME), ann(3, BIDEN, ROME)]
    assert merge(annotations) == merge(list(reversed(annotations)))


def test_annotator_without_id_in_a_single_annotation() -> None:
    merged = merge([Annotation(id=4, task_id=1, annotator=None, spans=(ROME,))])
    assert merged.annotators == () and merged.annotation_ids == (4,)


@pytest.mark.parametrize(
    ("description", "annotations"),
    [("no annotations", []), ("only cancelled annotations", [ann(1, cancelled=True), ann(2, cancelled=True)])],
)
def test_merge_refuses_to_invent_labels(description: str, annotations: list[Annotation]) -> None:
    with pytest.raises(ValueError, match="no submitted"):
        merge(annotations)


def test_merge_rejects_an_unknown_policy() -> None:
    with pytest.raises(ValueError, match="policy"):
        merge([ann(1, ROME)], policy="vote")  # type: ignore[arg-type]
