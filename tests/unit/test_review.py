"""`workbench review` without a server: each reason on small corpora made to show it, the task flag's life, the
planted corpus (precision and recall per reason), the release's count of open items and its refusal.

The planted corpus (`tests/data/review/`, made by `make_planted.py` there: the seed articles annotated
consistently, then 36 mistakes planted) decides precision and recall: an item of a reason that points at no
planted mistake is a false positive, a planted mistake that no item of its reason points at is a miss. The model
reason needs training and is in `test_review_model.py`; against a real Label Studio see
`tests/integration/test_review.py`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.support import make_project
from tests.unit.test_golden_release import _add_snapshot
from workbench.cli import app
from workbench.project import Project
from workbench.records import Row, Span
from workbench.review import analysis, flags
from workbench.review.find import review

PLANTED = Path(__file__).parents[1] / "data" / "review"
SNAPSHOT = "2026-12-01T110000-000000Z.json"
SETTINGS = {"min_mentions": 3, "min_share": 0.75}
# Floors for the planted corpus (measured: every one of these reasons finds all its plants, with nothing else).
FLOORS = {"label": (0.9, 0.9), "missing": (0.9, 0.9), "disagreement": (0.9, 0.9)}


def _rows(*paragraphs: tuple[str, str, Sequence[tuple[str, str]]]) -> pd.DataFrame:
    """(article, text, [(word, label)]) -> rows, each word's first occurrence from the left not yet used."""
    rows = []
    for n, (doc_id, text, marked) in enumerate(paragraphs):
        spans, cursor = [], {}
        for word, label in marked:
            start = text.index(word, cursor.get(word, 0))
            cursor[word] = start + len(word)
            spans.append(Span(start, start + len(word), label, word))
        rows.append(Row(id=f"r{n}", doc_id=doc_id, paragraph=n, text=text, tokens=(), ner_tags=(),
                        spans=tuple(sorted(spans)), task_id=100 + n, annotation_ids=(), annotators=()))  # fmt: skip
    return analysis.frames(analysis.rows_table(rows))


def _found(items: pd.DataFrame) -> list[tuple[Any, ...]]:
    return sorted(zip(items.task_id, items.text, items.label, items.suggestion, strict=True))


# ---- label: the same string labelled otherwise elsewhere ---------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "labels", "expected"),
    [
        ("one ORG among GPEs is suspect, GPE suggested", ["GPE", "GPE", "GPE", "ORG"], [(103, "ORG", "GPE")]),
        ("an even split is ambiguity, not a mistake", ["GPE", "GPE", "ORG", "ORG"], []),
        ("two mentions are too few to judge", ["GPE", "ORG"], []),
        ("a consistent string is never suspect", ["GPE"] * 5, []),
    ],
)
def test_a_string_labelled_otherwise_than_most_of_its_mentions(description: str, labels: list[str],
                                                               expected: list[tuple[Any, ...]]) -> None:  # fmt: skip
    paragraphs, spans = _rows(*[(f"a{n}", "Turkey said no.", [("Turkey", label)]) for n, label in enumerate(labels)])
    items = analysis.label_items(spans, **SETTINGS)
    assert [(t, label, s) for t, _, label, s in _found(items)] == expected, description
    if expected:
        (detail,) = items.detail
        assert detail == "'Turkey' is ORG here but GPE in 3 of 4 mentions, in 3 article(s)"
        assert items.score.tolist() == [0.75]


# ---- missing: annotated elsewhere, left out here ---------------------------------------------------------------


def test_a_string_annotated_elsewhere_and_left_out_as_whole_words_here() -> None:
    marked = [("a", f"Talks in {place}.", [("Ankara", "GPE")]) for place in ("Ankara", "Ankara", "Ankara")]
    paragraphs, spans = _rows(
        *marked,
        ("b", "Ankara's mayor spoke.", []),  # whole tokens before the apostrophe: missing
        ("b", "The Ankaras fan club met.", []),  # inside a longer word: not the string
        ("b", "The Ankara Agreement held.", [("The Ankara Agreement", "LAW")]),  # inside another span: fine
        ("b", "ankara is lower case.", []),  # another string
    )
    items = analysis.missing_items(paragraphs, spans, **SETTINGS)
    assert _found(items) == [(103, "Ankara", "", "GPE")]
    assert items.start.tolist() == [0] and items.end.tolist() == [6]
    assert items.detail.tolist() == ["'Ankara' is not marked here but is marked GPE in 3 of 4 whole-word mentions"]


