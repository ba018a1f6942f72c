"""Rows -> an immutable, versioned release folder that ML engineers can trust; verify, diff and list releases.

A release is `<releases_dir>/<MAJOR.MINOR.PATCH>/` holding parquet shards with a dataset card (so
`datasets.load_dataset(folder)` works offline exactly as on the Hub), spaCy DocBins, CoNLL files and a
`manifest.json` with the checksum of every file, the counts, the split membership and the provenance.

Rows stream in and are held column-wise in Arrow (`prepare_release`), so 100k paragraphs take ~150 MB, not GBs
of dicts; every row and setting is validated before a byte is written, so a refused release changes nothing on
disk. The files are then written, one pass per split, into a hidden temporary folder beside the target and
renamed into place in one step, so an interrupted release leaves no version folder behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import srsly
from datasets import ClassLabel, Features, List, Value
from packaging.version import InvalidVersion, Version
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from workbench import card
from workbench.config import Config
from workbench.errors import ReleaseError
from workbench.parallel import choose_processes, fork_pool, ordered_map
from workbench.project import atomic_write_bytes, file_sha256
from workbench.splits import SPLITS, assign_splits

MANIFEST = "manifest.json"
CARD = "README.md"
CHANGELOG = "CHANGELOG.md"
FORMAT = "workbench-release/1"
SPAN_GROUP = "sc"
# What a NER DocBin needs (whitespace is always kept): the default set adds 9 unused arrays per token.
DOCBIN_ATTRS = ["ORTH", "ENT_IOB", "ENT_TYPE"]
_SEMVER = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
_TMP = re.compile(r"\.(?P<version>.+)\.tmp-(?P<pid>[0-9]+)")
_ROW_KEYS = ("id", "doc_id", "paragraph", "text", "tokens", "ner_tags", "spans", "task_id", "annotation_ids",
             "annotators")


def parquet_path(split: str) -> str:
    """Where a split's single parquet shard lives inside a release (the Hub's own naming)."""
    return f"data/{split}-00000-of-00001.parquet"


# ---- versions ----------------------------------------------------------------------------------------------


def parse_version(text: str) -> Version:
    """A semantic version MAJOR.MINOR.PATCH; anything else (v1.0, 1.0, 1.0.0rc1, 01.0.0) is refused.

    Only the plain form is allowed so that the folder name, the manifest and the ordering always agree."""
    try:
        version = Version(text)
    except (InvalidVersion, TypeError):
        version = None
    if version is None or not _SEMVER.fullmatch(str(text)) or str(version) != text:
        raise ReleaseError(
            f"The release version {text!r} is not a semantic version. Use MAJOR.MINOR.PATCH with plain numbers "
            "and no prefix or suffix, for example 1.0.0 or 1.2.3."
        )
    return version


def _existing_versions(releases_dir: Path) -> list[Version]:
    """The version folders in `releases_dir`, oldest first (hidden temporary folders and other names ignored)."""
    if not releases_dir.is_dir():
        return []
    found = []
    for child in releases_dir.iterdir():
        if child.is_dir() and _SEMVER.fullmatch(child.name):
            found.append(Version(child.name))
    return sorted(found)


# ---- the context a release is cut in -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseContext:
    """Everything a release records besides its rows: what, from which source, by which tools, and how good."""

    dataset: str
    version: str
    labels: tuple[str, ...]
    label_mapping: Mapping[str, str] = field(default_factory=dict)
    test_fraction: float = 0.2
    seed: int = 13
    resplit: bool = False
    snapshot_name: str = ""
    snapshot_sha256: str = ""
    snapshot_time: str = ""
    labelstudio_version: str = ""
    labelstudio_project_id: int | None = None
    labelstudio_project_title: str = ""
    model_name: str = ""
    model_version: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    workbench_version: str = ""
    git_commit: str = ""
    alignment_report: Mapping[str, Any] = field(default_factory=dict)
    agreement: Mapping[str, Any] = field(default_factory=dict)
    preannotation_quality: Mapping[str, Any] = field(default_factory=dict)
    excluded_no_annotation: int = 0
    excluded_only_skipped: int = 0
    created_at: str = ""

    @classmethod
    def from_config(cls, config: Config, *, version: str, **rest: Any) -> ReleaseContext:
        """Fill the fields the config decides (name, labels, mapping, split, config and hash); pass the rest."""
        return cls(
            dataset=config.dataset,
            version=version,
            labels=tuple(config.labels),
            label_mapping=dict(config.label_mapping),
            test_fraction=config.split.test_fraction,
            seed=config.split.seed,
            resplit=config.split.resplit,
            config=config.model_dump(mode="json"),
            config_hash=config.fingerprint(),
            **rest,
        )


# ---- labels ------------------------------------------------------------------------------------------------


def class_label_names(
    labels: Sequence[str], parent_names: Sequence[str] | None, label_mapping: Mapping[str, str]
) -> list[str]:
    """The IOB2 ClassLabel names: the parent's names first (ids never move), new labels' B-/I- appended.

    A parent label missing from `labels` must be mapped (renamed or merged) in `label_mapping`, or a model
    trained on the parent would silently lose a class; its ids stay reserved so old ids keep their meaning."""
    if not parent_names:
        return ["O", *(f"{prefix}-{label}" for label in labels for prefix in ("B", "I"))]
    names = list(parent_names)
    parent_labels = _labels_of(names)
    vanished = [label for label in parent_labels if label not in labels and label not in label_mapping]
    if vanished:
        listed = ", ".join(repr(label) for label in vanished)
        raise ReleaseError(
            f"The label(s) {listed} are in the parent release but no longer in the config's labels, and the "
            "config's label_mapping does not say what became of them. Add them back to labels, or add a "
            f'mapping such as label_mapping = {{ "{vanished[0]}" = "<NEW LABEL>" }} and release again.'
        )
    for label in labels:
        for prefix in ("B", "I"):
            if f"{prefix}-{label}" not in names:
                names.append(f"{prefix}-{label}")
    return names


def _labels_of(names: Sequence[str]) -> list[str]:
    """Entity labels named by IOB tags, in first-seen order."""
    labels: list[str] = []
    for name in names:
        if name != "O" and name[2:] not in labels:
            labels.append(name[2:])
    return labels


def release_features(names: Sequence[str]) -> Features:
    """The release schema: CoNLL-style tokens and ClassLabel tags, plus character spans and provenance ids."""
    span = {"start": Value("int32"), "end": Value("int32"), "label": Value("string"), "text": Value("string")}
    return Features(
        {
            "id": Value("string"),
            "doc_id": Value("string"),
            "paragraph": Value("int32"),
            "text": Value("string"),
            "tokens": List(Value("string")),
            "ner_tags": List(ClassLabel(names=list(names))),
            "spans": List(span),
            "task_id": Value("int64"),
            "annotation_ids": List(Value("int64")),
            "annotators": List(Value("int64")),
        }
    )


# ---- rows --------------------------------------------------------------------------------------------------

# Rows are converted to Arrow this many at a time: ~1 KB a paragraph column-wise against ~20 KB as dicts.
BATCH_ROWS = 1000
_SORT_KEYS = [("doc_id", "ascending"), ("paragraph", "ascending"), ("id", "ascending")]


@dataclass
class Prepared:
    """A release's rows checked and label-mapped, column-wise in Arrow; nothing written yet.

    Made by `prepare_release` before the release's figures are known, so that rows can stream from the
    build straight into columns; `write_release` then writes it, once."""

    version: str
    parent: Version | None
    parent_manifest: dict[str, Any] | None
    parent_keys: _RowKeys
    names: list[str]
    table: pa.Table | None

    def take_table(self) -> pa.Table:
        """The rows, handed over once, so the writer can free them as soon as the parquet files hold them."""
        table, self.table = self.table, None
        if table is None:
            raise ValueError(f"the rows prepared for release {self.version} were already written")
        return table


def prepare_release(
    releases_dir: Path, version: str, rows: Iterable[Mapping[str, Any]], labels: Sequence[str],
    label_mapping: Mapping[str, str],
) -> Prepared:
    """Check the version, then every row (see `_normalize_row`), and hold them column-wise, tags as ClassLabel ids.

    The release refuses rather than repairs: a span whose text does not match its offsets, or a tag of an
    unknown label, means an earlier stage has a bug that a trained model would inherit."""
    releases_dir = Path(releases_dir)
    parent = check_new_version(releases_dir, version)
    parent_manifest = read_manifest(releases_dir, str(parent)) if parent else None
    parent_keys = _release_keys(releases_dir / str(parent), parent_manifest) if parent_manifest else _RowKeys()
    names = class_label_names(labels, parent_manifest["class_label_names"] if parent_manifest else None, label_mapping)
    schema = release_features(names).arrow_schema
    index = {name: i for i, name in enumerate(names)}
    # The ids of tags already in final form; tags to be mapped, or of unknown labels, go the slow way once.
    tag_ids = {
        name: i
        for i, name in enumerate(names)
        if name == "O" or (name[2:] in labels and name[2:] not in label_mapping)
    }
    known = set(labels)
    problems: list[str] = []
    seen: set[str] = set()
    batches: list[pa.RecordBatch] = []
    pending: list[dict[str, Any]] = []
    for row in rows:
        fixed, problem = _normalize_row(row, known, label_mapping, index, tag_ids)
        if fixed is None:
            problems.append(problem)
            continue
        if fixed["id"] in seen:
            problems.append(f"row {fixed['id']!r} appears twice")
        seen.add(fixed["id"])
        pending.append(fixed)
        if len(pending) == BATCH_ROWS:
            batches.append(pa.RecordBatch.from_pylist(pending, schema=schema))
            pending = []
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ReleaseError(
            f"{len(problems)} row(s) cannot be released: {shown}. A label outside the config needs to be added "
            "to labels or mapped in label_mapping; any other problem is a bug in the build step, so report it "
            "with the snapshot file."
        )
    if not seen:
        raise ReleaseError(
            "There are no rows to release: no task has a submitted annotation yet. Annotate and submit some "
            "tasks in Label Studio, pull a new snapshot, and release again."
        )
    if pending:
        batches.append(pa.RecordBatch.from_pylist(pending, schema=schema))
    table = pa.Table.from_batches(batches, schema=schema)
    return Prepared(
        version=version,
        parent=parent,
        parent_manifest=parent_manifest,
        parent_keys=parent_keys,
        names=names,
        table=table,
    )


def _map_label(label: str, mapping: Mapping[str, str]) -> str:
    return mapping.get(label, label)


def _normalize_row(
    row: Mapping[str, Any],
    known: set[str],
    mapping: Mapping[str, str],
    names: Mapping[str, int],
    tag_ids: dict[str, int],
) -> tuple[dict[str, Any] | None, str]:
    """One row checked and label-mapped, its tags as ClassLabel ids, or the reason it cannot be released.

    `names` gives each ClassLabel name's id; `tag_ids` maps every tag met so far that is valid and known to the
    id of its mapped form, and grows as new tags are met, so a row of known tags costs one lookup per token."""
    rid = row.get("id", "?")
    missing = [key for key in _ROW_KEYS if key not in row]
    if missing:
        return None, f"row {rid!r} lacks {', '.join(missing)}"
    text, tokens, raw_tags = row["text"], list(row["tokens"]), list(row["ner_tags"])
    unknown: set[str] = set()
    try:
        ids = [tag_ids[tag] for tag in raw_tags]
    except (KeyError, TypeError):  # a tag not met before (or not a string): check each
        ids = []
        for tag in raw_tags:
            if not isinstance(tag, str) or not (tag == "O" or tag[:2] in ("B-", "I-")):
                return None, f"row {rid!r} has tag {tag!r}, which is not IOB2 (O, B-LABEL or I-LABEL)"
            mapped = tag if tag == "O" else tag[:2] + _map_label(tag[2:], mapping)
            if mapped != "O" and mapped[2:] not in known:
                unknown.add(mapped[2:])
            elif tag not in tag_ids:
                tag_ids[tag] = names[mapped]
            ids.append(tag_ids.get(tag, -1))
    if len(ids) != len(tokens):
        return None, f"row {rid!r} has {len(tokens)} tokens but {len(ids)} tags"
    spans = []
    for span in row["spans"]:
        start, end, label = int(span["start"]), int(span["end"]), _map_label(span["label"], mapping)
        if not (0 <= start < end <= len(text)) or text[start:end] != span["text"]:
            return None, f"row {rid!r} has span {span!r} whose text is not text[start:end]"
        spans.append({"start": start, "end": end, "label": label, "text": span["text"]})
    unknown |= {s["label"] for s in spans} - known
    if unknown:
        return None, f"row {rid!r} uses label(s) {', '.join(sorted(unknown))} not in the config's labels"
    spans.sort(key=lambda s: (s["start"], s["end"], s["label"]))
    return {
        "id": str(row["id"]),
        "doc_id": str(row["doc_id"]),
        "paragraph": int(row["paragraph"]),
        "text": text,
        "tokens": tokens,
        "ner_tags": ids,
        "spans": spans,
        "task_id": int(row["task_id"]),
        "annotation_ids": [int(a) for a in row["annotation_ids"]],
        "annotators": [int(a) for a in row["annotators"]],
    }, ""


# ---- spaCy and CoNLL ---------------------------------------------------------------------------------------


def words_and_spaces(
    text: str, tokens: Sequence[str], tags: Sequence[str]
) -> tuple[list[str], list[bool], list[str]]:
    """spaCy words, trailing-space flags and tags that rebuild `text` exactly from the row's tokens.

    A gap between tokens that is not one plain space becomes a whitespace word (tagged I-X inside an entity,
    O otherwise), as spaCy's tokenizer does; a non-whitespace gap means the tokens do not belong to the text."""
    words: list[str] = []
    spaces: list[bool] = []
    out_tags: list[str] = []
    cursor = 0

    def absorb(gap: str, next_tag: str) -> None:
        if gap.startswith(" ") and words and not spaces[-1]:
            spaces[-1] = True
            gap = gap[1:]
        if gap:
            words.append(gap)
            spaces.append(False)
            out_tags.append(next_tag if next_tag.startswith("I-") else "O")

    for token, tag in zip(tokens, tags, strict=True):
        if not token:
            raise ValueError("an empty token")
        at = text.find(token, cursor)
        if at < 0 or (at > cursor and not text[cursor:at].isspace()):
            raise ValueError(f"token {token!r} is not found at offset {cursor} of the text")
        absorb(text[cursor:at], tag)
        words.append(token)
        spaces.append(False)
        out_tags.append(tag)
        cursor = at + len(token)
    rest = text[cursor:]
    if rest and not rest.isspace():
        raise ValueError(f"the text after the last token ({rest[:20]!r}) is not whitespace")
    absorb(rest, "O")
    return words, spaces, out_tags


