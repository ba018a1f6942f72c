"""Tasks and the labeling interface built from paragraphs and predictions (pure; no server)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from workbench.records import Paragraph, Prediction, Span
from workbench.sync.interface import labeling_config
from workbench.sync.push import to_task

TEXT = "🇹🇷 Erdoğan met Biden in Rome."


def paragraph(text: str = TEXT) -> Paragraph:
    return Paragraph(doc_id="a", index=1, offset=10, title="T", text=text, count=3, key="k1")


def test_a_task_carries_the_paragraph_data_and_the_model_prediction() -> None:
    erdogan = Span(3, 10, "PERSON", "Erdoğan")
    task = to_task(paragraph(), Prediction(key="k1", model_version="m-1.0", spans=(erdogan,)))
    assert task["data"]["text"] == TEXT and task["data"]["key"] == "k1"
    assert task["data"]["doc_id"] == "a" and task["data"]["paragraph"] == 1 and task["data"]["offset"] == 10
    (prediction,) = task["predictions"]
    assert prediction["model_version"] == "m-1.0"
    (region,) = prediction["result"]
    value = region["value"]
    assert TEXT[value["start"] : value["end"]] == value["text"] == "Erdoğan"
    assert value["labels"] == ["PERSON"]


def test_pushing_the_same_prediction_twice_gives_identical_tasks() -> None:
    prediction = Prediction(key="k1", model_version="m", spans=(Span(15, 20, "PERSON", "Biden"),))
    assert to_task(paragraph(), prediction) == to_task(paragraph(), prediction)


def test_the_interface_has_one_label_per_configured_label_and_renders_text_not_html() -> None:
    labels = ("PERSON", "GPE", "ORG")
    root = ET.fromstring(labeling_config(labels))
    assert [label.get("value") for label in root.iter("Label")] == list(labels)
    assert len({label.get("background") for label in root.iter("Label")}) == len(labels)
    assert root.find("Text") is not None and root.find("HyperText") is None
