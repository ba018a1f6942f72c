"""Writing a release folder: a hidden staging folder, parquet per split, spaCy DocBins and CoNLL made in shards
(in forked workers on large releases), the card and the manifest, every file fsynced, then one rename.

A release folder is either complete or absent: an interrupted release leaves only a hidden
`.<version>.tmp-<pid>` folder, removed by the next release.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from spacy.tokens import DocBin
from spacy.vocab import Vocab

from workbench.errors import ReleaseError
from workbench.parallel import choose_processes, fork_pool, ordered_map
from workbench.project import file_sha256, remove_stale_temps, temp_path
from workbench.release.card import front_matter, render_card
from workbench.release.changelog import update_changelog
from workbench.release.columns import BATCH_ROWS, row_of
from workbench.release.converters import msgpack_plugins_looked_up_once, row_to_conll, row_to_doc
from workbench.release.draft import Prepared
from workbench.release.layout import (
    CARD,
    CHANGELOG,
    LABEL_FIGURE,
    MANIFEST,
    MANIFEST_CHECKSUM,
    conll_path,
    docbin_path,
    parquet_path,
)
from workbench.release.manifest import Counts, ReleaseContext, RowKeys, build_manifest, diff_keys
from workbench.release.pieces import PIECES, DocBinStream, PiecesWriter, entry, pieces_batch, values_of
from workbench.release.rowcache import ParentParts
from workbench.release.schema import release_features
from workbench.report.figures import release_label_distribution
from workbench.report.plots import draw
from workbench.splits import SPLITS

# What a NER DocBin needs (whitespace is always kept): the default set adds 9 unused arrays per token.
DOCBIN_ATTRS = ["ORTH", "ENT_IOB", "ENT_TYPE"]
# A split's DocBin and CoNLL text are made in shards of this many rows, in worker processes from
# PARALLEL_MIN_ROWS rows; shards are joined in order (DocBin.merge), so the files do not depend on the sharding.
SHARD_ROWS = 5_000
PARALLEL_MIN_ROWS = 4_000
_SORT_KEYS = [("doc_id", "ascending"), ("paragraph", "ascending"), ("id", "ascending")]
DOCSTART = "-DOCSTART- -X- -X- O\n\n"
# The split tables while their spaCy and CoNLL files are made, and what is reused from the parent: forked workers
# inherit them, nothing is pickled.
_parts: dict[str, pa.Table] = {}
_reuse: list[Reuse] = []


def write(
    releases_dir: Path, prepared: Prepared, ctx: ReleaseContext, reuse: Reuse | None = None,
    finish: Callable[[ReleaseContext], ReleaseContext] | None = None, pieces: PiecesWriter | None = None,
) -> Path:  # fmt: skip
    """Write `prepared` as release `ctx.version` into `releases_dir/<version>/`, update the changelog. The rows of
    `reuse.ids` take their spaCy and CoNLL pieces from the parent release instead of being converted again.
    `finish` completes the context once the data files are written, before the manifest (work done meanwhile
    elsewhere); if it raises, nothing is left. Every row's pieces go into `pieces`, for the next release."""
    if prepared.version != ctx.version:
        raise ValueError(f"rows prepared for release {prepared.version} cannot be written as {ctx.version}")
    try:
        _write_folder(releases_dir, prepared, ctx, reuse, finish, pieces)
    except OSError as exc:
        raise ReleaseError(
            f"Release {ctx.version} could not be written into {releases_dir} ({exc.strerror or exc}"
            f"{f': {exc.filename}' if exc.filename else ''}). Nothing was left behind: check the folder's permissions "
            "and the free space, then release again."
        ) from None
    target = releases_dir / ctx.version
    try:
        update_changelog(releases_dir, ctx.dataset)
    except OSError as exc:
        raise ReleaseError(
            f"Release {ctx.version} was written to {target} and is complete, but {releases_dir / CHANGELOG} could "
            f"not be updated ({exc}). Fix the cause; the missing entry is added at the next release."
        ) from None
    return target


@dataclass(frozen=True)
class Reuse:
    """Rows (by id) whose DocBin entry and CoNLL lines are the parent release's, and where to find those."""

    parent: ParentParts
    ids: frozenset[str]
    keys: RowKeys  # the parent's diff keys: a reused row's key is its parent's