@contextlib.contextmanager
def _msgpack_plugins_looked_up_once() -> Iterator[None]:
    """srsly rebuilds its list of msgpack encoders (scanning importlib entry points and catalogue's whole
    registry) for every object it packs: ~2 ms per Doc, 90% of a 10k-row release. Look the plugins up once."""
    registries = (srsly.msgpack.msgpack_encoders, srsly.msgpack.msgpack_decoders)
    for registry in registries:
        plugins = registry.get_all()
        registry.get_all = lambda plugins=plugins: dict(plugins)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for registry in registries:
            del registry.get_all


def _row_doc(vocab: Vocab, row: Mapping[str, Any], tags: Sequence[str]) -> Doc:
    """One row as a Doc on a blank vocab: entities from the tags, every human span in `doc.spans["sc"]`, and the
    row's ids in `doc.user_data` to join back to the parquet."""
    try:
        words, spaces, tags = words_and_spaces(row["text"], row["tokens"], tags)
        doc = Doc(vocab, words=words, spaces=spaces, ents=tags)
    except ValueError as exc:
        raise ReleaseError(
            f"Row {row['id']!r} cannot become a spaCy Doc: {exc}. Its tokens and tags must rebuild its text; "
            "this is a bug in the build step, so report it with the snapshot file."
        ) from None
    group = []
    for span in row["spans"]:
        piece = doc.char_span(span["start"], span["end"], label=span["label"])
        if piece is None:
            raise ReleaseError(
                f"Row {row['id']!r} has the span {span['text']!r} ({span['start']}-{span['end']}) that "
                "does not start and end on token boundaries. Tokens must be split at every span edge; this is "
                "a bug in the build step, so report it with the snapshot file."
            )
        group.append(piece)
    doc.spans[SPAN_GROUP] = group
    doc.user_data.update({"id": row["id"], "doc_id": row["doc_id"], "paragraph": row["paragraph"]})
    return doc


