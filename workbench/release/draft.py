"""A release before it is written: its version checked, its rows checked and packed as they stream in, then
placed against the parent release (ClassLabel ids, article splits). Every refusal happens here, before a byte is
written, in the order a user should hear them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.errors import ReleaseError
from workbench.records import Row
from workbench.release.inspect import release_keys
from workbench.release.manifest import ReleaseContext, RowKeys, read_manifest
from workbench.release.rows import RowPacker
from workbench.release.schema import class_label_names
from workbench.release.versions import check_new_version
from workbench.release.writer import Prepared
from workbench.splits import SPLITS, assign_splits


class ReleaseDraft:
    """Release `ctx.version` in the making: `add` every row, then `prepare` (which refuses or places it)."""

    def __init__(self, releases_dir: Path, ctx: ReleaseContext) -> None:
        self.releases_dir = Path(releases_dir)
        self.ctx = ctx
        self.parent = check_new_version(self.releases_dir, ctx.version)  # said before minutes of work
        self.packer = RowPacker(ctx.labels)

    def add(self, row: Row) -> None:
        self.packer.add(row)

    def prepare(self) -> Prepared:
        """Check the rows against the parent release and place them; ReleaseError, in this order, when the
        parent cannot be read, a parent label vanished without a mapping, a row is inconsistent, there are no
        rows, the split settings changed silently, or a split would be empty."""
        ctx = self.ctx
        parent_manifest, parent_keys, parent_names = None, RowKeys(), None
        if self.parent:
            parent_manifest = read_manifest(self.releases_dir, str(self.parent))
            parent_keys = release_keys(self.releases_dir / str(self.parent), parent_manifest)
            parent_names = parent_manifest["class_label_names"]
        names = class_label_names(ctx.labels, parent_names, ctx.label_mapping)
        table = self.packer.table(names)
        if not table.num_rows:
            raise ReleaseError(
                "There are no rows to release: no task has a submitted annotation yet. Annotate and submit some "
                "tasks in Label Studio, pull a new snapshot, and release again."
            )
        membership, retired = _place(table.column("doc_id").unique().to_pylist(), ctx, parent_manifest)
        return Prepared(
            version=ctx.version,
            parent=self.parent,
            parent_keys=parent_keys,
            names=names,
            membership=membership,
            retired_membership=retired,
            table=table,
        )


def _place(
    doc_ids: list[str], ctx: ReleaseContext, parent_manifest: Mapping[str, Any] | None
) -> tuple[dict[str, str], dict[str, str]]:
    """Every article's split (articles of the parent keep theirs), and the parent's articles no longer present."""
    known: dict[str, str] = {}
    if parent_manifest and not ctx.resplit:
        parent_split = parent_manifest["split"]
        _check_split_settings(parent_split, ctx)
        known = {**parent_split.get("retired_membership", {}), **parent_split["membership"]}
    membership = assign_splits(doc_ids, test_fraction=ctx.test_fraction, seed=ctx.seed, previous=known)
    retired = {d: s for d, s in sorted(known.items()) if d not in membership}
    _check_both_splits(membership)
    return membership, retired


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