def test_a_string_mostly_left_unannotated_is_not_suspect() -> None:
    paragraphs, spans = _rows(*[("a", "May we meet in May?", [("May", "DATE")]) for _ in range(3)],
                              *[("b", "You May go.", []) for _ in range(2)])  # fmt: skip
    # "May" is marked 3 times and stands unmarked 3 times in the first paragraphs (the verb) and 2 more: 3 of 8
    assert analysis.missing_items(paragraphs, spans, **SETTINGS).empty


def test_multi_word_strings_are_found_word_for_word() -> None:
    other = "Officials of the United  States and the United States Navy."
    paragraphs, spans = _rows(*[("a", "The United States agreed.", [("United States", "GPE")]) for _ in range(3)],
                              ("b", other, []))  # fmt: skip
    items = analysis.missing_items(paragraphs, spans, **SETTINGS)
    assert items.start.tolist() == [other.index("United States Navy")]  # "United  States" is another string


def _whole_token_occurrences(texts: Sequence[str], forms: Sequence[str]) -> list[tuple[int, int, int, str]]:
    """The plain definition: every exact occurrence that starts where a token starts and ends where one ends."""
    found = []
    for row, text in enumerate(texts):
        tokens = list(analysis.TOKEN.finditer(text))
        starts, ends = {t.start() for t in tokens}, {t.end() for t in tokens}
        for form in set(forms):
            if not analysis.TOKEN.search(form):
                continue
            found += [(row, at, at + len(form), form) for at in range(len(text))
                      if text.startswith(form, at) and at in starts and at + len(form) in ends]  # fmt: skip
    return sorted(found)


# an astral character (offsets count code points), "_" and a digit (word characters), a combining mark (a token of
# its own), a no-break space and a tab (spaces)
_TEXT = st.text(alphabet="ab é.-'\n😀_1\u0301\xa0\t", max_size=40)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(_TEXT, min_size=1, max_size=4), forms=st.lists(_TEXT, max_size=6), data=st.data())
def test_occurrences_are_the_whole_token_ones(texts: list[str], forms: list[str], data: st.DataObject) -> None:
    # forms cut out of the texts, so that many of them occur (at token boundaries or not)
    for text in texts:
        if text:
            start = data.draw(st.integers(0, len(text) - 1))
            forms.append(text[start:data.draw(st.integers(start + 1, len(text)))])
    paragraphs = pd.DataFrame({"row_id": [f"r{n}" for n in range(len(texts))], "text": texts})
    found = analysis.occurrences(paragraphs, forms)
    got = sorted((int(r[1:]), s, e, t) for r, s, e, t in zip(found.row_id, found.start, found.end, found.text,
                                                                        strict=True))
    assert got == _whole_token_occurrences(texts, forms)
    assert list(found.columns) == ["row_id", "start", "end", "text"]


_PLACES = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 30), st.integers(1, 8)), max_size=12)


@settings(max_examples=300, deadline=None)
@given(places=_PLACES, spans=_PLACES)
def test_a_place_overlaps_a_span_when_they_share_a_character(places: list, spans: list) -> None:
    def frame(triples: list) -> pd.DataFrame:
        return pd.DataFrame([(row, start, start + length) for row, start, length in triples],
                            columns=["row_id", "start", "end"]).astype({"start": "int64", "end": "int64"})  # fmt: skip

    expected = [any(row == r and start < e and s < end for r, s, e in frame(spans).itertuples(index=False))
                for row, start, end in frame(places).itertuples(index=False)]  # fmt: skip
    assert analysis.overlaps_a_span(frame(places), frame(spans)).tolist() == expected


# ---- disagreement: overlapping tasks read differently ---------------------------------------------------------


def _dispute(task_id: int, row_id: str, *readings: list[list[Any]]) -> dict[str, Any]:
    return {"task_id": task_id, "row_id": row_id,
            "annotations": [{"id": n, "annotator": 10 + n, "spans": spans} for n, spans in enumerate(readings)]}