def _conll_block(row: Mapping[str, Any], tags: Sequence[str], new_article: bool) -> str:
    """One row in CoNLL-2003 style: `token _ _ tag` lines and a blank line, after -DOCSTART- for a new article.

    Whitespace-only tokens are left out and whitespace inside a token becomes `_`, so every line has exactly
    four space-separated columns for the readers that split on whitespace."""
    lines = ["-DOCSTART- -X- -X- O", ""] if new_article else []
    body = [f"{'_'.join(token.split())} _ _ {tag}" for token, tag in zip(row["tokens"], tags, strict=True)
            if not token.isspace()]
    if body:
        lines += [*body, ""]
    return "".join(f"{line}\n" for line in lines)


def _write_parquet(folder: Path, split: str, part: pa.Table) -> dict[str, int]:
    """Write a split's rows as its parquet file; return its size in rows and in-memory bytes for the card."""
    path = folder / parquet_path(split)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(part, path, compression="snappy")
    _fsync_file(path)
    return {"num_examples": part.num_rows, "num_bytes": part.nbytes}


# A split's DocBin and CoNLL text are made in shards of this many rows, in worker processes from
# PARALLEL_MIN_ROWS rows; shards are joined in order (DocBin.merge), so the files do not depend on the sharding.
SHARD_ROWS = 5_000
PARALLEL_MIN_ROWS = 4_000
# The split tables while their spaCy and CoNLL files are made: forked workers inherit them, nothing is pickled.
_parts: dict[str, pa.Table] = {}


