"""A push's plan at any size of corpus: reading only the articles that can touch a task gives the plan that
reconciling the whole corpus gives (pure; the server is in tests/integration/test_corpus_changes.py)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import make_project
from workbench.articles import SeedIndex, read_article, read_corpus
from workbench.preannotation.pool import choose_rows
from workbench.records import Paragraph
from workbench.sync.plan import Fresh, plan_for
from workbench.sync.reconcile import Pushed, reconcile

ARTICLES = {
    f"{n:03d}": [f"Title {n}", *(f"Paragraph {i} of article {n}, about Ankara and Moscow." for i in range(4))]
    for n in range(8)
}


def write(folder: Path, articles: dict[str, list[str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.txt"):
        old.unlink()
    for name, lines in articles.items():
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def pushed_of(folder: Path, names: list[str], submitted: bool = False) -> list[Pushed]:
    """The tasks a push of these articles (as the folder holds them now) made."""
    tasks, task_id = [], 1
    for name in names:
        for paragraph in read_article(folder / f"{name}.txt").paragraphs:
            tasks.append(Pushed(task_id, paragraph.task_data(), submitted=int(submitted)))
            task_id += 1
    return tasks


def edited(articles: dict[str, list[str]], change: Callable[[dict[str, list[str]]], None]) -> dict[str, list[str]]:
    copy = {name: list(lines) for name, lines in articles.items()}
    change(copy)
    return copy


def _rename(articles: dict[str, list[str]]) -> None:
    articles["009"] = articles.pop("001")


def _split(articles: dict[str, list[str]]) -> None:
    articles["010"] = ["Part two", *articles["002"][3:]]
    articles["002"] = articles["002"][:3]


def _delete_paragraph(articles: dict[str, list[str]]) -> None:
    del articles["003"][2]


def _edit_paragraph(articles: dict[str, list[str]]) -> None:
    articles["000"][1] = articles["000"][1].replace("Ankara", "Ankra")


def _move_a_paragraph(articles: dict[str, list[str]]) -> None:
    articles["006"].append(articles["001"].pop(1))


def _duplicate(articles: dict[str, list[str]]) -> None:
    articles["011"] = list(articles["004"])


SCENARIOS = [
    ("nothing pushed yet", [], None),
    ("some articles pushed, nothing changed", ["000", "001", "002"], None),
    ("every article pushed", list(ARTICLES), None),
    ("a pushed article renamed", ["000", "001"], _rename),
    ("a pushed article split in two", ["002"], _split),
    ("a pushed paragraph deleted (a close edit anywhere is possible)", ["003"], _delete_paragraph),
    ("a pushed paragraph edited", ["000"], _edit_paragraph),
    ("a paragraph moved into an article not pushed", ["001"], _move_a_paragraph),
    ("an article duplicated", ["004"], _duplicate),
]


@pytest.mark.parametrize(("description", "pushed_names", "change"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_the_plan_is_the_whole_corpus_reconciled(
    tmp_path: Path, description: str, pushed_names: list[str], change: Callable[..., None] | None
) -> None:
    project = make_project(tmp_path / "project", link_venv=False)
    seeds = project.seeds_dir
    write(seeds, ARTICLES)
    pushed = pushed_of(seeds, pushed_names, submitted=True)
    if change:
        write(seeds, edited(ARTICLES, change))
    plan, _ = plan_for(project, SeedIndex.open(seeds, project.seed_index_file), None, 1, pushed)
    whole = reconcile(read_corpus(seeds).articles, pushed)
    assert isinstance(plan.imports, Fresh)
    assert list(plan.imports) == whole.imports
    assert (plan.updates, plan.retirements, plan.renamed) == (whole.updates, whole.retirements, whole.renamed)
    assert (plan.counts(), plan.retiring_annotated) == (whole.counts(), whole.retiring_annotated)


def test_a_key_an_unread_article_would_bring_twice_means_the_whole_corpus_is_reconciled(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", link_venv=False)
    write(project.seeds_dir, ARTICLES)
    theirs = read_article(project.seeds_dir / "005.txt").paragraphs[1]
    # a task of another article holds the key article 005's paragraph would get: 005 must take a variant
    taken = Pushed(1, {**read_article(project.seeds_dir / "000.txt").paragraphs[0].task_data(), "key": theirs.key})
    plan, _ = plan_for(project, SeedIndex.open(project.seeds_dir), None, 1, [taken])
    whole = reconcile(read_corpus(project.seeds_dir).articles, [taken])
    assert list(plan.imports) == whole.imports
    assert theirs.key not in {p.key for p in plan.imports}


def test_only_the_articles_a_task_can_touch_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "project", link_venv=False)
    write(project.seeds_dir, ARTICLES)
    seeds = SeedIndex.open(project.seeds_dir, project.seed_index_file)
    read: list[str] = []
    real = SeedIndex.read_articles

    def counting(self: SeedIndex, doc_ids=None):  # type: ignore[no-untyped-def]
        for article in real(self, doc_ids):
            read.append(article.doc_id)
            yield article

    monkeypatch.setattr(SeedIndex, "read_articles", counting)
    plan, _ = plan_for(project, seeds, None, 1, pushed_of(project.seeds_dir, ["002"]))
    assert read == ["002"] and len(plan.imports) == 7 * 5
    chosen = plan.imports.choose(np.arange(len(plan.imports), dtype=float)[::-1], 3, 1.0)
    assert [p.doc_id for p in chosen] == ["007"] * 3 and read == ["002", "007"]


def _reference_choice(candidates: list[Paragraph], scores: dict[str, float | None], n: int, share: float) -> list:
    """`choose_next` as it was written before it worked on columns."""
    cap = max(1, math.floor(n * share))
    key = lambda i: (math.inf if scores.get(candidates[i].text_key) is None else scores[candidates[i].text_key], i)  # noqa: E731
    order = sorted(range(len(candidates)), key=key)
    taken: list[int] = []
    per_article: Counter[str] = Counter()
    for i in order:
        if len(taken) < n and per_article[candidates[i].doc_id] < cap:
            per_article[candidates[i].doc_id] += 1
            taken.append(i)
    chosen = set(taken)
    taken += [i for i in order if i not in chosen][: n - len(taken)]
    return [candidates[i] for i in sorted(taken, key=key)]


@given(st.lists(st.tuples(st.integers(0, 4), st.one_of(st.none(), st.sampled_from([0.1, 0.5, 0.5, 0.9]))),
                max_size=30), st.integers(0, 12), st.sampled_from([0.1, 0.3, 0.5, 1.0]))  # fmt: skip
def test_choosing_on_columns_is_the_choice_as_it_was(rows: list, n: int, share: float) -> None:
    candidates = [Paragraph(f"d{doc}", i, 0, "t", f"text {i}", len(rows), f"k{i}") for i, (doc, _) in enumerate(rows)]
    scores = {p.text_key: score for p, (_, score) in zip(candidates, rows, strict=True)}
    values = np.array([math.inf if s is None else s for _, s in rows], dtype=np.float64)
    docs = np.array([doc for doc, _ in rows], dtype=np.int64)
    assert [candidates[i] for i in choose_rows(values, docs, n, share)] == _reference_choice(candidates, scores, n,
                                                                                             share)  # fmt: skip
