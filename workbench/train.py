"""Training: spaCy's own config system and training loop on a release, and a model folder that says what it is.

`workbench train VERSION` trains on release VERSION's train split (`train.spacy`). A dev split is held out of the
train split, by article, to choose the best checkpoint; the release's test split is used once, at the end, to
score the model and the base pipeline side by side: the model never trains on it and nothing is chosen by it.
The model lands in `models/<dataset>/<VERSION>/` (written to a temporary folder, then renamed), with spaCy's
`meta.json` (`performance` = the test scores) and a model card (`README.md`). Same release + config + seed gives
the same model (spaCy's training is deterministic on one machine).
"""

from __future__ import annotations

import io
import json
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import spacy
from spacy.cli.init_config import init_config
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.training.initialize import init_nlp
from spacy.training.loop import train as spacy_train
from spacy.util import Config, load_config, load_config_from_str

from workbench.errors import ModelError, TrainError
from workbench.pipeline import load_ner_pipeline, model_version, resolve
from workbench.project import Project, file_sha256, remove_stale_temps, temp_path
from workbench.release.inspect import verify_release
from workbench.release.layout import MANIFEST, docbin_path
from workbench.release.manifest import read_manifest
from workbench.release.versions import release_folder
from workbench.splits import TEST, assign_splits

DEFAULT_TRAIN_CONFIG = "configs/train.cfg"
# Below this many paragraphs a model learns noise, and its test score says nothing.
MIN_TRAIN_PARAGRAPHS = 10
MIN_TEST_PARAGRAPHS = 1
# Told every evaluation step (step, dev F1) while `train` runs; set by `train` for its own run only.
_on_evaluation: Callable[[int, float], None] | None = None


@dataclass(frozen=True)
class Scores:
    """Precision, recall and F1 on a split, overall and per label (`support` = gold spans of the label)."""

    precision: float
    recall: float
    f1: float
    per_label: dict[str, dict[str, float]]

    def as_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "per_label": self.per_label}


@dataclass(frozen=True)
class TrainResult:
    """A trained model: where it is, what it is called, how it scores against the base on the test split."""

    path: Path
    model_version: str
    release: str
    base: str
    trained: Scores
    base_scores: Scores
    paragraphs: dict[str, int]


