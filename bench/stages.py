"""What is measured: each function does its untimed set-up and returns the timed work (see `measure.isolated`).

A work function returns the number of units it handled (words, tasks, rows), or that and a dict of details.
`workbench_*` call the workbench as a user's command would; `raw_*` do the same work with the library alone.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import spacy
from label_studio_sdk.client import LabelStudio as SdkClient

from bench.measure import Work
from workbench import server
from workbench.articles import read_corpus
from workbench.labelstudio.transport import REQUEST_TIMEOUT
from workbench.model.data import release_docs, write_training_data
from workbench.model.training import training_config
from workbench.preannotation.annotate import preannotate
from workbench.preannotation.pool import read_predictions
from workbench.project import Project, atomic_write_json
from workbench.spans.offsets import spans_to_regions
from workbench.sync.interface import labeling_config
from workbench.sync.pull import pull
from workbench.sync.push import push, to_task
from workbench.sync.snapshots import iter_lines, latest_snapshot
from workbench.workflow import client_for, do_release, do_train

# One raw import request holds at most this many tasks (~20 MB at 10k; the server refuses requests over 250 MB).
RAW_IMPORT_MAX = 10_000
# Export options of a full pull: every task, annotation, skip and prediction (as the workbench asks).
EXPORT_OPTIONS: dict[str, Any] = {
    "serialization_options": {"predictions": {"only_id": False}, "drafts": {"only_id": False}},
    "task_filter_options": {"only_with_annotations": False},
    "annotation_filter_options": {"usual": True, "skipped": True, "ground_truth": True},
}


def project_titled(root: str, title: str | None = None) -> Project:
    """The bench project, optionally pushing to a Label Studio project of another title (a fresh one)."""
    project = Project.open(root)
    if title is None:
        return project
    labelstudio = project.config.labelstudio.model_copy(update={"project_title": title})
    return Project(project.root, project.config.model_copy(update={"labelstudio": labelstudio}))


def texts(project: Project) -> list[str]:
    return [p.text for p in read_corpus(project.seeds_dir).paragraphs()]


def words(lines: list[str]) -> int:
    return sum(len(line.split()) for line in lines)


# ---- preannotate -------------------------------------------------------------------------------------------


def workbench_preannotate(root: str, model: str | None = None) -> Work:
    project = project_titled(root)
    if model:
        project = project.with_model(model)
    paragraphs = list(read_corpus(project.seeds_dir).paragraphs())
    count = words([p.text for p in paragraphs])
    project.preannotations_file.unlink(missing_ok=True)  # nothing to reuse: annotate everything

    def work() -> tuple[int, dict[str, Any]]:
        summary = preannotate(project, paragraphs)
        return count, {"processes": summary.processes, "entities": summary.entities}

    return work


def raw_pipe(root: str, n_process: int, batch_size: int, model: str | None = None) -> Work:
    project = project_titled(root)
    name = model or project.config.model.name
    others = [pipe for pipe in spacy.util.get_model_meta(_model_path(name))["components"] if pipe != "ner"]
    nlp = spacy.load(name, exclude=others)
    lines = texts(project)

    def work() -> int:
        for doc in nlp.pipe(lines, batch_size=batch_size, n_process=n_process):
            doc.ents  # noqa: B018 - what pre-annotation reads
        return words(lines)

    return work


def _model_path(name: str) -> Path:
    return Path(name) if Path(name).exists() else spacy.util.get_package_path(name)


# ---- push --------------------------------------------------------------------------------------------------


def workbench_push(root: str, title: str) -> Work:
    project = project_titled(root, title)
    project.project_file.unlink(missing_ok=True)  # a fresh Label Studio project
    corpus = read_corpus(project.seeds_dir)
    client = client_for(project)

    def work() -> int:
        return push(project, corpus, client).imported

    return work


def raw_import(root: str, title: str, annotate: bool = False) -> Work:
    """One bulk import (per RAW_IMPORT_MAX tasks) of the workbench's tasks into a new project; with `annotate`
    every task also carries a human annotation (its prediction, every fifth span deleted), for pull and release."""
    project = project_titled(root)
    tasks = _tasks(project, annotate)
    sdk = _sdk(project)

    def work() -> tuple[int, dict[str, Any]]:
        project_id = int(sdk.projects.create(title=title, label_config=labeling_config(project.config.labels)).id)
        for start in range(0, len(tasks), RAW_IMPORT_MAX):
            sdk.projects.import_tasks(
                id=project_id,
                request=tasks[start : start + RAW_IMPORT_MAX],
                return_task_ids=True,
                request_options={"max_retries": 0},
            )
        return len(tasks), {"project_id": project_id}

    return work


def _tasks(project: Project, annotate: bool) -> list[dict[str, Any]]:
    predictions = {p.key: p for p in read_predictions(project.preannotations_file)}
    tasks = []
    for paragraph in read_corpus(project.seeds_dir).paragraphs():
        prediction = predictions[paragraph.text_key]
        task = to_task(paragraph, prediction)
        if annotate:
            kept = [span for i, span in enumerate(prediction.spans) if i % 5 != 4]
            task["annotations"] = [{"result": spans_to_regions(paragraph.text, kept), "lead_time": 12.5}]
        tasks.append(task)
    return tasks


def _sdk(project: Project) -> SdkClient:
    conn = server.connection(project)
    return SdkClient(base_url=conn.url, api_key=conn.api_key, timeout=REQUEST_TIMEOUT)


# ---- pull --------------------------------------------------------------------------------------------------


def point_at(root: str, project_id: int) -> None:
    """Make the bench project pull from `project_id` (the annotated copy)."""
    project = project_titled(root)
    url = server.connection(project).url
    atomic_write_json(project.project_file, {"url": url, "project_id": project_id, "title": "annotated"})


def workbench_pull(root: str) -> Work:
    project = project_titled(root)
    client = client_for(project)

    def work() -> int:
        return pull(project, client, full=True).snapshot.tasks

    return work


def raw_export(root: str, project_id: int, tasks: int) -> Work:
    project = project_titled(root)
    sdk = _sdk(project)
    target = project.state_dir / "raw-export.json"
    for old in sdk.projects.exports.list(id=project_id):  # the previous run's export, left for untimed clean-up
        sdk.projects.exports.delete(id=project_id, export_pk=old.id)

    def work() -> int:
        export = sdk.projects.exports.create(id=project_id, title="raw", **EXPORT_OPTIONS)
        with target.open("wb") as handle:
            for chunk in sdk.projects.exports.download(id=project_id, export_pk=export.id, export_type="JSON"):
                handle.write(chunk)
        return tasks

    return work


# ---- train -------------------------------------------------------------------------------------------------

# Both sides train for exactly this many steps (no early stop) on the same batches: steps/s is examples/s up to
# the same constant on both sides.
TRAIN_STEPS = 200


def workbench_train(root: str) -> Work:
    """`workbench train 1.0.0`: split off dev, spaCy's loop, then the test split scored for the model and the
    base, the model card written (work the raw peer does not do, timed here all the same)."""
    project = project_titled(root)

    def work() -> tuple[int, dict[str, Any]]:
        result = do_train(project, "1.0.0", force=True)
        return TRAIN_STEPS, {"f1": result.trained.f1, "base_f1": result.current_scores.f1, **result.paragraphs}

    return work


def raw_train(root: str) -> Work:
    """`python -m spacy train` on the config and data the workbench trains with (made by its own code, untimed)."""
    project = project_titled(root)
    folder = Path(root) / "raw-train"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    settings = project.config.train
    write_training_data(release_docs(project, "1.0.0", "train"), folder, settings.dev_fraction, settings.seed)
    config = training_config(project, folder)
    config["training"]["logger"] = {"@loggers": "spacy.ConsoleLogger.v1", "progress_bar": False}
    config.to_disk(folder / "config.cfg")

    def work() -> int:
        subprocess.run([sys.executable, "-m", "spacy", "train", str(folder / "config.cfg"), "--output",
                        str(folder / "out")], check=True, capture_output=True)  # fmt: skip
        return TRAIN_STEPS

    return work


# ---- release -----------------------------------------------------------------------------------------------


def workbench_release(root: str) -> Work:
    project = project_titled(root)
    shutil.rmtree(project.releases_dir, ignore_errors=True)  # a first release each time, with no parent to diff

    def work() -> int:
        return do_release(project, "1.0.0").build.row_count

    return work


# ---- incremental pull and release ----------------------------------------------------------------------------


def workbench_pull_mode(root: str, full: bool) -> Work:
    """`workbench pull` (incremental: the changes since the last pull) or `workbench pull --full`."""
    project = project_titled(root)
    client = client_for(project)

    def work() -> tuple[int, dict[str, Any]]:
        result = pull(project, client, full=full)
        if not full and not result.incremental:
            raise RuntimeError(f"the bench's incremental pull made a full export: {result.note}")
        changes = result.snapshot.changes
        return result.snapshot.tasks, {"fetched": result.fetched, "incremental": result.incremental,
                                       "sha256": result.snapshot.sha256, "changes": changes}  # fmt: skip

    return work


def workbench_release_version(root: str, version: str, reuse: bool) -> Work:
    """`workbench release VERSION` (reusing the parent's unchanged rows), or a full rebuild of the same."""
    project = project_titled(root)

    def work() -> tuple[int, dict[str, Any]]:
        result = do_release(project, version, reuse=reuse)
        return result.build.row_count, {"reused": result.reused, "rebuilt": result.rebuilt, "note": result.note}

    return work


def change_annotations(root: str, project_id: int, fraction: float, seed: int) -> int:
    """Change `fraction` of the annotated tasks as an annotator would (one region deleted from the annotation),
    through the API; the tasks are picked from the latest snapshot. Returns how many were changed."""
    project = project_titled(root)
    annotated = []
    for line in iter_lines(latest_snapshot(project).path):
        task = json.loads(line)
        usable = [a for a in task.get("annotations") or [] if not a.get("was_cancelled") and a.get("result")]
        if usable:
            annotated.append(usable[0])
    picked = random.Random(seed).sample(annotated, max(1, round(len(annotated) * fraction)))
    sdk = _sdk(project)
    for annotation in picked:
        sdk.annotations.update(id=annotation["id"], result=annotation["result"][:-1])
    return len(picked)
