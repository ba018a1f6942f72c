"""Typed records passed between pipeline stages, and the stable hashing that gives them ids."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any


def stable_hash(*parts: Any, length: int = 16) -> str:
    """A hex digest of canonical JSON: the same input gives the same id in every run and on every machine."""
    return hashlib.sha256(_canonical(parts).encode("utf-8")).hexdigest()[:length]


# json.dumps(..., sort_keys=True, ensure_ascii=False, separators=(",", ":")), without making an encoder per call.
_canonical = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode


def stamp_time(stamp: Any) -> datetime:
    """A time stamp as Label Studio and the workbench write them (ISO 8601, `Z` or an offset, or naive meaning UTC)
    as an aware datetime; anything unreadable or missing is the earliest time, so it never counts as later."""
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def confirmed(annotation: Mapping[str, Any], held: Mapping[str, str]) -> bool:
    """Whether an exported annotation counts after an edit of its task's text: it was not held back (see
    `carry`), or it was submitted again since (`updated_at` later than the time recorded in `held`)."""
    stamp = held.get(str(annotation.get("id")))
    if stamp is None:
        return True
    if not stamp:
        return False
    return stamp_time(annotation.get("updated_at")) > stamp_time(stamp)


def text_key(text: str) -> str:
    """The key of a text alone: what a model's predictions depend on (the same text, the same entities)."""
    return stable_hash("text", text)


@dataclass(frozen=True, order=True)
class Span:
    """A labelled character span over a paragraph, in Python code points; `text == paragraph[start:end]`."""

    start: int
    end: int
    label: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "label": self.label, "text": self.text}


@dataclass(frozen=True)
class Paragraph:
    """One non-empty line of an article: the unit of annotation (one Label Studio task, one dataset row).

    `key` identifies it for good: given when it is first pushed (from its article, text and occurrence) and kept
    through later renames, moves and small edits (see `reconcile`); it is the dataset row's id."""

    doc_id: str
    index: int
    offset: int
    title: str
    text: str
    count: int
    key: str

    @property
    def text_key(self) -> str:
        return text_key(self.text)

    def task_data(self) -> dict[str, Any]:
        """The fields stored as the Label Studio task's `data` (flags always present, as strings: Label Studio's
        filters and its labeling view read a missing field differently from an empty one)."""
        return {
            "text": self.text,
            "doc_id": self.doc_id,
            "paragraph": self.index,
            "paragraphs": self.count,
            "position": f"paragraph {self.index + 1} of {self.count}",
            "offset": self.offset,
            "title": self.title,
            "key": self.key,
            "retired": "",
            "second_look": "",
            "review": "",
        }


@dataclass(frozen=True)
class Prediction:
    """The model's entities for one paragraph text (`key` is its `text_key`), kept apart from human labels."""

    key: str
    model_version: str
    spans: tuple[Span, ...]
    score: float | None = None  # how sure the model was of the paragraph (`confidence`); lowest = least sure


@dataclass(frozen=True)
class Annotation:
    """One annotator's submitted (or skipped) decision on one task, its regions already checked and converted."""

    id: int
    task_id: int
    annotator: int | None
    spans: tuple[Span, ...]
    cancelled: bool = False
    ground_truth: bool = False
    updated_at: str = ""
    created_at: str = ""  # when it was first submitted (or skipped): which model's proposals the annotator saw
    lead_time: float | None = None  # seconds in Label Studio's editor, as it recorded them; None when it did not


def _column(type_: str, doc: str) -> Any:
    """A row field's column in every release: its type as the card names it, and what it means."""
    return field(metadata={"type": type_, "doc": doc})


@dataclass(frozen=True, slots=True)
class Row:
    """One dataset row: one annotated paragraph, as every file of a release holds it.

    The one definition of a row: the build makes them, the release checks and writes them, and the release
    schema, its Arrow columns and the card's field table follow these fields, in this order, with the column type
    and meaning given here. `ner_tags` are IOB2 names here (a release stores them as ClassLabel ids); `spans` are
    the human spans, sorted.
    """

    id: str = _column("string", "stable id of the paragraph: the same paragraph has the same id in every release")
    doc_id: str = _column("string", "the article the paragraph comes from (splits are made per article)")
    paragraph: int = _column("int32", "0-based position of the paragraph in its article")
    text: str = _column("string", "the paragraph text")
    tokens: tuple[str, ...] = _column(
        "list of string", "the tokens of `text`, in order; every span edge is a token edge"
    )
    ner_tags: tuple[str, ...] = _column("list of ClassLabel", "IOB2 tag ids, one per token (names below)")
    spans: tuple[Span, ...] = _column(
        "list of {start, end, label, text}", "human spans, offsets in Unicode code points of `text`"
    )
    task_id: int = _column("int64", "the Label Studio task the row was annotated in")
    annotation_ids: tuple[int, ...] = _column("list of int64", "the Label Studio annotations merged into the row")
    annotators: tuple[int, ...] = _column(
        "list of int64", "Label Studio user ids of those annotations (numbers, no names)"
    )


def row_columns() -> list[tuple[str, str, str]]:
    """Every column of a release, in order: (name, type as the card names it, meaning)."""
    return [(f.name, f.metadata["type"], f.metadata["doc"]) for f in fields(Row)]