def test_annotators_who_read_a_stretch_differently() -> None:
    paragraphs, _ = _rows(("a", "Recep Tayyip Erdoğan met NATO in Brussels.", []))
    name, nato, brussels = [0, 20, "PERSON", "Recep Tayyip Erdoğan"], [25, 29, "ORG", "NATO"], [33, 41, "GPE",
                                                                                                "Brussels"]
    dispute = _dispute(100, "r0", [name, nato, brussels], [[6, 20, "PERSON", "Tayyip Erdoğan"], [25, 29, "GPE", "NATO"],
                                                          brussels], [name, nato])  # fmt: skip
    items = analysis.disagreement_items(paragraphs, [dispute])
    assert items.text.tolist() == ["Recep Tayyip Erdoğan", "NATO", "Brussels"]  # one item per stretch
    assert items.score.round(2).tolist() == [0.33, 0.33, 0.33]  # one of three annotators reads each otherwise
    assert items.detail[2] == ("annotators read 'Brussels' differently: 'Brussels' GPE (annotator 10); 'Brussels' "
                               "GPE (annotator 11); nothing (annotator 12)")  # fmt: skip


# ---- model: a model that never saw the article disagrees -------------------------------------------------------


def test_a_model_that_is_sure_of_another_reading() -> None:
    paragraphs, spans = _rows(("a", "Turkey met Recep Tayyip Erdoğan in Ankara.", [("Turkey", "ORG"), ("Tayyip Erdoğan",
                                                                                                     "PERSON")]))
    predictions = pd.DataFrame([("r0", 0, 6, "GPE", 0.97), ("r0", 0, 6, "ORG", 0.03), ("r0", 11, 31, "PERSON", 0.9),
                                ("r0", 35, 41, "GPE", 0.85), ("r0", 35, 41, "LOC", 0.15)],
                               columns=["row_id", "start", "end", "label", "prob"])  # fmt: skip
    items = analysis.model_items(paragraphs, spans, predictions, confidence=0.8)
    assert sorted(zip(items.text, items.label, items.suggestion, items.score, strict=True)) == [
        ("Ankara", "", "GPE", 0.85),  # an entity where nothing is marked
        ("Tayyip Erdoğan", "PERSON", "'Recep Tayyip Erdoğan' PERSON", 0.9),  # other boundaries
        ("Turkey", "ORG", "GPE", 0.97),  # another label
    ]
    assert analysis.model_items(paragraphs, spans, predictions, confidence=0.98).empty  # not sure enough


@pytest.mark.parametrize(
    ("description", "paragraphs", "predicted"),
    [
        ("no span at all", [("a", "Nothing here.", []), ("b", "Nor here.", [])], [("r0", 0, 7, "GPE", 0.99)]),
        ("a model that agrees", [("a", "Turkey here.", [("Turkey", "GPE")])], [("r0", 0, 6, "GPE", 0.99)]),
        ("no prediction", [("a", "Turkey here.", [("Turkey", "GPE")])], []),
    ],
)
def test_nothing_to_find_gives_no_item(description: str, paragraphs: list, predicted: list) -> None:
    frames = _rows(*paragraphs)
    predictions = pd.DataFrame(predicted, columns=["row_id", "start", "end", "label", "prob"])
    items = analysis.review_items(*frames, [], **SETTINGS, predictions=predictions)
    expected = ["model"] if description == "no span at all" else []  # "Nothing" read as an entity
    assert items.reason.tolist() == expected, description
    assert list(items.columns) == analysis.ITEM_COLUMNS


# ---- the task's flag -------------------------------------------------------------------------------------------


ITEMS = [{"item_id": "i1", "reason": "label", "detail": "'Turkey' is ORG here but GPE in 3 of 4 mentions"},
         {"item_id": "i2", "reason": "missing", "detail": "'NATO' is not marked here"}]  # fmt: skip
DATA = {"text": "Turkey and NATO.", "review": "", "second_look": ""}
FIRST = "2026-12-01T10:00:00.000000Z"


def test_a_flag_says_why_and_records_when() -> None:
    data = flags.flagged_data(DATA, ITEMS, [FIRST], "2026-12-02T09:00:00Z")
    assert data["review"] == ("needs a second look: 'Turkey' is ORG here but GPE in 3 of 4 mentions [label]; 'NATO' "
                              "is not marked here [missing]")  # fmt: skip
    assert data["review_flag"] == {"items": ["i1", "i2"], "flagged_at": "2026-12-02T09:00:00Z", "seen": FIRST}
    assert data["second_look"] == "" and data["text"] == DATA["text"]


