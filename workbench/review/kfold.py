"""Cross-validation by article: models that never saw an article read it, so their disagreement is honest.

The articles are dealt into `[review] folds` folds (by a hash of their name, so the same corpus gives the same
folds). For each fold a model is trained with spaCy's own loop through the train helpers (`training_config`,
`write_training_data`: the `[train]` settings, `[review] max_steps` and `eval_frequency`, a dev share of the other
articles to choose the checkpoint) on every other fold, and reads the fold's paragraphs with a beam, which gives
each entity it considers a probability. No model reads an article it was trained or chosen on (CrossWeigh, Wang
et al., EMNLP 2019).

The base a fold model starts from is never a model trained on this corpus: when `[model] name` is a model that
`workbench train` wrote, its own base is used instead (it saw the articles; its base did not).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import pandas as pd
from spacy.language import Language
from spacy.pipeline._parser_internals._beam_utils import BeamBatch
from spacy.tokens import Doc

from workbench.model.data import write_training_data
from workbench.model.training import init_training_nlp, run_training, training_config
from workbench.pipeline import resolve
from workbench.project import Project
from workbench.records import stable_hash

# Entities the beam gives less than this are not kept (they say nothing, and there are many).
MIN_PROBABILITY = 0.01
PREDICTION_COLUMNS = ["row_id", "start", "end", "label", "prob"]


@dataclass(frozen=True)
class CrossValidation:
    """What the model check did: the out-of-fold entities with their probabilities, and how they were made."""

    predictions: pd.DataFrame
    folds: int
    articles: int
    base: str
    max_steps: int

    def as_dict(self) -> dict[str, Any]:
        return {"folds": self.folds, "articles": self.articles, "base": self.base, "max_steps": self.max_steps}


def assign_folds(articles: Sequence[str], folds: int, seed: int) -> dict[str, int]:
    """Each article's fold: articles ordered by a hash of the seed and their name, dealt round the folds."""
    ordered = sorted(articles, key=lambda doc_id: (stable_hash(seed, doc_id), doc_id))
    return {doc_id: n % folds for n, doc_id in enumerate(ordered)}


def cross_validate(
    project: Project, docs: Sequence[Doc], *, on_fold: Callable[[int, int], None] | None = None
) -> CrossValidation:
    """Train a model per fold on the other folds' articles and read the fold with it (see the module).

    `docs` are the rows as spaCy Docs (`release.converters.row_to_doc`: entities from the tags, `user_data` with
    the row `id` and `doc_id`). Needs at least two articles."""
    settings, config = project.config.review, project.config
    articles = sorted({str(doc.user_data["doc_id"]) for doc in docs})
    folds = min(settings.folds, len(articles))
    if folds < 2:
        raise ValueError("cross-validation needs at least two articles and two folds")
    fold_of = assign_folds(articles, folds, config.train.seed)
    base_project, base = fold_base(project)
    found: list[pd.DataFrame] = []
    with tempfile.TemporaryDirectory(dir=_scratch(project)) as scratch:
        for fold in range(folds):
            if on_fold:
                on_fold(fold, folds)
            work = Path(scratch) / f"fold-{fold}"
            work.mkdir()
            seen = [doc for doc in docs if fold_of[doc.user_data["doc_id"]] != fold]
            unseen = [doc for doc in docs if fold_of[doc.user_data["doc_id"]] == fold]
            nlp = _train(base_project, seen, work)
            found.append(read_with_beam(nlp, unseen, config.labels, beam_width=settings.beam_width))
            shutil.rmtree(work, ignore_errors=True)
    predictions = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=PREDICTION_COLUMNS)
    return CrossValidation(predictions, folds, len(articles), base, settings.max_steps)


def fold_base(project: Project) -> tuple[Project, str]:
    """The project as a fold model should be trained in, and the base it starts from: the configured pipeline,
    or, when that is a model trained on this corpus, the base that model was trained from (followed back)."""
    name = project.config.model.name
    for _ in range(20):  # a chain of models each trained from the one before; a loop is a broken folder
        trained_from = _workbench_base(resolve(name, project.root))
        if trained_from is None:
            break
        name = trained_from
    if name == "blank" or project.config.train.base == "blank":
        train = project.config.train.model_copy(update={"base": "blank"})
        return Project(project.root, project.config.model_copy(update={"train": train})), "blank"
    return project.with_model(name), name


def read_with_beam(nlp: Language, docs: Sequence[Doc], labels: Sequence[str], *, beam_width: int) -> pd.DataFrame:
    """Every entity of a label in `labels` that the model's beam gives at least MIN_PROBABILITY, per row, in
    character offsets of the row's text (tokenized as at inference).

    spaCy's `beam_parse` adds up the raw action scores of a greedy-trained recognizer, which favours long parses
    (a whole sentence read as one ORG at p=0.97); here each step's scores are made log-probabilities first
    (log-softmax), so a parse's score is its log-probability and the beam's probabilities mean what they say
    (they follow the greedy reading, with doubt where the model has it). The loop is `beam_parse`'s own."""
    ner = nlp.get_pipe("ner")
    wanted = set(labels)
    with nlp.select_pipes(disable=["ner"]):
        parsed = list(nlp.pipe(doc.text for doc in docs))
    if not parsed:
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    batch = BeamBatch(ner.moves, ner.moves.init_batch(parsed), None, beam_width, density=0.0)
    model = ner.model.predict(parsed)
    while not batch.is_done:
        states = batch.get_unfinished_states()
        if not states:
            break
        scores = numpy.asarray(model.predict(states), dtype="float32")
        batch.advance(numpy.ascontiguousarray(scores - numpy.logaddexp.reduce(scores, axis=1, keepdims=True)))
    model.clear_memory()
    records: list[tuple[str, int, int, str, float]] = []
    for doc, source, scores in zip(parsed, docs, ner.scored_ents(list(batch)), strict=True):
        row_id = str(source.user_data["id"])
        for (start, end, label), prob in scores.items():
            if label in wanted and prob >= MIN_PROBABILITY:
                piece = doc[start:end]
                records.append((row_id, piece.start_char, piece.end_char, label, round(float(prob), 4)))
    return pd.DataFrame(records, columns=PREDICTION_COLUMNS)


def _train(project: Project, docs: Sequence[Doc], work: Path) -> Language:
    """One fold model: spaCy's loop on `docs` (a dev share held out by article), the best checkpoint loaded."""
    settings = project.config
    write_training_data(docs, work, settings.train.dev_fraction, settings.train.seed)
    config = training_config(project, work)
    config["training"]["max_steps"] = settings.review.max_steps
    config["training"]["eval_frequency"] = settings.review.eval_frequency
    nlp = init_training_nlp(config, resolve(settings.model.name, project.root))
    return run_training(nlp, work / "best")


def _workbench_base(path: str) -> str | None:
    """The base a folder that `workbench train` wrote was trained from, or None for any other pipeline."""
    meta = Path(path) / "meta.json"
    try:
        info = json.loads(meta.read_text(encoding="utf-8")).get("workbench") if meta.is_file() else None
    except (OSError, ValueError):
        return None
    base = info.get("base") if isinstance(info, dict) else None
    return str(base) if base else None


def _scratch(project: Project) -> Path:
    folder = project.state_dir / "review"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