def train(
    project: Project, version: str, *, force: bool = False, on_evaluation: Callable[[int, float], None] | None = None
) -> TrainResult:
    """Train on release `version` of the project; refuse when there is too little to learn from, when the release
    has other labels than the config, or when the model exists (unless `force`)."""
    config, settings = project.config, project.config.train
    folder = release_folder(project.releases_dir, version)
    manifest = read_manifest(project.releases_dir, version)
    problems = verify_release(project.releases_dir, version)
    if problems:
        raise TrainError(
            f"Release {version} does not match its manifest ({'; '.join(problems)}), so a model trained on it could "
            f"not be traced to the data it learned from, and its test score could not be trusted. Restore the "
            f"release folder {folder} (or cut a new release) and train on that."
        )
    if sorted(manifest["labels"]) != sorted(config.labels):
        raise TrainError(
            f"Release {version} was cut with the labels {', '.join(manifest['labels'])}, but the config lists "
            f"{', '.join(config.labels)}, so the model would learn another label set than the one annotators use. "
            "Train on a release cut with the current labels (`workbench release`), or restore the labels."
        )
    vocab = spacy.blank("en").vocab
    train_docs = _docs(folder / docbin_path("train"), vocab)
    test_docs = _docs(folder / docbin_path("test"), vocab)
    if len(train_docs) < MIN_TRAIN_PARAGRAPHS or len(test_docs) < MIN_TEST_PARAGRAPHS:
        raise TrainError(
            f"Release {version} has {len(train_docs)} paragraph(s) in train and {len(test_docs)} in test; training "
            f"needs at least {MIN_TRAIN_PARAGRAPHS} in train and {MIN_TEST_PARAGRAPHS} in test. Annotate more, "
            "cut a new release, and train on it."
        )
    _check_dev(version, train_docs)
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
        fit, dev = write_training_data(train_docs, work, settings.dev_fraction, settings.seed)
        nlp = init_training_nlp(training_config(project, work), base_name)
        nlp.meta.update({
            "name": _slug(config.dataset),
            "version": version,
            "description": f"NER fine-tuned on release {version} of {config.dataset}"
            if settings.base == "pipeline" else f"NER trained from scratch on release {version} of {config.dataset}",
        })  # fmt: skip
        (work / "run").mkdir()
        global _on_evaluation
        _on_evaluation = on_evaluation
        try:
            spacy_train(nlp, work / "run", use_gpu=-1, stdout=io.StringIO(), stderr=io.StringIO())
        finally:
            _on_evaluation = None
        trained_nlp = spacy.load(work / "run" / "model-best")
        trained = evaluate(trained_nlp, test_docs, config.labels)
        base_nlp, base_version = load_ner_pipeline(config.model.name, project.root)
        base_scores = evaluate(base_nlp, test_docs, config.labels)
        paragraphs = {"train": len(fit), "dev": len(dev), "test": len(test_docs)}
        trained_nlp.meta["performance"] = _spacy_performance(trained)
        # the training files were temporary: the saved config names no local path (and the folder is the same
        # bytes wherever and whenever it is trained)
        trained_nlp.config["paths"].update({"train": None, "dev": None})
        trained_nlp.config["initialize"]["components"] = {}
        trained_nlp.meta["workbench"] = {
            "release": version,
            "dataset": config.dataset,
            "manifest_sha256": file_sha256(folder / MANIFEST),
            "base": config.model.name if settings.base == "pipeline" else "blank",
            "base_version": base_version,
            "base_scores": base_scores.as_dict(),
            "settings": settings.model_dump(mode="json"),
            "paragraphs": paragraphs,
            "unreachable_test_spans": _unreachable(trained_nlp, test_docs),
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        trained_nlp.to_disk(work / "model")
        (work / "model" / "README.md").write_text(model_card(trained_nlp.meta), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        (work / "model").rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return TrainResult(
        path=target,
        model_version=model_version(trained_nlp.meta),
        release=version,
        base=trained_nlp.meta["workbench"]["base"],
        trained=trained,
        base_scores=base_scores,
        paragraphs=paragraphs,
    )


def evaluate(nlp: Language, gold: Sequence[Doc], labels: Sequence[str]) -> Scores:
    """spaCy's scorer on `gold` (each text tokenized by `nlp`, as at inference), entities outside `labels` left
    out of the predictions (as pre-annotation leaves them out)."""
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold]
    nlp.add_pipe("workbench_keep_labels", name="_keep_labels", last=True, config={"labels": list(labels)})
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


@Language.factory("workbench_keep_labels", default_config={"labels": []})
def _keep_labels(nlp: Language, name: str, labels: list[str]) -> Callable[[Doc], Doc]:
    """A pipe that drops entities of labels outside the label set (what pre-annotation does with them)."""
    allowed = set(labels)

    def keep(doc: Doc) -> Doc:
        doc.ents = [ent for ent in doc.ents if ent.label_ in allowed]
        return doc

    return keep


@spacy.registry.loggers("workbench.progress.v1")
def _progress_logger() -> Callable[..., Any]:
    """spaCy's training logger slot: tells `train`'s caller the dev F1 at every evaluation, prints nothing."""

    def setup(nlp: Language, stdout: Any = None, stderr: Any = None) -> tuple[Callable[..., None], Callable[[], None]]:
        def log_step(info: dict[str, Any] | None) -> None:
            if info is not None and _on_evaluation is not None:
                _on_evaluation(int(info["step"]), float(info.get("score") or 0.0))

        return log_step, lambda: None

    return setup


def list_models(project: Project) -> list[dict[str, Any]]:
    """The project's trained models, by release version: model version, release, base, test F1, size, date."""
    found = []
    folder = project.models_dir
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        meta_path = path / "meta.json"
        if not path.is_dir() or path.name.startswith(".") or not meta_path.is_file():
            continue
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            info = meta.get("workbench", {})
            found.append({
                "path": str(path),
                "model_version": model_version(meta),
                "release": info.get("release", "?"),
                "base": info.get("base", "?"),
                "f1": meta.get("performance", {}).get("ents_f"),
                "base_f1": info.get("base_scores", {}).get("f1"),
                "size_bytes": sum(p.stat().st_size for p in path.rglob("*") if p.is_file()),
                "trained_at": info.get("trained_at", ""),
            })  # fmt: skip
        except (OSError, ValueError, AttributeError):
            found.append({"path": str(path), "problem": f"{meta_path} is not readable JSON"})
    return found


def model_card(meta: dict[str, Any]) -> str:
    """The model folder's README.md: what it was trained on, how, and how it scores against its base."""
    info = meta["workbench"]
    trained, base = meta["performance"], info["base_scores"]
    rows = "\n".join(
        f"| {label} | {_f(b['precision'])} | {_f(b['recall'])} | {_f(b['f1'])} | "
        f"{_f(trained['ents_per_type'][label]['p'])} | {_f(trained['ents_per_type'][label]['r'])} | "
        f"{_f(trained['ents_per_type'][label]['f'])} | {b['support']} |"
        for label, b in base["per_label"].items()
    )
    settings = info["settings"]
    how = (f"fine-tuned from `{info['base']}` ({info['base_version']}): its `ner` sourced, with its own tok2vec"
           if info["base"] != "blank" else "trained from scratch (`configs/train.cfg`: tok2vec + ner)")  # fmt: skip
    paragraphs = info["paragraphs"]
    return f"""# {meta['lang']}_{meta['name']} {meta['version']}

A spaCy NER pipeline {how}, with `workbench train {info['release']}` on release **{info['release']}** of the
dataset `{info['dataset']}` (its `manifest.json` sha256 `{info['manifest_sha256']}`).

## Data

| split | paragraphs | use |
|---|---|---|
| train | {paragraphs['train']} | the release's train split, minus dev |
| dev | {paragraphs['dev']} | held out of the train split by article, to choose the best checkpoint |
| test | {paragraphs['test']} | the release's test split: never trained on, nothing chosen by it; scored once |

spaCy trains on its tokenizer's tokens, while the release splits tokens at every span edge ("Ankaras'" ->
Ankara/s/'), so a span that ends inside a tokenizer token can be neither learned nor found:
{info['unreachable_test_spans']} of the test split's spans are such (they count as misses below).

## Scores on the test split (entities outside the label set left out, as pre-annotation does)

Base `{info['base_version']}`: P {_f(base['precision'])}, R {_f(base['recall'])}, F1 {_f(base['f1'])}.
This model: P {_f(trained['ents_p'])}, R {_f(trained['ents_r'])}, F1 {_f(trained['ents_f'])}.

| label | base P | base R | base F1 | P | R | F1 | support |
|---|---|---|---|---|---|---|---|
{rows}

## Training

spaCy {meta.get('spacy_version', '')} training loop, `configs/train.cfg` with `[train]` of configs/workbench.toml:
base `{settings['base']}`, max_steps {settings['max_steps']}, max_epochs {settings['max_epochs']}, patience
{settings['patience']}, eval_frequency {settings['eval_frequency']}, dropout {settings['dropout']}, seed
{settings['seed']}, dev_fraction {settings['dev_fraction']}. Trained {info['trained_at']}. The same release, config
and seed give the same model on the same machine.

## Use

`workbench preannotate --model <this folder>` (or `[model] name = "<this folder>"`), then `workbench push`:
new paragraphs and tasks nobody has annotated get this model's predictions, under the model version
`{meta['lang']}_{meta['name']}-{meta['version']}`. In Python: `spacy.load("<this folder>")`.
"""


# ---- helpers -----------------------------------------------------------------------------------------------------


def _docs(path: Path, vocab: Any) -> list[Doc]:
    try:
        return list(DocBin().from_disk(path).get_docs(vocab))
    except (OSError, ValueError) as exc:
        raise TrainError(f"The release file {path} cannot be read as a spaCy DocBin ({exc}). Run "
                         f"`workbench release verify {path.parent.name}`.") from None  # fmt: skip


def write_training_data(docs: Sequence[Doc], work: Path, dev_fraction: float, seed: int) -> tuple[list[Doc], list[Doc]]:
    """The train split, with a dev share held out by article, as `work`/train.spacy and `work`/dev.spacy."""
    fit, dev = _hold_out_dev(docs, dev_fraction, seed)
    _save(work / "train.spacy", fit)
    _save(work / "dev.spacy", dev)
    return fit, dev


def release_docs(project: Project, version: str, split: str) -> list[Doc]:
    """A release split's DocBin as Docs (on a blank English vocab)."""
    return _docs(release_folder(project.releases_dir, version) / docbin_path(split), spacy.blank("en").vocab)


def _save(path: Path, docs: Sequence[Doc]) -> None:
    DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], docs=docs, store_user_data=True).to_disk(path)


