"""Training: spaCy's own config system and training loop on a release, and a model folder that says what it is.

`workbench train VERSION` trains on release VERSION's train split (`train.spacy`), once the release is verified
against its manifest. A dev split is held out of the train split, by article, to choose the best checkpoint; the
release's test split is used once, at the end, to score the model and the base pipeline side by side: the model
never trains on it and nothing is chosen by it. The model lands in `models/<dataset>/<VERSION>/` (written to a
temporary folder, then renamed), with spaCy's `meta.json` (`performance` = the test scores) and a model card
(`README.md`). Same release + config + seed gives the same model (spaCy's training is deterministic on one machine).
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import spacy
from spacy.cli.init_config import init_config
from spacy.language import Language
from spacy.schemas import ConfigSchemaTraining
from spacy.tokens import Doc
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.training.loop import (
    create_before_to_disk_callback,
    create_evaluation_callback,
    create_train_batches,
    train_while_improving,
    update_meta,
)
from spacy.util import Config, fix_random_seed, load_config, load_config_from_str, registry, resolve_dot_names

from workbench.articles import read_corpus
from workbench.errors import ModelError, SeedError, TrainError
from workbench.model.card import model_card
from workbench.model.data import check_dev, hold_out_dev, pipeline_labels, read_docs, save_training_data
from workbench.model.deployed import current_model
from workbench.model.evaluation import Scores, evaluate, scores_on, spacy_performance, unreachable_spans
from workbench.pipeline import load_ner_pipeline, model_version, pipeline_version, resolve
from workbench.project import Project, file_sha256, remove_stale_temps, temp_path
from workbench.release.converters import msgpack_plugins_looked_up_once
from workbench.release.inspect import verify_release
from workbench.release.layout import MANIFEST, docbin_path
from workbench.release.manifest import read_manifest
from workbench.release.versions import release_folder

DEFAULT_TRAIN_CONFIG = "configs/train.cfg"
# Below this many paragraphs a model learns noise, and its test score says nothing.
MIN_TRAIN_PARAGRAPHS = 10
MIN_TEST_PARAGRAPHS = 1
# Told at every evaluation of the dev share: (step, dev F1).
OnEvaluation = Callable[[int, float], None]


@dataclass(frozen=True)
class TrainResult:
    """A trained model: where it is, what it is called, how it scores against the base on the test split."""

    path: Path
    model_version: str
    release: str
    base: str  # what it was fine-tuned from ("blank": trained from scratch)
    trained: Scores
    current: str  # the pipeline pre-annotating now, which it would replace
    current_version: str
    current_scores: Scores
    paragraphs: dict[str, int]

    @property
    def better(self) -> bool:
        """At least as good as the pipeline it would replace, overall, on the release's test split."""
        return self.trained.f1 >= self.current_scores.f1


