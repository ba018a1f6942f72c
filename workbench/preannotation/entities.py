"""A Doc's entities as the workbench keeps them: spans of the label set (the others dropped and counted), with the
model's confidence for the paragraph. The one conversion every way of pre-annotating uses (here, in forked
workers, on a Dask cluster), so they all give the same spans and scores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from workbench.preannotation.confidence import scored_docs
from workbench.records import Span

# A paragraph's kept spans, the labels dropped (with counts), and the model's confidence.
Found = tuple[tuple[Span, ...], Counter[str], float]


def doc_to_spans(doc: Any, labels: Iterable[str]) -> tuple[tuple[Span, ...], Counter[str]]:
    """The doc's entities whose label is in the label set, and a count of the ones dropped per label."""
    allowed = set(labels)
    kept: list[Span] = []
    dropped: Counter[str] = Counter()
    for ent in doc.ents:
        if ent.label_ in allowed:
            kept.append(Span(ent.start_char, ent.end_char, ent.label_, ent.text))
        else:
            dropped[ent.label_] += 1
    return tuple(kept), dropped


def entities_of(nlp: Any, texts: Sequence[str], labels: Sequence[str], batch_size: int) -> Iterator[Found]:
    """Each text's kept spans, dropped labels and score, in order."""
    for doc, score in scored_docs(nlp, texts, batch_size=batch_size):
        yield (*doc_to_spans(doc, labels), score)