@dataclass
class _Shard:
    """One shard's DocBin (bytes) and CoNLL text, and its rows counted for the manifest and the diff."""

    docbin: bytes
    conll: str
    counts: _Counts
    keys: _RowKeys


def _make_shard(job: tuple[str, int, int, list[str], list[str]]) -> _Shard:
    """Rows `start:stop` of a split (in `_parts`) as DocBin and CoNLL text."""
    split, start, stop, names, labels = job
    table = _parts[split]
    previous_doc = table.column("doc_id")[start - 1].as_py() if start else None
    vocab = Vocab()
    docbin = DocBin(attrs=DOCBIN_ATTRS, store_user_data=True)
    counts, keys, conll = _Counts(labels), _RowKeys(), []
    with _msgpack_plugins_looked_up_once():
        for batch in table.slice(start, stop - start).to_batches(max_chunksize=BATCH_ROWS):
            for row in batch.to_pylist():
                tags = [names[i] for i in row["ner_tags"]]
                docbin.add(_row_doc(vocab, row, tags))
                conll.append(_conll_block(row, tags, row["doc_id"] != previous_doc))
                previous_doc = row["doc_id"]
                counts.add(split, row)
                keys.add(row["id"], tags, row["spans"])
        data = docbin.to_bytes()
    return _Shard(docbin=data, conll="".join(conll), counts=counts, keys=keys)


def _write_spacy_and_conll(
    folder: Path, parts: dict[str, pa.Table], names: Sequence[str], counts: _Counts, keys: _RowKeys
) -> None:
    """Write every split's DocBin and CoNLL file, shard by shard, counting the rows into `counts` and `keys`.

    Takes the tables out of `parts` and lets them go before the DocBins are serialized, the peak of a release."""
    jobs = [
        (split, start, min(start + SHARD_ROWS, table.num_rows), list(names), counts.labels)
        for split, table in parts.items()
        for start in range(0, table.num_rows, SHARD_ROWS)
    ]
    processes = choose_processes(sum(table.num_rows for table in parts.values()), PARALLEL_MIN_ROWS)
    docbins = {split: DocBin(attrs=DOCBIN_ATTRS, store_user_data=True) for split in parts}
    _parts.update(parts)
    parts.clear()
    try:
        with contextlib.ExitStack() as stack:
            if processes > 1:
                pool = stack.enter_context(fork_pool(processes))
                _parts.clear()  # the workers have their own (copy-on-write) view of the tables from here on
                pa.default_memory_pool().release_unused()
                shards: Iterator[_Shard] = ordered_map(pool, _make_shard, jobs, processes)
            else:
                shards = map(_make_shard, jobs)
            conll = {split: stack.enter_context((folder / f"{split}.conll").open("w", encoding="utf-8"))
                     for split in docbins}
            for (split, *_), shard in zip(jobs, shards, strict=True):
                docbins[split].merge(DocBin(attrs=DOCBIN_ATTRS, store_user_data=True).from_bytes(shard.docbin))
                conll[split].write(shard.conll)
                counts.merge(shard.counts)
                keys.merge(shard.keys)
            for handle in conll.values():
                handle.flush()
                os.fsync(handle.fileno())
    finally:
        _parts.clear()
    pa.default_memory_pool().release_unused()
    for split in list(docbins):
        _write_file(folder / f"{split}.spacy", docbins.pop(split).to_bytes())


