"""Pre-annotation: the spaCy pipeline's entities for every paragraph, with its score, saved in the pool for `push`.

Only the NER component runs (the tagger, parser and lemmatizer do not change entities and cost half the time).
Each text's entities come with the model's confidence (`confidence.scored_docs`), and stream into the pool
(`.workbench/preannotations.parquet`) in batches, so memory does not grow with the corpus; texts already
pre-annotated by the same model version for the same labels are reused, not re-run. With enough text the work
runs in forked workers on every core, each with the pipeline already loaded; or on a Dask cluster when one is set
(`workbench.preannotation.cluster`, imported only then), and the pool written is the same either way.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from more_itertools import chunked

from workbench.articles import SeedIndex
from workbench.parallel import choose_processes, fork_pool, ordered_map
from workbench.pipeline import load_ner_pipeline, resolve
from workbench.preannotation.entities import Found, LabelSet, entities_of
from workbench.preannotation.pool import PoolWriter, reusable
from workbench.project import Project, remove_stale_temps, temp_path
from workbench.records import Paragraph, Prediction

# Below this many characters (~350 paragraphs, ~1 s of one process) forking workers costs more than it saves;
# measured on 2 free cores: 300 paragraphs 1.1 s in one process, 0.8 s in two; 100 paragraphs 0.36 s vs 0.40 s.
PARALLEL_MIN_CHARS = 100_000
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
    processes: int = 1  # this machine's processes, or the cluster's workers
    cluster: str | None = None
    verdict: str = ""  # why this pipeline may pre-annotate (the guard's word), set by the caller



def processes_for_text(setting: int | str, total_chars: int) -> int:
    """Every usable core when there is enough text to pay for the extra (forked) processes."""
    return choose_processes(total_chars, PARALLEL_MIN_CHARS, setting=setting)


def choose_batch_size(setting: int, processes: int) -> int:
    """The configured batch size in one process; at most WORKER_BATCH_SIZE when it is also a worker's share."""
    return setting if processes == 1 else min(setting, WORKER_BATCH_SIZE)


