"""Simulated annotators: people who submit, correct and skip through Label Studio's own API.

Regions are built here independently of the workbench's offset code, the way a browser builds them: offsets in
UTF-16 code units, the selected text as shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from label_studio_sdk.client import LabelStudio


def utf16(text: str, index: int) -> int:
    """A browser's offset for code-point `index` (JavaScript strings count UTF-16 code units)."""
    return len(text[:index].encode("utf-16-le")) // 2


def browser_region(text: str, start: int, end: int, label: str, region_id: str) -> dict[str, Any]:
    """A region as the Label Studio editor sends it for a selection of text[start:end]."""
    return {
        "id": region_id,
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "origin": "manual",
        "value": {"start": utf16(text, start), "end": utf16(text, end), "text": text[start:end], "labels": [label]},
    }


def find(text: str, piece: str, occurrence: int = 0) -> tuple[int, int]:
    """Code-point offsets of the n-th occurrence of `piece` in `text`."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(piece, start + 1)
    return start, start + len(piece)


@dataclass
class Annotator:
    """One person at the Label Studio UI, acting through the API with their own token."""

    client: LabelStudio
    user_id: int

    @classmethod
    def connect(cls, url: str, api_key: str) -> Annotator:
        client = LabelStudio(base_url=url, api_key=api_key)
        return cls(client=client, user_id=int(client.users.whoami().id))

    def tasks(self, project_id: int) -> dict[tuple[str, int], dict[str, Any]]:
        """The project's tasks as plain dicts, by (doc_id, paragraph)."""
        found = {}
        for task in self.client.tasks.list(project=project_id, fields="all", page_size=1000):
            record = task.model_dump() if hasattr(task, "model_dump") else dict(task)
            found[(record["data"]["doc_id"], int(record["data"]["paragraph"]))] = record
        return found

    def submit(self, task: dict[str, Any], result: list[dict[str, Any]], *, lead_time: float | None = 12.5) -> int:
        """Submit `result`, with the seconds the editor would record (None: as a client that sends none)."""
        timed = {} if lead_time is None else {"lead_time": lead_time}
        annotation = self.client.annotations.create(id=task["id"], result=result, **timed)
        return int(annotation.id)

    def skip(self, task: dict[str, Any], *, lead_time: float | None = None) -> int:
        timed = {} if lead_time is None else {"lead_time": lead_time}
        annotation = self.client.annotations.create(id=task["id"], result=[], was_cancelled=True, **timed)
        return int(annotation.id)


def prediction_regions(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's predicted regions, as an annotator who accepts them submits them."""
    prediction = task["predictions"][0]
    result = prediction["result"] if isinstance(prediction, dict) else prediction.result
    return [{**region, "origin": "prediction"} for region in result]


def region_text(region: dict[str, Any]) -> str:
    return region["value"]["text"]
