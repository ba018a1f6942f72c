"""The release schema: IOB2 ClassLabel names that never move between releases, and the `datasets` Features of a
row (column by column as `records.Row` defines them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from datasets import ClassLabel, Features, List, Value

from workbench.errors import ReleaseError
from workbench.records import row_columns
from workbench.spans.alignment import iob_names

SPAN = {"start": Value("int32"), "end": Value("int32"), "label": Value("string"), "text": Value("string")}


def class_label_names(
    labels: Sequence[str], parent_names: Sequence[str] | None, label_mapping: Mapping[str, str]
) -> list[str]:
    """The IOB2 ClassLabel names: the parent's names first (ids never move), new labels' B-/I- appended.

    A parent label missing from `labels` must be mapped (renamed or merged) in `label_mapping`, or a model
    trained on the parent would silently lose a class; its ids stay reserved so old ids keep their meaning."""
    if not parent_names:
        return iob_names(labels)
    names = list(parent_names)
    vanished = [label for label in labels_of(names) if label not in labels and label not in label_mapping]
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


def labels_of(names: Sequence[str]) -> list[str]:
    """Entity labels named by IOB tags, in first-seen order."""
    labels: list[str] = []
    for name in names:
        if name != "O" and name[2:] not in labels:
            labels.append(name[2:])
    return labels


def release_features(names: Sequence[str]) -> Features:
    """The release schema: CoNLL-style tokens and ClassLabel tags, plus character spans and provenance ids."""
    return Features({name: _feature(type_, names) for name, type_, _ in row_columns()})


def _feature(type_: str, names: Sequence[str]) -> Any:
    if type_.startswith("list of "):
        inner = type_.removeprefix("list of ")
        if inner == "ClassLabel":
            return List(ClassLabel(names=list(names)))
        return List(dict(SPAN) if inner.startswith("{") else Value(inner))
    return Value(type_)
