"""The report as tables: every known section laid out for a reader, any other section shown from its shape, and
never a raw dict, list or None."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.report.tables import NO_OVERLAP, NO_TIME, Table, cell, generic, release_history, report_tables

REPORT: dict[str, Any] = {
    "snapshot": {"file": "2026-11-30T110000-000000Z.json", "sha256": "ab" * 32, "pulled_at": "2026-11-30T11:00:00Z",
                 "project_id": 3, "label_studio_version": "1.23.2", "tasks": 12},
    "tasks": 12, "rows": 7, "excluded": {"no_annotation": 4, "skipped": 1}, "annotators": 2,
    "merge_ties": [{"task_id": 9, "annotations": [31, 32], "used": "latest"}],
    "alignment": {"regions": 40, "kept": 36, "trimmed": 2, "converted": 2, "ambiguous": 0, "unlabelled": 0,
                  "split_tokens": 3, "conflicts": [{
                      "row": "k1", "task_id": 4, "tagged": {"start": 0, "end": 8, "label": "ORG", "text": "Turkey's"},
                      "untagged": {"start": 0, "end": 6, "label": "GPE", "text": "Turkey"}}]},
    "agreement": {"tasks_compared": 1, "pairs": 1, "full_agreement": 0.0, "f1": 0.6667, "matched": 1, "unmatched": 1,
                  "per_label": {"PERSON": {"f1": None, "matched": 0, "unmatched": 0},
                                "GPE": {"f1": 0.6667, "matched": 1, "unmatched": 1}}},
    "prediction_quality": {"m-3.8.0": {"tasks": 7, "predicted": 50, "human": 48, "precision": 0.9, "recall": 0.93,
                                       "f1": 0.915, "per_label": {
                                           "PERSON": {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 4},
                                           "LAW": {"precision": None, "recall": None, "f1": None, "support": 0}},
                                       "counts": {"accepted": 42, "relabelled": 1, "rebounded": 3, "changed": 2,
                                                  "added": 0, "deleted": 2}}},
    "annotator_activity": {"annotator 1": {"submitted": 6, "skipped": 1, "first": "2026-11-30T10:00:00Z",
                                           "last": "2026-11-30T10:41:07Z"}},
    "annotation_time": {"annotations": 9, "skipped": 1, "seconds": 4530.0, "hours": 1.2583, "median_seconds": 412.5,
                        "p90_seconds": 1210.25, "untimed": 1,
                        "per_annotator": {"annotator 1": {"annotations": 9, "skipped": 1, "seconds": 4530.0,
                                                          "hours": 1.2583, "median_seconds": 412.5,
                                                          "p90_seconds": 1210.25}},
                        "per_model_version": {"none": {"annotations": 2, "skipped": 0, "seconds": 1200.0,
                                                       "hours": 0.3333, "median_seconds": 600.0, "p90_seconds": 600.0},
                                              "m-3.8.0": {"annotations": 7, "skipped": 1, "seconds": 3330.0,
                                                          "hours": 0.925, "median_seconds": 412.5,
                                                          "p90_seconds": 1210.25}}},
}  # fmt: skip


def _by_title(tables: list[Table]) -> dict[str, Table]:
    return {table.title: table for table in tables}


def _text(tables: list[Table]) -> str:
    """Everything a reader sees of the tables."""
    return "\n".join("\n".join([t.title, t.note, *t.columns, *(c for row in t.rows for c in row)]) for t in tables)


@pytest.mark.parametrize(
    ("description", "value", "shown"),
    [
        ("nothing is a dash", None, "–"),
        ("an empty text is a dash", "", "–"),
        ("counts get separators", 12345, "12,345"),
        ("scores three places", 0.66666, "0.667"),
        ("flags read as words", True, "yes"),
        ("a list is joined", [31, 32], "31, 32"),
        ("an empty list is none", [], "none"),
        ("a mapping as pairs, field names as words", {"tasks_compared": 2, "PERSON": None},
         "tasks compared: 2; PERSON: –"),
        ("nested mappings stay flat", {"a": {"b": [1, {"c": 2}]}}, "a: b: 1, c: 2"),
        ("a long list is cut and counted", list(range(25)), ", ".join(map(str, range(20))) + " and 5 more"),
    ],
)  # fmt: skip
def test_cell(description: str, value: Any, shown: str) -> None:
    assert cell(value) == shown, description


def test_every_known_section_is_a_table_in_reading_order() -> None:
    titles = [table.title for table in report_tables(REPORT)]
    assert titles == ["Snapshot", "Labeling progress", "Annotators", "Alignment", "Overlapping spans",
                      "Agreement between annotators", "Pre-annotation quality: m-3.8.0", "Corrections per task",
                      "Annotation time", "Annotation time per model version", "Merge ties"]  # fmt: skip


def test_progress_alignment_and_ties_read_as_sentences_and_numbers() -> None:
    tables = _by_title(report_tables(REPORT))
    progress = dict(tables["Labeling progress"].rows)
    assert progress == {"tasks in the snapshot": "12", "annotated: rows of the dataset": "7",
                        "no submitted annotation yet": "4", "only skipped": "1", "annotators who submitted": "2"}
    alignment = dict(tables["Alignment"].rows)
    assert (alignment["kept exactly as drawn"], alignment["trimmed (whitespace at an edge)"],
            alignment["converted (UTF-16 offsets)"], alignment["refused"]) == ("36", "2", "2", "0")  # fmt: skip
    assert tables["Overlapping spans"].rows == (("4", "Turkey's (ORG, 0-8)", "Turkey (GPE, 0-6)"),)
    assert tables["Merge ties"].rows == (("9", "31, 32", "latest"),)
    assert tables["Annotators"].rows == (("annotator 1", "6", "1", "2026-11-30 10:00", "2026-11-30 10:41"),)


def test_agreement_lists_compared_labels_or_says_there_is_no_overlap() -> None:
    agreement = _by_title(report_tables(REPORT))["Agreement between annotators"]
    assert agreement.rows == (("GPE", "0.667", "1", "1"),)  # PERSON was never compared
    assert "1 task(s) annotated more than once" in agreement.note and "0%" in agreement.note
    none = {"agreement": {"tasks_compared": 0, "pairs": 0, "full_agreement": None, "f1": None, "per_label": {}}}
    (table,) = report_tables(none)
    assert table.rows == () and table.note == NO_OVERLAP


def test_quality_per_label_and_corrections_per_task() -> None:
    tables = _by_title(report_tables(REPORT))
    quality = tables["Pre-annotation quality: m-3.8.0"]
    assert quality.rows == (("PERSON", "1.000", "0.500", "0.667", "4"),)  # LAW neither predicted nor annotated
    assert "precision 0.900, recall 0.930, F1 0.915" in quality.note
    corrections = tables["Corrections per task"]
    assert corrections.columns == ("correction", "m-3.8.0", "per task")
    assert corrections.rows[0] == ("accepted as proposed", "42", "6.00")
    assert corrections.rows[-1] == ("deleted (a wrong proposal)", "2", "0.29")


def test_corrections_name_each_model_version_when_there_are_several() -> None:
    quality = {v: {"tasks": 2, "counts": {"accepted": 1}} for v in ("a", "b")}
    (table,) = [t for t in report_tables({"prediction_quality": quality}) if t.title == "Corrections per task"]
    assert table.columns == ("correction", "a", "per task (a)", "b", "per task (b)")


def test_annotation_time_per_annotator_and_per_model_version_with_its_corrections() -> None:
    tables = _by_title(report_tables(REPORT))
    time = tables["Annotation time"]
    assert time.columns == ("annotator", "annotations", "skipped", "hours", "median s", "p90 s")
    assert time.rows == (("all annotators", "9", "1", "1.258", "412.5", "1,210.2"),
                         ("annotator 1", "9", "1", "1.258", "412.5", "1,210.2"))  # fmt: skip
    assert "1 annotation(s) carry no time" in time.note
    versions = tables["Annotation time per model version"]
    assert versions.columns[-1] == "corrections per task"
    # m-3.8.0's corrections: 1 + 3 + 2 + 0 + 2 spans over 7 tasks; no proposal, no corrections counted
    assert versions.rows == (("none", "2", "0", "0.333", "600.0", "600.0", "–"),
                             ("m-3.8.0", "7", "1", "0.925", "412.5", "1,210.2", "1.14"))  # fmt: skip
    assert all(time.right_aligned()[1:]) and all(versions.right_aligned()[1:])
    (none,) = report_tables({"annotation_time": {"annotations": 0, "untimed": 4}})
    assert none.rows == () and none.note == NO_TIME


def test_no_ties_is_one_sentence() -> None:
    (table,) = report_tables({"merge_ties": []})
    assert table.rows == () and table.note == "No merge of several annotations was a tie."


def test_corpus_changes_show_counts_and_renamed_articles() -> None:
    changes = {"new": 1, "edited": 2, "retired": 0, "renamed": {"old_name": "new_name"}, "to_recheck": 1}
    tables = _by_title(report_tables({"corpus_changes": changes}))
    assert dict(tables["Corpus changes"].rows) == {"new": "1", "edited": "2", "retired": "0", "to recheck": "1"}
    assert tables["Renamed articles"].rows == (("old_name", "new_name"),)


def test_a_section_added_later_is_shown_from_its_shape() -> None:
    report = {
        "review_items": [{"task_id": 3, "reason": "edited", "spans": ["Kyiv", "Rome"], "note": None}],
        "trained_models": {"news-ner-0.1": {"f1": 0.81, "epochs": 10}, "news-ner-0.2": {"f1": 0.84, "epochs": 12}},
        "queue": {"pending": 3, "by_label": {"ORG": 2}, "oldest": None},
        "schema_version": 2,
    }
    tables = _by_title(report_tables(report))
    assert tables["review items"].columns == ("task id", "reason", "spans", "note")
    assert tables["review items"].rows == (("3", "edited", "Kyiv, Rome", "–"),)
    assert tables["trained models"].rows == (("news-ner-0.1", "0.810", "10"), ("news-ner-0.2", "0.840", "12"))
    assert dict(tables["queue"].rows) == {"pending": "3", "oldest": "–"}
    assert dict(tables["queue: by label"].rows) == {"ORG": "2"}
    assert dict(tables["schema version"].rows) == {"schema version": "2"}


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet="abcXYZ _-.:0123456789", max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet="abc_XY", min_size=1, max_size=8),
                                                                inner, max_size=4),
    max_leaves=25,
)  # fmt: skip


@given(st.dictionaries(st.text(alphabet="abcdefgh_", min_size=1, max_size=10), JSONISH, max_size=5))
def test_no_report_ever_shows_a_raw_dict_list_or_none(report: dict[str, Any]) -> None:
    text = _text(report_tables(report))
    assert "{" not in text and "}" not in text and "[" not in text and "None" not in text


def test_release_history_rows_and_label_changes() -> None:
    first = {"version": "0.1.0", "created_at": "2026-11-30T12:00:00Z",
             "counts": {"train": {"rows": 8}, "test": {"rows": 2}, "total": {"rows": 10, "spans": 30}},
             "changes": {"parent": None, "label_counts": {"PERSON": {"a": 0, "b": 12, "delta": 12}}}}
    second = {"version": "0.2.0", "created_at": "2026-12-01T09:30:00Z",
              "counts": {"train": {"rows": 9}, "test": {"rows": 2}, "total": {"rows": 11, "spans": 31}},
              "changes": {"parent": "0.1.0", "added": 1, "removed": 0, "changed": 2,
                          "label_counts": {"GPE": {"a": 3, "b": 2, "delta": -1}, "ORG": {"a": 1, "b": 1, "delta": 0},
                                           "PERSON": {"a": 12, "b": 14, "delta": 2}}}}  # fmt: skip
    table = release_history([first, second])
    assert table.rows == (
        ("0.1.0", "2026-11-30 12:00", "8", "2", "30", "first release", "PERSON +12"),
        ("0.2.0", "2026-12-01 09:30", "9", "2", "31", "+1 / -0 / ~2", "GPE -1, PERSON +2"),
    )
    assert release_history([]).note.startswith("No release yet")


def test_generic_leaves_no_table_empty_without_saying_so() -> None:
    assert generic("x", []) == [Table("x", note="Nothing recorded.")]
    assert generic("x", {}) == [Table("x", note="Nothing recorded.")]


def test_ids_are_written_as_label_studio_writes_them() -> None:
    from workbench.report.tables import report_tables

    tables = {t.title: t for t in report_tables({"merge_ties": [{"task_id": 5141, "annotations": [10234, 10235],
                                                                   "used": "latest"}]})}  # fmt: skip
    assert tables["Merge ties"].rows == (("5141", "10234, 10235", "latest"),)
