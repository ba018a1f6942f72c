"""A release before it is written: its version checked, its rows checked and packed as they stream in, then
placed against the parent release (ClassLabel ids, article splits). Every refusal happens here, before a byte is
written, in the order a user should hear them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from packaging.version import Version

from workbench.errors import ReleaseError
from workbench.records import Row
from workbench.release.columns import RowPacker
from workbench.release.inspect import release_keys
from workbench.release.manifest import Manifest, ReleaseContext, RowKeys, SplitRecord, read_manifest
from workbench.release.schema import class_label_names
from workbench.release.versions import check_new_version
from workbench.splits import SPLITS, assign_splits


@dataclass
class Prepared:
    """A release checked and placed, nothing written yet: its rows column-wise (tags as ClassLabel ids of
    `names`), every article's split, and what the parent release said."""

    version: str
    parent: Version | None
    parent_keys: RowKeys
    names: list[str]
    membership: dict[str, str]
    retired_membership: dict[str, str]
    table: pa.Table | None
    renamed: dict[str, str] = field(default_factory=dict)  # parent doc_id -> doc_id now
    written_keys: RowKeys | None = None  # every row's diff key, once the writer has counted them

    def take_table(self) -> pa.Table:
        """The rows, handed over once, so the writer can free them as soon as the parquet files hold them."""
        table, self.table = self.table, None
        if table is None:
            raise ValueError(f"the rows prepared for release {self.version} were already written")
        return table


class ReleaseDraft:
    """Release `ctx.version` in the making: `add` every row, then `prepare` (which refuses or places it)."""

    def __init__(self, releases_dir: Path, ctx: ReleaseContext) -> None:
        self.releases_dir = Path(releases_dir)
        self.ctx = ctx
        self.parent = check_new_version(self.releases_dir, ctx.version)  # said before minutes of work
        self.packer = RowPacker(ctx.labels, ctx.label_mapping)
        self.parent_keys: RowKeys | None = None  # known beforehand when the parent's row cache is used
        self._positions: list[int] = []  # where each kept row's task is in the snapshot (with reused rows)
        self._reused: pa.Table | None = None
        self._reused_rows: np.ndarray = np.zeros(0, dtype=np.int64)
        self._reused_positions: list[int] = []

    def add(self, row: Row, position: int | None = None) -> None:
        if self.packer.add(row) and position is not None:
            self._positions.append(position)

    def reuse(self, rows: pa.Table, positions: list[int], taken: np.ndarray | None = None) -> None:
        """Rows taken whole from the parent release (its Arrow columns, tags as the parent's ClassLabel ids), with
        their tasks' places in the snapshot: `prepare` puts every row in snapshot order, as a full build has them.
        With `taken`, the rows are `rows.take(taken)`, copied once, in `prepare`."""
        chosen = np.arange(rows.num_rows, dtype=np.int64) if taken is None else np.asarray(taken, dtype=np.int64)
        for row_id in pc.take(rows.column("id"), pa.array(chosen)).to_pylist():
            self.packer.seen(row_id)
        self._reused, self._reused_rows, self._reused_positions = rows, chosen, positions

    def prepare(self, *, source: str = "The rows given", counted: str = "") -> Prepared:
        """Check the rows against the parent release and place them; ReleaseError, in this order, when there
        are no rows at all (`source` says where they came from), the parent cannot be read, a parent label
        vanished without a mapping, a row is inconsistent, two rows claim the same place in an article, the split
        settings changed silently, or a split would be empty."""
        ctx = self.ctx
        if not self.packer.rows and not self.packer.problems:
            raise ReleaseError(
                f"{source} has no task with a submitted annotation{counted}, so release {ctx.version} would be "
                "empty. Annotate in Label Studio, run `workbench pull`, then release."
            )
        parent_manifest, parent_keys, parent_names = None, RowKeys(), None
        if self.parent:
            parent_manifest = read_manifest(self.releases_dir, str(self.parent))
            parent_keys = self.parent_keys or release_keys(self.releases_dir / str(self.parent), parent_manifest)
            parent_names = parent_manifest.class_label_names
        names = class_label_names(ctx.labels, parent_names, ctx.label_mapping)
        table = self.packer.table(names)
        if self._reused is not None:
            # the parent's tag ids mean the same in `names`: a parent's ClassLabel names never move. Built and reused
            # rows are put in snapshot order by one take, the one copy of the parent's rows made.
            schema = table.schema
            built = table.num_rows
            both = pa.concat_tables([table, self._reused.select(schema.names).cast(schema)])
            order = np.argsort(np.array(self._positions + self._reused_positions, dtype=np.int64), kind="stable")
            rows = np.concatenate([np.arange(built, dtype=np.int64), built + self._reused_rows])[order]
            self._reused = None
            table = both.take(pa.array(rows))
            del both
            pa.default_memory_pool().release_unused()
        row_docs = dict(zip(table.column("id").to_pylist(), table.column("doc_id").to_pylist(), strict=True))
        _check_unique_places(table)
        renamed = _renames(row_docs, parent_keys.docs, parent_manifest)
        membership, retired = _place(row_docs, parent_keys.docs, ctx, parent_manifest)
        return Prepared(
            renamed=renamed,
            version=ctx.version,
            parent=self.parent,
            parent_keys=parent_keys,
            names=names,
            membership=membership,
            retired_membership=retired,
            table=table,
        )


