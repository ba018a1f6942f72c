"""A release's rows and figures from a snapshot, rebuilding only the tasks its parent's row cache does not hold.

Every task of the snapshot gets its row hash (`rowcache.row_hash`). A task whose hash the parent's row cache
holds gives what it gave the parent: its row (taken from the parent's files by the writer and the draft) and its
share of the figures (from the cache). Every other task is built (`build.RowBuilder`, in worker processes when
there are many). The figures are then summed from every task's share in one place, whichever way each share came,
so a release built with reuse publishes what a full rebuild publishes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbench.config import Config
from workbench.pipeline import pipeline_version, resolve
from workbench.project import file_sha256
from workbench.release.draft import ReleaseDraft
from workbench.release.rowcache import ParentParts, RowCache, Unusable, row_hash
from workbench.rows.builder import Build, Key, RowBuilder, Tally, processes_for
from workbench.sync.snapshots import (
    LINES,
    Snapshot,
    check_digest,
    check_intact,
    checked_task,
    iter_export,
    iter_placed_lines,
    line_id,
    lines_at,
    task_line,
)

Progress = Callable[[int], None]


@dataclass
class Assembly:
    """What the build of a release gave: figures, where the rows came from, and the next row cache's records."""

    build: Build
    reused_tasks: int
    built_tasks: int
    reused_rows: frozenset[str]
    keys: list[Key]
    records: pa.Table  # one per task, snapshot order: hash, task_id, row_id, doc_id, key_ids, values, lists


def assemble(
    snapshot: Snapshot,
    config: Config,
    root: Path,
    draft: ReleaseDraft,
    context: bytes,
    previous: tuple[RowCache, ParentParts] | None,
    progress: Progress | None = None,
) -> Assembly:
    """Build the release's rows into `draft` and sum its figures, reusing `previous` (the parent's cache and
    files) for every task whose row hash it holds. `root` is the project's folder (the pipeline may be in it)."""
    hashes, task_ids, offsets = _hashes(snapshot, context)
    cache, parent = previous if previous else (None, None)
    found = [cache.index.get(h, -1) for h in hashes] if cache else [-1] * len(hashes)
    if cache and parent and not _usable(cache, parent, found):
        cache = parent = None
        found = [-1] * len(hashes)
    to_build = [position for position, index in enumerate(found) if index < 0]
    ledger = _Ledger()
    builder = RowBuilder.for_config(config, root) if to_build else None
    built_rows: list[tuple[str | None, str | None]] = []
    if builder is not None:
        tasks = _tasks_at(snapshot, to_build, offsets, progress)
        positions = iter(to_build)
        for chunk in builder.chunks(tasks, processes=processes_for(len(to_build))):
            for row in chunk.rows:
                position = next(positions)
                if row is not None:
                    draft.add(row, position)
                built_rows.append((row.id, row.doc_id) if row is not None else (None, None))
            ledger.add_chunk(chunk)
    elif progress:
        progress(len(hashes))
    reused = [(position, index) for position, index in enumerate(found) if index >= 0]
    records = _records(hashes, task_ids, to_build, built_rows, ledger, cache, reused)
    del hashes, found, offsets
    pa.default_memory_pool().release_unused()
    reused_rows: frozenset[str] = frozenset()
    if cache is not None and parent is not None and reused:
        reused_rows = _reuse_rows(draft, parent, records, [position for position, _ in reused])
    tally = ledger.tally(records)
    model_version = builder.model_version if builder is not None else pipeline_version(resolve(config.model.name, root))
    return Assembly(
        build=tally.figures(config.labels, model_version),
        reused_tasks=len(reused),
        built_tasks=len(to_build),
        reused_rows=reused_rows,
        keys=ledger.keys,
        records=records,
    )


def _hashes(snapshot: Snapshot, context: bytes) -> tuple[list[bytes], list[int], list[int]]:
    """Every task's row hash, id and (`lines` layout) line offset, in snapshot order; a `lines` snapshot is hashed
    without parsing a task, its sha256 checked in a thread meanwhile (hashlib lets go of the GIL)."""
    hashes, ids, offsets = [], [], []
    if snapshot.layout == LINES:
        with ThreadPoolExecutor(1, thread_name_prefix="snapshot-sha256") as worker:
            whole = worker.submit(file_sha256, snapshot.path)
            for offset, line in iter_placed_lines(snapshot.path):
                hashes.append(row_hash(context, line))
                ids.append(line_id(line))
                offsets.append(offset)
            try:
                digest = whole.result()
            except OSError:
                digest = ""
        check_digest(snapshot, digest)
    else:
        check_intact(snapshot)
        for task in iter_export(snapshot.path):
            hashes.append(row_hash(context, task_line(task)))
            ids.append(task["id"])
    return hashes, ids, offsets


def _tasks_at(
    snapshot: Snapshot, positions: list[int], offsets: list[int], progress: Progress | None
) -> Iterator[dict[str, Any]]:
    """The tasks at `positions` (in order) of the snapshot, parsed and checked; every task is reported, the ones
    not built at once."""
    if progress:
        progress(len(offsets or []) - len(positions) if offsets else 0)
    if snapshot.layout == LINES:
        for position, line in zip(positions, lines_at(snapshot.path, (offsets[p] for p in positions)), strict=True):
            if progress:
                progress(1)
            yield checked_task(json.loads(line), position, snapshot.path)
        return
    wanted = set(positions)
    for position, task in enumerate(iter_export(snapshot.path)):
        if progress:
            progress(1)
        if position in wanted:
            yield task