def preannotate(
    project: Project,
    paragraphs: Iterable[Paragraph] | SeedIndex,
    *,
    cluster: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> PreannotationSummary:
    """Run NER over every paragraph text, scoring each, and save the pool; reuse what this model version made.
    The pipeline runs here, or on the Dask cluster at `cluster` (else `[model] cluster`, if set). `paragraphs` may
    be a seed index: only the texts the pool lacks are then read."""
    config = project.config
    todo = _Texts.of(paragraphs)
    address = cluster or config.model.cluster
    keep = LabelSet.of(config.labels, config.model.label_map)
    if not address:
        nlp, version = load_ner_pipeline(config.model.name, project.root)

        def here(texts: list[str], summary: PreannotationSummary) -> Iterator[Found]:
            summary.processes = processes_for_text(config.model.processes, sum(len(text) for text in texts))
            batch_size = choose_batch_size(config.model.batch_size, summary.processes)
            return _predict(texts, nlp, keep, batch_size, summary.processes)

        return _preannotate(project, todo, version, here, progress)
    from workbench.preannotation.cluster import ClusterPipeline

    name = resolve(config.model.name, project.root)  # a pipeline folder by its absolute path, as workers see it
    with ClusterPipeline.open(address, name, keep, config.model.batch_size) as remote:

        def on_the_cluster(texts: list[str], summary: PreannotationSummary) -> Iterator[Found]:
            summary.processes, summary.cluster = remote.workers, remote.address
            return remote.annotate(texts)

        return _preannotate(project, todo, remote.version, on_the_cluster, progress)


@dataclass
class _Texts:
    """Every paragraph's text key, in corpus order, and a way to the texts of some keys."""

    keys: pa.Array
    texts_of: Callable[[set[str]], dict[str, str]]

    @classmethod
    def of(cls, paragraphs: Iterable[Paragraph] | SeedIndex) -> _Texts:
        if isinstance(paragraphs, SeedIndex):
            seeds = paragraphs

            def read(keys: set[str]) -> dict[str, str]:
                table = seeds.paragraphs
                docs = pc.unique(pc.filter(table["doc_id"], pc.is_in(table["text_key"], pa.array(list(keys)))))
                return {p.text_key: p.text for article in seeds.read_articles(docs.to_pylist())
                        for p in article.paragraphs if p.text_key in keys}  # fmt: skip

            return cls(keys=seeds.paragraphs["text_key"].combine_chunks(), texts_of=read)
        listed = list(paragraphs)
        texts = {p.text_key: p.text for p in listed}
        return cls(keys=pa.array([p.text_key for p in listed], pa.string()),
                   texts_of=lambda wanted: {key: texts[key] for key in wanted})  # fmt: skip


def _preannotate(
    project: Project,
    todo: _Texts,
    version: str,
    predict: Callable[[list[str], PreannotationSummary], Iterator[Found]],
    progress: Callable[[int], None] | None,
) -> PreannotationSummary:
    config = project.config
    path = project.preannotations_file
    label_set = LabelSet.of(config.labels, config.model.label_map).key
    wanted = pc.unique(todo.keys)  # one prediction per distinct text, in corpus order
    kept, whole = reusable(path, version, label_set, wanted, with_size=True)
    missing = pc.filter(wanted, pc.invert(pc.is_in(wanted, kept["key"]))).to_pylist()
    summary = PreannotationSummary(model_version=version, paragraphs=len(todo.keys))
    found_keys: list[str] = []
    found_counts: list[int] = []
    if missing or kept.num_rows != whole:  # else the pool is exactly what it would be written as: kept as it is
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path.parent)
        tmp = temp_path(path)
        try:
            writer = PoolWriter(tmp)
            try:
                writer.add_table(kept)
                texts = todo.texts_of(set(missing))
                found = predict([texts[key] for key in missing], summary)
                for key, (spans, dropped, score) in zip(missing, found, strict=True):
                    summary.dropped.update(dropped)
                    found_keys.append(key)
                    found_counts.append(len(spans))
                    writer.add(Prediction(key=key, model_version=version, spans=spans, score=score), label_set)
                    if progress:
                        progress(1)
            finally:
                writer.close()
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    fresh = pa.array(found_keys, pa.string())
    is_fresh = pc.is_in(todo.keys, fresh)
    summary.annotated = int(pc.sum(is_fresh).as_py() or 0)
    summary.reused = summary.paragraphs - summary.annotated
    keys = pa.concat_arrays([kept["key"].combine_chunks(), fresh])
    counts = pa.concat_arrays([pc.list_value_length(kept["spans"].combine_chunks()).cast(pa.int64()),
                               pa.array(found_counts, pa.int64())])  # fmt: skip
    summary.entities = int(pc.sum(pc.take(counts, pc.index_in(todo.keys, keys))).as_py() or 0)
    return summary


# The pipeline and labels of a forked worker, set once per worker by `_start_worker`.
_worker: tuple[Any, LabelSet, int] | None = None


def _predict(texts: list[str], nlp: Any, keep: LabelSet, batch_size: int, processes: int) -> Iterator[Found]:
    """Each text's kept spans, dropped labels and score, in order; in forked workers when `processes` > 1 (each
    worker has the pipeline loaded already, copy-on-write), else here."""
    if processes <= 1:
        yield from entities_of(nlp, texts, keep, batch_size)
        return
    with fork_pool(processes, _start_worker, (nlp, keep, batch_size)) as pool:
        for results in ordered_map(pool, _predict_chunk, chunked(texts, batch_size), processes):
            yield from results


def _start_worker(nlp: Any, keep: LabelSet, batch_size: int) -> None:
    global _worker
    _worker = (nlp, keep, batch_size)


def _predict_chunk(texts: list[str]) -> list[Found]:
    assert _worker is not None
    nlp, keep, batch_size = _worker
    return list(entities_of(nlp, texts, keep, batch_size))