def _write_folder(
    releases_dir: Path, prepared: Prepared, ctx: ReleaseContext, reuse: Reuse | None,
    finish: Callable[[ReleaseContext], ReleaseContext] | None, pieces: PiecesWriter | None,
) -> None:  # fmt: skip
    table, names = prepared.take_table(), prepared.names
    counts, new_keys, splits = Counts(ctx.labels), RowKeys(), {}
    with _staging_folder(releases_dir, ctx.version) as folder:
        order = pc.sort_indices(table, sort_keys=_SORT_KEYS)
        parts = {}
        for split in SPLITS:
            members = pa.array(sorted(d for d, s in prepared.membership.items() if s == split), pa.string())
            parts[split] = table.take(order.filter(pc.take(pc.is_in(table.column("doc_id"), value_set=members), order)))
            splits[split] = _write_parquet(folder, split, parts[split])
        del table, order
        strings = _write_spacy_and_conll(folder, parts, names, counts, new_keys, reuse, pieces)
        if pieces is not None:
            pieces.close(strings)
        if finish is not None:
            ctx = finish(ctx)
        prepared.written_keys = new_keys
        diff = diff_keys(prepared.parent_keys, new_keys) | {"renamed": prepared.renamed}
        manifest = build_manifest(
            ctx, names, prepared.membership, prepared.retired_membership, counts.result(), prepared.parent, diff
        )
        _write_file(folder / LABEL_FIGURE, draw(release_label_distribution(manifest)))
        data_files = {path: _file_entry(folder / path) for path in (parquet_path(s) for s in SPLITS)}
        sizes = {path: entry["size"] for path, entry in data_files.items()}
        front = front_matter(manifest, release_features(names), splits, sizes)
        _write_file(folder / CARD, render_card(front, manifest, data_files, figure=LABEL_FIGURE).encode("utf-8"))
        _write_manifest(folder, manifest)


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """The manifest, listing every file already written with its checksum, then the manifest's own checksum: the
    last files of a release before its folder is renamed into place."""
    written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    manifest["files"] = {relpath: _file_entry(folder / relpath) for relpath in written}
    manifest_bytes = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    _write_file(folder / MANIFEST, manifest_bytes)
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    _write_file(folder / MANIFEST_CHECKSUM, f"{digest}  {MANIFEST}\n".encode())


# ---- files ---------------------------------------------------------------------------------------------------


def _file_entry(path: Path) -> dict[str, Any]:
    return {"size": path.stat().st_size, "sha256": file_sha256(path)}


def _write_file(path: Path, data: bytes) -> None:
    """Write and fsync one release file, so the rename publishes complete files only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_file(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _staging_folder(releases_dir: Path, version: str) -> Iterator[Path]:
    """A hidden `.<version>.tmp-<pid>` folder to write the release into, renamed to `<version>` in one step when
    the block ends and removed if it fails, so a release folder is either complete or absent."""
    releases_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(releases_dir)
    target = releases_dir / version
    tmp = temp_path(target)
    try:
        tmp.mkdir()
        yield tmp
        _fsync_dir(tmp / "data")
        _fsync_dir(tmp)
        try:
            os.rename(tmp, target)
        except OSError as exc:
            raise ReleaseError(
                f"Release {version} could not be moved into place at {target} ({exc}); another release may have "
                "been written at the same time. Check the folder and release again with a new version."
            ) from None
        _fsync_dir(releases_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_parquet(folder: Path, split: str, part: pa.Table) -> dict[str, int]:
    """Write a split's rows as its parquet file; return its size in rows and in-memory bytes for the card."""
    path = folder / parquet_path(split)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(part, path, compression="snappy")
    _fsync_file(path)
    return {"num_examples": part.num_rows, "num_bytes": part.nbytes}


# ---- DocBin and CoNLL, in shards -------------------------------------------------------------------------------


@dataclass
class _Shard:
    """One shard's pieces (each row's DocBin entry and CoNLL lines, `pieces.PIECES`), the strings its docs use, its
    CoNLL text, and its rows counted for the manifest and the diff."""

    pieces: pa.RecordBatch
    strings: list[str]
    conll: str
    counts: Counts
    keys: RowKeys


