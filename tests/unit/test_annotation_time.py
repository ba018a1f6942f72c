"""Annotation time: each annotation's seconds in Label Studio's editor (`lead_time`) kept by the build, counted
for every task that is not retired (submitted and skipped alike, with or without a row), and decoded into hours,
the median and the 90th percentile per task, per annotator and per model version the annotator saw."""

from __future__ import annotations

from typing import Any

import pytest
import spacy

from workbench.config import Config
from workbench.release.card import _time
from workbench.rows.builder import RowBuilder
from workbench.rows.tasks import NO_MODEL, seen_version
from workbench.rows.timing import annotation_time, release_time, spread

TEXT = "Erdoğan met Putin in Sochi."
REGION = {"id": "r1", "from_name": "label", "to_name": "text", "type": "labels",
          "value": {"start": 12, "end": 17, "text": "Putin", "labels": ["PERSON"]}}  # fmt: skip


def _prediction(version: str, created_at: str) -> dict[str, Any]:
    return {"model_version": version, "created_at": created_at, "result": [REGION]}


def _annotation(n: int, who: Any, created_at: str, lead_time: Any, *, skipped: bool = False) -> dict[str, Any]:
    return {"id": n, "completed_by": who, "created_at": created_at, "updated_at": created_at, "lead_time": lead_time,
            "was_cancelled": skipped, "result": [] if skipped else [REGION]}  # fmt: skip


def _task(n: int, annotations: list[dict[str, Any]], predictions: list[dict[str, Any]] | None = None,
          **data: Any) -> dict[str, Any]:  # fmt: skip
    return {"id": n, "data": {"text": TEXT, "doc_id": "d", "paragraph": n, "key": f"k{n}", **data},
            "annotations": annotations, "predictions": predictions or []}  # fmt: skip


