"""A Doc's entities as the workbench keeps them: spans of the label set (the others dropped and counted), with the
model's confidence for the paragraph. The one conversion every way of pre-annotating uses (here, in forked
workers, on a Dask cluster), so they all give the same spans and scores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.preannotation.confidence import scored_docs
from workbench.records import Span, stable_hash

# A paragraph's kept spans, the labels dropped (with counts), and the model's confidence.
Found = tuple[tuple[Span, ...], Counter[str], float]


def doc_to_spans(
    doc: Any, labels: Iterable[str], label_map: Mapping[str, str] | None = None
) -> tuple[tuple[Span, ...], Counter[str]]:
    """The doc's entities as spans of the label set: a label in the set is kept, one `label_map` names is renamed
    (the pipeline's ORG as the dataset's "company"), any other is dropped and counted."""
    allowed = set(labels)
    renamed = label_map or {}
    kept: list[Span] = []
    dropped: Counter[str] = Counter()
    for ent in doc.ents:
        label = ent.label_ if ent.label_ in allowed else renamed.get(ent.label_)
        if label is not None:
            kept.append(Span(ent.start_char, ent.end_char, label, ent.text))
        else:
            dropped[ent.label_] += 1
    return tuple(kept), dropped


@dataclass(frozen=True)
class LabelSet:
    """Which of a pipeline's labels pre-annotation keeps, and under which names: the dataset's labels as they are,
    and the pipeline's others that `[model] label_map` renames."""

    labels: tuple[str, ...]
    label_map: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, labels: Sequence[str], label_map: Mapping[str, str] | None = None) -> LabelSet:
        return cls(tuple(labels), tuple(sorted((label_map or {}).items())))

    @property
    def key(self) -> str:
        """What the pool's predictions were kept for (a change of the labels or of the map pre-annotates again);
        without a map, the label set's own hash, as pools made before label maps have it."""
        return stable_hash(*self.labels) if not self.label_map else stable_hash(*self.labels, list(self.label_map))


def entities_of(nlp: Any, texts: Sequence[str], keep: LabelSet, batch_size: int) -> Iterator[Found]:
    """Each text's kept spans, dropped labels and score, in order."""
    label_map = dict(keep.label_map)
    for doc, score in scored_docs(nlp, texts, batch_size=batch_size):
        yield (*doc_to_spans(doc, keep.labels, label_map), score)