def test_flagging_again_with_the_same_items_changes_nothing() -> None:
    data = flags.flagged_data(DATA, ITEMS, [FIRST], "2026-12-02T09:00:00Z")
    assert flags.flagged_data(data, ITEMS, [FIRST], "2026-12-03T09:00:00Z") == data


def test_a_task_submitted_again_after_its_flag_is_reviewed() -> None:
    data = flags.flagged_data(DATA, ITEMS, [FIRST], "2026-12-02T09:00:00Z")
    again = "2026-12-02T10:00:00.000000Z"
    assert flags.reviewed_ids(data["review_flag"], [again]) == {"i1", "i2"}
    assert flags.reviewed_ids(data["review_flag"], [FIRST]) == set()
    cleared = flags.flagged_data(data, ITEMS, [again], "2026-12-03T09:00:00Z")
    assert cleared["review"] == "" and cleared["review_flag"] == {"reviewed": ["i1", "i2"]}
    new = {"item_id": "i3", "reason": "label", "detail": "'Ankara' is ORG here"}
    raised = flags.flagged_data(cleared, [*ITEMS, new], [again], "2026-12-04T09:00:00Z")
    assert raised["review_flag"] == {"items": ["i3"], "flagged_at": "2026-12-04T09:00:00Z", "seen": again,
                                     "reviewed": ["i1", "i2"]}  # fmt: skip


def test_a_flag_with_nothing_open_is_taken_down() -> None:
    data = flags.flagged_data(DATA, ITEMS, [FIRST], "2026-12-02T09:00:00Z")
    assert flags.flagged_data(data, [], [FIRST], "2026-12-03T09:00:00Z") == DATA


def test_items_that_change_while_a_flag_waits_keep_its_time() -> None:
    data = flags.flagged_data(DATA, ITEMS, [FIRST], "2026-12-02T09:00:00Z")
    fewer = flags.flagged_data(data, ITEMS[:1], [FIRST], "2026-12-03T09:00:00Z")
    assert fewer["review_flag"] == {"items": ["i1"], "flagged_at": "2026-12-02T09:00:00Z", "seen": FIRST}


# ---- the planted corpus ----------------------------------------------------------------------------------------


def planted_project(root: Path, config: str = "") -> Project:
    project = make_project(root, config=config, link_venv=False)
    _add_snapshot(project, SNAPSHOT, (PLANTED / "planted-snapshot.json").read_bytes())
    return project