def _make_shard(job: tuple[str, int, int, list[str], list[str]]) -> _Shard:
    """Rows `start:stop` of a split (in `_parts`) as pieces and CoNLL text; a reused row's pieces are read from the
    parent's pieces file, only the batches that hold them."""
    split, start, stop, names, labels = job
    table = _parts[split]
    previous_doc = table.column("doc_id")[start - 1].as_py() if start else None
    vocab = Vocab()
    docbin = DocBin(attrs=DOCBIN_ATTRS, store_user_data=True)  # the built rows' entries
    counts, keys = Counts(labels), RowKeys()
    reuse = _reuse[0] if _reuse else None
    built: list[tuple[Any, ...]] = []
    reused: list[int] = []  # the reused rows' places in the parent's pieces file
    order: list[int] = []  # each row's place in reused + built
    new_articles: list[bool] = []
    reused_labels: set[str] = set()
    with msgpack_plugins_looked_up_once():
        for batch in table.slice(start, stop - start).to_batches(max_chunksize=BATCH_ROWS):
            whole = None if reuse is not None else batch.to_pylist()  # with reuse, only built rows are read whole
            spans = batch.column("spans")
            span_labels = pc.struct_field(pc.list_flatten(spans), "label").to_pylist()
            bounds = pc.subtract(spans.offsets, spans.offsets[0]).to_pylist()
            light = zip(batch.column("id").to_pylist(), batch.column("doc_id").to_pylist(),
                        batch.column("annotators").to_pylist(), strict=True)  # fmt: skip
            for i, (row_id, doc_id, annotators) in enumerate(light):
                row_labels = span_labels[bounds[i] : bounds[i + 1]]
                new_articles.append(doc_id != previous_doc)
                previous_doc = doc_id
                counts.add(split, doc_id, annotators, row_labels)
                if reuse is not None and row_id in reuse.ids:
                    order.append(len(reused))
                    reused.append(reuse.parent.position[row_id])
                    reused_labels.update(row_labels)
                    keys.add_known(row_id, doc_id, reuse.keys.keys[row_id], row_labels)
                    continue
                record = whole[i] if whole is not None else batch.slice(i, 1).to_pylist()[0]
                row = row_of(record, names)
                docbin.add(row_to_doc(vocab, row))
                order.append(-1 - len(built))
                built.append((row.id, row_to_conll(row, False)))
                keys.add(row.id, row.doc_id, row.ner_tags, [(s.start, s.end, s.label, s.text) for s in row.spans])
        fields = {name: getattr(docbin, name) for name in ("tokens", "spaces", "cats", "flags", "span_groups",
                                                           "user_data")}  # fmt: skip
        made = pieces_batch([entry(fields, n, row_id, conll) for n, (row_id, conll) in enumerate(built)])
    strings = set(docbin.strings)
    parts = pa.Table.from_batches([made], schema=PIECES)
    if reused:
        taken = reuse.parent.pieces.take(reused)  # type: ignore[union-attr]
        strings |= reuse.parent.pieces.strings_of(  # type: ignore[union-attr]
            (values_of(chunk) for chunk in taken.column("tokens").chunks), docbin.attrs, reused_labels)
        parts = pa.concat_tables([taken, parts])
    places = np.array([n if n >= 0 else len(reused) + (-1 - n) for n in order], dtype=np.int64)
    rows = parts.take(pa.array(places)).combine_chunks().to_batches()
    shard = rows[0] if rows else pieces_batch([])
    bodies = shard.column("conll").to_pylist()
    conll = "".join((DOCSTART if new else "") + body for new, body in zip(new_articles, bodies, strict=True))
    return _Shard(pieces=shard, strings=sorted(strings), conll=conll, counts=counts, keys=keys)


def _write_spacy_and_conll(
    folder: Path, parts: dict[str, pa.Table], names: Sequence[str], counts: Counts, keys: RowKeys,
    reuse: Reuse | None = None, pieces: PiecesWriter | None = None,
) -> set[str]:
    """Write every split's DocBin and CoNLL file, shard by shard, counting the rows into `counts` and `keys`, and
    every row's pieces into `pieces`; return the strings of the DocBins.

    Takes the tables out of `parts` and lets them go before the DocBins are written. A split's DocBin is
    compressed in a thread (zlib lets go of the GIL) while the next split's shards are made."""
    jobs = [
        (split, start, min(start + SHARD_ROWS, table.num_rows), list(names), counts.labels)
        for split, table in parts.items()
        for start in range(0, table.num_rows, SHARD_ROWS)
    ]
    processes = choose_processes(sum(table.num_rows for table in parts.values()), PARALLEL_MIN_ROWS)
    attrs = DocBin(attrs=DOCBIN_ATTRS, store_user_data=True)
    streams = {split: DocBinStream(attrs=list(attrs.attrs), version=str(attrs.version)) for split in parts}
    last_job = {split: max((n for n, job in enumerate(jobs) if job[0] == split), default=-1) for split in parts}
    _parts.update(parts)
    parts.clear()
    if reuse is not None:
        _reuse.append(reuse)
    strings: set[str] = set()
    with ThreadPoolExecutor(len(streams) or 1, thread_name_prefix="docbin") as compressing:
        written = [compressing.submit(_write_docbin, folder, split, streams.pop(split))
                   for split in list(streams) if last_job[split] < 0]  # fmt: skip
        try:
            with contextlib.ExitStack() as stack:
                if processes > 1:
                    pool = stack.enter_context(fork_pool(processes))
                    _parts.clear()  # the workers have their own (copy-on-write) view of the tables from here on
                    pa.default_memory_pool().release_unused()
                    shards: Iterator[_Shard] = ordered_map(pool, _make_shard, jobs, processes)
                else:
                    shards = map(_make_shard, jobs)
                conll = {split: stack.enter_context((folder / conll_path(split)).open("w", encoding="utf-8"))
                         for split in streams}  # fmt: skip
                for number, ((split, *_), shard) in enumerate(zip(jobs, shards, strict=True)):
                    streams[split].add(shard.pieces, shard.strings)
                    strings.update(shard.strings)
                    if pieces is not None:
                        pieces.add(shard.pieces)
                    conll[split].write(shard.conll)
                    counts.merge(shard.counts)
                    keys.merge(shard.keys)
                    if number == last_job[split]:
                        written.append(compressing.submit(_write_docbin, folder, split, streams.pop(split)))
                for handle in conll.values():
                    handle.flush()
                    os.fsync(handle.fileno())
        finally:
            _parts.clear()
            _reuse.clear()
        for done in written:
            done.result()
    return strings


def _write_docbin(folder: Path, split: str, stream: DocBinStream) -> None:
    path = folder / docbin_path(split)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        stream.write(handle)
        handle.flush()
        os.fsync(handle.fileno())
