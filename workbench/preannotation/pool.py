"""The pool: every pre-annotated paragraph text, with the model's spans and its score, in one parquet file
(`.workbench/preannotations.parquet`), and the choice of what to send annotators next.

Label Studio holds the working set; the pool holds everything pre-annotated, a million paragraphs if need be:
`push --next N` takes the N paragraphs the model is least sure of (lowest score first), with at most a share of
them from any one article, so a hard article does not take the whole batch.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from workbench.records import Paragraph, Prediction, Span

SPAN = pa.struct([("start", pa.int32()), ("end", pa.int32()), ("label", pa.string()), ("text", pa.string())])
SCHEMA = pa.schema([
    ("key", pa.string()),  # the text's key (`records.text_key`)
    ("model_version", pa.string()),
    ("label_set", pa.string()),  # the label set the spans were kept for
    ("score", pa.float64()),  # the model's confidence for the paragraph (`confidence`); lowest = most uncertain
    ("spans", pa.list_(SPAN)),
])  # fmt: skip
WRITE_BATCH = 10_000


class PoolWriter:
    """Writes the pool's rows in batches (memory per batch, not per corpus)."""

    def __init__(self, path: Path) -> None:
        self._writer = pq.ParquetWriter(path, SCHEMA, compression="snappy")
        self._rows: list[dict[str, object]] = []

    def add(self, prediction: Prediction, label_set: str) -> None:
        spans = [span.as_dict() for span in prediction.spans]
        self._rows.append({"key": prediction.key, "model_version": prediction.model_version, "label_set": label_set,
                           "score": prediction.score, "spans": spans})  # fmt: skip
        if len(self._rows) >= WRITE_BATCH:
            self._flush()

    def add_table(self, table: pa.Table) -> None:
        """Rows kept from an earlier pool, as they were."""
        self._flush()
        if table.num_rows:
            self._writer.write_table(table.select(SCHEMA.names).cast(SCHEMA))

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=SCHEMA))
            self._rows = []


def reusable(
    path: Path, model_version: str, label_set: str, keys: Iterable[str] | pa.Array, *, with_size: bool = False
) -> Any:
    """The pool's rows made by this model version for this label set, for the texts `keys` (a damaged pool
    reuses nothing: every text is pre-annotated again); `with_size`: and how many rows the pool holds in all."""
    empty = SCHEMA.empty_table()
    table = None
    if path.exists():
        try:
            table = pq.read_table(path, schema=SCHEMA)
        except (OSError, pa.ArrowException):
            table = None
    if table is None:
        return (empty, 0) if with_size else empty
    wanted = keys if isinstance(keys, pa.Array | pa.ChunkedArray) else pa.array(sorted(set(keys)), pa.string())
    same = pc.and_(pc.equal(table["model_version"], model_version), pc.equal(table["label_set"], label_set))
    kept = table.filter(pc.and_(same, pc.is_in(table["key"], value_set=wanted)))
    return (kept, table.num_rows) if with_size else kept


def pooled(path: Path) -> pa.Array:
    """The text keys the pool holds a prediction for, as a column (none if there is no pool or it is damaged)."""
    if not path.exists():
        return pa.array([], pa.string())
    try:
        return pq.read_table(path, columns=["key"]).column("key").combine_chunks()
    except (OSError, pa.ArrowException):
        return pa.array([], pa.string())


def read_predictions(path: Path, keys: Iterable[str] | None = None) -> Iterator[Prediction]:
    """The pool's predictions (of the texts `keys`, or all), streamed in batches."""
    if not path.exists():
        return
    wanted = set(keys) if keys is not None else None
    for batch in pq.ParquetFile(path).iter_batches(batch_size=WRITE_BATCH):
        for row in batch.to_pylist():
            if wanted is None or row["key"] in wanted:
                spans = tuple(Span(s["start"], s["end"], s["label"], s["text"]) for s in row["spans"])
                yield Prediction(key=row["key"], model_version=row["model_version"], spans=spans, score=row["score"])


