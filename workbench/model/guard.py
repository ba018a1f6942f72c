"""The guard: a model never replaces a better one silently.

A candidate pipeline is compared with the one pre-annotating now on one release's test split (data neither was
trained on: the workbench trains on train splits only). A model `workbench train` made carries that comparison in
its meta.json, made when it was trained; it is used as it is while the pipeline it was compared with is still the
current one. Otherwise both are scored now: on the candidate's own release, or for a pipeline that was not
trained here (a stock package), on the latest release. With no release at all there is nothing to compare on, and
the candidate is let in, saying so. A candidate below the current pipeline is refused unless forced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import ModelGuardError
from workbench.model.data import release_docs
from workbench.model.deployed import current_model
from workbench.model.evaluation import Scores, scores_on
from workbench.pipeline import load_ner_pipeline, pipeline_version, resolve
from workbench.project import Project
from workbench.release.versions import existing_versions


@dataclass(frozen=True)
class Comparison:
    """A candidate pipeline against the one it would replace, on the test split of one release."""

    release: str
    candidate: str
    candidate_version: str
    candidate_scores: Scores
    current: str
    current_version: str
    current_scores: Scores
    when: str  # "when it was trained" or "now"

    @property
    def better(self) -> bool:
        """At least as good overall: a tie keeps the newer model (it has seen more of the project's data)."""
        return self.candidate_scores.f1 >= self.current_scores.f1

    def said(self) -> str:
        return (f"{self.candidate_version} F1 {self.candidate_scores.f1:.3f} against {self.current_version} "
                f"{self.current_scores.f1:.3f} on the test split of release {self.release} (scored {self.when})")

    def as_dict(self) -> dict[str, Any]:
        return {"release": self.release, "candidate": self.candidate, "candidate_version": self.candidate_version,
                "candidate_f1": self.candidate_scores.f1, "current": self.current,
                "current_version": self.current_version, "current_f1": self.current_scores.f1,
                "better": self.better, "scored": self.when}  # fmt: skip


def compare(project: Project, candidate: str, current: str | None = None) -> Comparison | None:
    """The candidate against `current` (the pipeline pre-annotating now, by default); None when they are the same
    pipeline or no release exists to score them on."""
    current = current if current is not None else current_model(project)
    root = project.root
    if resolve(candidate, root) == resolve(current, root):
        return None
    info = _trained_here(resolve(candidate, root))
    current_version = pipeline_version(resolve(current, root))
    if info and info.get("replaces_version") == current_version and info.get("replaces_scores"):
        return Comparison(release=str(info["release"]), candidate=candidate,
                          candidate_version=pipeline_version(resolve(candidate, root)),
                          candidate_scores=Scores.of(info["test_scores"]), current=current,
                          current_version=current_version, current_scores=Scores.of(info["replaces_scores"]),
                          when="when it was trained")  # fmt: skip
    versions = [str(v) for v in existing_versions(project.releases_dir)]
    release = str(info["release"]) if info and str(info.get("release")) in versions else (versions or [None])[-1]
    if release is None:
        return None
    return score_both(project, candidate, current, release)


def score_both(project: Project, candidate: str, current: str, release: str) -> Comparison:
    """Both pipelines scored now on a release's test split, entities kept as pre-annotation keeps them."""
    gold = release_docs(project, release, "test")
    scored = {}
    for name in (candidate, current):
        nlp, version = load_ner_pipeline(name, project.root)
        scored[name] = (version, scores_on(project, release, name, nlp, gold))
    return Comparison(release=release, candidate=candidate, candidate_version=scored[candidate][0],
                      candidate_scores=scored[candidate][1], current=current, current_version=scored[current][0],
                      current_scores=scored[current][1], when="now")  # fmt: skip


def check_replacement(project: Project, candidate: str, *, force: bool = False) -> tuple[Comparison | None, str]:
    """Whether `candidate` may replace the pipeline pre-annotating now: (the comparison, the verdict in words);
    ModelGuardError when it scored below, unless `force`."""
    current = current_model(project)
    found = compare(project, candidate, current)
    if found is None:
        if resolve(candidate, project.root) == resolve(current, project.root):
            return None, "the pipeline pre-annotating now"
        return None, "no release to compare it on yet"
    if found.better:
        return found, f"better or as good: {found.said()}"
    if force:
        return found, f"forced although worse: {found.said()}"
    raise ModelGuardError(
        f"The model {candidate} scored below the pipeline pre-annotating now: {found.said()}, so it was not put in "
        f"front of the annotators. Annotate more and train again (`workbench train-curve {found.release}` says "
        f"whether more data still helps), or use it anyway with `workbench preannotate --model {candidate} --force`."
    )


def _trained_here(path: str) -> dict[str, Any] | None:
    """The `workbench` record in a pipeline folder's meta.json (a model `workbench train` made), or None."""
    meta = Path(path) / "meta.json"
    try:
        info = json.loads(meta.read_text(encoding="utf-8")).get("workbench") if meta.is_file() else None
    except (OSError, ValueError, AttributeError):
        return None
    return info if isinstance(info, dict) and "release" in info else None