# ---- counts and diffs --------------------------------------------------------------------------------------


class _Counts:
    """Rows, articles, spans, annotators and spans per label, per split and in total, counted row by row."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.parts: dict[str, dict[str, Any]] = {
            name: {"rows": 0, "articles": set(), "annotators": set(), "labels": Counter()}
            for name in (*SPLITS, "total")
        }

    def add(self, split: str, row: Mapping[str, Any]) -> None:
        for name in (split, "total"):
            part = self.parts[name]
            part["rows"] += 1
            part["articles"].add(row["doc_id"])
            part["annotators"].update(row["annotators"])
            part["labels"].update(span["label"] for span in row["spans"])

    def merge(self, other: _Counts) -> None:
        for name, part in other.parts.items():
            mine = self.parts[name]
            mine["rows"] += part["rows"]
            mine["articles"] |= part["articles"]
            mine["annotators"] |= part["annotators"]
            mine["labels"].update(part["labels"])

    def result(self) -> dict[str, Any]:
        out = {}
        for name, part in self.parts.items():
            per_label: Counter[str] = part["labels"]
            out[name] = {
                "rows": part["rows"],
                "articles": len(part["articles"]),
                "spans": sum(per_label.values()),
                "annotators": len(part["annotators"]),
                "labels": {label: per_label.get(label, 0) for label in self.labels}
                | {label: n for label, n in sorted(per_label.items()) if label not in self.labels},
            }
        return out


def _row_key(tags: Sequence[str], spans: Iterable[Mapping[str, Any]]) -> bytes:
    """What a row says, its tags and its spans, as a 16-byte digest: two releases disagree on a row when it
    differs. A digest rather than the tags themselves keeps a 100k-row diff in a few MB."""
    said = (tuple(tags), tuple(sorted((s["start"], s["end"], s["label"], s["text"]) for s in spans)))
    return hashlib.blake2b(repr(said).encode("utf-8"), digest_size=16).digest()


@dataclass
class _RowKeys:
    """One side of a diff: every row's key by id, and the spans per label."""

    keys: dict[str, bytes] = field(default_factory=dict)
    label_counts: Counter[str] = field(default_factory=Counter)

    def add(self, row_id: str, tags: Sequence[str], spans: Sequence[Mapping[str, Any]]) -> None:
        self.keys[row_id] = _row_key(tags, spans)
        self.label_counts.update(span["label"] for span in spans)

    def merge(self, other: _RowKeys) -> None:
        self.keys.update(other.keys)
        self.label_counts.update(other.label_counts)


def _diff(old: _RowKeys, new: _RowKeys) -> dict[str, Any]:
    """Row ids added, removed and changed from `old` to `new`, and span counts per label in both."""
    a, b = old.keys, new.keys
    count_a, count_b = old.label_counts, new.label_counts
    return {
        "added": sorted(b.keys() - a.keys()),
        "removed": sorted(a.keys() - b.keys()),
        "changed": sorted(rid for rid in a.keys() & b.keys() if a[rid] != b[rid]),
        "label_counts": {
            label: {"a": count_a[label], "b": count_b[label], "delta": count_b[label] - count_a[label]}
            for label in sorted(count_a.keys() | count_b.keys())
        },
    }


def _release_batches(
    folder: Path, split: str, columns: Sequence[str] | None = None
) -> Iterator[list[dict[str, Any]]]:
    """A release split's rows, `BATCH_ROWS` at a time, with only `columns` read (all by default)."""
    path = folder / parquet_path(split)
    try:
        wanted = list(columns) if columns is not None else None
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=wanted):
            yield batch.to_pylist()
    except (OSError, pa.ArrowException) as exc:
        raise ReleaseError(
            f"The release {folder.name} cannot be read: {path} is missing or not parquet ({exc}). Run "
            f"`workbench release verify {folder.name}` to see which files changed."
        ) from None


def _release_keys(folder: Path, manifest: Mapping[str, Any]) -> _RowKeys:
    """The diff side of an existing release, read from its parquet files a batch at a time."""
    names = manifest["class_label_names"]
    keys = _RowKeys()
    for split in SPLITS:
        for rows in _release_batches(folder, split, ["id", "ner_tags", "spans"]):
            for row in rows:
                keys.add(row["id"], [names[i] for i in row["ner_tags"]], row["spans"])
    return keys


# ---- reading releases --------------------------------------------------------------------------------------


def _release_folder(releases_dir: Path, version: str) -> Path:
    parse_version(version)
    folder = Path(releases_dir) / version
    if not folder.is_dir():
        have = ", ".join(str(v) for v in _existing_versions(Path(releases_dir))) or "none"
        raise ReleaseError(
            f"There is no release {version} in {releases_dir} (releases there: {have}). Check the version, or "
            "cut it with `workbench release`."
        )
    return folder


