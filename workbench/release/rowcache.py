"""What a release reuses from its parent: the row cache, the parent's own rows, and its DocBin entries and CoNLL
lines (`pieces`).

The row cache is kept beside the releases, under `.workbench/release-cache/<dataset>/<version>.arrow` (local state,
like snapshots; never part of a release). It holds one record per task of the snapshot the release was built from,
in snapshot order: the task's **row hash**, its id, the row it gave (if any) with that row's diff key and article,
and its share of the build's figures (integer counts, plus any alignment conflict or merge tie named). The row
hash is a 16-byte keyed BLAKE2b of the task's JSON in the snapshot's one canonical form (`snapshots.task_line`),
keyed by the **build context**: the workbench's own source code, the config's fingerprint, the spaCy version and
the tokenizer's pipeline version. Equal hashes mean the same task built by the same code, config and tokenizer, so
the same row and the same share of the figures; any change to the task (an annotation made, edited, skipped or
deleted, its data or predictions), to the config or to the code changes the hash, and the task is built again.

Beside it, `<version>.pieces.arrow` holds every row's DocBin entry and CoNLL lines as the release wrote them
(`pieces`), bound to the cache by a stamp both record; the next release reads it a batch (a shard) at a time.

A cache counts only for the release whose `manifest.json` has the sha256 it records, and a parent is reused only
if its data files' sha256 are the ones its manifest lists and its pieces are the ones written with the cache;
otherwise every row is rebuilt (and the release says why). A release built with reuse is byte for byte the one a
full rebuild gives: the rows are the parent's own, the figures are the same sums, and the spaCy and CoNLL files
are assembled from the same pieces.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from workbench import __file__ as _package_init
from workbench.config import Config
from workbench.pipeline import pipeline_version, resolve, tokenizer_sha256
from workbench.project import Project, atomic_write_bytes, file_sha256
from workbench.release.layout import DATA_FORMATS, MANIFEST, parquet_path
from workbench.release.manifest import Manifest, RowKeys
from workbench.release.pieces import Pieces, Unreadable
from workbench.splits import SPLITS

FORMAT = "workbench-row-cache/2"
_SCHEMA = pa.schema([
    ("hash", pa.binary(16)),
    ("task_id", pa.int64()),
    ("row_id", pa.string()),
    ("row_key", pa.binary(16)),
    ("doc_id", pa.string()),
    ("key_ids", pa.list_(pa.int32())),
    ("values", pa.list_(pa.int64())),
    ("lists", pa.string()),
])  # fmt: skip


def build_context(config: Config, root: Path | None = None) -> bytes:
    """What, besides a task, decides its row and its figures: the code, the config and the tokenizer (the
    pipeline's version and its tokenizer file; `root` is the project folder a pipeline folder may be in)."""
    code = hashlib.sha256()
    package = Path(_package_init).parent
    for path in sorted(package.rglob("*.py")):
        code.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    import spacy

    name = resolve(config.model.name, root)
    said = [FORMAT, code.hexdigest(), config.fingerprint(), spacy.__version__, pipeline_version(name),
            tokenizer_sha256(name)]  # fmt: skip
    return hashlib.blake2b(json.dumps(said).encode(), digest_size=32).digest()


def row_hash(context: bytes, line: bytes) -> bytes:
    """A task's row hash: its canonical JSON line, keyed by the build context."""
    return hashlib.blake2b(line, digest_size=16, key=context).digest()


def cache_path(project: Project, version: str) -> Path:
    return project.state_dir / "release-cache" / project.config.dataset / f"{version}.arrow"


def pieces_path(project: Project, version: str) -> Path:
    """Where release `version`'s pieces (`pieces.Pieces`) are kept, beside its row cache."""
    return cache_path(project, version).with_name(f"{version}.pieces.arrow")


class Unusable(Exception):
    """The parent's rows cannot be reused; the message says why (shown to the user with the release)."""


@dataclass
class RowCache:
    """A release's row cache, read back: the table and the row hash -> record index."""

    version: str
    keys: list[tuple]
    table: pa.Table
    label_counts: Counter[str]
    index: dict[bytes, int] = field(default_factory=dict)
    pieces_stamp: str = ""  # binds the pieces file written with this cache (`pieces_path`)

    @classmethod
    def read(cls, project: Project, version: str, context: bytes) -> RowCache:
        """The cache of release `version`, if it was written for exactly that release in this build context."""
        path = cache_path(project, version)
        try:
            table = pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()
            meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
            manifest_sha = file_sha256(project.releases_dir / version / MANIFEST)
        except (OSError, pa.ArrowException) as exc:
            raise Unusable(f"release {version} has no readable row cache ({type(exc).__name__})") from None
        if meta.get("format") != FORMAT or meta.get("manifest_sha256") != manifest_sha:
            raise Unusable(f"the row cache is not that of release {version} as it is now")
        if meta.get("context") != context.hex():
            raise Unusable(f"the workbench, its config or the spaCy pipeline changed since release {version}")
        cache = cls(version=version, keys=[tuple(key) for key in json.loads(meta["keys"])],
                    table=table.cast(_SCHEMA), label_counts=Counter(json.loads(meta["label_counts"])),
                    pieces_stamp=meta.get("pieces", ""))  # fmt: skip
        cache.index = {h: i for i, h in enumerate(table.column("hash").to_pylist())}
        return cache

    def parent_keys(self) -> RowKeys:
        """The diff side of the release this cache belongs to, as `inspect.release_keys` would read it."""
        rows = self.table.filter(pc.is_valid(self.table.column("row_id")))
        ids = rows.column("row_id").to_pylist()
        return RowKeys(keys=dict(zip(ids, rows.column("row_key").to_pylist(), strict=True)),
                       docs=dict(zip(ids, rows.column("doc_id").to_pylist(), strict=True)),
                       label_counts=Counter(self.label_counts))  # fmt: skip


def write_cache(
    project: Project, version: str, context: bytes, keys: Sequence[tuple], columns: Mapping[str, pa.Array],
    label_counts: Mapping[str, int], pieces_stamp: str = "",
) -> None:
    """Record release `version`'s cache (bound to its manifest as written, and to its pieces file by
    `pieces_stamp`) and drop older releases' caches and pieces."""
    path = cache_path(project, version)
    meta = {
        "pieces": pieces_stamp,
        "format": FORMAT,
        "version": version,
        "context": context.hex(),
        "manifest_sha256": file_sha256(project.releases_dir / version / MANIFEST),
        "keys": json.dumps([list(key) for key in keys]),
        "label_counts": json.dumps(dict(label_counts)),
    }
    table = pa.table(dict(columns), schema=_SCHEMA.with_metadata(meta))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
    for other in path.parent.glob("*.arrow"):
        if other not in (path, pieces_path(project, version)):
            other.unlink(missing_ok=True)


# ---- the parent's files ----------------------------------------------------------------------------------------


@dataclass
class ParentParts:
    """The parent release's rows (Arrow, final tag ids), and every row's spaCy and CoNLL pieces in the pieces file
    written with it (`pieces`), read a batch at a time: a row's place there is its place in `rows`."""

    rows: pa.Table
    pieces: Pieces
    position: dict[str, int]

    @classmethod
    def load(cls, folder: Path, manifest: Manifest, pieces: Path, stamp: str) -> ParentParts:
        """The parent's parquet rows and its pieces file, once every data file of the parent is checked against
        its manifest (the checksums in threads: hashlib lets go of the GIL)."""
        listed = manifest.files
        names = [fmt.path(split) for split in SPLITS for fmt in DATA_FORMATS.values()]
        with ThreadPoolExecutor(2, thread_name_prefix="parent-sha256") as hashing:
            digests = list(hashing.map(lambda name: _digest(folder, name, listed), names))
        for name, digest in zip(names, digests, strict=True):
            if isinstance(digest, OSError):
                raise Unusable(f"{name} of release {folder.name} cannot be read ({digest.strerror or digest})")
            if digest != listed.get(name, {}).get("sha256"):
                raise Unusable(f"{name} of release {folder.name} is not the file its manifest lists")
        rows = pa.concat_tables([pq.read_table(folder / parquet_path(split)) for split in SPLITS])
        try:
            found = Pieces.open(pieces, stamp, rows.num_rows)
        except Unreadable as exc:
            raise Unusable(f"release {folder.name}: {exc}") from None
        ids = rows.column("id").to_pylist()
        return cls(rows=rows, pieces=found, position=dict(zip(ids, range(len(ids)), strict=True)))


def _digest(folder: Path, name: str, listed: Mapping[str, Any]) -> str | OSError:
    try:
        return file_sha256(folder / name) if name in listed else ""
    except OSError as exc:
        return exc
