"""Each row's spaCy and CoNLL pieces: what a release's DocBin and CoNLL files are made of, kept per row beside the
release so the next release reuses them a shard at a time, and a DocBin written from them as spaCy writes one.

A DocBin file is zlib(msgpack({version, attrs, tokens, spaces, lengths, strings, cats, flags, span_groups,
user_data})), as `DocBin.to_bytes` makes it. `DocBinStream` writes the same bytes from shards: each doc's entry is
kept as bytes already in its final form (token and space arrays, the packed cats, flags, span groups and user
data), joined once at the end and fed to the compressor in pieces (zlib gives the same bytes fed in pieces as at
once; tested), without the copies `to_bytes` makes of the token arrays.

The pieces file (`.workbench/release-cache/<dataset>/<version>.pieces.arrow`, local state beside the row cache)
is an Arrow IPC file with one record batch per shard, its rows in the order of the release's parquet files (split
by split), each row's DocBin entry as above and its CoNLL lines (without the -DOCSTART- block). Its metadata holds
the strings of the release's DocBins and each batch's size, and it is bound to the row cache written with it.
"""

from __future__ import annotations

import contextlib
import json
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import srsly
from spacy.attrs import ENT_TYPE, ORTH
from spacy.strings import StringStore

FORMAT = "workbench-release-pieces/1"
PIECES = pa.schema([
    ("id", pa.string()),
    ("tokens", pa.binary()),  # the doc's token attribute array (uint64, one row per token), C order
    ("spaces", pa.binary()),  # its trailing-space flags (bool, one per token)
    ("cats", pa.binary()),  # msgpack, as DocBin packs them
    ("flags", pa.binary()),
    ("span_groups", pa.binary()),
    ("user_data", pa.binary()),
    ("conll", pa.string()),
])  # fmt: skip
_FEED = 1 << 22  # bytes handed to the compressor at a time


class Unreadable(Exception):
    """The pieces file cannot be used; the message says why."""


def pack(value: Any) -> bytes:
    """`value` in msgpack as srsly packs it inside a DocBin."""
    return srsly.msgpack_dumps(value)


def bin_header(size: int) -> bytes:
    """The msgpack header of a binary value of `size` bytes."""
    if size < 1 << 8:
        return struct.pack(">BB", 0xC4, size)
    if size < 1 << 16:
        return struct.pack(">BH", 0xC5, size)
    return struct.pack(">BI", 0xC6, size)


def array_header(count: int) -> bytes:
    """The msgpack header of an array of `count` values."""
    if count < 16:
        return bytes([0x90 | count])
    if count < 1 << 16:
        return struct.pack(">BH", 0xDC, count)
    return struct.pack(">BI", 0xDD, count)


def pieces_batch(rows: Sequence[tuple[Any, ...]]) -> pa.RecordBatch:
    """A shard's pieces: one (id, tokens, spaces, cats, flags, span_groups, user_data, conll) per row."""
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in PIECES.names]
    return pa.RecordBatch.from_arrays([pa.array(list(values), type_) for values, type_ in
                                       zip(columns, PIECES.types, strict=True)], schema=PIECES)  # fmt: skip


def entry(docbin_fields: dict[str, Any], i: int, row_id: str, conll: str) -> tuple[Any, ...]:
    """Doc `i` of a DocBin (its lists, as `DocBin.add` fills them) as a row of pieces."""
    return (row_id, np.ascontiguousarray(docbin_fields["tokens"][i]).tobytes(),
            np.ascontiguousarray(docbin_fields["spaces"][i], dtype=bool).tobytes(), pack(docbin_fields["cats"][i]),
            pack(docbin_fields["flags"][i]), pack(docbin_fields["span_groups"][i]),
            pack(docbin_fields["user_data"][i]), conll)  # fmt: skip


def values_of(column: pa.Array) -> memoryview:
    """The bytes of a binary column's values, one after the other (no copy)."""
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset : column.offset + len(column) + 1]
    data = column.buffers()[2]
    return memoryview(data)[int(offsets[0]) : int(offsets[-1])] if data is not None else memoryview(b"")


def _sizes(column: pa.Array) -> np.ndarray:
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset : column.offset + len(column) + 1]
    return np.diff(offsets)


