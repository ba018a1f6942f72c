"""The build in worker processes gives exactly what it gives in one: the same rows in the same order, the same
figures (alignment, exclusions, ties, agreement, pre-annotation quality), the same refusals and the same release
files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import spacy

from tests.support import make_project
from workbench import workflow
from workbench.config import Config
from workbench.errors import AlignmentError
from workbench.project import Project
from workbench.release import writer
from workbench.rows import builder as build
from workbench.rows.builder import RowBuilder
from workbench.sync.snapshots import meta_path_for

TOKENIZER = spacy.blank("en").tokenizer
TEXTS = [
    "Erdoğan met Putin in Sochi on Tuesday.",
    "NATO said Turkey’s S-400 purchase angered Washington.",
    "Zelensky spoke to reporters in Kyiv 🙂 after talks with Blinken.",
]
WORDS = {"Erdoğan": "PERSON", "Putin": "PERSON", "Sochi": "GPE", "NATO": "ORG", "Turkey": "GPE", "Washington": "GPE",
         "Zelensky": "PERSON", "Kyiv": "GPE", "Blinken": "PERSON", "Tuesday": "DATE"}


def _region(text: str, word: str, label: str) -> dict[str, Any]:
    start = text.index(word)
    value = {"start": start, "end": start + len(word), "text": word, "labels": [label]}
    return {"id": f"r{start}", "from_name": "label", "to_name": "text", "type": "labels", "value": value}


def _task(n: int) -> dict[str, Any]:
    """Task n: one, two or no annotators, some skipped, disagreeing and relabelling, with predictions."""
    text = TEXTS[n % len(TEXTS)]
    found = [(word, label) for word, label in WORDS.items() if word in text]
    predicted = [_region(text, word, label) for word, label in found]
    relabelled = [(word, "ORG" if n % 4 == 0 and label == "GPE" else label) for word, label in found]
    human = [_region(text, word, label) for word, label in relabelled[: 1 + n % 3]]
    annotations = [
        {"id": 10 * n, "completed_by": 1, "was_cancelled": n % 7 == 3, "result": human,
         "updated_at": f"2026-01-{n % 28 + 1:02d}"}
    ]
    if n % 3 == 0:
        annotations.append({"id": 10 * n + 1, "completed_by": 2, "was_cancelled": False, "result": predicted[:2],
                            "updated_at": "2026-02-01"})
    return {
        "id": n,
        "data": {"text": text, "doc_id": f"doc{n // 4}", "paragraph": n % 4, "key": f"k{n}"},
        "annotations": annotations if n % 11 != 5 else [],
        "predictions": [{"model_version": f"m{n % 2}", "result": predicted}],
    }


def _run(tasks: list[dict[str, Any]], processes: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    builder = RowBuilder(Config(), TOKENIZER)
    rows = list(builder.rows(tasks, processes=processes))
    return rows, builder.finish().report()


def test_workers_give_the_same_rows_and_figures_as_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = [_task(n) for n in range(60)]
    monkeypatch.setattr(build, "CHUNK_TASKS", 4)  # many chunks, several in flight, a short last one
    serial_rows, serial_figures = _run(tasks, processes=1)
    parallel_rows, parallel_figures = _run(tasks, processes=2)
    assert parallel_rows == serial_rows
    assert parallel_figures == serial_figures
    # the data exercise what is merged across chunks
    skipped = [t for t in tasks if t["annotations"] and all(a["was_cancelled"] for a in t["annotations"])]
    assert serial_figures["excluded"] == {"no_annotation": sum(not t["annotations"] for t in tasks),
                                          "skipped": len(skipped)}
    assert serial_figures["agreement"]["tasks_compared"] > 0
    assert set(serial_figures["prediction_quality"]) == {"m0", "m1"}
    assert serial_figures["prediction_quality"]["m0"]["counts"]["relabelled"] > 0


def test_workers_name_every_bad_region_in_snapshot_order(monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = [_task(n) for n in range(20)]
    for n in (2, 13):  # a region whose text is not at its offsets, in two different chunks
        tasks[n]["annotations"][0]["result"].append(_region(TEXTS[n % 3], TEXTS[n % 3][:5], "PERSON") | {"id": "bad"})
        tasks[n]["annotations"][0]["result"][-1]["value"]["start"] += 1
    monkeypatch.setattr(build, "CHUNK_TASKS", 4)
    with pytest.raises(AlignmentError) as serial:
        _run(tasks, processes=1)
    with pytest.raises(AlignmentError) as parallel:
        _run(tasks, processes=2)
    assert [p["task_id"] for p in parallel.value.problems] == [2, 13]
    assert parallel.value.problems == serial.value.problems


def _project_with_snapshot(root: Path, tasks: list[dict[str, Any]]) -> Project:
    project = make_project(root, link_venv=False)
    project.snapshots_dir.mkdir(parents=True)
    path = project.snapshots_dir / "2026-11-21T050000-000000Z.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")
    meta = {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "project_id": 1,
            "pulled_at": "2026-11-21T05:00:00Z", "label_studio_version": "1.23.2", "tasks": len(tasks)}
    meta_path_for(path).write_text(json.dumps(meta), encoding="utf-8")
    return project


def test_a_release_built_in_workers_holds_what_one_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = [_task(n) for n in range(40)]
    one = workflow.do_release(_project_with_snapshot(tmp_path / "one", tasks), "1.0.0")
    monkeypatch.setattr(build, "PARALLEL_MIN_TASKS", 1)
    monkeypatch.setattr(build, "CHUNK_TASKS", 3)
    monkeypatch.setattr(writer, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(writer, "SHARD_ROWS", 4)
    seen: list[int] = []
    many = workflow.do_release(_project_with_snapshot(tmp_path / "many", tasks), "1.0.0", progress=seen.append)
    assert sum(seen) == len(tasks)  # the progress bar counts every task read
    files = [json.loads((result.path / "manifest.json").read_text())["files"] for result in (one, many)]
    for listing in files:
        del listing["README.md"]  # the card quotes the creation time
    assert files[0] == files[1]
    assert many.build.report() == one.build.report()


def test_the_label_mapping_is_applied_once_in_the_build_to_spans_and_tags() -> None:
    text = TEXTS[0]
    task = {"id": 1, "data": {"text": text, "doc_id": "d", "paragraph": 0, "key": "k"}, "predictions": [],
            "annotations": [{"id": 1, "completed_by": 1, "result": [_region(text, "Sochi", "CITY"),
                                                                   _region(text, "Putin", "PERSON")]}]}
    config = Config(label_mapping={"CITY": "GPE"})
    row = RowBuilder(config, TOKENIZER).row(task)
    assert row is not None
    assert [(s.text, s.label) for s in row.spans] == [("Putin", "PERSON"), ("Sochi", "GPE")]
    assert dict(zip(row.tokens, row.ner_tags, strict=True))["Sochi"] == "B-GPE"
