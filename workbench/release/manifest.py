"""What a release records besides its rows: the context it was cut in, its counts, its diff against the parent,
and the manifest that holds them all (with every file's checksum, added last)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.version import Version

from workbench.config import Config
from workbench.errors import ReleaseError
from workbench.release.layout import FORMAT, FORMATS, MANIFEST
from workbench.release.schema import labels_of
from workbench.release.versions import release_folder
from workbench.splits import SPLITS

SpanKey = tuple[int, int, str, str]


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
    annotation_time: Mapping[str, Any] = field(default_factory=dict)  # seconds in the editor (`rows.timing`)
    excluded_no_annotation: int = 0
    excluded_only_skipped: int = 0
    excluded_retired: int = 0
    excluded_awaiting_check: int = 0
    merge_policy: str = ""
    merge_ties: tuple[int, ...] = ()
    review: Mapping[str, Any] = field(default_factory=dict)  # open review items by reason (`review.record`)
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
            merge_policy=config.merge.policy,
            **rest,
        )


def now() -> str:
    """The time a release is cut, to the second, in UTC."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Counts:
    """Rows, articles, spans, annotators and spans per label, per split and in total, counted row by row."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.parts: dict[str, dict[str, Any]] = {
            name: {"rows": 0, "articles": set(), "annotators": set(), "labels": Counter()}
            for name in (*SPLITS, "total")
        }

    def add(self, split: str, doc_id: str, annotators: Iterable[int], span_labels: Iterable[str]) -> None:
        annotators, span_labels = list(annotators), list(span_labels)
        for name in (split, "total"):
            part = self.parts[name]
            part["rows"] += 1
            part["articles"].add(doc_id)
            part["annotators"].update(annotators)
            part["labels"].update(span_labels)

    def merge(self, other: Counts) -> None:
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


def _row_key(tags: Sequence[str], spans: Iterable[SpanKey]) -> bytes:
    """What a row says, its tags and its spans, as a 16-byte digest: two releases disagree on a row when it
    differs. A digest rather than the tags themselves keeps a 100k-row diff in a few MB."""
    said = (tuple(tags), tuple(sorted(spans)))
    return hashlib.blake2b(repr(said).encode("utf-8"), digest_size=16).digest()


@dataclass
class RowKeys:
    """One side of a diff: every row's key and article by id, and the spans per label."""

    keys: dict[str, bytes] = field(default_factory=dict)
    docs: dict[str, str] = field(default_factory=dict)
    label_counts: Counter[str] = field(default_factory=Counter)

    def add(self, row_id: str, doc_id: str, tags: Sequence[str], spans: Sequence[SpanKey]) -> None:
        self.keys[row_id] = _row_key(tags, spans)
        self.docs[row_id] = doc_id
        self.label_counts.update(span[2] for span in spans)

    def add_known(self, row_id: str, doc_id: str, key: bytes, labels: Iterable[str]) -> None:
        """A row whose key is known already (the same row in the parent release)."""
        self.keys[row_id] = key
        self.docs[row_id] = doc_id
        self.label_counts.update(labels)

    def merge(self, other: RowKeys) -> None:
        self.keys.update(other.keys)
        self.docs.update(other.docs)
        self.label_counts.update(other.label_counts)


def diff_keys(old: RowKeys, new: RowKeys) -> dict[str, Any]:
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


def build_manifest(
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
        "created_at": ctx.created_at or now(),
        "files": {},
        "counts": dict(counts),
        "labels": list(ctx.labels),
        "class_label_names": list(names),
        "retired_labels": [label for label in labels_of(names) if label not in ctx.labels],
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
        "annotation_time": dict(ctx.annotation_time),
        "excluded_tasks": {
            "no_submitted_annotation": ctx.excluded_no_annotation,
            "only_skipped": ctx.excluded_only_skipped,
            "retired": ctx.excluded_retired,
            "awaiting_check": ctx.excluded_awaiting_check,
        },
        "merge": {"policy": ctx.merge_policy, "ties": len(ctx.merge_ties), "tied_tasks": list(ctx.merge_ties)},
        "review": dict(ctx.review),
        "changes": {
            "parent": str(parent) if parent else None,
            "added": len(diff["added"]),
            "removed": len(diff["removed"]),
            "changed": len(diff["changed"]),
            "renamed": dict(diff.get("renamed", {})),
            "label_counts": diff["label_counts"],
        },
    }


@dataclass(frozen=True)
class SplitRecord:
    """How a release placed its articles: the settings, and each article's split (and the retired ones')."""

    test_fraction: float
    seed: int
    membership: dict[str, str]
    retired_membership: dict[str, str]
    resplit: bool = False


@dataclass(frozen=True)
class Manifest:
    """A release's manifest.json, read back and checked: what listing, diffing, verifying, training and releasing
    on top of it rely on, by name. `record` is the whole file, for the card, the changelog and the report page."""

    version: str
    format: str
    dataset: str
    created_at: str
    files: dict[str, dict[str, Any]]
    counts: dict[str, Any]
    labels: list[str]
    class_label_names: list[str]
    split: SplitRecord
    changes: dict[str, Any]
    excluded_tasks: dict[str, int]
    record: dict[str, Any]

    @classmethod
    def of(cls, record: dict[str, Any]) -> Manifest:
        split = record["split"]
        return cls(
            version=str(record["version"]), format=str(record.get("format", "")),
            dataset=str(record.get("dataset", "")), created_at=str(record["created_at"]), files=record["files"],
            counts=record["counts"], labels=list(record["labels"]), class_label_names=list(record["class_label_names"]),
            split=SplitRecord(test_fraction=split.get("test_fraction"), seed=split.get("seed"),
                              membership=dict(split.get("membership") or {}),
                              retired_membership=dict(split.get("retired_membership") or {}),
                              resplit=bool(split.get("resplit"))),
            changes=record["changes"], excluded_tasks=dict(record.get("excluded_tasks") or {}), record=record,
        )  # fmt: skip


def read_manifest(releases_dir: Path, version: str) -> Manifest:
    """A release's manifest.json, refused with a clear message when it is missing, unreadable or not ours."""
    folder = release_folder(releases_dir, version)
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReleaseError(
            f"The release {version} in {releases_dir} has no readable {MANIFEST} ({exc}), so it cannot be trusted "
            f"or built upon. Restore the folder from a backup, or move it aside and release again."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") not in FORMATS:
        raise ReleaseError(
            f"The {MANIFEST} of release {version} in {releases_dir} is not a workbench manifest ({FORMAT}). "
            "Restore the folder from a backup, or move it aside and release again."
        )
    missing = [key for key, kind in REQUIRED.items() if not isinstance(manifest.get(key), kind)]
    missing += [f"counts.{split}" for split in (*SPLITS, "total")
                if "counts" not in missing and not isinstance(manifest["counts"].get(split), dict)]  # fmt: skip
    if "split" not in missing and not isinstance(manifest["split"].get("membership"), dict):
        missing.append("split.membership")
    if missing:
        raise ReleaseError(
            f"The {MANIFEST} of release {version} in {releases_dir} lacks {', '.join(missing)} (or holds something "
            "else there), so it was edited or written by another tool. Restore the folder from a backup, or move it "
            "aside and release again."
        )
    return Manifest.of(manifest)


# What the workbench reads from a manifest: listing, diffing, verifying and releasing on top of it.
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "version": str, "created_at": str, "files": dict, "counts": dict, "labels": list, "class_label_names": list,
    "split": dict, "changes": dict,
}  # fmt: skip
