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


def reusable(path: Path, model_version: str, label_set: str, keys: Iterable[str]) -> pa.Table:
    """The pool's rows made by this model version for this label set, for the texts `keys` (a damaged pool
    reuses nothing: every text is pre-annotated again)."""
    empty = SCHEMA.empty_table()
    if not path.exists():
        return empty
    try:
        table = pq.read_table(path, schema=SCHEMA)
    except (OSError, pa.ArrowException):
        return empty
    same = pc.and_(pc.equal(table["model_version"], model_version), pc.equal(table["label_set"], label_set))
    wanted = pc.is_in(table["key"], value_set=pa.array(sorted(set(keys)), pa.string()))
    return table.filter(pc.and_(same, wanted))


def pool_keys(path: Path) -> set[str]:
    """The text keys the pool holds a prediction for (only that column is read); none if there is no pool."""
    if not path.exists():
        return set()
    try:
        return set(pq.read_table(path, columns=["key"]).column("key").to_pylist())
    except (OSError, pa.ArrowException):
        return set()


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


def choose_next(
    candidates: Sequence[Paragraph], scores: dict[str, float | None], n: int, article_share: float
) -> list[Paragraph]:
    """The `n` candidates the model is least sure of (lowest score first; unscored ones last), taking at most
    `article_share` of `n` (at least one) from any one article while other articles have candidates left; ties
    go in corpus order."""
    cap = max(1, math.floor(n * article_share))
    order = sorted(range(len(candidates)), key=lambda i: (_score(scores.get(candidates[i].text_key)), i))
    taken: list[int] = []
    per_article: Counter[str] = Counter()
    for i in order:
        if len(taken) < n and per_article[candidates[i].doc_id] < cap:
            per_article[candidates[i].doc_id] += 1
            taken.append(i)
    chosen = set(taken)
    taken += [i for i in order if i not in chosen][: n - len(taken)]  # the pool allows no better spread
    return [candidates[i] for i in sorted(taken, key=lambda i: (_score(scores.get(candidates[i].text_key)), i))]


def _score(score: float | None) -> float:
    return math.inf if score is None else score
