"""A release's DocBins as training data: the train split with a dev share held out by article (to choose the
checkpoint), the test split kept for scoring once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import spacy
from spacy.tokens import Doc, DocBin, Span

from workbench.errors import TrainError
from workbench.project import Project
from workbench.release.converters import msgpack_plugins_looked_up_once
from workbench.release.layout import docbin_path
from workbench.release.versions import release_folder
from workbench.splits import TEST, assign_splits


def read_docs(path: Path, vocab: Any) -> list[Doc]:
    """A DocBin file as Docs; TrainError naming the file if it cannot be read."""
    try:
        with msgpack_plugins_looked_up_once():  # each doc's user data is unpacked (its article, its row id)
            return list(DocBin().from_disk(path).get_docs(vocab))
    except (OSError, ValueError) as exc:
        raise TrainError(f"The release file {path} cannot be read as a spaCy DocBin ({exc}). Run "
                         f"`workbench release verify {path.parent.name}`.") from None  # fmt: skip


def write_training_data(
    docs: Sequence[Doc], work: Path, dev_fraction: float, seed: int, relabel: Mapping[str, str] | None = None
) -> tuple[list[Doc], list[Doc]]:
    """The train split, with a dev share held out by article, as `work`/train.spacy and `work`/dev.spacy; with
    `relabel`, entity labels renamed on the way (see `pipeline_labels`)."""
    fit, dev = hold_out_dev(docs, dev_fraction, seed)
    save_training_data(fit, dev, work, relabel)
    return fit, dev


def save_training_data(fit: Sequence[Doc], dev: Sequence[Doc], work: Path, relabel: Mapping[str, str] | None) -> None:
    """`work`/train.spacy and `work`/dev.spacy, entity labels renamed by `relabel` on the way."""
    _save(work / "train.spacy", [_relabelled(doc, relabel) for doc in fit] if relabel else fit)
    _save(work / "dev.spacy", [_relabelled(doc, relabel) for doc in dev] if relabel else dev)


def pipeline_labels(label_map: Mapping[str, str]) -> dict[str, str]:
    """The dataset's labels back to the pipeline's, for fine-tuning a pipeline whose labels `[model] label_map`
    renames: its `ner` then learns "company" as more of the ORG it knows (and labels it never had, like
    "musicartist", as new ones), and pre-annotation renames its output as for the stock pipeline. Several pipeline
    labels mapped to one dataset label (GPE and LOC to "geo-loc") learn as the first of them."""
    back: dict[str, str] = {}
    for source, target in label_map.items():
        back.setdefault(target, source)
    return back


def _relabelled(doc: Doc, relabel: Mapping[str, str]) -> Doc:
    copy = doc.copy()
    copy.ents = [Span(copy, ent.start, ent.end, label=relabel.get(ent.label_, ent.label_)) for ent in doc.ents]
    return copy


def release_docs(project: Project, version: str, split: str) -> list[Doc]:
    """A release split's DocBin as Docs (on a blank English vocab)."""
    return read_docs(release_folder(project.releases_dir, version) / docbin_path(split), spacy.blank("en").vocab)


def _save(path: Path, docs: Sequence[Doc]) -> None:
    """Training data as spaCy's corpus reader reads it: tokens and entities (no user data, which it never reads and
    which costs a msgpack round trip per doc at every epoch and every evaluation)."""
    with msgpack_plugins_looked_up_once():  # each doc's span groups are still packed
        DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], docs=docs, store_user_data=False).to_disk(path)


def hold_out_dev(docs: Sequence[Doc], fraction: float, seed: int) -> tuple[list[Doc], list[Doc]]:
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


def check_dev(version: str, docs: Sequence[Doc]) -> None:
    """A dev share can be held out by article: the train split holds two articles or more."""
    articles = {str(doc.user_data.get("doc_id", "")) for doc in docs}
    if len(articles) < 2:
        raise TrainError(
            f"The train split of release {version} holds {len(articles)} article, and the dev share that chooses the "
            "best checkpoint is held out by article, so it would be the very paragraphs trained on. Annotate "
            "paragraphs of at least one more article (the train split needs two), cut a new release, and train on it."
        )
