"""What a release reuses from its parent: the row cache, and the parent's own rows, DocBin entries and CoNLL lines.

The row cache is kept beside the releases, under `.workbench/release-cache/<dataset>/<version>.arrow` (local state,
like snapshots; never part of a release). It holds one record per task of the snapshot the release was built from,
in snapshot order: the task's **row hash**, its id, the row it gave (if any) with that row's diff key and article,
and its share of the build's figures (integer counts, plus any alignment conflict or merge tie named). The row
hash is a 16-byte keyed BLAKE2b of the task's JSON in the snapshot's one canonical form (`snapshots.task_line`),
keyed by the **build context**: the workbench's own source code, the config's fingerprint, the spaCy version and
the tokenizer's pipeline version. Equal hashes mean the same task built by the same code, config and tokenizer, so
the same row and the same share of the figures; any change to the task (an annotation made, edited, skipped or
deleted, its data or predictions), to the config or to the code changes the hash, and the task is built again.

A cache counts only for the release whose `manifest.json` has the sha256 it records, and a parent's files are
reused only if their sha256 are the ones its manifest lists; otherwise every row is rebuilt (and the release says
why). A release built with reuse is byte for byte the one a full rebuild gives: the rows are the parent's own, the
figures are the same sums, and the spaCy and CoNLL files are assembled from the same pieces.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import srsly
from spacy.attrs import ENT_TYPE, ORTH
from spacy.strings import StringStore

from workbench import __file__ as _package_init
from workbench.config import Config
from workbench.pipeline import pipeline_version, resolve, tokenizer_sha256
from workbench.project import Project, atomic_write_bytes, file_sha256
from workbench.release.layout import DATA_FORMATS, MANIFEST, conll_path, docbin_path, parquet_path
from workbench.release.manifest import Manifest, RowKeys
from workbench.splits import SPLITS

FORMAT = "workbench-row-cache/1"
DOCSTART = "-DOCSTART- -X- -X- O"
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
                    table=table.cast(_SCHEMA), label_counts=Counter(json.loads(meta["label_counts"])))  # fmt: skip
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
    label_counts: Mapping[str, int],
) -> None:
    """Record release `version`'s cache (bound to its manifest as written) and drop older releases' caches."""
    path = cache_path(project, version)
    meta = {
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
        if other != path:
            other.unlink(missing_ok=True)


# ---- the parent's files --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocParts:
    """One row's entry in a DocBin (as `DocBin.add` makes it) and its CoNLL lines (without -DOCSTART-)."""

    tokens: np.ndarray
    spaces: np.ndarray
    flags: dict[str, Any]
    cats: dict[str, Any]
    span_groups: bytes
    user_data: bytes
    conll: str


@dataclass
class ParentParts:
    """The parent release's rows (Arrow, final tag ids) and every row's spaCy and CoNLL pieces, by row id."""

    rows: pa.Table
    parts: dict[str, DocParts]
    strings: StringStore
    columns: tuple[int, ...] = ()  # the token columns that hold strings (ORTH, ENT_TYPE)

    @classmethod
    def load(cls, folder: Path, manifest: Manifest) -> ParentParts:
        """Read the parent's parquet, DocBin and CoNLL files, each checked against the parent's manifest."""
        listed = manifest.files
        tables, parts, strings, columns = [], {}, set(), ()
        for split in SPLITS:
            for name in (fmt.path(split) for fmt in DATA_FORMATS.values()):
                try:
                    digest = file_sha256(folder / name) if name in listed else ""
                except OSError as exc:
                    raise Unusable(f"{name} of release {folder.name} cannot be read ({exc.strerror or exc})") from None
                if digest != listed.get(name, {}).get("sha256"):
                    raise Unusable(f"{name} of release {folder.name} is not the file its manifest lists")
            table = pq.read_table(folder / parquet_path(split))
            msg = srsly.msgpack_loads(zlib.decompress((folder / docbin_path(split)).read_bytes()))
            bodies = _conll_bodies((folder / conll_path(split)).read_text(encoding="utf-8"), table)
            parts.update(_doc_parts(msg, table.column("id").to_pylist(), bodies))
            strings.update(msg["strings"])
            tables.append(table)
            columns = tuple(i for i, attr in enumerate(msg["attrs"]) if attr in (ORTH, ENT_TYPE))
        return cls(rows=pa.concat_tables(tables), parts=parts, strings=StringStore(sorted(strings)), columns=columns)

    def strings_of(self, reused: Iterable[DocParts], labels: Iterable[str]) -> set[str]:
        """The strings `DocBin.add` would record for these docs: every token's text, every entity label, the
        spans' labels, and the empty string."""
        arrays = [parts.tokens[:, self.columns] for parts in reused]
        found = {"", *labels}
        if arrays:
            for value in np.unique(np.concatenate([array.ravel() for array in arrays])):
                if value:
                    found.add(self.strings[int(value)])
        return found