def scores(items: pd.DataFrame, reasons: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Precision and recall of each reason against the planted mistakes (an item hits a plant in its task whose
    characters it overlaps)."""
    planted = json.loads((PLANTED / "planted.json").read_text(encoding="utf-8"))["planted"]

    def hit(item: dict[str, Any], plant: dict[str, Any]) -> bool:
        return item["task_id"] == plant["task_id"] and item["start"] < plant["end"] and plant["start"] < item["end"]

    out = {}
    for reason in reasons:
        mine = items[items.reason == reason].to_dict(orient="records")
        right = sum(any(hit(item, plant) for plant in planted) for item in mine)
        kind = [plant for plant in planted if plant["kind"] == reason]
        found = sum(any(hit(item, plant) for item in mine) for plant in kind)
        out[reason] = {"items": len(mine), "precision": round(right / len(mine), 3) if mine else None,
                       "planted": len(kind), "recall": round(found / len(kind), 3)}  # fmt: skip
    return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Any]:
    project = planted_project(tmp_path_factory.mktemp("planted"))
    return project, review(project)


def test_each_reason_finds_its_planted_mistakes(planted) -> None:
    _, result = planted
    measured = scores(result.items, ["label", "missing", "disagreement"])
    print(f"\nplanted corpus, precision and recall per reason: {json.dumps(measured)}")
    for reason, (precision, recall) in FLOORS.items():
        assert measured[reason]["precision"] >= precision and measured[reason]["recall"] >= recall, measured
    assert result.checked == ("label", "missing", "disagreement") and "no trained model yet" in result.note


def test_annotators_who_agree_are_not_a_disagreement(planted) -> None:
    _, result = planted
    agreeing = json.loads((PLANTED / "planted.json").read_text(encoding="utf-8"))["decoys"]["agreeing_tasks"]
    disagreements = result.items[result.items.reason == "disagreement"]
    assert agreeing and not set(agreeing) & set(disagreements.task_id)


def test_every_item_says_where_it_is_and_why(planted) -> None:
    project, result = planted
    tasks = {t["id"]: t for t in json.loads((PLANTED / "planted-snapshot.json").read_text(encoding="utf-8"))}
    for item in result.items.to_dict(orient="records"):
        data = tasks[item["task_id"]]["data"]
        assert (item["row_id"], item["doc_id"], item["paragraph"]) == (data["key"], data["doc_id"], data["paragraph"])
        assert data["text"][item["start"] : item["end"]] == item["text"]
        assert item["detail"] and 0 < item["score"] <= 1
    saved = json.loads((project.state_dir / "review" / SNAPSHOT).read_text(encoding="utf-8"))
    assert len(saved["items"]) == len(result.items) and saved["checked"] == ["label", "missing", "disagreement"]


def test_review_prints_a_table_and_json(planted) -> None:
    project, result = planted
    shown = CliRunner().invoke(app, ["-C", str(project.root), "review"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert (f"{len(result.items)} open review item(s) in {SNAPSHOT}: label 14, missing 14, model not checked, "
            "disagreement 8; 0 reviewed") in shown.stdout  # fmt: skip
    assert "workbench review --push" in shown.stdout
    printed = CliRunner().invoke(app, ["-C", str(project.root), "review", "--json"])
    report = json.loads(printed.stdout)
    assert report["by_reason"] == {"label": 14, "missing": 14, "model": None, "disagreement": 8}
    assert set(report["items"][0]) == set(analysis.ITEM_COLUMNS) and report["pushed"] is None


def test_without_a_terminal_each_item_is_one_readable_line(planted) -> None:
    project, result = planted
    shown = CliRunner().invoke(app, ["-C", str(project.root), "review"], env={"COLUMNS": None})
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    for item in result.items.to_dict(orient="records"):
        assert any(item["detail"] in line and f"{item['start']}-{item['end']}" in line for line in lines), item


def test_a_flagged_task_submitted_again_leaves_the_review(tmp_path: Path, planted) -> None:
    _, before = planted
    task_id = int(before.items.task_id[0])
    flagged = before.items[before.items.task_id == task_id]
    tasks = json.loads((PLANTED / "planted-snapshot.json").read_text(encoding="utf-8"))
    task = next(t for t in tasks if t["id"] == task_id)
    stamps = [a["updated_at"] for a in task["annotations"]]
    task["data"] = flags.flagged_data(task["data"], flagged.to_dict(orient="records"), stamps, "2026-12-02T09:00:00Z")
    project = make_project(tmp_path / "p", link_venv=False)
    _add_snapshot(project, SNAPSHOT, json.dumps(tasks).encode())
    assert len(review(project).items) == len(before.items)  # flagged, not looked at yet: still open
    task["annotations"][-1]["updated_at"] = "2026-12-02T10:00:00.000000Z"  # submitted again after the flag
    _add_snapshot(project, "2026-12-02T110000-000000Z.json", json.dumps(tasks).encode())
    after = review(project)
    assert task_id not in set(after.items.task_id)
    assert after.reviewed == len(flagged) and len(after.items) == len(before.items) - len(flagged)


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(_TEXT, min_size=1, max_size=5), forms=st.lists(_TEXT, min_size=1, max_size=5),
       edited=st.lists(st.tuples(st.integers(0, 4), _TEXT), max_size=3), more=st.lists(_TEXT, max_size=2))
def test_occurrences_remembered_are_the_ones_found_again(texts: list[str], forms: list[str], edited: list,
                                                         more: list[str]) -> None:
    """A memo of an earlier search gives what a new search gives: for the same texts, for texts edited since, and
    for other forms (then nothing is taken from it)."""
    forms += [text[:3] for text in texts if text[:3].strip()]
    memo = analysis.Memo()

    def search(texts: list[str], forms: list[str], memo: analysis.Memo | None) -> list[tuple]:
        paragraphs = pd.DataFrame({"row_id": [f"r{n}" for n in range(len(texts))], "text": texts})
        found = analysis.occurrences(paragraphs, forms, memo)
        return list(zip(found.row_id, found.start, found.end, found.text, strict=True))

    assert search(texts, forms, memo) == search(texts, forms, None)
    assert search(texts, forms, memo) == search(texts, forms, None)  # all from the memo
    for at, text in edited:
        if at < len(texts):
            texts[at] = text
    assert search(texts, forms, memo) == search(texts, forms, None)
    assert search(texts, forms + more, memo) == search(texts, forms + more, None)
