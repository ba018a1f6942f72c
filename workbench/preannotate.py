"""Pre-annotation: the spaCy pipeline's entities for every paragraph, saved for `push`.

Only the NER component runs (the tagger, parser and lemmatizer do not change entities and cost half the time).
Results stream to `.workbench/preannotations.jsonl`, one paragraph per line, so memory does not grow with the
corpus; paragraphs already pre-annotated by the same model version are reused, not re-run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.parallel import choose_processes
from workbench.pipeline import load_ner_pipeline
from workbench.project import Project, remove_stale_temps, temp_path
from workbench.records import Paragraph, Prediction, Span, stable_hash

# Below this many characters (~350 paragraphs, ~1 s of one process) forking workers costs more than it saves;
# measured on 2 free cores: 300 paragraphs 1.1 s in one process, 0.8 s in two; 100 paragraphs 0.36 s vs 0.40 s.
PARALLEL_MIN_CHARS = 100_000
# Workers started by "spawn" or "forkserver" (macOS; Linux from Python 3.14) do not share the loaded pipeline:
# each imports spaCy and unpickles it again (~1.5 s), so two processes only pay off on more text (1,000
# paragraphs: 3.7 s in one process, 3.9 s in two spawned, 2.3 s in two forked).
PARALLEL_MIN_CHARS_NO_FORK = 600_000
# With several processes a batch is also the unit of work handed to a worker, and the last batches run alone:
# small ones keep every worker busy to the end (2 processes: at 1k paragraphs 64 is ~4% faster than 256, at
# 10k-100k they are level, 1000 fell to ~13k words/s against ~18k; in one process the size makes no difference).
WORKER_BATCH_SIZE = 64


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


def processes_for_text(setting: int | str, total_chars: int) -> int:
    """Every usable core when there is enough text to pay for the extra processes (more when they are spawned)."""
    forked = _start_method() == "fork"
    minimum = PARALLEL_MIN_CHARS if forked else PARALLEL_MIN_CHARS_NO_FORK
    return choose_processes(total_chars, minimum, setting=setting, needs_fork=False)


def choose_batch_size(setting: int, processes: int) -> int:
    """The configured batch size in one process; at most WORKER_BATCH_SIZE when it is also a worker's share."""
    return setting if processes == 1 else min(setting, WORKER_BATCH_SIZE)


def _start_method() -> str:
    """How spaCy's workers will start (multiprocessing's default), without fixing it as a side effect."""
    return multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]


def preannotate(
    project: Project,
    paragraphs: Iterable[Paragraph],
    *,
    progress: Callable[[int], None] | None = None,
) -> PreannotationSummary:
    """Run NER over every paragraph and save the predictions; reuse lines already made by this model version."""
    config = project.config
    nlp, version = load_ner_pipeline(config.model.name, project.root)
    todo = list(paragraphs)
    path = project.preannotations_file
    label_set = stable_hash(*config.labels)
    wanted = list(dict.fromkeys(p.text_key for p in todo))  # one prediction per distinct text, in corpus order
    previous = _previous_lines(path, version, label_set, set(wanted))
    texts = {p.text_key: p.text for p in todo}
    missing = [key for key in wanted if key not in previous]
    summary = PreannotationSummary(model_version=version, paragraphs=len(todo))
    summary.processes = processes_for_text(config.model.processes, sum(len(texts[key]) for key in missing))

    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    tmp = temp_path(path)
    entities: dict[str, int] = {}
    try:
        with tmp.open("w", encoding="utf-8") as out:
            for key in (key for key in wanted if key in previous):
                out.write(previous[key])
                entities[key] = len(_from_line(previous[key]).spans)
            batch_size = choose_batch_size(config.model.batch_size, summary.processes)
            docs = nlp.pipe((texts[key] for key in missing), batch_size=batch_size, n_process=summary.processes)
            for key, doc in zip(missing, docs, strict=True):
                spans, dropped = doc_to_spans(doc, config.labels)
                summary.dropped.update(dropped)
                entities[key] = len(spans)
                out.write(_to_line(Prediction(key=key, model_version=version, spans=spans), label_set))
                if progress:
                    progress(1)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fresh = set(missing)
    summary.annotated = sum(1 for p in todo if p.text_key in fresh)
    summary.reused = len(todo) - summary.annotated
    summary.entities = sum(entities[p.text_key] for p in todo)
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
    """Saved lines of this model version and label set for texts still in the corpus, by text key."""
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
