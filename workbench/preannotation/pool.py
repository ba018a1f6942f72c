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
    """The pool's scores and model versions (not its spans) as columns, and where each of a corpus's paragraphs
    has its row: what a push needs of every paragraph. The spans are read only for the texts a push sends
    (`rows_for`)."""

    def __init__(self, path: Path, keys: pa.Array | pa.ChunkedArray) -> None:
        self.path = path
        pool_keys, self._scores, versions = _columns(path)
        self.rows = _rows_of(keys, pool_keys)  # each paragraph's pool row (-1: the pool lacks its text)
        del pool_keys
        found = self.rows >= 0
        self._in_corpus = np.zeros(len(self._scores), dtype=bool)
        self._in_corpus[self.rows[found]] = True
        self.absent = self.wanted = 0
        if not found.all():
            self.absent = pc.count_distinct(pc.filter(keys, pa.array(~found))).as_py()
            self.wanted = pc.count_distinct(keys).as_py()
        # the first pool row of a wanted text gives the model version
        self.model_version: str | None = versions[int(self.rows[found].min())].as_py() if found.any() else None
        pa.default_memory_pool().release_unused()

    def scores(self, paragraphs: np.ndarray) -> np.ndarray:
        """The score of each of the corpus's paragraphs at `paragraphs` (infinity for one without: it goes last)."""
        rows = self.rows[paragraphs]
        if not len(self._scores):
            return np.full(len(rows), math.inf)
        found = self._scores[np.maximum(rows, 0)]
        return np.where((rows >= 0) & ~np.isnan(found), found, math.inf)

    def rows_for(self, paragraphs: np.ndarray, keys: Iterable[str] = ()) -> PoolRows:
        """The pool's rows of the corpus's paragraphs at `paragraphs` and of the texts `keys` the corpus holds,
        read batch by batch (memory per batch, then per row kept)."""
        held = self.rows[paragraphs]
        extra = pa.array(sorted(set(keys)), pa.string())
        wanted = np.zeros(len(self._scores), dtype=bool)
        wanted[held[held >= 0]] = True
        in_corpus = self._in_corpus
        parts, start = [], 0
        if self.path.exists() and (len(held) or len(extra)):
            for batch in pq.ParquetFile(self.path).iter_batches(batch_size=WRITE_BATCH):
                mine = pa.array(wanted[start : start + batch.num_rows])
                if len(extra):
                    named = pc.and_(pc.is_in(batch.column("key"), value_set=extra),
                                    pa.array(in_corpus[start : start + batch.num_rows]))  # fmt: skip
                    mine = pc.or_(mine, named)
                start += batch.num_rows
                kept = batch.filter(mine)
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


def _rows_of(keys: pa.Array | pa.ChunkedArray, pool_keys: np.ndarray | pa.Array) -> np.ndarray:
    """Where each of `keys` is among the pool's keys (its first row; -1 if absent): as 64-bit numbers, sorted, when
    the pool's keys are (`_columns`), a tenth of the memory of a hash table of the strings; else Arrow's hash join."""
    mine = _hex64(keys) if isinstance(pool_keys, np.ndarray) else None
    if mine is None:
        theirs = pool_keys if not isinstance(pool_keys, np.ndarray) else pa.array([], pa.string())
        found = pc.index_in(keys, value_set=theirs)
        return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(pool_keys, kind="stable")
    ranked = pool_keys[order]
    at = np.minimum(np.searchsorted(ranked, mine), max(len(ranked) - 1, 0))
    hit = ranked[at] == mine if len(ranked) else np.zeros(len(mine), dtype=bool)
    del ranked
    return np.where(hit, order[at] if len(order) else 0, -1)


_HEX = np.full(256, 255, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789", dtype=np.uint8)] = np.arange(10)
_HEX[np.frombuffer(b"abcdef", dtype=np.uint8)] = np.arange(10, 16)


def _hex64(column: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """Keys of 16 lowercase hex digits as 64-bit numbers, a chunk at a time (None if any key is not one)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out = np.empty(len(column), dtype=np.uint64)
    at = 0
    for chunk in chunks:
        for start in range(0, len(chunk), 1 << 16):
            part = _hex64_part(chunk.slice(start, 1 << 16))
            if part is None:
                return None
            out[at : at + len(part)] = part
            at += len(part)
    return out


def _hex64_part(array: pa.Array) -> np.ndarray | None:
    if array.null_count or not pa.types.is_string(array.type):
        return None
    if not len(array):
        return np.zeros(0, dtype=np.uint64)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset : array.offset + len(array) + 1]
    if not (np.diff(offsets) == 16).all():
        return None
    digits = _HEX[np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(-1, 16)]
    if (digits == 255).any():
        return None
    value = np.zeros(len(array), dtype=np.uint64)
    for column_digits in digits.T:
        value = (value << np.uint64(4)) | column_digits
    return value


def _columns(path: Path) -> tuple[np.ndarray | pa.Array, np.ndarray, pa.ChunkedArray]:
    """The pool's keys (as 64-bit numbers when they are all text keys, else as strings), scores (NaN: none) and
    model versions (dictionary-encoded), read a row group at a time (none if there is no pool)."""
    versions_type = pa.dictionary(pa.int32(), pa.string())
    if not path.exists():
        return np.zeros(0, dtype=np.uint64), np.zeros(0), pa.chunked_array([], versions_type)
    pool = pq.ParquetFile(path)
    numbers: np.ndarray | None = np.empty(pool.metadata.num_rows, dtype=np.uint64)
    scores, versions, at = [], [], 0
    for batch in pool.iter_batches(batch_size=1 << 16, columns=["key", "model_version", "score"]):
        part = _hex64_part(batch.column("key")) if numbers is not None else None
        if part is None:
            numbers = None  # not every key is a text key: they are read again as strings
        else:
            numbers[at : at + len(part)] = part
        at += batch.num_rows
        scores.append(pc.fill_null(batch.column("score").cast(pa.float64()), math.nan).to_numpy(zero_copy_only=False))
        versions.append(pc.dictionary_encode(batch.column("model_version")))
    score = np.concatenate(scores) if scores else np.zeros(0)
    found = pa.chunked_array(versions, versions_type)
    if numbers is None:
        return pq.read_table(path, columns=["key"]).column("key").combine_chunks(), score, found
    return numbers, score, found


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
    for start in range(0, len(order), 4096):  # the lowest scores first, until `n` are taken
        for i in order[start : start + 4096].tolist():
            if len(taken) < n and per_article[docs[i]] < cap:
                per_article[docs[i]] += 1
                taken.append(i)
        if len(taken) == n:
            break
    if len(taken) < n:  # the pool allows no better spread
        chosen = set(taken)
        taken += [i for i in order.tolist() if i not in chosen][: n - len(taken)]
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return sorted(taken, key=lambda i: rank[i])


def _score(score: float | None) -> float:
    return math.inf if score is None else score