def _figures(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    builder = RowBuilder(Config(), spacy.blank("en").tokenizer)
    for task in tasks:
        builder.row(task)
    return builder.finish().report()["annotation_time"]


def test_hours_median_and_p90_are_exact_for_known_seconds() -> None:
    entries = [["ana", "m1", s, False] for s in (10.0, 20.0, 30.0, 40.0)] + [["bo", "m2", 100.0, True]]
    time = annotation_time(entries, untimed=2)
    # numpy's linear percentiles: the median of 10..40 and 100 is 30, the 90th percentile 76
    assert time == {
        "annotations": 5, "skipped": 1, "seconds": 200.0, "hours": 0.0556, "median_seconds": 30.0,
        "p90_seconds": 76.0, "untimed": 2,
        "per_annotator": {
            "ana": {"annotations": 4, "skipped": 0, "seconds": 100.0, "hours": 0.0278, "median_seconds": 25.0,
                    "p90_seconds": 37.0},
            "bo": {"annotations": 1, "skipped": 1, "seconds": 100.0, "hours": 0.0278, "median_seconds": 100.0,
                   "p90_seconds": 100.0},
        },
        "per_model_version": {
            "m1": spread(entries[:4]),
            "m2": spread(entries[4:]),
        },
    }  # fmt: skip
    assert "per_annotator" not in release_time(time) and release_time(time)["per_model_version"] == time[
        "per_model_version"]  # a release counts annotators, it never names them


def test_no_timed_annotation_gives_zero_hours_and_no_percentiles() -> None:
    assert annotation_time([], untimed=3) == {
        "annotations": 0, "skipped": 0, "seconds": 0.0, "hours": 0.0, "median_seconds": None, "p90_seconds": None,
        "untimed": 3, "per_annotator": {}, "per_model_version": {},
    }  # fmt: skip


def test_annotators_are_listed_as_people_count_them() -> None:
    entries = [[f"annotator {n}", "m", 1.0, False] for n in (10, 2, 1)]
    assert list(annotation_time(entries)["per_annotator"]) == ["annotator 1", "annotator 2", "annotator 10"]


def test_the_build_counts_every_timed_annotation_of_tasks_not_retired() -> None:
    before, m1, between, m2, after = ("2026-01-01T09:00:00Z", "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z",
                                      "2026-01-01T12:00:00Z", "2026-01-01T13:00:00Z")  # fmt: skip
    predictions = [_prediction("m2", m2), _prediction("m1", m1)]
    tasks = [
        # two annotators, one before any prediction (none) and one after the first model's
        _task(1, [_annotation(1, 1, before, 30), _annotation(2, 2, between, 60.5)], predictions),
        # a skip takes time too; a task only skipped gives no row but its time counts
        _task(2, [_annotation(3, 1, after, 4, skipped=True)], predictions),
        # an annotation at the very time the second model's prediction was made saw it
        _task(3, [_annotation(4, {"id": 2, "email": "bo@example.org"}, m2, 90)], predictions),
        # Label Studio recorded no time (missing, null) or one that cannot be right: counted as untimed
        _task(4, [_annotation(5, 1, after, None), _annotation(6, 2, after, -1), _annotation(7, 2, after, True)]),
        # a retired paragraph's annotations are not counted
        _task(5, [_annotation(8, 1, after, 1000)], predictions, retired="retired"),
    ]
    del tasks[3]["annotations"][0]["lead_time"]
    time = _figures(tasks)
    assert (time["annotations"], time["skipped"], time["untimed"], time["seconds"]) == (4, 1, 3, 184.5)
    assert time["hours"] == round(184.5 / 3600, 4)
    assert set(time["per_annotator"]) == {"annotator 1", "annotator 2", "bo@example.org"}
    assert time["per_annotator"]["annotator 1"] == {"annotations": 2, "skipped": 1, "seconds": 34.0, "hours": 0.0094,
                                                    "median_seconds": 17.0, "p90_seconds": 27.4}  # fmt: skip
    versions = time["per_model_version"]
    assert {v: (t["annotations"], t["seconds"]) for v, t in versions.items()} == {
        NO_MODEL: (1, 30.0), "m1": (1, 60.5), "m2": (2, 94.0)}


def test_the_version_seen_is_the_newest_prediction_made_at_or_before_the_annotation() -> None:
    task = _task(1, [], [_prediction("old", "2026-01-01T10:00:00Z"), _prediction("new", "2026-01-02T10:00:00+00:00"),
                         7])  # an export without full predictions lists ids: not ours to read  # fmt: skip
    assert seen_version(task, "2026-01-01T09:59:59Z") == NO_MODEL
    assert seen_version(task, "2026-01-01T10:00:00.000000Z") == "old"
    assert seen_version(task, "2026-01-02T10:00:00Z") == "new"
    assert seen_version(task, "") == NO_MODEL  # no stamp: never after a prediction


@pytest.mark.parametrize("lead_time", [12.5, 12, "12.5", None])
def test_the_time_survives_the_round_trip_as_a_number_or_not_at_all(lead_time: Any) -> None:
    time = _figures([_task(1, [_annotation(1, 1, "2026-01-01T10:00:00Z", lead_time)])])
    counted = isinstance(lead_time, (int, float))
    assert (time["annotations"], time["untimed"]) == ((1, 0) if counted else (0, 1))
    assert time["seconds"] == (float(lead_time) if counted else 0.0)


def test_the_card_says_the_hours_in_a_sentence() -> None:
    entries = [["a", "m1", 1800.0, False], ["a", NO_MODEL, 1800.0, True]]
    sentence = _time({"annotation_time": release_time(annotation_time(entries, untimed=1))})
    assert sentence.startswith("Annotation time behind this release: **1.00 hours** (3,600 seconds)")
    assert "over 2 annotations, 1 of them skips" in sentence and "1 annotation carried no time." in sentence
    assert "`m1` 0.50 hours over 1 annotation" in sentence
    assert _time({}) == "Label Studio recorded no annotation time for these tasks."
