"""The seed reference as the loop bench's second corpus (`BENCH_CORPUS=reference`): every paragraph and span of
tests/data/reference once, parts of each article, held out by article, gold Docs and boundary plants on tokens cut
at span edges, and a project config with the workbench's own labels and no label map."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator

import pytest

from bench import loopkit, orderings, review_real, seedref, wnut


@pytest.fixture(scope="module")
def articles() -> list[wnut.Article]:
    return seedref.group_articles(seedref.read_articles())


@pytest.fixture
def reference_corpus() -> Iterator[dict[str, object]]:
    try:
        yield loopkit.use_corpus("reference")
    finally:
        loopkit.use_corpus("wnut16")


def test_every_reference_paragraph_and_span_is_in_one_part(articles: list[wnut.Article]) -> None:
    paragraphs = [t for a in articles for t in a.tweets]
    counts = wnut.counts(paragraphs)
    assert (counts["tweets"], counts["entities"]) == (66, 471)
    assert set(counts["per_type"]) <= set(seedref.labels())
    assert len(articles) == 14 and all(4 <= len(a.tweets) <= 6 for a in articles)
    for paragraph in paragraphs:
        offsets = paragraph.token_offsets()
        assert [paragraph.text[a:b] for a, b in offsets] == list(paragraph.tokens)
        edges = {edge for pair in offsets for edge in pair}
        assert all(s.start in edges and s.end in edges for s in paragraph.spans)
    wnut.Gold(articles)  # no part repeats a paragraph with other gold


def test_whole_articles_are_held_out(articles: list[wnut.Article]) -> None:
    pool, held = seedref.hold_out(articles, 0.2, seed=13)
    assert len({seedref.source(a) for a in held}) == 1
    assert not {seedref.source(a) for a in held} & {seedref.source(a) for a in pool}
    assert len(pool) + len(held) == len(articles)


def test_gold_docs_and_boundary_plants_work_on_spans_inside_a_token(articles: list[wnut.Article]) -> None:
    paragraphs = [t for a in articles for t in a.tweets]
    docs = orderings.gold_docs(paragraphs, [a.doc_id for a in articles for _ in a.tweets])
    assert [d.text for d in docs] == [p.text for p in paragraphs]
    assert sum(len(d.ents) for d in docs) == 471
    _, plants = review_real.plant(articles, 0.05, seed=13)
    assert len(plants) == 24 and {p.kind for p in plants} == set(review_real.KINDS)


def test_the_reference_project_uses_the_workbench_labels_and_no_map(reference_corpus: dict[str, object]) -> None:
    settings = loopkit.Settings.from_env({"BENCH_CORPUS": "reference"})
    assert (settings.corpus, settings.batch, settings.order_k, settings.review_articles) == ("reference", 10, 10, None)
    config = tomllib.loads(loopkit.config_text("Seed reference loop", settings))
    assert config["dataset"] == "reference" and tuple(config["labels"]) == seedref.labels()
    assert config["model"]["label_map"] == {}
    with pytest.raises(ValueError, match="BENCH_CORPUS"):
        loopkit.use_corpus("conll")
