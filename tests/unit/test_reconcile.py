"""The corpus against what Label Studio holds (pure): renames, edits, moves, retirements, and spans carried
through an edit. Integration against the real server is in tests/integration/test_corpus_changes.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.articles import Article, read_article
from workbench.reconcile import Pushed, confirmed, reanchor, reconcile
from workbench.records import Span

ARTICLE = [
    "Turkey buys S-400s",
    "Ankara confirmed the deal with Moscow on Monday.",
    "NATO allies in Brussels were not told.",
    "Washington warned of sanctions.",
]


def article(tmp_path: Path, name: str, lines: list[str]) -> Article:
    path = tmp_path / f"{name}.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return read_article(path)


def pushed_from(a: Article, first_id: int = 1, **changes: object) -> list[Pushed]:
    """The tasks a push of `a` made (ids from `first_id`), with data fields changed per `changes`."""
    return [Pushed(first_id + i, {**p.task_data(), **changes}) for i, p in enumerate(a.paragraphs)]


def test_an_unchanged_corpus_changes_nothing(tmp_path: Path) -> None:
    a = article(tmp_path, "a", ARTICLE)
    plan = reconcile([a], pushed_from(a))
    assert (plan.imports, plan.updates, plan.retirements, plan.renamed) == ([], [], [], {})
    assert plan.unchanged == len(ARTICLE)


def test_a_renamed_file_is_the_same_article_with_the_same_keys(tmp_path: Path) -> None:
    before = article(tmp_path, "old-name", ARTICLE)
    after = article(tmp_path, "new-name", ARTICLE)
    plan = reconcile([after], pushed_from(before))
    assert plan.renamed == {"old-name": "new-name"}
    assert plan.imports == [] and plan.retirements == []
    assert [u.data["doc_id"] for u in plan.updates] == ["new-name"] * len(ARTICLE)
    assert [u.data["key"] for u in plan.updates] == [p.key for p in before.paragraphs]  # row ids stay


def test_a_file_with_a_paragraph_more_is_not_a_rename(tmp_path: Path) -> None:
    before = article(tmp_path, "old-name", ARTICLE)
    after = article(tmp_path, "new-name", [*ARTICLE, "A paragraph the old file did not have."])
    plan = reconcile([after], pushed_from(before))
    assert plan.renamed == {}
    assert len(plan.imports) == len(ARTICLE) + 1 and len(plan.retirements) == len(ARTICLE)


@pytest.mark.parametrize(
    ("description", "new_line", "edited"),
    [
        ("a typo fixed is an edit of the same paragraph", "Ankara confirmed the deal with Moscow on Mondya.", True),
        ("a rewrite is a new paragraph", "Officials in Ankara declined to comment on any deal.", False),
    ],
)
def test_an_edit_is_told_from_a_rewrite_by_similarity(tmp_path: Path, description: str, new_line: str,
                                                      edited: bool) -> None:
    before = article(tmp_path, "a", ARTICLE)
    after = article(tmp_path, "a", [ARTICLE[0], new_line, *ARTICLE[2:]])
    plan = reconcile([after], pushed_from(before))
    if edited:
        (update,) = plan.updates
        assert update.edited and update.data["text"] == new_line and update.data["key"] == before.paragraphs[1].key
        assert plan.imports == [] and plan.retirements == [], description
    else:
        assert [p.text for p in plan.imports] == [new_line], description
        assert [u.task_id for u in plan.retirements] == [2]
        assert plan.retirements[0].data["retired"]


def test_an_inserted_paragraph_moves_the_ones_after_it(tmp_path: Path) -> None:
    before = article(tmp_path, "a", ARTICLE)
    after = article(tmp_path, "a", [ARTICLE[0], "A new second paragraph.", *ARTICLE[1:]])
    plan = reconcile([after], pushed_from(before))
    assert [(p.text, p.index) for p in plan.imports] == [("A new second paragraph.", 1)]
    assert plan.counts()["moved"] == 3  # the three paragraphs after the insertion
    positions = {u.data["text"]: (u.data["paragraph"], u.data["position"]) for u in plan.updates}
    assert positions[ARTICLE[3]] == (4, "paragraph 5 of 5")
    assert positions[ARTICLE[0]] == (0, "paragraph 1 of 5")  # its "of M" changed


def test_a_deleted_file_retires_its_tasks_and_keep_retired_keeps_them(tmp_path: Path) -> None:
    a = article(tmp_path, "a", ARTICLE)
    b = article(tmp_path, "b", ["Other", "Another story."])
    pushed = pushed_from(a) + pushed_from(b, first_id=100)
    plan = reconcile([a], pushed)
    assert sorted(u.task_id for u in plan.retirements) == [100, 101]
    assert reconcile([a], pushed, keep_retired=True).retirements == []


def test_a_paragraph_that_comes_back_restores_its_retired_task(tmp_path: Path) -> None:
    a = article(tmp_path, "a", ARTICLE)
    pushed = pushed_from(a)
    pushed[2] = Pushed(3, {**pushed[2].data, "retired": "no longer in the seeds"})
    plan = reconcile([a], pushed)
    (update,) = plan.updates
    assert update.task_id == 3 and update.restored and update.data["retired"] == ""
    assert plan.imports == []


def test_a_new_paragraph_never_reuses_the_key_of_a_retired_one(tmp_path: Path) -> None:
    a = article(tmp_path, "a", ARTICLE)
    pushed = [Pushed(9, {**a.paragraphs[1].task_data(), "text": "retired text", "retired": "gone"}),
              *[t for t in pushed_from(a) if t.task_id != 2]]  # the retired task holds paragraph 1's key
    plan = reconcile([a], pushed)
    (new,) = plan.imports
    assert new.text == ARTICLE[1] and new.key != a.paragraphs[1].key


def test_a_pending_edit_is_resumed(tmp_path: Path) -> None:
    a = article(tmp_path, "a", ARTICLE)
    pushed = pushed_from(a)
    pushed[1] = Pushed(2, {**pushed[1].data, "previous_text": "the text before the edit"})
    (update,) = reconcile([a], pushed).updates
    assert update.edited and update.task_id == 2


# ---- spans through an edit -----------------------------------------------------------------------------------

OLD = "Erdoğan met Putin in Sochi on Tuesday, officials said."


def spans(text: str, *pieces: tuple[str, str]) -> list[Span]:
    return [Span(text.index(p), text.index(p) + len(p), label, p) for p, label in pieces]


def test_spans_outside_an_edit_move_exactly_and_spans_inside_are_held() -> None:
    new = "President Erdoğan met Putin in Soch on Tuesday, officials said."  # an insertion before, a typo inside
    moved, held = reanchor(OLD, new, spans(OLD, ("Erdoğan", "PERSON"), ("Putin", "PERSON"), ("Sochi", "GPE")))
    assert [(new[s.start : s.end], s.label) for s in moved] == [("Erdoğan", "PERSON"), ("Putin", "PERSON")]
    assert [s.text for s in held] == ["Sochi"]


def test_an_insertion_right_at_a_span_edge_does_not_touch_it() -> None:
    new = OLD.replace("Putin", "Putin,")
    moved, held = reanchor(OLD, new, spans(OLD, ("Putin", "PERSON")))
    assert held == [] and [new[s.start : s.end] for s in moved] == ["Putin"]


@given(st.text(min_size=1, max_size=30), st.text(max_size=10), st.text(max_size=10), st.text(max_size=10))
def test_a_moved_span_always_holds_its_own_text(entity: str, before: str, between: str, edit: str) -> None:
    old = f"{before}{entity}{between}"
    new = f"{edit}{before}{entity}{between}{edit}"
    (span,) = [Span(len(before), len(before) + len(entity), "X", entity)]
    moved, held = reanchor(old, new, [span])
    assert len(moved) + len(held) == 1
    for s in moved:
        assert new[s.start : s.end] == entity


@pytest.mark.parametrize(
    ("description", "held", "annotation", "expected"),
    [
        ("not held back", {}, {"id": 5, "updated_at": "2026-01-01T00:00:00.000000Z"}, True),
        ("held, not submitted since", {"5": "2026-01-02T00:00:00.000000Z"},
         {"id": 5, "updated_at": "2026-01-02T00:00:00.000000Z"}, False),
        ("held, submitted again later", {"5": "2026-01-02T00:00:00.000000Z"},
         {"id": 5, "updated_at": "2026-01-02T00:00:01.000000Z"}, True),
        ("held while the edit was being carried", {"5": ""}, {"id": 5, "updated_at": "2026-01-03T00:00:00Z"}, False),
        ("another annotation of the task", {"5": "2026-01-02T00:00:00Z"}, {"id": 6, "updated_at": ""}, True),
    ],
)
def test_an_annotation_counts_again_once_submitted_after_the_edit(description: str, held: dict, annotation: dict,
                                                                  expected: bool) -> None:
    assert confirmed(annotation, held) is expected, description