def _hold_out_dev(docs: Sequence[Doc], fraction: float, seed: int) -> tuple[list[Doc], list[Doc]]:
    """Split the train split's paragraphs by article: a dev share of articles, the rest to train on. With one
    article there is nothing to hold out: dev is the train data itself (only the review's fold models accept
    that; `train` refuses it, see `_check_dev`)."""
    articles = sorted({str(doc.user_data.get("doc_id", "")) for doc in docs})
    if len(articles) < 2:
        return list(docs), list(docs)
    held = assign_splits(articles, test_fraction=fraction, seed=seed)
    fit = [doc for doc in docs if held[str(doc.user_data.get("doc_id", ""))] != TEST]
    dev = [doc for doc in docs if held[str(doc.user_data.get("doc_id", ""))] == TEST]
    return fit, dev


def _check_dev(version: str, docs: Sequence[Doc]) -> None:
    """A dev share can be held out by article: the train split holds two articles or more."""
    articles = {str(doc.user_data.get("doc_id", "")) for doc in docs}
    if len(articles) < 2:
        raise TrainError(
            f"The train split of release {version} holds {len(articles)} article, and the dev share that chooses the "
            "best checkpoint is held out by article, so it would be the very paragraphs trained on. Annotate "
            "paragraphs of at least one more article (the train split needs two), cut a new release, and train on it."
        )


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
        "training.logger": {"@loggers": "workbench.progress.v1"},
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


def _spacy_performance(scores: Scores) -> dict[str, Any]:
    return {
        "ents_p": scores.precision,
        "ents_r": scores.recall,
        "ents_f": scores.f1,
        "ents_per_type": {label: {"p": s["precision"], "r": s["recall"], "f": s["f1"]}
                          for label, s in scores.per_label.items()},  # fmt: skip
    }


def _unreachable(nlp: Language, gold: Sequence[Doc]) -> int:
    """Gold spans that do not start and end on the tokenizer's token edges."""
    count = 0
    for doc in gold:
        tokens = nlp.make_doc(doc.text)
        count += sum(1 for ent in doc.ents if tokens.char_span(ent.start_char, ent.end_char) is None)
    return count


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_").lower() or "dataset"


def _f(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"