@dataclass
class DocBinStream:
    """One split's DocBin, written from its shards' pieces as `DocBin.to_bytes` would write it."""

    attrs: list[int]
    version: str
    parts: dict[str, list[Any]] = field(default_factory=lambda: {name: [] for name in PIECES.names[1:7]})
    lengths: list[np.ndarray] = field(default_factory=list)
    strings: set[str] = field(default_factory=set)
    docs: int = 0

    def add(self, batch: pa.RecordBatch, strings: Iterable[str]) -> None:
        """A shard's pieces, in order, and the strings its docs use."""
        for name in self.parts:
            self.parts[name].append(values_of(batch.column(name)))
        self.lengths.append(_sizes(batch.column("tokens")) // (8 * len(self.attrs)))
        self.strings.update(strings)
        self.docs += batch.num_rows

    def write(self, handle: BinaryIO) -> None:
        """Compress and write the DocBin (the pieces are let go on the way)."""
        compressor = zlib.compressobj()
        lengths = np.concatenate(self.lengths).astype(np.int32).tobytes() if self.lengths else b""
        tokens, spaces = self.parts.pop("tokens"), self.parts.pop("spaces")
        head = [bytes([0x8A]), pack("version"), pack(self.version), pack("attrs"), pack(self.attrs), pack("tokens"),
                bin_header(sum(len(part) for part in tokens))]  # fmt: skip
        for piece in [*head, *tokens, pack("spaces"), bin_header(sum(len(part) for part in spaces)), *spaces,
                      pack("lengths"), bin_header(len(lengths)), lengths, pack("strings"),
                      pack(sorted(self.strings))]:  # fmt: skip
            _feed(compressor, handle, piece)
        for name in ("cats", "flags", "span_groups", "user_data"):
            _feed(compressor, handle, pack(name) + array_header(self.docs))
            for part in self.parts.pop(name):
                _feed(compressor, handle, part)
        handle.write(compressor.flush())


def _feed(compressor: Any, handle: BinaryIO, data: bytes | memoryview) -> None:
    for start in range(0, len(data), _FEED):
        handle.write(compressor.compress(data[start : start + _FEED]))


# ---- the pieces file -------------------------------------------------------------------------------------------


class PiecesWriter:
    """Writes a release's pieces file, a shard's batch at a time; `close` records the strings and batch sizes."""

    def __init__(self, path: Path, stamp: str) -> None:
        self.path = path
        self.stamp = stamp
        self._sink = pa.OSFile(str(path), "wb")
        self._writer = pa.ipc.new_file(self._sink, PIECES)
        self.sizes: list[int] = []

    def add(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)
        self.sizes.append(batch.num_rows)

    def close(self, strings: Iterable[str]) -> None:
        """End the file; its strings, sizes and `stamp` (what binds it to its row cache) go into a last, empty
        batch's metadata."""
        meta = {"format": FORMAT, "stamp": self.stamp, "sizes": json.dumps(self.sizes),
                "strings": json.dumps(sorted(strings), ensure_ascii=False)}  # fmt: skip
        self._writer.write_batch(pieces_batch([]), custom_metadata=meta)
        self._writer.close()
        self._sink.close()

    def abandon(self) -> None:
        """Let the file go (a release that failed): closed if it was not, removed."""
        for close in (self._writer.close, self._sink.close):
            with contextlib.suppress(OSError, ValueError, pa.ArrowException):
                close()
        self.path.unlink(missing_ok=True)


@dataclass
class Pieces:
    """A release's pieces file, read a batch at a time (each process keeps the last batch it read)."""

    path: Path
    starts: np.ndarray  # each batch's first row
    strings: StringStore
    _cached: tuple[int, pa.RecordBatch] | None = None

    @classmethod
    def open(cls, path: Path, stamp: str, rows: int) -> Pieces:
        """The pieces file at `path`, if it is the one written with the row cache (`stamp`) for `rows` rows."""
        try:
            with pa.OSFile(str(path), "rb") as source:
                reader = pa.ipc.open_file(source)
                last = reader.get_batch_with_custom_metadata(reader.num_record_batches - 1)
            meta = {k.decode(): v.decode() for k, v in (last.custom_metadata or {}).items()}
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise Unreadable(f"its pieces cannot be read ({type(exc).__name__})") from None
        if meta.get("format") != FORMAT or meta.get("stamp") != stamp or reader.schema != PIECES:
            raise Unreadable("its pieces are not the ones written with its row cache")
        sizes = np.array(json.loads(meta["sizes"]), dtype=np.int64)
        if int(sizes.sum()) != rows or len(sizes) != reader.num_record_batches - 1:
            raise Unreadable("its pieces do not hold one entry per row")
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1])) if len(sizes) else np.zeros(0, dtype=np.int64)
        return cls(path=path, starts=starts, strings=StringStore(json.loads(meta["strings"])))

    def take(self, positions: Sequence[int]) -> pa.Table:
        """The pieces at `positions` (rows of the file), in that order, reading only the batches that hold them."""
        if not len(positions):
            return PIECES.empty_table()
        where = np.asarray(positions, dtype=np.int64)
        batch_of = np.searchsorted(self.starts, where, side="right") - 1
        parts, order = [], []
        for number in np.unique(batch_of).tolist():
            chosen = np.flatnonzero(batch_of == number)
            batch = self._batch(number)
            parts.append(batch.take(pa.array(where[chosen] - self.starts[number])))
            order.append(chosen)
        table = pa.Table.from_batches(parts, schema=PIECES)
        return table.take(pa.array(np.argsort(np.concatenate(order), kind="stable")))

    def strings_of(self, tokens: Iterable[bytes | memoryview], attrs: Sequence[int], labels: Iterable[str]) -> set[str]:
        """The strings `DocBin.add` records for docs with these token arrays (of the DocBin attributes `attrs`):
        every token's text and entity label (ORTH, ENT_TYPE), the spans' labels, and the empty string."""
        found = {"", *labels}
        arrays = [np.frombuffer(data, dtype=np.uint64) for data in tokens if len(data)]
        if arrays:
            columns = [i for i, attr in enumerate(attrs) if attr in (ORTH, ENT_TYPE)]
            values = np.concatenate(arrays).reshape(-1, len(attrs))[:, columns]
            for value in np.unique(values).tolist():
                if value:
                    found.add(self.strings[value])
        return found

    def _batch(self, number: int) -> pa.RecordBatch:
        if self._cached is None or self._cached[0] != number:
            with pa.OSFile(str(self.path), "rb") as source:
                self._cached = (number, pa.ipc.open_file(source).get_batch(number))
        return self._cached[1]
