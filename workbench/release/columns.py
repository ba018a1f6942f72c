"""Rows checked and packed into Arrow columns: ~2 KB a paragraph, instead of GBs of Python objects.

The release refuses rather than repairs: a span whose text does not match its offsets, or a tag of a label
outside the config, means an earlier stage has a bug that a trained model would inherit. Tags are packed as ids
of the config's IOB2 names while rows stream in; once the parent release is known, they are moved to the final
ClassLabel ids in one vectorised step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from workbench.errors import ReleaseError
from workbench.records import Row, Span
from workbench.release.schema import release_features
from workbench.spans.alignment import iob_names

# Rows are converted to Arrow this many at a time: ~1 KB a paragraph column-wise against ~20 KB as objects.
BATCH_ROWS = 1000
MAX_SHOWN = 5
_FIELDS = [f.name for f in fields(Row)]


class RowPacker:
    """Checks rows one at a time and keeps them as Arrow record batches; nothing is written."""

    def __init__(self, labels: Sequence[str], label_mapping: Mapping[str, str] | None = None) -> None:
        self.labels = set(labels)
        self.mapping = dict(label_mapping or {})
        self.names = iob_names(labels)  # the provisional tag ids; see `table`
        self._tag_ids = {name: i for i, name in enumerate(self.names)}
        self._schema = release_features(self.names).arrow_schema
        self._batches: list[pa.RecordBatch] = []
        self._pending: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self.problems: list[str] = []

    @property
    def rows(self) -> int:
        return len(self._seen)

    def add(self, row: Row) -> bool:
        """Check one row; keep it (True), or remember why it cannot be released."""
        problem = self._problem(row)
        if problem:
            self.problems.append(problem)
            return False
        self.seen(row.id)
        self._pending.append(self._record(row))
        if len(self._pending) == BATCH_ROWS:
            self._flush()
        return True

    def seen(self, row_id: str) -> None:
        """Count a row id kept (here or elsewhere); a second one is a problem."""
        if row_id in self._seen:
            self.problems.append(f"row {row_id!r} appears twice")
        self._seen.add(row_id)

    def table(self, names: Sequence[str]) -> pa.Table:
        """Every row kept, with tags as ids of the ClassLabel `names` (a superset of the config's IOB2 names).

        Refused, naming the first few, if any row had a problem."""
        if self.problems:
            shown = "; ".join(self.problems[:MAX_SHOWN])
            more = f"; and {len(self.problems) - MAX_SHOWN} more" if len(self.problems) > MAX_SHOWN else ""
            raise ReleaseError(
                f"{len(self.problems)} row(s) cannot be released: {shown}{more}. A label outside the config needs "
                "to be added to labels or mapped in label_mapping; any other problem is a bug in the build step, "
                "so report it with the snapshot file."
            )
        self._flush()
        table = pa.Table.from_batches(self._batches, schema=self._schema)
        self._batches = []
        return _with_class_labels(table, self.names, names)

    def _flush(self) -> None:
        if self._pending:
            self._batches.append(pa.RecordBatch.from_pylist(self._pending, schema=self._schema))
            self._pending = []

    def _problem(self, row: Row) -> str:
        unknown: set[str] = set()
        for tag in row.ner_tags:
            if tag not in self._tag_ids:
                if not isinstance(tag, str) or not (tag == "O" or tag[:2] in ("B-", "I-")):
                    return f"row {row.id!r} has tag {tag!r}, which is not IOB2 (O, B-LABEL or I-LABEL)"
                unknown.add(tag[2:])
        if len(row.ner_tags) != len(row.tokens):
            return f"row {row.id!r} has {len(row.tokens)} tokens but {len(row.ner_tags)} tags"
        for span in row.spans:
            if not (0 <= span.start < span.end <= len(row.text)) or row.text[span.start : span.end] != span.text:
                return f"row {row.id!r} has span {span.as_dict()!r} whose text is not text[start:end]"
        unknown |= {span.label for span in row.spans} - self.labels
        if unknown:
            renamed = sorted(label for label in unknown if label in self.mapping)
            if renamed:  # rows reach a release mapped (the build maps them); these were not
                return (f"row {row.id!r} uses label(s) {', '.join(renamed)}, which label_mapping renames: the rows "
                        "were not made by the workbench's build")  # fmt: skip
            return f"row {row.id!r} uses label(s) {', '.join(sorted(unknown))} not in the config's labels"
        return ""

    def _record(self, row: Row) -> dict[str, Any]:
        record = {name: getattr(row, name) for name in _FIELDS}
        record["ner_tags"] = [self._tag_ids[tag] for tag in row.ner_tags]
        record["spans"] = [span.as_dict() for span in row.spans]
        return record


def _with_class_labels(table: pa.Table, provisional: Sequence[str], names: Sequence[str]) -> pa.Table:
    """`table` with its tag ids moved from `provisional` names to the final ClassLabel `names`."""
    schema = release_features(names).arrow_schema
    if list(provisional) == list(names[: len(provisional)]):
        return table.cast(schema)  # ids unchanged: only the ClassLabel names in the schema grow
    final = {name: i for i, name in enumerate(names)}
    moved = pa.array([final[name] for name in provisional], pa.int64())
    column = table.column("ner_tags").combine_chunks()
    offsets = pc.subtract(column.offsets, column.offsets[0])
    remapped = pa.ListArray.from_arrays(offsets, pc.take(moved, column.flatten()))
    index = table.schema.get_field_index("ner_tags")
    return table.set_column(index, schema.field(index), remapped).cast(schema)


def row_of(record: dict[str, Any], names: Sequence[str]) -> Row:
    """A release row read back from Arrow (tags as ClassLabel ids) as a `Row`."""
    return Row(
        **{
            **record,
            "tokens": tuple(record["tokens"]),
            "ner_tags": tuple(names[i] for i in record["ner_tags"]),
            "spans": tuple(Span(**span) for span in record["spans"]),
            "annotation_ids": tuple(record["annotation_ids"]),
            "annotators": tuple(record["annotators"]),
        }
    )
