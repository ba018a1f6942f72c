"""Label quality: agreement between annotators, and pre-annotation quality per model version."""

from __future__ import annotations

import json

import pytest

from workbench.records import Annotation, Span
from workbench.rows.quality import BUCKETS, agreement, low_score_auroc, match_spans, prediction_quality

LABELS = ["PERSON", "GPE", "ORG"]
TEXT = "Defense Secretary Lloyd Austin met Erdoğan in New York City and Ankara"


def s(piece: str, label: str) -> Span:
    start = TEXT.index(piece)
    return Span(start, start + len(piece), label, piece)


AUSTIN = s("Lloyd Austin", "PERSON")
ERDOGAN = s("Erdoğan", "PERSON")
NYC = s("New York City", "GPE")
ANKARA = s("Ankara", "GPE")


def ann(id: int, *spans: Span, cancelled: bool = False) -> Annotation:
    return Annotation(id=id, task_id=1, annotator=id, spans=spans, cancelled=cancelled)


def test_agreement_full_and_partial() -> None:
    tasks = [
        [ann(1, AUSTIN, NYC), ann(2, NYC, AUSTIN)],  # identical
        [ann(3, ERDOGAN, ANKARA), ann(4, ERDOGAN)],  # Ankara missed by one
        [ann(5, ANKARA)],  # one annotation: not compared
        [ann(6, ANKARA), ann(7, ERDOGAN, cancelled=True)],  # one submitted: not compared
    ]
    result = agreement(tasks, LABELS)
    # pairs: (2 matched, 0 unmatched) + (1 matched, 1 unmatched): F1 = 2*3 / (2*3 + 1) = 0.8571
    assert result == {
        "tasks_compared": 2,
        "pairs": 2,
        "full_agreement": 0.5,
        "f1": 0.8571,
        "matched": 3,
        "unmatched": 1,
        "per_label": {
            "PERSON": {"f1": 1.0, "matched": 2, "unmatched": 0},
            "GPE": {"f1": 0.6667, "matched": 1, "unmatched": 1},
            "ORG": {"f1": None, "matched": 0, "unmatched": 0},
        },
    }
    json.dumps(result)


def test_agreement_counts_every_pair_of_three_annotators() -> None:
    tasks = [[ann(1, AUSTIN), ann(2, AUSTIN), ann(3, s("Lloyd Austin", "ORG"))]]
    result = agreement(tasks, LABELS)
    assert result["pairs"] == 3
    assert result["full_agreement"] == 0.0
    # (1,2) match; (1,3) and (2,3) each 0 matched, 2 unmatched: F1 = 2 / (2 + 4)
    assert (result["f1"], result["matched"], result["unmatched"]) == (0.3333, 1, 4)
    assert result["per_label"]["ORG"] == {"f1": 0.0, "matched": 0, "unmatched": 2}


@pytest.mark.parametrize(
    ("description", "tasks"),
    [
        ("no tasks", []),
        ("only single annotations", [[ann(1, AUSTIN)], [ann(2)]]),
    ],
)
def test_agreement_with_nothing_to_compare(description: str, tasks: list[list[Annotation]]) -> None:
    result = agreement(tasks, LABELS)
    assert result["tasks_compared"] == 0 and result["full_agreement"] is None and result["f1"] is None


def test_agreement_on_empty_annotations_is_full_but_has_no_f1() -> None:
    result = agreement([[ann(1), ann(2)]], LABELS)
    assert result["full_agreement"] == 1.0 and result["f1"] is None


def test_agreement_lists_unconfigured_labels_after_configured_ones() -> None:
    result = agreement([[ann(1, s("Ankara", "CITY")), ann(2, s("Ankara", "CITY"))]], ["PERSON"])
    assert list(result["per_label"]) == ["PERSON", "CITY"]


MATCH_CASES = [
    ("accepted: same start, end, label", [AUSTIN], [AUSTIN], {"accepted": 1}),
    ("relabelled: same boundaries, other label", [s("Lloyd Austin", "ORG")], [AUSTIN], {"relabelled": 1}),
    (
        "rebounded: title swallowed by the model",
        [s("Defense Secretary Lloyd Austin", "PERSON")],
        [AUSTIN],
        {"rebounded": 1},
    ),
    (
        "changed: 'Defense Secretary Lloyd Austin' ORG -> 'Lloyd Austin' PERSON",
        [s("Defense Secretary Lloyd Austin", "ORG")],
        [AUSTIN],
        {"changed": 1},
    ),
    ("added: the model missed Erdoğan", [], [ERDOGAN], {"added": 1}),
    ("deleted: the human removed a prediction", [s("Defense", "ORG")], [], {"deleted": 1}),
    (
        "split: one prediction over two human spans pairs once, the other human span is added",
        [s("New York City and Ankara", "GPE")],
        [NYC, ANKARA],
        {"rebounded": 1, "added": 1},
    ),
    (
        "accepted is taken before rebounded",
        [NYC, s("York City", "GPE")],
        [NYC],
        {"accepted": 1, "deleted": 1},
    ),
    (
        "relabelled is taken before rebounded",
        [s("New York", "GPE"), s("New York City", "ORG")],
        [NYC],
        {"relabelled": 1, "deleted": 1},
    ),
    (
        "the larger overlap pairs first",
        [s("York", "GPE"), s("New York City and", "GPE")],
        [NYC],
        {"rebounded": 1, "deleted": 1},
    ),
    (
        "a mixed paragraph",
        [AUSTIN, s("Erdoğan in", "PERSON"), s("Ankara", "ORG"), s("Defense", "ORG")],
        [AUSTIN, ERDOGAN, ANKARA, NYC],
        {"accepted": 1, "rebounded": 1, "relabelled": 1, "added": 1, "deleted": 1},
    ),
    ("duplicates count once", [AUSTIN, AUSTIN], [AUSTIN, AUSTIN], {"accepted": 1}),
    ("nothing at all", [], [], {}),
]


