"""The current model inside the backend process: loaded once, and again only when the current model changes.

The current model is `model.deployed.current_model`: the pipeline pre-annotating now (the one `preannotate` last
ran, recorded in `.workbench/model.json`; `[model] name` before any pre-annotation). Each request asks
`current()`, which compares three file stamps (the config file, that record, the model folder) with the ones it
loaded under: a few `stat` calls, no reading. Only when one changed does it open the config again and ask
`current_model`; the pipeline is loaded again only if that names another model (or its folder was replaced).

Predictions go through `preannotation.entities.entities_of` with the config's `LabelSet` (labels and
`[model] label_map`), then `sync.push.to_prediction`: the conversion `preannotate` and `push` use, so a text gets
exactly the spans, score and model version that pre-annotation gives it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config import DEFAULT_CONFIG
from workbench.model.deployed import current_model, deployed_path
from workbench.pipeline import load_ner_pipeline, resolve
from workbench.preannotation.entities import LabelSet, entities_of
from workbench.project import Project
from workbench.records import Prediction, text_key
from workbench.sync.push import to_prediction

log = logging.getLogger("workbench.backend")
Stamp = tuple[tuple[int, int, int] | None, ...]


@dataclass(frozen=True)
class Loaded:
    """A loaded pipeline and what it was loaded for."""

    name: str
    version: str
    nlp: Any
    keep: LabelSet
    batch_size: int
    stamp: Stamp


class ServedModel:
    """The project's current model for the backend's requests; one pipeline in memory, used by one request at a
    time (spaCy's models are not meant for concurrent calls, and two cores gain nothing from it)."""

    def __init__(self, project: Project, config_path: Path | None = None) -> None:
        self.root = project.root
        self.config_path = Path(config_path) if config_path else self.root / DEFAULT_CONFIG
        self._record = deployed_path(project)
        self._lock = threading.Lock()
        self._loaded: Loaded | None = None

    def current(self) -> Loaded:
        """The current model, loaded (again) if the config, the deployment record or the model folder changed."""
        with self._lock:
            return self._fresh()

    @property
    def version(self) -> str:
        """The model version loaded now, without checking for a newer one ("" before the first load)."""
        return self._loaded.version if self._loaded else ""

    def predict(self, texts: Sequence[Any]) -> list[dict[str, Any]]:
        """One prediction per text, in order: `{"model_version", "result", "score"}` as pre-annotation makes it; a
        task without text (not a string) gets an empty result."""
        with self._lock:
            served = self._fresh()
            present = [text for text in texts if isinstance(text, str)]
            found = entities_of(served.nlp, present, served.keep, served.batch_size)
            results = []
            for text in texts:
                if not isinstance(text, str):
                    results.append({"model_version": served.version, "result": []})
                    continue
                spans, _dropped, score = next(found)
                prediction = Prediction(key=text_key(text), model_version=served.version, spans=spans, score=score)
                results.append(to_prediction(text, prediction))
            return results

    def _fresh(self) -> Loaded:
        loaded = self._loaded
        if loaded is not None and loaded.stamp == self._stamp(loaded.name):
            return loaded
        project = Project.open(self.root, self.config_path)
        name = current_model(project)
        settings = project.config
        stamp = self._stamp(name)
        if loaded is not None and loaded.name == name and loaded.stamp[2] == stamp[2]:
            nlp, version = loaded.nlp, loaded.version  # the same model: only the settings are read again
        else:
            began = time.monotonic()
            nlp, version = load_ner_pipeline(name, self.root)
            log.info("model %s loaded from %s in %.1f s", version, name, time.monotonic() - began)
        keep = LabelSet.of(settings.labels, settings.model.label_map)
        self._loaded = Loaded(name, version, nlp, keep, settings.model.batch_size, stamp)
        return self._loaded

    def _stamp(self, name: str) -> Stamp:
        """What a change of the current model changes: the config, the deployment record, the model's folder."""
        folder = Path(resolve(name, self.root))
        return _stat(self.config_path), _stat(self._record), _stat(folder) if folder.is_dir() else None


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return (found.st_ino, found.st_mtime_ns, found.st_size)
