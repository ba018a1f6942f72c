"""The oracle's regions (what the editor submits after starting from a prediction) and the bench's scorer."""

from __future__ import annotations

import pytest

from bench.oracle import gold_regions, prediction_spans, region, score_spans, shown_prediction
from bench.wnut import Span

TEXT = "Empire State Building = ESB . Pretty bad storm in New York"
ESB = Span(0, 21, "facility", "Empire State Building")
SHORT = Span(0, 12, "facility", "Empire State")
ESB2 = Span(24, 27, "facility", "ESB")
NY = Span(50, 58, "geo-loc", "New York")


def _predicted(*spans: Span) -> list[tuple[str, Span]]:
    return [(f"p{n}", span) for n, span in enumerate(spans)]


@pytest.mark.parametrize(
    ("description", "gold", "predicted", "expected"),
    [
        ("accepted as proposed keeps the region and its origin", [ESB], [ESB], [("p0", "prediction")]),
        ("relabelled keeps the region id, changed origin", [ESB], [Span(0, 21, "company", ESB.text)],
         [("p0", "prediction-changed")]),
        ("moved keeps the region id, changed origin", [ESB], [SHORT], [("p0", "prediction-changed")]),
        ("a missed entity is drawn", [ESB, NY], [ESB], [("p0", "prediction"), ("oracle-1", "manual")]),
        ("a wrong proposal is deleted", [NY], [ESB2], [("oracle-0", "manual")]),
        ("the exact match wins over an overlap", [SHORT, ESB], [ESB],
         [("p0", "prediction"), ("oracle-0", "manual")]),
        ("nothing to submit", [], [ESB], []),
    ],
)  # fmt: skip
def test_gold_regions_are_what_the_editor_submits(description: str, gold: list[Span],
                                                  predicted: list[Span], expected: list[tuple[str, str]]) -> None:
    regions = gold_regions(TEXT, gold, _predicted(*predicted))
    assert [(r["id"], r["origin"]) for r in regions] == expected
    assert sorted((r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in regions) == sorted(
        (s.start, s.end, s.label) for s in gold)
    assert all(TEXT[r["value"]["start"] : r["value"]["end"]] == r["value"]["text"] for r in regions)


def test_a_region_that_does_not_match_its_text_is_refused() -> None:
    with pytest.raises(ValueError, match="does not match"):
        region(TEXT, Span(0, 5, "person", "Paris"), "r", "manual")


def test_prediction_regions_are_read_back_as_spans_and_checked() -> None:
    regions = [region(TEXT, ESB, "a", "prediction"), {"type": "choices", "value": {}}]
    assert prediction_spans(TEXT, regions) == [("a", ESB)]
    broken = [{**regions[0], "value": {**regions[0]["value"], "start": 1}}]
    with pytest.raises(ValueError, match="does not match"):
        prediction_spans(TEXT, broken)


def test_the_prediction_shown_is_the_newest_of_the_project_model_version() -> None:
    old = {"id": 1, "model_version": "a", "created_at": "2026-01-01T00:00:00Z"}
    new = {"id": 2, "model_version": "b", "created_at": "2026-01-02T00:00:00Z"}
    assert shown_prediction([new, old], "a") is old
    assert shown_prediction([old, new], "c") is new
    assert shown_prediction([], "a") is None


def test_scores_are_exact_matches_micro_averaged_per_label_and_overall() -> None:
    scores = score_spans([([ESB, Span(50, 58, "person", "New York")], [ESB, NY]), ([], [ESB2])],
                         ["facility", "geo-loc", "person", "movie"])  # fmt: skip
    assert (scores["tasks"], scores["predicted"], scores["gold"]) == (2, 2, 3)
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.5, 0.3333, 0.4)
    assert scores["per_label"]["facility"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert scores["per_label"]["person"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert scores["per_label"]["movie"] == {"precision": None, "recall": None, "f1": None, "support": 0}


def test_nothing_predicted_against_gold_is_precision_zero_as_the_report_says() -> None:
    scores = score_spans([([], [ESB])], ["facility"])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)
    assert score_spans([], ["facility"])["f1"] is None
