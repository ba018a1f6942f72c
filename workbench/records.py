"""Typed records passed between pipeline stages, and the stable hashing that gives them ids."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


def stable_hash(*parts: Any, length: int = 16) -> str:
    """A hex digest of canonical JSON: the same input gives the same id in every run and on every machine."""
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:length]


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
    """One non-empty line of an article: the unit of annotation (one Label Studio task, one dataset row)."""

    doc_id: str
    index: int
    offset: int
    title: str
    text: str
    count: int
    key: str

    def task_data(self) -> dict[str, Any]:
        """The fields stored as the Label Studio task's `data`."""
        return {
            "text": self.text,
            "doc_id": self.doc_id,
            "paragraph": self.index,
            "paragraphs": self.count,
            "position": f"paragraph {self.index + 1} of {self.count}",
            "offset": self.offset,
            "title": self.title,
            "key": self.key,
        }


@dataclass(frozen=True)
class Prediction:
    """The model's entities for one paragraph, kept apart from human labels."""

    key: str
    model_version: str
    spans: tuple[Span, ...]


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
