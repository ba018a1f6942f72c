"""The pool: what `push --next N` sends (pure), and the parquet file pre-annotation keeps."""

from __future__ import annotations

from pathlib import Path

from workbench.preannotation.pool import PoolWriter, choose_next, read_predictions, reusable
from workbench.records import Paragraph, Prediction, Span


def paragraphs(*docs: tuple[str, int]) -> list[Paragraph]:
    return [Paragraph(doc, i, 0, "T", f"{doc} paragraph {i}", n, f"{doc}-{i}") for doc, n in docs for i in range(n)]


def test_the_least_sure_come_first() -> None:
    pool = paragraphs(("a", 3), ("b", 3))
    scores = {p.text_key: s for p, s in zip(pool, [0.9, 0.2, 0.5, 0.1, 0.95, 0.4], strict=True)}
    chosen = choose_next(pool, scores, 3, article_share=1.0)
    assert [scores[p.text_key] for p in chosen] == [0.1, 0.2, 0.4]


def test_one_article_takes_at_most_its_share_while_others_have_paragraphs() -> None:
    pool = paragraphs(("hard", 6), ("b", 2), ("c", 2))
    scores = {p.text_key: (0.01 * p.index if p.doc_id == "hard" else 0.5 + 0.01 * p.index) for p in pool}
    chosen = choose_next(pool, scores, 5, article_share=0.4)
    assert [p.doc_id for p in chosen].count("hard") == 2
    assert len(chosen) == 5 and len({p.key for p in chosen}) == 5


def test_the_share_gives_way_when_the_pool_has_nothing_else() -> None:
    pool = paragraphs(("only", 6))
    assert len(choose_next(pool, {}, 4, article_share=0.3)) == 4


def test_unscored_paragraphs_come_last() -> None:
    pool = paragraphs(("a", 3))
    chosen = choose_next(pool, {pool[1].text_key: 0.7}, 2, article_share=1.0)
    assert [p.index for p in chosen] == [1, 0]


def test_the_pool_keeps_spans_and_scores_and_reuses_only_the_same_model(tmp_path: Path) -> None:
    path = tmp_path / "pool.parquet"
    writer = PoolWriter(path)
    span = Span(0, 5, "GPE", "Paris")
    writer.add(Prediction(key="k1", model_version="m1", spans=(span,), score=0.25), "labels-1")
    writer.add(Prediction(key="k2", model_version="m1", spans=(), score=None), "labels-1")
    writer.close()
    assert list(read_predictions(path)) == [Prediction("k1", "m1", (span,), 0.25), Prediction("k2", "m1", (), None)]
    assert list(read_predictions(path, {"k2"})) == [Prediction("k2", "m1", (), None)]
    assert reusable(path, "m1", "labels-1", ["k1", "k3"])["key"].to_pylist() == ["k1"]
    assert reusable(path, "m2", "labels-1", ["k1"]).num_rows == 0
    assert reusable(path, "m1", "labels-2", ["k1"]).num_rows == 0
    path.write_bytes(b"not parquet")
    assert reusable(path, "m1", "labels-1", ["k1"]).num_rows == 0  # a damaged pool is made again, not trusted
