"""The hand-checked reference labels of the seed articles (tests/data/reference) are usable as a gold standard:
every paragraph of seeds/ once, every span exact, labels from the config, no overlaps."""

from __future__ import annotations

import json

from tests.support import REPO_ROOT
from workbench.articles import read_corpus
from workbench.config import DEFAULT_LABELS

REFERENCE = REPO_ROOT / "tests" / "data" / "reference" / "seeds.jsonl"


def test_the_reference_covers_every_seed_paragraph_with_exact_spans() -> None:
    records = [json.loads(line) for line in REFERENCE.read_text(encoding="utf-8").splitlines()]
    paragraphs = {(p.doc_id, p.index): p.text for p in read_corpus(REPO_ROOT / "seeds").paragraphs()}
    assert {(r["doc_id"], r["paragraph"]): r["text"] for r in records} == paragraphs
    for record in records:
        text, spans = record["text"], sorted(record["spans"], key=lambda s: s["start"])
        for span in spans:
            assert text[span["start"] : span["end"]] == span["text"] == span["text"].strip()
            assert span["label"] in DEFAULT_LABELS
        for left, right in zip(spans, spans[1:], strict=False):
            assert left["end"] <= right["start"], record["text"]
    assert sum(len(r["spans"]) for r in records) == 471