def read_manifest(releases_dir: Path, version: str) -> dict[str, Any]:
    """A release's manifest.json, refused with a clear message when it is missing or unreadable."""
    folder = _release_folder(releases_dir, version)
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReleaseError(
            f"The release {version} in {releases_dir} has no readable {MANIFEST} ({exc}), so it cannot be trusted "
            f"or built upon. Restore the folder from a backup, or move it aside and release again."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ReleaseError(
            f"The {MANIFEST} of release {version} in {releases_dir} is not a workbench manifest ({FORMAT}). "
            "Restore the folder from a backup, or move it aside and release again."
        )
    return manifest


def verify_release(releases_dir: Path, version: str) -> list[str]:
    """Check a release against its manifest; one line per problem (an empty list means intact).

    Every listed file's size and sha256 are recomputed. The manifest cannot checksum itself, so what it says
    about the data (counts, split membership, label names) is recomputed from the parquet files, and its own
    sha256 is compared with the one the changelog recorded when the release was cut.
    """
    folder = _release_folder(releases_dir, version)
    try:
        manifest = read_manifest(releases_dir, version)
    except ReleaseError as exc:
        return [str(exc)]
    problems = []
    listed: Mapping[str, Mapping[str, Any]] = manifest.get("files", {})
    for relpath, expected in sorted(listed.items()):
        path = folder / relpath
        if not path.is_file():
            problems.append(f"missing: {relpath}")
        elif path.stat().st_size != expected["size"] or file_sha256(path) != expected["sha256"]:
            problems.append(f"changed: {relpath} (sha256 differs from the manifest)")
    for path in sorted(folder.rglob("*")):
        relpath = path.relative_to(folder).as_posix()
        if path.is_file() and relpath != MANIFEST and relpath not in listed:
            problems.append(f"extra: {relpath} (not in the manifest)")
    if not problems:
        problems += [f"changed: {MANIFEST} ({why})" for why in _manifest_disagreements(releases_dir, folder, manifest)]
    return problems


def _manifest_disagreements(releases_dir: Path, folder: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Where the manifest no longer says what the (checksum-verified) data files and the changelog say."""
    found = []
    membership = manifest.get("split", {}).get("membership", {})
    counts = _Counts(manifest.get("labels", []))
    for split in SPLITS:
        schema = pq.read_schema(folder / parquet_path(split))
        features = Features.from_arrow_schema(schema)
        if list(features["ner_tags"].feature.names) != list(manifest.get("class_label_names", [])):
            found.append(f"its class_label_names differ from the {split} parquet's ClassLabel names")
        for rows in _release_batches(folder, split, ["doc_id", "spans", "annotators"]):
            for row in rows:
                if membership.get(row["doc_id"]) != split:
                    found.append(f"its split membership does not put article {row['doc_id']} in {split}")
                counts.add(split, row)
    if not found and counts.result() != manifest.get("counts"):
        found.append("its counts differ from the counts of the data files")
    changelog = releases_dir / CHANGELOG
    if changelog.is_file():
        entry = _changelog_entries(changelog.read_text(encoding="utf-8")).get(str(manifest.get("version")), "")
        digest = file_sha256(folder / MANIFEST)
        if entry and digest not in entry:
            found.append(f"its sha256 {digest[:12]}... is not the one {CHANGELOG} recorded for this release")
    return sorted(set(found))


def diff_releases(releases_dir: Path, a: str, b: str) -> dict[str, Any]:
    """What changed from release `a` to release `b`: row ids added/removed/changed and span counts per label."""
    releases_dir = Path(releases_dir)
    keys_a = _release_keys(releases_dir / a, read_manifest(releases_dir, a))
    keys_b = _release_keys(releases_dir / b, read_manifest(releases_dir, b))
    return {"a": a, "b": b, **_diff(keys_a, keys_b)}


def list_releases(releases_dir: Path) -> list[dict[str, Any]]:
    """Every release, oldest first: version, created_at, rows per split and total size in bytes."""
    releases_dir = Path(releases_dir)
    out = []
    for version in _existing_versions(releases_dir):
        folder = releases_dir / str(version)
        try:
            manifest = read_manifest(releases_dir, str(version))
        except ReleaseError:
            out.append({"version": str(version), "created_at": None, "rows": {}, "size_bytes": None})
            continue
        size = sum(info["size"] for info in manifest["files"].values()) + (folder / MANIFEST).stat().st_size
        out.append(
            {
                "version": str(version),
                "created_at": manifest["created_at"],
                "rows": {split: manifest["counts"][split]["rows"] for split in SPLITS},
                "size_bytes": size,
            }
        )
    return out


# ---- writing a release -------------------------------------------------------------------------------------


def check_new_version(releases_dir: Path, version: str) -> Version | None:
    """Refuse a version that exists or is not above the latest; return the parent (latest) version, if any."""
    wanted = parse_version(version)
    existing = _existing_versions(releases_dir)
    if wanted in existing:
        raise ReleaseError(
            f"Release {version} already exists in {releases_dir}, and releases are never overwritten. Choose the "
            f"next version (for example {wanted.major}.{wanted.minor}.{wanted.micro + 1}) and release again."
        )
    if existing and wanted < existing[-1]:
        raise ReleaseError(
            f"Release {version} is lower than the latest release {existing[-1]} in {releases_dir}; versions only "
            f"go up. Choose a version above {existing[-1]} and release again."
        )
    return existing[-1] if existing else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _front_matter(
    ctx: ReleaseContext, features: Features, splits: Mapping[str, Mapping[str, int]], sizes: Mapping[str, int]
) -> dict[str, Any]:
    """The card's YAML: what `datasets` reads to load the folder (configs, features, split sizes) and Hub tags."""
    split_info = [{"name": s, **splits[s]} for s in SPLITS]
    return {
        "pretty_name": f"{ctx.dataset} {ctx.version}",
        "task_categories": ["token-classification"],
        "task_ids": ["named-entity-recognition"],
        "size_categories": [card.size_category(sum(s["num_examples"] for s in split_info))],
        "tags": ["ner", "label-studio", "spacy"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": parquet_path(s)} for s in SPLITS],
            }
        ],
        "dataset_info": {
            # Features' own YAML form (what push_to_hub writes), so names and types round-trip exactly.
            "features": features._to_yaml_list(),
            "splits": split_info,
            "download_size": sum(sizes.values()),
            "dataset_size": sum(s["num_bytes"] for s in split_info),
        },
    }


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


def _is_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _remove_stale_tmp(releases_dir: Path) -> None:
    """Delete temporary folders left by releases that were killed (their process is gone)."""
    for child in releases_dir.iterdir():
        match = _TMP.fullmatch(child.name)
        if match and child.is_dir():
            pid = int(match["pid"])
            if pid == os.getpid() or not _is_running(pid):
                shutil.rmtree(child, ignore_errors=True)


def _check_split_settings(parent_split: Mapping[str, Any], ctx: ReleaseContext) -> None:
    """Changing how articles are split is an explicit choice: refuse a silent change of fraction or seed."""
    before = (parent_split.get("test_fraction"), parent_split.get("seed"))
    if before != (ctx.test_fraction, ctx.seed):
        raise ReleaseError(
            f"The split settings changed since the last release (test_fraction, seed: {before} -> "
            f"{(ctx.test_fraction, ctx.seed)}). Articles keep their split across releases, so a change only takes "
            "effect if you ask for it: set `resplit = true` under [split] in configs/workbench.toml to reassign "
            "every article (recorded in the manifest), or restore the previous settings."
        )


def write_release(
    releases_dir: Path, rows: Iterable[Mapping[str, Any]] | Prepared, ctx: ReleaseContext
) -> Path:
    """Cut release `ctx.version` from `rows` (or rows already prepared) into `releases_dir/<version>/`.

    Refused (ReleaseError, nothing on disk changed) when the version exists or is not above the latest, when a
    parent label vanished without a mapping, or when a row is inconsistent. Splits, ClassLabel ids and the
    changelog entry are all relative to the parent, the latest existing release."""
    releases_dir = Path(releases_dir)
    if not isinstance(rows, Prepared):
        rows = prepare_release(releases_dir, ctx.version, rows, ctx.labels, ctx.label_mapping)
    if rows.version != ctx.version:
        raise ValueError(f"rows prepared for release {rows.version} cannot be written as {ctx.version}")
    parent, parent_manifest, names, table = rows.parent, rows.parent_manifest, rows.names, rows.take_table()

    known = {}
    if parent_manifest and not ctx.resplit:
        parent_split = parent_manifest["split"]
        _check_split_settings(parent_split, ctx)
        known = {**parent_split.get("retired_membership", {}), **parent_split["membership"]}
    doc_ids = table.column("doc_id").unique().to_pylist()
    membership = assign_splits(doc_ids, test_fraction=ctx.test_fraction, seed=ctx.seed, previous=known)
    retired_membership = {d: s for d, s in sorted(known.items()) if d not in membership}
    _check_both_splits(membership)
    old_keys = rows.parent_keys

    counts, new_keys, splits = _Counts(ctx.labels), _RowKeys(), {}
    with _staging_folder(releases_dir, ctx.version) as folder:
        order = pc.sort_indices(table, sort_keys=_SORT_KEYS)
        parts = {}
        for split in SPLITS:
            members = pa.array(sorted(d for d, s in membership.items() if s == split), pa.string())
            parts[split] = table.take(order.filter(pc.take(pc.is_in(table.column("doc_id"), value_set=members), order)))
            splits[split] = _write_parquet(folder, split, parts[split])
        del table, order
        _write_spacy_and_conll(folder, parts, names, counts, new_keys)
        manifest = _manifest(
            ctx, names, membership, retired_membership, counts.result(), parent, _diff(old_keys, new_keys)
        )
        data_files = {path: _file_entry(folder / path) for path in (parquet_path(s) for s in SPLITS)}
        front = _front_matter(ctx, release_features(names), splits, {p: e["size"] for p, e in data_files.items()})
        _write_file(folder / CARD, card.render_card(front, manifest, data_files).encode("utf-8"))
        written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        manifest["files"] = {relpath: _file_entry(folder / relpath) for relpath in written}
        _write_file(folder / MANIFEST, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))

    target = releases_dir / ctx.version
    try:
        _update_changelog(releases_dir, ctx.dataset)
    except OSError as exc:
        raise ReleaseError(
            f"Release {ctx.version} was written to {target} and is complete, but {releases_dir / CHANGELOG} could "
            f"not be updated ({exc}). Fix the cause; the missing entry is added at the next release."
        ) from None
    return target