class PoolIndex:
    """The pool's keys, model versions and scores (not its spans) as columns, for a corpus's text keys: what a
    push needs of every paragraph. The spans are read only for the texts a push sends (`rows_for`)."""

    def __init__(self, path: Path, keys: pa.Array | pa.ChunkedArray) -> None:
        self.path = path
        table = _columns(path, ["key", "model_version", "score"])
        self._keys = table["key"].combine_chunks()
        self._scores = table["score"].combine_chunks()
        wanted = self._wanted = pc.unique(keys)
        self.wanted = len(wanted)
        self.absent = pc.index_in(wanted, value_set=self._keys).null_count
        held = pc.is_in(self._keys, value_set=wanted)
        first = pc.index(held, True).as_py()  # the first pool row of a wanted text gives the model version
        self.model_version: str | None = table["model_version"][first].as_py() if first >= 0 else None

    def scores(self, keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """The score of each text key (infinity for a text without one: it goes last)."""
        found = pc.take(self._scores, pc.index_in(keys, value_set=self._keys))
        return pc.fill_null(found, math.inf).to_numpy(zero_copy_only=False).astype(np.float64)

    def rows_for(self, keys: Iterable[str]) -> PoolRows:
        """The pool's rows of the texts `keys` that the corpus holds, read batch by batch (memory per batch, then
        per row kept)."""
        wanted = pa.array(sorted(set(keys)), pa.string())
        wanted = pc.filter(wanted, pc.is_in(wanted, value_set=self._wanted))
        parts = []
        if len(wanted) and self.path.exists():
            for batch in pq.ParquetFile(self.path).iter_batches(batch_size=WRITE_BATCH):
                kept = batch.filter(pc.is_in(batch.column("key"), value_set=wanted))
                if kept.num_rows:
                    parts.append(kept)
        return PoolRows(pa.Table.from_batches(parts, schema=SCHEMA) if parts else SCHEMA.empty_table())


class PoolRows:
    """Some of the pool's rows, kept as columns; their predictions are made when asked for, a few at a time."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self._keys = table["key"].combine_chunks()

    def predictions(self, keys: Iterable[str]) -> dict[str, Prediction]:
        """The prediction of each of `keys` these rows hold."""
        wanted = pa.array(list(dict.fromkeys(keys)), pa.string())
        rows = pc.drop_null(pc.index_in(wanted, value_set=self._keys))
        found = {}
        for row in self.table.take(rows).to_pylist():
            spans = tuple(Span(s["start"], s["end"], s["label"], s["text"]) for s in row["spans"])
            found[row["key"]] = Prediction(key=row["key"], model_version=row["model_version"], spans=spans,
                                           score=row["score"])  # fmt: skip
        return found


def _columns(path: Path, names: list[str]) -> pa.Table:
    """Some columns of the pool (none if there is no pool)."""
    if not path.exists():
        return SCHEMA.empty_table().select(names)
    return pq.read_table(path, columns=names, schema=SCHEMA)


def choose_next(
    candidates: Sequence[Paragraph], scores: dict[str, float | None], n: int, article_share: float
) -> list[Paragraph]:
    """The `n` candidates the model is least sure of (lowest score first; unscored ones last), taking at most
    `article_share` of `n` (at least one) from any one article while other articles have candidates left; ties
    go in corpus order."""
    values = np.array([_score(scores.get(p.text_key)) for p in candidates], dtype=np.float64)
    docs = np.unique(np.array([p.doc_id for p in candidates], dtype=object), return_inverse=True)[1]
    return [candidates[i] for i in choose_rows(values, docs, n, article_share)]


def choose_rows(scores: np.ndarray, docs: np.ndarray, n: int, article_share: float) -> list[int]:
    """`choose_next` on columns: each candidate's score (infinity: unscored) and article number; the positions
    chosen, lowest score first (ties in position order)."""
    cap = max(1, math.floor(n * article_share))
    order = np.lexsort((np.arange(len(scores)), scores))
    taken: list[int] = []
    per_article: Counter[int] = Counter()
    for i in order.tolist():
        if len(taken) == n:
            break
        if per_article[docs[i]] < cap:
            per_article[docs[i]] += 1
            taken.append(i)
    if len(taken) < n:  # the pool allows no better spread
        chosen = set(taken)
        taken += [i for i in order.tolist() if i not in chosen][: n - len(taken)]
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return sorted(taken, key=lambda i: rank[i])


def _score(score: float | None) -> float:
    return math.inf if score is None else score