def train(project: Project, version: str, *, force: bool = False, on_evaluation: OnEvaluation | None = None
          ) -> TrainResult:  # fmt: skip
    """Train on release `version` of the project; refuse a release that fails its checksums, has too little to
    learn from or other labels than the config, and a model that exists (unless `force`)."""
    config, settings = project.config, project.config.train
    folder, train_docs, test_docs = checked_release(project, version)
    target = project.models_dir / version
    if target.exists() and not force:
        raise TrainError(
            f"A model trained on release {version} is already at {target}. Use it (`workbench preannotate --model "
            f"{target}`), or train again with --force to replace it."
        )
    base_name = _base_name(project)
    project.models_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(project.models_dir)
    work = temp_path(target)
    work.mkdir()
    try:
        fit, dev = hold_out_dev(train_docs, settings.dev_fraction, settings.seed)
        rehearsal = rehearsal_texts(project, version, train_docs + test_docs) if settings.rehearse else []
        trained_nlp = fit_model(project, fit, dev, work, {
            "name": _slug(config.dataset),
            "version": version,
            "description": f"NER fine-tuned on release {version} of {config.dataset}"
            if settings.base == "pipeline" else f"NER trained from scratch on release {version} of {config.dataset}",
        }, on_evaluation, rehearsal)  # fmt: skip
        current = current_model(project)
        current_nlp, current_version = load_ner_pipeline(current, project.root)
        trained = evaluate(trained_nlp, test_docs, config.labels, config.model.label_map)
        current_scores = scores_on(project, version, current, current_nlp, test_docs)
        paragraphs = {"train": len(fit), "dev": len(dev), "test": len(test_docs)}
        trained_nlp.meta["performance"] = spacy_performance(trained)
        # the training files were temporary: the saved config names no local path (and the folder is the same
        # bytes wherever and whenever it is trained)
        trained_nlp.config["paths"].update({"train": None, "dev": None})
        trained_nlp.config["initialize"]["components"] = {}
        trained_nlp.meta["workbench"] = {
            "release": version,
            "dataset": config.dataset,
            "manifest_sha256": file_sha256(folder / MANIFEST),  # verified against the release's own checksum
            "base": config.model.name if settings.base == "pipeline" else "blank",
            "base_version": pipeline_version(base_name) if settings.base == "pipeline" else "",
            "test_scores": trained.as_dict(),
            "replaces": current,
            "replaces_version": current_version,
            "replaces_scores": current_scores.as_dict(),
            "better": trained.f1 >= current_scores.f1,
            "label_map": dict(config.model.label_map),
            "settings": settings.model_dump(mode="json"),
            "paragraphs": paragraphs,
            "unreachable_test_spans": unreachable_spans(trained_nlp, test_docs),
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        trained_nlp.to_disk(work / "model")
        (work / "model" / "README.md").write_text(model_card(trained_nlp.meta), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        (work / "model").rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return TrainResult(path=target, model_version=model_version(trained_nlp.meta), release=version,
                       base=trained_nlp.meta["workbench"]["base"], trained=trained, current=current,
                       current_version=current_version, current_scores=current_scores,
                       paragraphs=paragraphs)  # fmt: skip


def fit_model(
    project: Project,
    fit: Sequence[Doc],
    dev: Sequence[Doc],
    work: Path,
    meta: dict[str, Any] | None = None,
    on_evaluation: OnEvaluation | None = None,
    rehearsal: Sequence[str] = (),
) -> Language:
    """A pipeline trained on `fit` with spaCy's loop, its checkpoint chosen on `dev` (the step-0 base included:
    a fine-tune that only loses on dev keeps the base's weights), with `meta` in its meta.json; `work` is a
    scratch folder; `rehearsal` holds unannotated texts for `[train] rehearse`."""
    settings, label_map = project.config.train, project.config.model.label_map
    relabel = pipeline_labels(label_map) if settings.base == "pipeline" else None
    save_training_data(fit, dev, work, relabel)
    nlp = init_training_nlp(training_config(project, work), _base_name(project))
    if settings.base == "pipeline":  # the release's labels its ner never had are added, the others kept
        _add_labels(nlp, {(relabel or {}).get(ent.label_, ent.label_) for doc in fit for ent in doc.ents})
    nlp.meta.update(meta or {})
    rehearse = settings.rehearse if settings.base == "pipeline" else 0
    with msgpack_plugins_looked_up_once():  # spaCy's corpus reader unpacks every doc at every epoch and evaluation
        return run_training(nlp, work / "best", on_evaluation, rehearsal, rehearse)


def checked_release(project: Project, version: str) -> tuple[Path, list[Doc], list[Doc]]:
    """The release folder and its train and test Docs, once the release is verified, holds the config's labels,
    and has enough to learn from and a dev share to hold out."""
    config = project.config
    folder = release_folder(project.releases_dir, version)
    problems = verify_release(project.releases_dir, version, recount=False)  # every checksum; rows not recounted
    if problems:
        raise TrainError(
            f"Release {version} does not match its manifest ({'; '.join(problems)}), so a model trained on it could "
            f"not be traced to the data it learned from, and its test score could not be trusted. Restore the "
            f"release folder {folder} (or cut a new release) and train on that."
        )
    labels = read_manifest(project.releases_dir, version).labels
    if sorted(labels) != sorted(config.labels):
        raise TrainError(
            f"Release {version} was cut with the labels {', '.join(labels)}, but the config lists "
            f"{', '.join(config.labels)}, so the model would learn another label set than the one annotators use. "
            "Train on a release cut with the current labels (`workbench release`), or restore the labels."
        )
    vocab = spacy.blank("en").vocab
    train_docs = read_docs(folder / docbin_path("train"), vocab)
    test_docs = read_docs(folder / docbin_path("test"), vocab)
    if len(train_docs) < MIN_TRAIN_PARAGRAPHS or len(test_docs) < MIN_TEST_PARAGRAPHS:
        raise TrainError(
            f"Release {version} has {len(train_docs)} paragraph(s) in train and {len(test_docs)} in test; training "
            f"needs at least {MIN_TRAIN_PARAGRAPHS} in train and {MIN_TEST_PARAGRAPHS} in test. Annotate more, "
            "cut a new release, and train on it."
        )
    check_dev(version, train_docs)
    return folder, train_docs, test_docs


def _add_labels(nlp: Language, labels: set[str]) -> None:
    ner = nlp.get_pipe("ner")
    for label in sorted(labels - set(ner.labels)):
        ner.add_label(label)


def run_training(
    nlp: Language,
    best: Path,
    on_evaluation: OnEvaluation | None = None,
    rehearsal: Sequence[str] = (),
    rehearse: int = 0,
) -> Language:
    """spaCy's training loop (`train_while_improving`, as `spacy train` runs it), iterated here: every evaluation
    is told to `on_evaluation`, the best checkpoint is written to `best` and loaded back. With `rehearse`, each
    update is preceded by a rehearsal on that many of the `rehearsal` texts (`Language.rehearse`: the pipeline is
    pulled towards what it read in them before training)."""
    config = nlp.config.interpolate()
    if config["training"]["seed"] is not None:
        fix_random_seed(config["training"]["seed"])
    settings = registry.resolve(config["training"], schema=ConfigSchemaTraining)
    train_corpus, dev_corpus = resolve_dot_names(config, [settings["train_corpus"], settings["dev_corpus"]])
    optimizer = settings["optimizer"]
    before_to_disk = create_before_to_disk_callback(settings["before_to_disk"])
    frozen = settings["frozen_components"]
    before_update = settings["before_update"]
    if rehearse and rehearsal:
        before_update = _rehearsing(before_update, optimizer, list(rehearsal), rehearse, config["training"]["seed"])
    steps = train_while_improving(
        nlp, optimizer, create_train_batches(nlp, train_corpus, settings["batcher"], settings["max_epochs"]),
        create_evaluation_callback(nlp, dev_corpus, settings["score_weights"]), dropout=settings["dropout"],
        accumulate_gradient=settings["accumulate_gradient"], patience=settings["patience"],
        max_steps=settings["max_steps"], eval_frequency=settings["eval_frequency"], exclude=frozen,
        annotating_components=settings["annotating_components"], before_update=before_update,
    )  # fmt: skip
    for _, info, is_best in steps:
        if is_best is None:  # a step without an evaluation
            continue
        with nlp.select_pipes(disable=frozen):
            update_meta(settings, nlp, info)
        if on_evaluation is not None:
            on_evaluation(int(info["step"]), float(info.get("score") or 0.0))
        if is_best:
            with nlp.use_params(optimizer.averages):
                shutil.rmtree(best, ignore_errors=True)
                before_to_disk(nlp).to_disk(best)
    return spacy.load(best)


def rehearsal_texts(project: Project, version: str, released: Sequence[Doc]) -> list[str]:
    """Paragraphs of the seeds nobody annotated (not in the release), outside the release's test articles: what
    rehearsal may read without touching test data (none when the seeds folder cannot be read)."""
    test = {doc for doc, split in read_manifest(project.releases_dir, version).split.membership.items()
            if split == "test"}  # fmt: skip
    seen = {doc.text for doc in released}
    try:
        corpus = read_corpus(project.seeds_dir)
    except SeedError:
        return []
    return [p.text for p in corpus.paragraphs() if p.text not in seen and p.doc_id not in test]


def _rehearsing(configured: Any, optimizer: Any, texts: list[str], per_step: int, seed: int | None) -> Any:
    """spaCy's `before_update` hook, with a rehearsal on `per_step` of `texts` (drawn with the training seed) before
    every update."""
    draw = random.Random(seed or 0)

    def before_update(nlp: Language, args: dict[str, Any]) -> None:
        if configured is not None:
            configured(nlp, args)
        docs = [nlp.make_doc(text) for text in draw.sample(texts, min(per_step, len(texts)))]
        nlp.rehearse([Example(doc, doc) for doc in docs], sgd=optimizer)

    return before_update


def _base_name(project: Project) -> str:
    """The configured pipeline, as a package name or an absolute folder (spaCy resolves `source` from anywhere)."""
    return resolve(project.config.model.name, project.root)


def training_config(project: Project, work: Path) -> Config:
    """spaCy's config for training on `work`/train.spacy (dev: `work`/dev.spacy), overridden from [train]: the
    configured pipeline's ner sourced, or a blank ner told every label of the config."""
    settings, labels = project.config.train, list(project.config.labels)
    base_name = _base_name(project)
    path = project.root / settings.config
    overrides: dict[str, Any] = {
        "paths.train": str(work / "train.spacy"),
        "paths.dev": str(work / "dev.spacy"),
        "system.seed": settings.seed,
        "training.max_steps": settings.max_steps,
        "training.max_epochs": settings.max_epochs,
        "training.patience": settings.patience,
        "training.eval_frequency": settings.eval_frequency,
        "training.dropout": settings.dropout,
    }
    if not path.exists() and settings.config == DEFAULT_TRAIN_CONFIG:
        # the file the repository keeps is spaCy's own default, made again here for a project without it
        default = init_config(lang="en", pipeline=["ner"], optimize="efficiency").to_str()
        config = load_config_from_str(default, overrides=overrides, interpolate=False)
    else:
        try:
            config = load_config(path, overrides=overrides, interpolate=False)
        except (OSError, ValueError) as exc:
            raise TrainError(f"The training config {path} cannot be read ({exc}). Restore it from the repository, "
                             "or point [train] config at a spaCy config file.") from None  # fmt: skip
    if settings.base == "pipeline":
        config["nlp"]["pipeline"] = ["ner"]
        config["components"] = {"ner": {"source": base_name}}
    else:
        label_file = work / "ner_labels.json"
        moves = {str(move): dict.fromkeys(labels, 1) for move in range(1, 5)}  # B, I, L, U of every label
        label_file.write_text(json.dumps({"0": {}, **moves, "5": {"": 1}}), encoding="utf-8")
        config["initialize"]["components"] = {
            "ner": {"labels": {"@readers": "spacy.read_labels.v1", "path": str(label_file)}}
        }
    return config


def init_training_nlp(config: Config, base_name: str) -> Language:
    """The pipeline spaCy's loop trains from `config` (its base sourced); ModelError if the base cannot be."""
    try:
        return init_nlp(config, use_gpu=-1)
    except OSError as exc:
        raise ModelError(
            f"The base pipeline {base_name!r} could not be sourced for training ({exc}). Set [model] name to an "
            "installed pipeline or a pipeline folder, or [train] base = \"blank\"."
        ) from None


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_").lower() or "dataset"