def _check_both_splits(membership: Mapping[str, str]) -> None:
    """Refuse a release with an empty split: it is no use for training or evaluation, and datasets 5.2 cannot
    load a split with no rows ("Instruction 'train' corresponds to no data")."""
    empty = [split for split in SPLITS if split not in membership.values()]
    if empty:
        raise ReleaseError(
            f"This release would have no {empty[0]} articles ({len(membership)} article(s) in all, and articles "
            "keep the split they had in earlier releases). A release needs at least one article in train and one "
            "in test: annotate paragraphs of more articles, pull a new snapshot, and release again."
        )


def _manifest(
    ctx: ReleaseContext,
    names: Sequence[str],
    membership: Mapping[str, str],
    retired_membership: Mapping[str, str],
    counts: Mapping[str, Any],
    parent: Version | None,
    diff: Mapping[str, Any],
) -> dict[str, Any]:
    """Everything a reader needs to trust and reproduce the release, except the file list (added last)."""
    return {
        "format": FORMAT,
        "dataset": ctx.dataset,
        "version": ctx.version,
        "parent": str(parent) if parent else None,
        "created_at": ctx.created_at or _now(),
        "files": {},
        "counts": dict(counts),
        "labels": list(ctx.labels),
        "class_label_names": list(names),
        "retired_labels": [label for label in _labels_of(names) if label not in ctx.labels],
        "label_mapping": dict(sorted(ctx.label_mapping.items())),
        "split": {
            "test_fraction": ctx.test_fraction,
            "seed": ctx.seed,
            "resplit": ctx.resplit,
            "membership": dict(membership),
            "retired_membership": dict(retired_membership),
        },
        "source": {"name": ctx.snapshot_name, "sha256": ctx.snapshot_sha256, "time": ctx.snapshot_time},
        "labelstudio": {
            "version": ctx.labelstudio_version,
            "project_id": ctx.labelstudio_project_id,
            "project_title": ctx.labelstudio_project_title,
        },
        "model": {"name": ctx.model_name, "version": ctx.model_version},
        "config": dict(ctx.config),
        "config_hash": ctx.config_hash,
        "workbench": {"version": ctx.workbench_version, "git_commit": ctx.git_commit},
        "alignment_report": dict(ctx.alignment_report),
        "agreement": dict(ctx.agreement),
        "preannotation_quality": dict(ctx.preannotation_quality),
        "excluded_tasks": {
            "no_submitted_annotation": ctx.excluded_no_annotation,
            "only_skipped": ctx.excluded_only_skipped,
        },
        "changes": {
            "parent": str(parent) if parent else None,
            "added": len(diff["added"]),
            "removed": len(diff["removed"]),
            "changed": len(diff["changed"]),
            "label_counts": diff["label_counts"],
        },
    }


