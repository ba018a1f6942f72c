"""Scoring a pipeline on a release split: spaCy's own scorer, each gold text tokenized as at inference, entities
outside the label set left out (as pre-annotation leaves them out)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.tokens import Span as SpacySpan
from spacy.training import Example

from workbench.parallel import choose_processes
from workbench.pipeline import pipeline_version, resolve
from workbench.project import Project, atomic_write_json, file_sha256, read_json
from workbench.records import stable_hash
from workbench.release.layout import MANIFEST


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
    settings = {"labels": list(labels), "label_map": dict(label_map or {})}
    nlp.add_pipe("workbench_keep_labels", name="_keep_labels", last=True, config=settings)
    try:
        processes = choose_processes(len(gold), PARALLEL_MIN_DOCS)
        predicted = nlp.pipe((doc.text for doc in gold), batch_size=64, n_process=processes)
        examples = [Example(doc, truth) for doc, truth in zip(predicted, gold, strict=True)]
        scores = Scorer.score_spans(examples, "ents")  # only entities: no tokenization scores (~15% of the time)
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


def scores_on(project: Project, release: str, name: str, nlp: Language, gold: Sequence[Doc]) -> Scores:
    """`evaluate` of pipeline `name` on release `release`'s test split (`gold`), scored once and kept under
    `.workbench/scores/`: a pipeline's predictions on the same data and labels do not change, so training again,
    or the guard, needs not score the pipeline in use again. The key holds the release's manifest (as it is), the
    pipeline (a folder by its meta.json, which a new training changes) and the label set and map."""
    config = project.config
    folder = Path(resolve(name, project.root))
    try:
        identity = file_sha256(folder / "meta.json") if folder.is_dir() else pipeline_version(name)
        manifest = file_sha256(project.releases_dir / release / MANIFEST)
    except OSError:
        return evaluate(nlp, gold, config.labels, config.model.label_map)
    key = stable_hash(manifest, identity, list(config.labels), sorted(config.model.label_map.items()))
    path = project.state_dir / "scores" / f"{key}.json"
    try:
        return Scores.of(read_json(path))
    except (OSError, ValueError, KeyError, TypeError):
        scores = evaluate(nlp, gold, config.labels, config.model.label_map)
        atomic_write_json(path, scores.as_dict())
        return scores


# Below this many gold docs, reading them in forked processes costs more than it saves.
PARALLEL_MIN_DOCS = 200


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
