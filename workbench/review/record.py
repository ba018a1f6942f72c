"""What a review keeps beside its snapshot, and what a release records: the open items, by reason.

`workbench review` writes what it found to `.workbench/review/<snapshot>.json`. A release counts the label,
missing and disagreement reasons itself, on the rows it releases (they are cheap and exact); the model reason
needs a cross-validation, so a release takes its items from the review of the same snapshot with the same
settings when there is one, and says whether it did (`model_checked`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from workbench.project import Project, atomic_write_bytes, atomic_write_json
from workbench.records import stable_hash
from workbench.review import analysis, flags
from workbench.rows.builder import Build
from workbench.sync.snapshots import Snapshot

CHEAP_REASONS = ("label", "missing", "disagreement")
MEMO_FORMAT = "workbench-occurrences/1"


def reviewed_ids(build: Build) -> set[str]:
    """The ids of items whose task was submitted again after it was flagged for them."""
    return set().union(*(flags.reviewed_ids(f["flag"], f["stamps"]) for f in build.flagged))


def cheap_items(project: Project, table: pa.Table, build: Build) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The paragraphs, spans and items of the reasons that need no model, for the rows in `table`; the texts
    searched for whole-token occurrences are remembered for the next time (`occurrences_path`)."""
    settings = project.config.review
    paragraphs, spans = analysis.frames(table)
    memo = _read_memo(occurrences_path(project))
    found = analysis.review_items(paragraphs, spans, build.disputes, min_mentions=settings.min_mentions,
                                  min_share=settings.min_share, memo=memo)  # fmt: skip
    _write_memo(occurrences_path(project), memo)
    return paragraphs, spans, found


def occurrences_path(project: Project) -> Path:
    """The whole-token occurrences the last review or release found, text by text (local state)."""
    return project.state_dir / "review" / "occurrences.arrow"


def _read_memo(path: Path) -> analysis.Memo:
    try:
        table = pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()
    except (OSError, pa.ArrowException):
        return analysis.Memo()
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if meta.get("format") != MEMO_FORMAT:
        return analysis.Memo()
    return analysis.Memo(forms=meta.get("forms", ""), table=table.replace_schema_metadata(None))


def _write_memo(path: Path, memo: analysis.Memo) -> None:
    """Keep the memo (a failure costs the next search time, nothing else)."""
    if memo.table is None:
        return
    table = memo.table.replace_schema_metadata({"format": MEMO_FORMAT, "forms": memo.forms})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    with contextlib.suppress(OSError):
        atomic_write_bytes(path, sink.getvalue().to_pybytes())


def release_summary(project: Project, snapshot: Snapshot, table: pa.Table, build: Build) -> dict[str, Any]:
    """A release's `review` record: the open items by reason among the rows it releases (`table`)."""
    paragraphs, _, found = cheap_items(project, table, build)
    checked = list(CHEAP_REASONS)
    saved = saved_model_items(project, snapshot)
    if saved is not None:
        found = pd.concat([found, saved[saved.row_id.isin(paragraphs.row_id)]], ignore_index=True)
        checked.append("model")
    opened = analysis.open_items(found, reviewed_ids(build))
    return {
        "open": len(opened),
        "by_reason": analysis.counts_by_reason(opened, checked),
        "reviewed": len(found) - len(opened),
        "model_checked": saved is not None,
        "block_release": project.config.review.block_release,
    }


def save(project: Project, snapshot: Snapshot, items: pd.DataFrame, checked: Sequence[str],
         model: Mapping[str, Any] | None) -> Path:  # fmt: skip
    """Keep every item a review found (open or not) beside the snapshot."""
    path = saved_path(project, snapshot)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {
        "snapshot": snapshot.path.name, "sha256": snapshot.sha256, "settings": fingerprint(project),
        "checked": list(checked), "model": dict(model) if model else None,
        "items": [plain(item) for item in items.to_dict(orient="records")],
    })  # fmt: skip
    return path


def saved_model_items(project: Project, snapshot: Snapshot) -> pd.DataFrame | None:
    """The model reason's items that `workbench review` found on this snapshot with these settings, if it ran."""
    try:
        saved = json.loads(saved_path(project, snapshot).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (not isinstance(saved, dict) or saved.get("sha256") != snapshot.sha256
            or saved.get("settings") != fingerprint(project) or "model" not in (saved.get("checked") or [])):
        return None  # fmt: skip
    items = pd.DataFrame([i for i in saved.get("items", []) if i.get("reason") == "model"],
                         columns=analysis.ITEM_COLUMNS)  # fmt: skip
    return items.astype({"task_id": "int64", "paragraph": "int64", "start": "int64", "end": "int64",
                         "score": "float64"})  # fmt: skip


def saved_path(project: Project, snapshot: Snapshot) -> Path:
    return project.state_dir / "review" / f"{snapshot.path.stem}.json"


def fingerprint(project: Project) -> str:
    """What a review's items depend on besides the snapshot: the review, train and model settings, the labels."""
    config = project.config
    return stable_hash(config.review.model_dump(mode="json"), config.train.model_dump(mode="json"),
                       config.model.name, list(config.labels), length=64)  # fmt: skip


def plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item with plain Python values (numpy's ints and floats do not go into JSON)."""
    return {key: (value.item() if hasattr(value, "item") else value) for key, value in item.items()}