def _doc_parts(msg: Mapping[str, Any], ids: list[str], bodies: list[str]) -> dict[str, DocParts]:
    """Each doc of a DocBin's msgpack message, by the row id of the parquet row in the same place."""
    lengths = np.frombuffer(msg["lengths"], dtype="int32")
    if len(lengths) != len(ids) or "user_data" not in msg:
        raise Unusable("a DocBin of the parent release does not hold one doc per row")
    tokens = np.frombuffer(msg["tokens"], dtype="uint64").reshape((-1, len(msg["attrs"])))
    spaces = np.frombuffer(msg["spaces"], dtype=bool).reshape((-1, 1))
    ends = np.cumsum(lengths)
    out = {}
    for i, row_id in enumerate(ids):
        start, end = int(ends[i] - lengths[i]), int(ends[i])
        out[row_id] = DocParts(tokens=tokens[start:end], spaces=spaces[start:end], flags=msg["flags"][i],
                               cats=msg["cats"][i], span_groups=msg["span_groups"][i], user_data=msg["user_data"][i],
                               conll=bodies[i])  # fmt: skip
    for i in (0, len(ids) - 1) if ids else ():
        if srsly.msgpack_loads(msg["user_data"][i]).get("id") != ids[i]:
            raise Unusable("a DocBin of the parent release is not in the order of its parquet rows")
    return out


def _conll_bodies(text: str, table: pa.Table) -> list[str]:
    """Each row's CoNLL lines in a split's CoNLL file (`row_to_conll` without the -DOCSTART- lines): blocks are
    separated by a blank line, an article opens with a -DOCSTART- block, and a row whose tokens are all
    whitespace has no block."""
    blocks = text.split("\n\n")
    if blocks and blocks[-1] == "":
        blocks.pop()
    tokens = table.column("tokens").combine_chunks()
    words = pc.invert(pc.utf8_is_space(tokens.flatten())).to_numpy(zero_copy_only=False)
    words_per_row = np.bincount(pc.list_parent_indices(tokens).to_numpy(), weights=words, minlength=len(table))
    docs = table.column("doc_id").to_pylist()
    bodies, at, previous = [], 0, None
    for doc, count in zip(docs, words_per_row.astype(int).tolist(), strict=True):
        if doc != previous:
            if at >= len(blocks) or blocks[at] != DOCSTART:
                raise Unusable("a CoNLL file of the parent release does not follow its parquet rows")
            at += 1
            previous = doc
        if count:  # one line per token that is not whitespace only, as `row_to_conll` writes them
            if at >= len(blocks) or blocks[at].count("\n") + 1 != count:
                raise Unusable("a CoNLL file of the parent release does not follow its parquet rows")
            bodies.append(blocks[at] + "\n\n")
            at += 1
        else:
            bodies.append("")
    if at != len(blocks):
        raise Unusable("a CoNLL file of the parent release does not follow its parquet rows")
    return bodies