@pytest.mark.parametrize(("description", "predicted", "human", "expected"), MATCH_CASES)
def test_match_spans_buckets(description: str, predicted: list[Span], human: list[Span], expected: dict) -> None:
    buckets = match_spans(predicted, human)
    assert {bucket: len(found) for bucket, found in buckets.items() if found} == expected
    paired = [pair for bucket in BUCKETS[:4] for pair in buckets[bucket]]
    # every span in exactly one bucket
    assert sorted([p for p, _ in paired] + buckets["deleted"]) == sorted(set(predicted))
    assert sorted([h for _, h in paired] + buckets["added"]) == sorted(set(human))


def test_prediction_quality_per_version() -> None:
    pairs = [
        ("sm-3.8.0", [AUSTIN, s("Ankara", "ORG"), s("Defense", "ORG")], [AUSTIN, ANKARA, ERDOGAN]),
        ("sm-3.8.0", [NYC], [NYC]),
        ("md-3.8.0", [], [ERDOGAN]),
    ]
    result = prediction_quality(pairs, LABELS)
    assert list(result) == ["md-3.8.0", "sm-3.8.0"]
    sm = result["sm-3.8.0"]
    # exact matches: AUSTIN, NYC (tp=2); Ankara ORG, Defense ORG (fp=2); ANKARA GPE, ERDOGAN (fn=2)
    assert (sm["tasks"], sm["predicted"], sm["human"]) == (2, 4, 4)
    assert (sm["precision"], sm["recall"], sm["f1"]) == (0.5, 0.5, 0.5)
    assert sm["per_label"] == {
        "PERSON": {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2},
        "GPE": {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2},
        "ORG": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
    }
    assert sm["counts"] == {"accepted": 2, "relabelled": 1, "rebounded": 0, "changed": 0, "added": 1, "deleted": 1}
    md = result["md-3.8.0"]
    assert (md["precision"], md["recall"], md["f1"]) == (0.0, 0.0, 0.0)
    assert md["per_label"]["GPE"] == {"precision": None, "recall": None, "f1": None, "support": 0}
    assert md["counts"]["added"] == 1
    json.dumps(result)


def test_prediction_quality_bucket_totals_match_span_totals() -> None:
    pairs = [("v", predicted, human) for _, predicted, human, _ in MATCH_CASES]
    report = prediction_quality(pairs, LABELS)["v"]
    counts = report["counts"]
    both = counts["accepted"] + counts["relabelled"] + counts["rebounded"] + counts["changed"]
    assert both + counts["added"] == report["human"]
    assert both + counts["deleted"] == report["predicted"]


def test_prediction_quality_of_nothing() -> None:
    assert prediction_quality([], LABELS) == {}


def test_two_annotations_by_one_annotator_are_not_an_agreement_pair() -> None:
    paris = Span(0, 5, "GPE", "Paris")
    first = Annotation(id=1, task_id=1, annotator=7, spans=(paris,), updated_at="2026-01-01T00:00:00Z")
    again = Annotation(id=2, task_id=1, annotator=7, spans=(), updated_at="2026-01-02T00:00:00Z")
    other = Annotation(id=3, task_id=1, annotator=8, spans=(), updated_at="2026-01-01T00:00:00Z")
    assert agreement([[first, again]], ["GPE"])["pairs"] == 0
    result = agreement([[first, again, other]], ["GPE"])
    assert result["pairs"] == 1 and result["full_agreement"] == 1.0  # annotator 7's latest (empty) and 8's agree


@pytest.mark.parametrize(
    ("description", "scored", "expected"),
    [
        ("low scores are exactly the changed ones", [(0.1, True), (0.2, True), (0.8, False), (0.9, False)], 1.0),
        ("low scores are exactly the kept ones", [(0.9, True), (0.8, True), (0.1, False), (0.2, False)], 0.0),
        ("a tie counts half", [(0.5, True), (0.5, False)], 0.5),
        ("4 of 6 pairs in order", [(0.1, True), (0.3, False), (0.2, True), (0.25, False), (0.05, False)], 0.6667),
        ("nothing changed: nothing to measure", [(0.1, False), (0.2, False)], None),
    ],
)
def test_the_score_auroc_says_how_well_a_low_score_finds_changed_paragraphs(description, scored, expected) -> None:
    assert low_score_auroc(scored) == expected, description
