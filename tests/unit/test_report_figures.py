"""The report's figures as data: tallies over tasks and rows, and the charts made from them and from manifests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from workbench.records import Row, Span
from workbench.report import figures, page
from workbench.report.figures import Activity, RowShapes
from workbench.sync.interface import PALETTE

LABELS = ["PERSON", "ORG", "GPE"]


def _annotation(who: Any, created: str | None, *, cancelled: bool = False) -> dict[str, Any]:
    return {"completed_by": who, "created_at": created, "was_cancelled": cancelled, "result": []}


def _prediction(version: str, created: str) -> dict[str, Any]:
    return {"model_version": version, "created_at": created, "result": []}


def _row(*spans: tuple[str, str]) -> Row:
    text = " ".join(piece for piece, _ in spans)
    made, at = [], 0
    for piece, label in spans:
        made.append(Span(at, at + len(piece), label, piece))
        at += len(piece) + 1
    return Row(id="r", doc_id="d", paragraph=0, text=text, tokens=(), ner_tags=(), spans=tuple(made), task_id=1,
               annotation_ids=(), annotators=())  # fmt: skip


def test_activity_counts_submissions_and_skips_per_annotator_with_their_times() -> None:
    activity = Activity()
    activity.add({"annotations": [_annotation(2, "2026-11-30T10:00:00Z"), _annotation(10, "2026-11-30T09:00:00Z")]})
    activity.add({"annotations": [_annotation(2, "2026-11-30T11:30:00.123456Z"), _annotation(2, None, cancelled=True),
                                  _annotation({"id": 7, "email": "ann@example.org"}, "2026-11-30T12:00:00")]})
    activity.add({"annotations": ["not an annotation", _annotation(None, "garbage")]})  # fmt: skip
    noon, nine = "2026-11-30T12:00:00Z", "2026-11-30T09:00:00Z"
    assert activity.summary() == {
        "ann@example.org": {"submitted": 1, "skipped": 0, "first": noon, "last": noon},
        "annotator 2": {"submitted": 2, "skipped": 1, "first": "2026-11-30T10:00:00Z", "last": "2026-11-30T11:30:00Z"},
        "annotator 10": {"submitted": 1, "skipped": 0, "first": nine, "last": nine},
        "unknown annotator": {"submitted": 1, "skipped": 0, "first": "", "last": ""},  # a time it cannot read
    }


def test_model_versions_are_ordered_by_their_first_prediction_not_by_name() -> None:
    activity = Activity()
    activity.add({"predictions": [_prediction("b-trained", "2026-12-01T00:00:00Z"),
                                  _prediction("z-base", "2026-11-01T00:00:00Z")]})
    activity.add({"predictions": [_prediction("b-trained", "2026-11-30T00:00:00Z"), "17"]})
    assert activity.first_prediction["b-trained"] == datetime(2026, 11, 30, tzinfo=UTC)
    ordered = activity.model_versions(["b-trained", "z-base", "a-no-time"])
    assert ordered == ["z-base", "b-trained", "a-no-time"]


def test_row_shapes_count_labels_span_words_and_entities_per_paragraph() -> None:
    shapes = RowShapes()
    shapes.add(_row(("Jake Sullivan", "PERSON"), ("Kyiv", "GPE")))
    shapes.add(_row())
    shapes.add(_row(("United States National Security Council", "ORG")))
    assert shapes.labels == {"PERSON": 1, "GPE": 1, "ORG": 1}
    assert shapes.span_words == {2: 1, 1: 1, 5: 1}
    assert shapes.entities == {2: 1, 0: 1, 1: 1}


@pytest.mark.parametrize(
    ("description", "counts", "categories", "values"),
    [
        ("short spans: one bar per length up to the longest", {1: 4, 3: 1}, ("1", "2", "3"), (4, 0, 1)),
        ("long spans share the capped last bar", {1: 2, 10: 1, 14: 3}, (*map(str, range(1, 10)), "10+"),
         (2, 0, 0, 0, 0, 0, 0, 0, 0, 4)),
        ("no spans at all: one empty bar", {}, ("1",), (0,)),
    ],
)  # fmt: skip
def test_span_length_histogram(description: str, counts: dict[int, int], categories: tuple, values: tuple) -> None:
    shapes = RowShapes()
    shapes.span_words.update(counts)
    chart = figures.span_lengths(shapes)
    assert (chart.categories, chart.series[0].values) == (categories, tuple(float(v) for v in values)), description


def test_entities_per_paragraph_starts_at_zero() -> None:
    shapes = RowShapes()
    shapes.entities.update({0: 3, 2: 1})
    chart = figures.entities_per_paragraph(shapes)
    assert chart.categories == ("0", "1", "2") and chart.series[0].values == (3.0, 0.0, 1.0)


def test_label_distribution_lists_every_configured_label_then_unknown_ones() -> None:
    chart = figures.label_distribution({"train": {"GPE": 3, "WEAPON": 1}, "test": {"PERSON": 2}}, LABELS, title="t")
    assert chart.key == "label-distribution" and chart.kind == "hbars"
    assert chart.categories == ("PERSON", "ORG", "GPE", "WEAPON")
    assert [(s.name, s.values) for s in chart.series] == [("train", (0.0, 0.0, 3.0, 1.0)),
                                                          ("test", (2.0, 0.0, 0.0, 0.0))]


QUALITY = {
    "base-3.8.0": {"f1": 0.5, "per_label": {"PERSON": {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 2},
                                            "ORG": {"precision": None, "recall": None, "f1": None, "support": 0}}},
    "trained-0.1": {"f1": 0.8, "per_label": {"PERSON": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2},
                                             "GPE": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}}},
}  # fmt: skip


def test_quality_chart_shows_precision_recall_f1_of_measured_labels_only() -> None:
    chart = figures.quality_by_label(QUALITY, "base-3.8.0", LABELS)
    assert chart is not None and chart.unit_range
    assert chart.categories == ("PERSON",)  # ORG was never predicted nor annotated
    assert [(s.name, s.values) for s in chart.series] == [("precision", (0.5,)), ("recall", (1.0,)),
                                                          ("f1", (0.6667,))]
    assert figures.quality_by_label({}, "none", LABELS) is None


def test_learning_curve_needs_two_model_versions_and_follows_their_order() -> None:
    assert figures.learning_curve(QUALITY, ["base-3.8.0"], LABELS) is None
    chart = figures.learning_curve(QUALITY, ["base-3.8.0", "trained-0.1"], LABELS)
    assert chart is not None and chart.categories == ("base-3.8.0", "trained-0.1")
    lines = {s.name: s for s in chart.series}
    assert lines["all labels"].values == (0.5, 0.8) and lines["all labels"].bold
    assert lines["PERSON"].values == (0.6667, 1.0)
    assert lines["GPE"].values == (None, 0.0)  # not measured for the first version: a gap, not a zero
    assert lines["PERSON"].colour == PALETTE[0] and lines["GPE"].colour == PALETTE[2]  # the labeling view's colours
    assert "ORG" not in lines


def test_agreement_chart_only_with_overlap() -> None:
    none = {"tasks_compared": 0, "per_label": {"PERSON": {"f1": None, "matched": 0, "unmatched": 0}}}
    assert figures.agreement_by_label(none, LABELS) is None
    some = {"tasks_compared": 2, "per_label": {"PERSON": {"f1": 0.5}, "ORG": {"f1": None}, "GPE": {"f1": 0.0}}}
    chart = figures.agreement_by_label(some, LABELS)
    assert chart is not None and chart.categories == ("PERSON", "GPE") and chart.series[0].values == (0.5, 0.0)


def test_annotator_progress_counts_up_per_annotator_in_time_order() -> None:
    activity = Activity()
    activity.add({"annotations": [_annotation(1, "2026-11-30T10:05:00Z"), _annotation(1, "2026-11-30T10:00:00Z")]})
    chart = figures.annotator_progress(activity)
    assert chart is not None and chart.kind == "steps"
    (series,) = chart.series
    assert series.name == "annotator 1" and series.values == (1.0, 2.0)
    assert series.x == (datetime(2026, 11, 30, 10, 0, tzinfo=UTC), datetime(2026, 11, 30, 10, 5, tzinfo=UTC))
    assert figures.annotator_progress(Activity()) is None


def test_time_per_model_version_puts_no_proposal_first_then_the_versions_as_they_came() -> None:
    def spread(n: int, median: float, p90: float) -> dict[str, Any]:
        return {"annotations": n, "median_seconds": median, "p90_seconds": p90}

    time = {"per_annotator": {"annotator 1": spread(3, 20.0, 40.0)},
            "per_model_version": {"a-new": spread(1, 10.0, 10.0), "none": spread(1, 50.0, 50.0),
                                  "z-old": spread(2, 30.0, 45.0), "never": spread(0, 0.0, 0.0)}}  # fmt: skip
    activity = Activity()
    activity.add({"predictions": [{"model_version": "z-old", "created_at": "2026-11-01T00:00:00Z"},
                                  {"model_version": "a-new", "created_at": "2026-12-01T00:00:00Z"}]})  # fmt: skip
    sections = {s.key: s for s in page.plan({"annotation_time": time}, activity, RowShapes(), [], LABELS)}
    (chart,) = [c for c in sections["model"].charts if c.key == "annotation-time-models"]
    assert chart.categories == ("none", "z-old", "a-new")  # a version with no timed annotation is left out
    assert [(s.name, s.values) for s in chart.series] == [("median", (50.0, 30.0, 10.0)),
                                                          ("90th percentile", (50.0, 45.0, 10.0))]
    (chart,) = [c for c in sections["annotators"].charts if c.key == "annotation-time-annotators"]
    assert chart.categories == ("annotator 1",) and chart.y_label == "seconds per task"
    assert figures.time_per_task({}, [], key="k", title="t", x_label="x", caption="c") is None


def _manifest(version: str, train: int, test: int, labels: dict[str, int]) -> dict[str, Any]:
    return {"version": version, "counts": {"train": {"rows": train}, "test": {"rows": test},
                                           "total": {"rows": train + test, "labels": labels}}}  # fmt: skip


def test_release_charts_follow_the_manifests() -> None:
    manifests = [_manifest("0.1.0", 8, 2, {"PERSON": 3, "ORG": 0}), _manifest("0.2.0", 12, 3, {"PERSON": 5, "ORG": 1})]
    rows = figures.release_rows(manifests)
    assert rows is not None and rows.stacked and rows.categories == ("0.1.0", "0.2.0")
    assert [(s.name, s.values) for s in rows.series] == [("train", (8.0, 12.0)), ("test", (2.0, 3.0))]
    labels = figures.release_labels(manifests, LABELS)
    assert labels is not None and [(s.name, s.values) for s in labels.series] == [("PERSON", (3.0, 5.0)),
                                                                                  ("ORG", (0.0, 1.0))]  # fmt: skip
    assert figures.release_rows([]) is None and figures.release_labels([], LABELS) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-11-30T10:00:00Z", datetime(2026, 11, 30, 10, tzinfo=UTC)),
     ("2026-11-30T10:00:00", datetime(2026, 11, 30, 10, tzinfo=UTC)),
     ("yesterday", None), ("", None), (None, None), (17, None)],
)  # fmt: skip
def test_parse_time(text: Any, expected: datetime | None) -> None:
    assert figures.parse_time(text) == expected


def test_natural_order() -> None:
    assert sorted(["annotator 10", "annotator 2", "0.10.0", "0.2.0"], key=figures.natural) == [
        "0.2.0", "0.10.0", "annotator 2", "annotator 10"]  # fmt: skip
