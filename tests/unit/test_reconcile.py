"""The corpus against what Label Studio holds (pure): renames, edits, moves, retirements, and spans carried
through an edit. Integration against the real server is in tests/integration/test_corpus_changes.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.articles import Article, read_article
from workbench.records import Span, confirmed
from workbench.sync.reconcile import Pushed, reanchor, reconcile

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


def test_a_renamed_file_with_a_paragraph_more_keeps_every_task(tmp_path: Path) -> None:
    before = article(tmp_path, "old-name", ARTICLE)
    after = article(tmp_path, "new-name", [*ARTICLE, "A paragraph the old file did not have."])
    plan = reconcile([after], pushed_from(before))
    assert plan.renamed == {"old-name": "new-name"}
    assert [p.text for p in plan.imports] == ["A paragraph the old file did not have."] and plan.retirements == []
    assert [u.data["key"] for u in plan.updates] == [p.key for p in before.paragraphs]


def test_a_file_renamed_and_edited_at_once_keeps_its_tasks_keys_and_annotations(tmp_path: Path) -> None:
    before = article(tmp_path, "s400", ARTICLE)
    after = article(tmp_path, "s-400-deal", [ARTICLE[0], ARTICLE[1].replace("Monday", "Mondya"), *ARTICLE[2:]])
    pushed = [Pushed(t.task_id, t.data, submitted=1) for t in pushed_from(before)]
    plan = reconcile([after], pushed)
    assert plan.imports == [] and plan.retirements == [] and not plan.retiring_annotated
    assert plan.renamed == {"s400": "s-400-deal"}
    assert sorted(u.task_id for u in plan.updates) == [1, 2, 3, 4]
    (edited,) = plan.edited
    assert edited.task_id == 2 and edited.data["key"] == before.paragraphs[1].key
    assert {u.data["doc_id"] for u in plan.updates} == {"s-400-deal"}


def test_an_article_split_into_two_files_keeps_every_paragraph_in_its_new_place(tmp_path: Path) -> None:
    lines = [*ARTICLE, "Moscow welcomed the deal.", "Kyiv was not consulted."]
    before = article(tmp_path, "deal", lines)
    first = article(tmp_path, "deal-1", lines[:3])
    second = article(tmp_path, "deal-2", ["Deal, part two", *lines[3:]])
    plan = reconcile([first, second], [Pushed(t.task_id, t.data, submitted=1) for t in pushed_from(before)])
    assert plan.retirements == [] and [p.text for p in plan.imports] == ["Deal, part two"]
    placed = {u.data["text"]: (u.data["doc_id"], u.data["paragraph"], u.data["key"]) for u in plan.updates}
    keys = {p.text: p.key for p in before.paragraphs}
    assert placed[lines[4]] == ("deal-2", 2, keys[lines[4]]) and placed[lines[1]] == ("deal-1", 1, keys[lines[1]])
    assert plan.renamed == {"deal": "deal-1"} and plan.counts()["moved_across_articles"] == 3


def test_two_articles_merged_into_one_keep_every_task(tmp_path: Path) -> None:
    a = article(tmp_path, "a", ARTICLE)
    b = article(tmp_path, "b", ["Other", "Another story."])
    merged = article(tmp_path, "a", [*ARTICLE, "Another story."])
    plan = reconcile([merged], pushed_from(a) + pushed_from(b, first_id=100))
    assert plan.imports == []
    assert [u.task_id for u in plan.retirements] == [100]  # the title line of b, which the merge dropped
    moved = next(u for u in plan.updates if u.task_id == 101)
    assert (moved.data["doc_id"], moved.data["paragraph"], moved.data["key"]) == ("a", 4, b.paragraphs[1].key)


def test_the_same_text_in_another_article_wins_over_a_close_edit_in_its_own(tmp_path: Path) -> None:
    a = article(tmp_path, "a", ["A", "Ankara confirmed the deal with Moscow on Monday."])
    b = article(tmp_path, "b", ["B", "Ankara confirmed the deal with Moscow on Tuesday."])
    after = article(tmp_path, "a", ["A", "Ankara confirmed the deal with Moscow on Tuesday."])
    plan = reconcile([after], pushed_from(a) + pushed_from(b, first_id=100))
    moved = next(u for u in plan.updates if u.data["text"].endswith("Tuesday."))
    assert moved.task_id == 101 and not moved.edited  # b's task, word for word, not a's edited
    assert sorted(u.task_id for u in plan.retirements) == [2, 100]


def test_retiring_annotated_or_skipped_tasks_is_named_by_article(tmp_path: Path) -> None:
    a = article(tmp_path, "a", ARTICLE)
    b = article(tmp_path, "b", ["Other", "Another story.", "A third line."])
    tasks = pushed_from(a) + [Pushed(100, b.paragraphs[0].task_data()),
                              Pushed(101, b.paragraphs[1].task_data(), submitted=2),
                              Pushed(102, b.paragraphs[2].task_data(), skipped=1)]  # fmt: skip
    plan = reconcile([a], tasks)
    assert plan.retiring_annotated == {"b": 2} and plan.counts()["retired_annotated"] == 2
    assert len(plan.retirements) == 3


def test_a_wholesale_replaced_corpus_still_finds_edits_among_the_neighbours_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workbench.sync.reconcile as module

    monkeypatch.setattr(module, "MAX_PAIRS_COMPARED", 1)  # as if the corpus were too large to compare every pair
    before = article(tmp_path, "old", ARTICLE)
    other = article(tmp_path, "z", ["Z", "Nothing about any deal was said in Paris."])
    after = article(tmp_path, "new", [ARTICLE[0], ARTICLE[1].replace("Monday", "Mondya"), *ARTICLE[2:]])
    plan = reconcile([after], pushed_from(before) + pushed_from(other, first_id=100))
    assert plan.imports == [] and [u.task_id for u in plan.edited] == [2]


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


@given(
    cuts=st.lists(st.integers(1, 7), min_size=0, max_size=4, unique=True),
    names=st.lists(st.sampled_from(["p", "q", "r", "s", "t"]), min_size=5, max_size=5, unique=True),
)
def test_any_regrouping_of_the_same_paragraphs_into_files_keeps_every_task(cuts: list[int], names: list[str]) -> None:
    """Renames, splits and merges without edits: every paragraph keeps its task and key, nothing is retired."""
    import tempfile

    lines = [f"Paragraph {n} about Ankara and Moscow, number {n}." for n in range(8)]
    with tempfile.TemporaryDirectory() as folder:
        before = [article(Path(folder), "one", ["One", *lines[:4]]), article(Path(folder), "two", ["Two", *lines[4:]])]
        bounds = [0, *sorted(cuts), 8]
        groups = [lines[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if a < b]
        after = [article(Path(folder), names[i], ["One" if i == 0 else "Two", *group])
                 for i, group in enumerate(groups)]  # fmt: skip
    tasks = pushed_from(before[0]) + pushed_from(before[1], first_id=100)
    plan = reconcile(after, tasks)
    keys = {t.text: t.key for t in tasks}
    kept = {u.data["text"]: u.data["key"] for u in plan.updates}
    kept |= {t.text: t.key for t in tasks if t.text in lines and t.text not in kept}  # unchanged ones
    assert plan.imports == [] or all(p.text in ("One", "Two") for p in plan.imports)
    assert {text: kept[text] for text in lines} == {text: keys[text] for text in lines}
    assert not any(u.old_text in lines for u in plan.retirements)