def _usable(cache: RowCache, parent: ParentParts, found: list[int]) -> bool:
    """Every reused task's row is in the parent's files (a cache that says otherwise is not used)."""
    wanted = pc.take(cache.table.column("row_id"), pa.array([i for i in found if i >= 0], pa.int64()))
    wanted = pc.drop_null(wanted).to_pylist()
    return all(row_id in parent.position for row_id in wanted)


class _Ledger:
    """Every built task's share of the figures, over one key table that the cache's keys join."""

    def __init__(self) -> None:
        self.keys: list[Key] = []
        self.numbers: dict[Key, int] = {}
        self.offsets: list[int] = [0]
        self.key_ids: list[int] = []
        self.values: list[int] = []
        self.lists: list[str | None] = []

    def number(self, key: Key) -> int:
        found = self.numbers.get(key)
        if found is None:
            found = self.numbers[key] = len(self.keys)
            self.keys.append(key)
        return found

    def add_chunk(self, chunk: Any) -> None:
        remap = [self.number(key) for key in chunk.keys]
        self.key_ids += [remap[number] for number in chunk.key_ids]
        self.values += chunk.values
        base = self.offsets[-1]
        self.offsets += [base + offset for offset in chunk.offsets[1:]]
        self.lists += [json.dumps(lists) if lists else None for lists in chunk.lists]

    def tally(self, records: pa.Table) -> Tally:
        """The sum of every task's share (built and reused), lists in snapshot order."""
        key_ids = pc.list_flatten(records.column("key_ids")).to_numpy(zero_copy_only=False)
        values = pc.list_flatten(records.column("values")).to_numpy(zero_copy_only=False)
        totals = np.zeros(len(self.keys), dtype=np.int64)
        np.add.at(totals, key_ids, values)
        tally = Tally()
        tally.add({key: int(n) for key, n in zip(self.keys, totals.tolist(), strict=True) if n})
        for lists in pc.drop_null(records.column("lists")).to_pylist():
            tally.add({}, json.loads(lists))
        return tally


def _records(
    hashes: list[bytes], task_ids: list[int], to_build: list[int], built_rows: list[tuple[str | None, str | None]],
    ledger: _Ledger, cache: RowCache | None, reused: list[tuple[int, int]],
) -> pa.Table:
    """One record per task, in snapshot order, with key numbers of the ledger's key table."""
    offsets = pa.array(ledger.offsets, pa.int32())
    built = pa.table({
        "position": pa.array(to_build, pa.int64()),
        "row_id": pa.array([row_id for row_id, _ in built_rows], pa.string()),
        "doc_id": pa.array([doc_id for _, doc_id in built_rows], pa.string()),
        "key_ids": pa.ListArray.from_arrays(offsets, pa.array(ledger.key_ids, pa.int32())),
        "values": pa.ListArray.from_arrays(offsets, pa.array(ledger.values, pa.int64())),
        "lists": pa.array(ledger.lists, pa.string()),
    })  # fmt: skip
    parts = [built]
    if cache is not None and reused:
        old = cache.table.take(pa.array([index for _, index in reused], pa.int64()))
        remap = np.array([ledger.number(key) for key in cache.keys] or [0], dtype=np.int32)
        key_ids = old.column("key_ids").combine_chunks()
        moved = remap[key_ids.flatten().to_numpy(zero_copy_only=False)]
        relative = pc.subtract(key_ids.offsets, key_ids.offsets[0])
        parts.append(pa.table({
            "position": pa.array([position for position, _ in reused], pa.int64()),
            "row_id": old.column("row_id"),
            "doc_id": old.column("doc_id"),
            "key_ids": pa.ListArray.from_arrays(relative, pa.array(moved, pa.int32())),
            "values": old.column("values").combine_chunks(),
            "lists": old.column("lists"),
        }))  # fmt: skip
    table = pa.concat_tables(parts)
    table = table.take(pc.sort_indices(table.column("position")))
    return table.drop_columns(["position"]).append_column(
        "hash", pa.array(hashes, pa.binary(16))
    ).append_column("task_id", pa.array(task_ids, pa.int64()))


def _reuse_rows(draft: ReleaseDraft, parent: ParentParts, records: pa.Table, positions: list[int]) -> frozenset[str]:
    """Hand the draft the parent's rows of the reused tasks, with their places in the snapshot."""
    reused = records.take(pa.array(positions, pa.int64()))
    has_row = pc.is_valid(reused.column("row_id"))
    row_ids = pc.filter(reused.column("row_id"), has_row)
    where = pc.index_in(row_ids, value_set=parent.rows.column("id"))
    if where.null_count:
        raise Unusable("a reused row is not in the parent release")  # checked by `_usable` before any build
    rows_positions = pc.filter(pa.array(positions, pa.int64()), has_row).to_pylist()
    draft.reuse(parent.rows, rows_positions, where.to_numpy(zero_copy_only=False))
    parent.rows = parent.rows.slice(0, 0)  # handed over: the draft holds the parent's table until it is placed
    return frozenset(row_ids.to_pylist())