@contextlib.contextmanager
def _staging_folder(releases_dir: Path, version: str) -> Iterator[Path]:
    """A hidden `.<version>.tmp-<pid>` folder to write the release into, renamed to `<version>` in one step when
    the block ends and removed if it fails, so a release folder is either complete or absent."""
    releases_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(releases_dir)
    target = releases_dir / version
    tmp = releases_dir / f".{version}.tmp-{os.getpid()}"
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


# ---- changelog ---------------------------------------------------------------------------------------------

_ENTRY = re.compile(r"^## (\S+)", re.MULTILINE)


def _changelog_entries(text: str) -> dict[str, str]:
    """The existing entries of a CHANGELOG.md, by version, kept verbatim."""
    starts = list(_ENTRY.finditer(text))
    entries = {}
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        entries[match[1]] = text[match.start() : end].strip()
    return entries


def changelog_entry(manifest: Mapping[str, Any], manifest_sha256: str) -> str:
    """One release's changelog entry: counts against the parent and the per-label deltas."""
    counts, changes = manifest["counts"], manifest["changes"]
    rows = (
        f"{counts['total']['rows']} rows (train {counts['train']['rows']}, test {counts['test']['rows']}) "
        f"from {counts['total']['articles']} articles"
    )
    lines = [f"## {manifest['version']} ({manifest['created_at']})", ""]
    if changes["parent"]:
        lines.append(
            f"Against {changes['parent']}: {changes['added']} rows added, {changes['removed']} removed, "
            f"{changes['changed']} changed. Now {rows}."
        )
        moved = [(label, c) for label, c in changes["label_counts"].items() if c["delta"]]
        if moved:
            lines += ["", f"| label | {changes['parent']} | {manifest['version']} | delta |", "|---|---|---|---|"]
            lines += [f"| {label} | {c['a']} | {c['b']} | {c['delta']:+d} |" for label, c in moved]
        else:
            lines += ["", "Span counts per label unchanged."]
    else:
        lines.append(f"First release: {rows}, {counts['total']['spans']} spans.")
    lines += ["", f"manifest.json sha256 `{manifest_sha256}`"]
    return "\n".join(lines)


def _update_changelog(releases_dir: Path, dataset: str) -> None:
    """Rewrite CHANGELOG.md atomically, newest first: existing entries verbatim, an entry added for every
    release that lacks one (so an entry lost to a crash after the rename comes back at the next release)."""
    path = releases_dir / CHANGELOG
    entries = _changelog_entries(path.read_text(encoding="utf-8")) if path.exists() else {}
    for version in _existing_versions(releases_dir):
        if str(version) not in entries:
            with contextlib.suppress(ReleaseError):
                manifest = read_manifest(releases_dir, str(version))
                sha = file_sha256(releases_dir / str(version) / MANIFEST)
                entries[str(version)] = changelog_entry(manifest, sha)

    def order(version: str) -> tuple[int, Version | str]:
        return (1, Version(version)) if _SEMVER.fullmatch(version) else (0, version)

    newest_first = sorted(entries, key=order, reverse=True)
    header = (
        f"# Changelog: {dataset}\n\nWritten by `workbench release`, newest first; each entry is the diff "
        "against the release before it.\n"
    )
    text = header + "".join(f"\n{entries[v]}\n" for v in newest_first)
    atomic_write_bytes(path, text.encode("utf-8"))
