"""Scoring a pipeline on a release split: spaCy's own scorer, each gold text tokenized as at inference, entities
outside the label set left out (as pre-annotation leaves them out)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc
from spacy.tokens import Span as SpacySpan
from spacy.training import Example

from workbench.parallel import choose_processes, fork_pool


@dataclass(frozen=True)
class Scores:
    """Precision, recall and F1 on a split, overall and per label (`support` = gold spans of the label)."""

    precision: float
    recall: float
    f1: float
    per_label: dict[str, dict[str, float]]

    def as_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "per_label": self.per_label}

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Scores:
        """Scores as `as_dict` wrote them (a model's meta.json keeps them)."""
        return cls(precision=float(record["precision"]), recall=float(record["recall"]), f1=float(record["f1"]),
                   per_label=dict(record.get("per_label") or {}))  # fmt: skip


def evaluate(
    nlp: Language, gold: Sequence[Doc], labels: Sequence[str], label_map: Mapping[str, str] | None = None
) -> Scores:
    """spaCy's scorer on `gold` (each text tokenized by `nlp`, as at inference), the predictions kept as
    pre-annotation keeps them: labels in `labels` as they are, the ones `label_map` names renamed, others left out."""
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold]
    settings = {"labels": list(labels), "label_map": dict(label_map or {})}
    nlp.add_pipe("workbench_keep_labels", name="_keep_labels", last=True, config=settings)
    try:
        scores = nlp.evaluate(examples)
    finally:
        nlp.remove_pipe("_keep_labels")
    support = Counter(ent.label_ for doc in gold for ent in doc.ents)
    per_type = scores.get("ents_per_type") or {}
    per_label = {  # None: nothing of the label in the gold or the predictions, so nothing to score
        label: {
            **{name: round(per_type[label][key], 4) if label in per_type else None
               for name, key in (("precision", "p"), ("recall", "r"), ("f1", "f"))},  # fmt: skip
            "support": support.get(label, 0),
        }
        for label in labels
    }
    return Scores(
        precision=round(scores.get("ents_p") or 0.0, 4),
        recall=round(scores.get("ents_r") or 0.0, 4),
        f1=round(scores.get("ents_f") or 0.0, 4),
        per_label=per_label,
    )


# Below this many gold docs, forking a scorer per pipeline costs more than it saves.
PARALLEL_MIN_DOCS = 200
# The pipelines, gold and label settings a forked scorer was started with (set once per worker by `_start`).
_scoring: tuple[Sequence[Language], Sequence[Doc], Sequence[str], dict[str, str]] | None = None


def evaluate_each(
    nlps: Sequence[Language], gold: Sequence[Doc], labels: Sequence[str], label_map: Mapping[str, str] | None = None
) -> list[Scores]:
    """`evaluate` of several pipelines on the same gold, each in its own forked process when there are cores and
    enough gold to pay for it (a trained model and the pipeline it would replace, scored side by side)."""
    processes = min(len(nlps), choose_processes(len(gold), PARALLEL_MIN_DOCS))
    if processes <= 1:
        return [evaluate(nlp, gold, labels, label_map) for nlp in nlps]
    with fork_pool(processes, _start, (list(nlps), list(gold), list(labels), dict(label_map or {}))) as pool:
        return list(pool.map(_evaluate_one, range(len(nlps))))


def _start(nlps: list[Language], gold: list[Doc], labels: list[str], label_map: dict[str, str]) -> None:
    global _scoring
    _scoring = (nlps, gold, labels, label_map)


def _evaluate_one(index: int) -> Scores:
    assert _scoring is not None
    nlps, gold, labels, label_map = _scoring
    return evaluate(nlps[index], gold, labels, label_map)


@Language.factory("workbench_keep_labels", default_config={"labels": [], "label_map": {}})
def _keep_labels(nlp: Language, name: str, labels: list[str], label_map: dict[str, str]) -> Callable[[Doc], Doc]:
    """A pipe that keeps entities as pre-annotation does: labels of the set as they are, mapped ones renamed,
    others dropped."""
    allowed = set(labels)

    def keep(doc: Doc) -> Doc:
        kept = []
        for ent in doc.ents:
            label = ent.label_ if ent.label_ in allowed else label_map.get(ent.label_)
            if label is not None:
                kept.append(ent if label == ent.label_ else SpacySpan(doc, ent.start, ent.end, label=label))
        doc.ents = kept
        return doc

    return keep


def spacy_performance(scores: Scores) -> dict[str, Any]:
    return {
        "ents_p": scores.precision,
        "ents_r": scores.recall,
        "ents_f": scores.f1,
        "ents_per_type": {label: {"p": s["precision"], "r": s["recall"], "f": s["f1"]}
                          for label, s in scores.per_label.items()},  # fmt: skip
    }


def unreachable_spans(nlp: Language, gold: Sequence[Doc]) -> int:
    """Gold spans that do not start and end on the tokenizer's token edges."""
    count = 0
    for doc in gold:
        tokens = nlp.make_doc(doc.text)
        count += sum(1 for ent in doc.ents if tokens.char_span(ent.start_char, ent.end_char) is None)
    return count