def _check_unique_places(table: pa.Table) -> None:
    """Refuse two rows at one (doc_id, paragraph): the same place in an article cannot hold two paragraphs."""
    places = Counter(zip(table.column("doc_id").to_pylist(), table.column("paragraph").to_pylist(), strict=True))
    twice = sorted(place for place, n in places.items() if n > 1)
    if twice:
        shown = ", ".join(f"article {doc} paragraph {n}" for doc, n in twice[:5])
        raise ReleaseError(
            f"{len(twice)} place(s) in the articles are held by two rows: {shown}. The tasks' positions are out of "
            "date: run `workbench push` (it renumbers the paragraphs of every changed article in Label Studio), "
            "then `workbench pull`, and release again."
        )


def _renames(
    row_docs: Mapping[str, str], parent_docs: Mapping[str, str], parent_manifest: Manifest | None
) -> dict[str, str]:
    """Articles of the parent that are here under another name: their rows (same ids) now have a new doc_id."""
    if not parent_manifest:
        return {}
    before = parent_manifest.split.membership
    now = set(row_docs.values())
    votes: dict[str, Counter[str]] = {}
    for row_id, doc in row_docs.items():
        old = parent_docs.get(row_id)
        if old is not None and old != doc and old not in now and doc not in before:
            votes.setdefault(old, Counter())[doc] += 1
    return {old: counts.most_common(1)[0][0] for old, counts in sorted(votes.items())}


def _place(
    row_docs: Mapping[str, str], parent_docs: Mapping[str, str], ctx: ReleaseContext,
    parent_manifest: Manifest | None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Every article's split, and the parent's articles no longer present. Articles of the parent keep theirs; an
    article new by name whose rows were in the parent (renamed, split off, merged into a new file) takes the split
    its rows had, so no paragraph crosses the train/test line between releases (ties go to train: a row trained
    on before never lands in test)."""
    known: dict[str, str] = {}
    if parent_manifest and not ctx.resplit:
        parent_split = parent_manifest.split
        _check_split_settings(parent_split, ctx)
        known = {**parent_split.retired_membership, **parent_split.membership}
        known |= _inherited(row_docs, parent_docs, known)
    membership = assign_splits(sorted(set(row_docs.values())), test_fraction=ctx.test_fraction, seed=ctx.seed,
                               previous=known)  # fmt: skip
    retired = {d: s for d, s in sorted(known.items()) if d not in membership}
    _check_both_splits(membership)
    return membership, retired


def _inherited(row_docs: Mapping[str, str], parent_docs: Mapping[str, str], known: Mapping[str, str]) -> dict[str, str]:
    """The split of each article not placed before, from the splits its rows had in the parent release."""
    votes: dict[str, Counter[str]] = {}
    for row_id, doc in row_docs.items():
        old = parent_docs.get(row_id)
        if doc not in known and old in known:
            votes.setdefault(doc, Counter())[known[old]] += 1
    return {doc: max(SPLITS, key=lambda split: (counts[split], split == "train")) for doc, counts in votes.items()}


def _check_split_settings(parent_split: SplitRecord, ctx: ReleaseContext) -> None:
    """Changing how articles are split is an explicit choice: refuse a silent change of fraction or seed."""
    before = (parent_split.test_fraction, parent_split.seed)
    if before != (ctx.test_fraction, ctx.seed):
        raise ReleaseError(
            f"The split settings changed since the last release (test_fraction, seed: {before} -> "
            f"{(ctx.test_fraction, ctx.seed)}). Articles keep their split across releases, so a change only takes "
            "effect if you ask for it: set `resplit = true` under [split] in configs/workbench.toml to reassign "
            "every article (recorded in the manifest), or restore the previous settings."
        )


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
