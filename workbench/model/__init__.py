"""Models trained on releases: spaCy's own training loop on a release's train split, scored on its test split
beside the pipeline it would replace, with a model card.

Modules: `training` (the run: a verified release, spaCy's config, spaCy's loop iterated), `data` (the release's
DocBins, a dev share held out by article), `evaluation` (scores on a split), `card` (the model folder's README.md),
`listing` (the trained models).
"""

from __future__ import annotations

from workbench.model.evaluation import Scores
from workbench.model.listing import list_models
from workbench.model.training import TrainResult, train

__all__ = ["Scores", "TrainResult", "list_models", "train"]
