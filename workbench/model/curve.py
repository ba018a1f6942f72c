"""`workbench train-curve VERSION`: should we annotate more? (Prodigy's train-curve, on a release.)

The release's train split, less the dev share held out by article as `train` holds it out, is cut into quarters by
article (articles in the order of a stable hash of the seed, so the same release gives the same quarters); a model
is trained on the first 25%, 50%, 75% and 100% of it with the same settings and dev share, and each is scored on
the release's test split. If the last quarter still raised the test F1, more annotation of the same kind will
likely help; if it did not, the model has learnt what this kind of data teaches. The curve is kept under
`.workbench/train-curve/<VERSION>.json`, for `report --html` to draw; no model folder is written.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.errors import TrainError
from workbench.model.data import hold_out_dev
from workbench.model.evaluation import Scores, evaluate
from workbench.model.training import checked_release, fit_model
from workbench.project import Project, atomic_write_json, read_json, remove_stale_temps, temp_path
from workbench.splits import split_bucket

SHARES = (0.25, 0.5, 0.75, 1.0)
# Below this F1 gain the last quarter is said not to have helped (a test split of a few hundred spans moves by
# about this much between seeds).
HELPED = 0.005
# A share is whole articles: four shares need four articles beyond the dev share.
MIN_ARTICLES = len(SHARES)


@dataclass(frozen=True)
class Point:
    """One share of the train split: how much it held and how the model trained on it scored on the test split."""

    share: float
    articles: int
    paragraphs: int
    scores: Scores


@dataclass(frozen=True)
class Curve:
    """The test F1 per share of the train split, and what it says about annotating more."""

    release: str
    points: tuple[Point, ...]
    dev_paragraphs: int
    test_paragraphs: int
    made_at: str

    @property
    def last_gain(self) -> float:
        return round(self.points[-1].scores.f1 - self.points[-2].scores.f1, 4)

    def verdict(self) -> str:
        last, before = self.points[-1].scores.f1, self.points[-2].scores.f1
        if self.last_gain > HELPED:
            return (f"The last quarter still helped (test F1 {before:.3f} -> {last:.3f}, {self.last_gain:+.3f}): "
                    "annotating more of this kind should still pay.")  # fmt: skip
        return (f"The last quarter did not help (test F1 {before:.3f} -> {last:.3f}, {self.last_gain:+.3f}): more of "
                "the same data is unlikely to raise the score much; look at what the model gets wrong instead "
                "(`workbench review`), or annotate other kinds of text.")  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {"release": self.release, "made_at": self.made_at, "dev_paragraphs": self.dev_paragraphs,
                "test_paragraphs": self.test_paragraphs, "last_gain": self.last_gain, "verdict": self.verdict(),
                "points": [{**asdict(p), "scores": p.scores.as_dict()} for p in self.points]}  # fmt: skip


def train_curve(project: Project, version: str, *, on_share: Callable[[float], None] | None = None) -> Curve:
    """Train on 25/50/75/100% of release `version`'s train split (by article, same dev share, same seed) and score
    each model on its test split; refused when there are fewer articles than shares."""
    config, settings = project.config, project.config.train
    _, train_docs, test_docs = checked_release(project, version)
    fit, dev = hold_out_dev(train_docs, settings.dev_fraction, settings.seed)
    articles = sorted({str(doc.user_data.get("doc_id", "")) for doc in fit},
                      key=lambda doc_id: (split_bucket(doc_id, settings.seed), doc_id))  # fmt: skip
    if len(articles) < MIN_ARTICLES:
        held = len({str(doc.user_data.get("doc_id", "")) for doc in dev})
        raise TrainError(
            f"Release {version} has {len(articles)} article(s) to train on once the dev share ({held} article(s)) "
            f"is held out, and a train curve cuts them into {len(SHARES)} shares of whole articles, so it needs at "
            f"least {MIN_ARTICLES}. Annotate paragraphs of {MIN_ARTICLES - len(articles)} more article(s), cut a "
            "new release, and run it again."
        )
    folder = project.state_dir / "train-curve"
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder)
    work = temp_path(folder / version)
    points = []
    try:
        for share in SHARES:
            if on_share is not None:
                on_share(share)
            taken = set(articles[: math.ceil(share * len(articles))])
            docs = [doc for doc in fit if str(doc.user_data.get("doc_id", "")) in taken]
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            nlp = fit_model(project, docs, dev, work)
            scores = evaluate(nlp, test_docs, config.labels, config.model.label_map)
            points.append(Point(share=share, articles=len(taken), paragraphs=len(docs), scores=scores))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    when = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    curve = Curve(release=version, points=tuple(points), dev_paragraphs=len(dev), test_paragraphs=len(test_docs),
                  made_at=when)  # fmt: skip
    atomic_write_json(curve_path(project, version), curve.as_dict())
    return curve


def curve_path(project: Project, version: str) -> Path:
    return project.state_dir / "train-curve" / f"{version}.json"


def saved_curves(project: Project) -> list[dict[str, Any]]:
    """Every train curve kept for the project, as written (for the report page), oldest release first."""
    folder = project.state_dir / "train-curve"
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = read_json(path)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("points"):
            found.append(record)
    return found
