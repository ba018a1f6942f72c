"""Faults injected against a real Label Studio: nothing lost, nothing duplicated, every failure explained.

Three kinds of fault:
- processes killed for real: the workbench (SIGKILL part-way through an import or a release) and the server
  (its whole process group, during push and pull);
- a gateway between the workbench and the real server, the way nginx sits in front of Label Studio in
  production, that answers 504 after the server committed an import, refuses large bodies (413), is slow, or
  cuts an export short;
- the real server refusing things: a task it rejects (HTTP 400), a revoked token, a deleted project.

Tests that kill or restart a server use a server of their own (`own`); the others share `ls_server`.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from click.testing import Result
from label_studio_sdk.client import LabelStudio as Sdk
from typer.testing import CliRunner

from tests.integration.annotators import Annotator, browser_region, find
from tests.support import LabelStudioServer, make_project
from workbench import server, workflow
from workbench.articles import read_corpus
from workbench.cli import app
from workbench.labelstudio import accounts
from workbench.project import Project, read_json
from workbench.records import Paragraph
from workbench.sync import push as push_module

ARTICLES = 30
PARAGRAPHS = 100  # 3,000 paragraphs in all
OWN_ARTICLES = 15  # the server the tests kill holds half of them
OWN_TASKS = OWN_ARTICLES * PARAGRAPHS
NAMES = ("Alice Smith", "Bob Jones", "Carla Diaz", "Deng Wei", "Emma Brown", "Farid Khan", "Grace Lee")
PLACES = ("Paris", "Berlin", "Nairobi", "Lima", "Osaka", "Toronto", "Cairo")
ORGS = ("the United Nations", "Acme Corp", "the World Bank", "NATO", "Reuters")


def paragraph(article: int, index: int) -> str:
    name, other = NAMES[index % len(NAMES)], NAMES[(index + article + 1) % len(NAMES)]
    return (
        f"Report {article}, item {index}: {name} met {other} of {ORGS[(article + index) % len(ORGS)]} "
        f"in {PLACES[(article * 3 + index) % len(PLACES)]} on Monday."
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 paragraphs in 30 articles, pre-annotated once by the real pipeline; projects copy what they need."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text("[model]\nprocesses = 1\n")
    (root / "seeds").mkdir()
    for article in range(ARTICLES):
        lines = [f"Report {article}"] + [paragraph(article, i) for i in range(1, PARAGRAPHS)]
        (root / "seeds" / f"{article:03d}_report.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, summary = workflow.do_preannotate(Project.open(root))
    assert summary.paragraphs == ARTICLES * PARAGRAPHS
    return root


def new_root(parent: Path, corpus: Path, title: str, *, articles: int = ARTICLES, batch_size: int = 200) -> Path:
    """A project folder with the first `articles` articles of the corpus, already pre-annotated."""
    root = parent / title.replace(" ", "-")
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "workbench.toml").write_text(
        f'[labelstudio]\nproject_title = "{title}"\nbatch_size = {batch_size}\n', encoding="utf-8"
    )
    (root / "seeds").mkdir()
    for path in sorted((corpus / "seeds").glob("*.txt"))[:articles]:
        shutil.copy(path, root / "seeds" / path.name)
    (root / ".workbench").mkdir()
    shutil.copy(corpus / ".workbench" / "preannotations.parquet", root / ".workbench" / "preannotations.parquet")
    return root


def paragraphs_of(root: Path) -> list[Paragraph]:
    return list(read_corpus(root / "seeds").paragraphs())


def expected_keys(root: Path) -> set[str]:
    return {p.key for p in paragraphs_of(root)}


def server_env(url: str | None = None, key: str | None = None) -> dict[str, str]:
    """The environment of a workbench subprocess: an external server if given, else the project's local one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABEL_STUDIO_")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    if url and key:
        env.update({server.ENV_URL: url, server.ENV_API_KEY: key})
    return env


def cli(root: Path, *args: str, url: str | None = None, key: str | None = None) -> Result:
    env: dict[str, str | None] = {server.ENV_URL: url, server.ENV_API_KEY: key}
    return CliRunner().invoke(app, ["-C", str(root), *args], env=env)


def spawn(root: Path, *args: str, url: str | None = None, key: str | None = None) -> subprocess.Popen[str]:
    """`workbench -C ROOT ARGS` as its own process, the way a user runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "-C", str(root), *args],
        env=server_env(url, key),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# `workbench ARGS` in its own process that SIGKILLs itself at a chosen point: when `TARGET` (a function, module
# path and name) is called for the `AFTER`+1-th time, before it runs. The point is the same on any machine, however
# busy: no race between the test and the process.
_DYING = """
import os, signal, sys, importlib
module_name, _, attr = sys.argv[1].rpartition(".")
owner_name, _, klass = module_name.rpartition(".") if sys.argv[2] == "method" else (module_name, "", "")
module = importlib.import_module(owner_name if klass else module_name)
owner = getattr(module, klass) if klass else module
original, after, calls = getattr(owner, attr), int(sys.argv[3]), []
def dying(*args, **kwargs):
    calls.append(1)
    if len(calls) > after:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
setattr(owner, attr, dying)
sys.argv = ["workbench", *sys.argv[4:]]
from workbench.cli import main
main()
"""


def run_dying(root: Path, target: str, kind: str, after: int, *args: str, url: str | None = None,
              key: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """`workbench -C ROOT ARGS`, killed (SIGKILL) on the call number `after`+1 of `target`; `kind` is "function"
    or "method" (then `target` is module.Class.method)."""
    return subprocess.run(
        [sys.executable, "-c", _DYING, target, kind, str(after), "-C", str(root), *args],
        env=server_env(url, key), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def one_paragraph_error(stderr: str) -> str:
    """A failed command's stderr: exactly one `error:` line and nothing else; never a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def project_id_of(root: Path) -> int:
    return int(read_json(root / ".workbench" / "project.json")["project_id"])


@contextlib.contextmanager
def sdk(url: str, key: str) -> Iterator[Sdk]:
    """The plain SDK, to look at the server independently of the workbench."""
    with httpx.Client(timeout=300) as http_client:
        yield Sdk(base_url=url, api_key=key, httpx_client=http_client)


def keys_on_server(url: str, key: str, project_id: int) -> Counter[str]:
    """How many tasks the server holds per workbench key."""
    with sdk(url, key) as client:
        tasks = client.tasks.list(project=project_id, include="id,data", fields="task_only", page_size=5000)
        return Counter(str((task.data or {}).get("key")) for task in tasks)


def task_count(url: str, key: str, project_id: int) -> int:
    with sdk(url, key) as client:
        return int(client.projects.get(id=project_id).task_number or 0)


def assert_each_task_once(url: str, key: str, root: Path) -> None:
    held = keys_on_server(url, key, project_id_of(root))
    duplicated = {k: n for k, n in held.items() if n > 1}
    assert not duplicated, f"{len(duplicated)} keys held more than once"
    assert set(held) == expected_keys(root)


def snapshot_files(root: Path) -> list[str]:
    """Everything in the snapshots folder, hidden partial downloads included."""
    folder = root / ".workbench" / "snapshots"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def wait_for(condition: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


# --------------------------------------------------------------------------------------------- the gateway


@dataclass
class Gateway:
    """A reverse proxy in front of the real server. `rule(method, path, body)` decides what to do with a request:
    None forwards it; ("after", status) forwards it, then answers `status` instead of the server's answer;
    ("instead", status) answers `status` without forwarding; ("delay", seconds) forwards after a pause;
    ("truncate", fraction) forwards and cuts the server's answer short."""

    upstream: str
    rule: Callable[[str, str, bytes], tuple[str, Any] | None] = lambda method, path, body: None
    log: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def imports(self) -> list[dict[str, Any]]:
        return [entry for entry in self.log if entry["method"] == "POST" and entry["path"].endswith("/import")]

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        gateway = self
        upstream = urlsplit(self.upstream)

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0].rstrip("/")
                action = gateway.rule(self.command, path, body)
                entry = {"method": self.command, "path": path, "size": len(body), "action": action}
                gateway.log.append(entry)
                if action and action[0] == "instead":
                    entry["forwarded"] = False
                    return self._answer(int(action[1]), b"<html>refused by the gateway</html>", "text/html")
                if action and action[0] == "delay":
                    time.sleep(action[1])
                if action and action[0] == "hold":  # until the test lets the request through
                    action[1].wait(timeout=600)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "connection", "accept-encoding", "content-length")
                }
                connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=600)
                try:
                    connection.request(self.command, self.path, body=body or None, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                finally:
                    connection.close()
                entry.update(forwarded=True, upstream_status=response.status)
                if action and action[0] == "after":
                    return self._answer(int(action[1]), b"<html>504 Gateway Time-out</html>", "text/html")
                if action and action[0] == "truncate":
                    data = data[: int(len(data) * action[1])]
                kept = {
                    k: v
                    for k, v in response.getheaders()
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "content-encoding")
                }
                self._answer(response.status, data, None, kept)

            def _answer(self, status: int, data: bytes, ctype: str | None, headers: dict | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if ctype:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def gateway(ls_server: LabelStudioServer) -> Iterator[Gateway]:
    gw = Gateway(upstream=ls_server.url)
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), gw.handler())
    proxy.daemon_threads = True
    gw.url = f"http://127.0.0.1:{proxy.server_address[1]}"
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield gw
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join()


# --------------------------------------------------------------------------------- the shared server: push


def test_push_killed_part_way_then_run_again_imports_every_task_once(
    ls_server: LabelStudioServer, corpus: Path, tmp_path: Path
) -> None:
    url, key = ls_server.url, ls_server.connection.api_key
    root = new_root(tmp_path, corpus, "Faults killed push", batch_size=200)
    killed = run_dying(root, "workbench.labelstudio.client.LabelStudio.import_tasks", "method", 3, "push", url=url,
                       key=key)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    landed = task_count(url, key, project_id_of(root))
    assert landed == 3 * 200, "three whole import requests landed before the kill, nothing of the fourth"

    result = cli(root, "push", url=url, key=key)
    assert result.exit_code == 0, result.output
    assert f"{ARTICLES * PARAGRAPHS - landed} tasks imported, {landed} already there" in result.output
    assert_each_task_once(url, key, root)


def test_a_lost_import_answer_is_reconciled_by_key_not_resent(
    ls_server: LabelStudioServer, gateway: Gateway, corpus: Path, tmp_path: Path
) -> None:
    """The gateway forwards the second import, the server commits it, the workbench gets a 504: the SDK must not
    resend it (it retries 5xx by default), and the workbench must ask the server before sending anything again."""
    imports = Counter[str]()

    def rule(method: str, path: str, body: bytes) -> tuple[str, float] | None:
        if method == "POST" and path.endswith("/import"):
            imports["n"] += 1
            if imports["n"] == 2:
                return ("after", 504)
        return None

    gateway.rule = rule
    root = new_root(tmp_path, corpus, "Faults lost answer", articles=2, batch_size=40)
    result = cli(root, "push", url=gateway.url, key=ls_server.connection.api_key)
    assert result.exit_code == 0, result.output
    assert "200 tasks imported, 0 already there" in result.output
    sent = gateway.imports()
    assert len(sent) == 5 and all(entry["forwarded"] for entry in sent), "each batch is sent exactly once"
    lost = gateway.log.index(sent[1])
    between = gateway.log[lost + 1 : gateway.log.index(sent[2])]
    assert any(e["method"] == "GET" and e["path"] == "/api/tasks" for e in between), "reconciled before resending"
    assert_each_task_once(ls_server.url, ls_server.connection.api_key, root)


def test_an_import_over_the_gateway_size_limit_is_split_until_it_fits(
    ls_server: LabelStudioServer, gateway: Gateway, corpus: Path, tmp_path: Path
) -> None:
    limit = 40_000  # bytes; one batch of 200 tasks is several times that

    def rule(method: str, path: str, body: bytes) -> tuple[str, float] | None:
        if method == "POST" and path.endswith("/import") and len(body) > limit:
            return ("instead", 413)
        return None

    gateway.rule = rule
    root = new_root(tmp_path, corpus, "Faults size limit", articles=2, batch_size=200)
    result = cli(root, "push", url=gateway.url, key=ls_server.connection.api_key)
    assert result.exit_code == 0, result.output
    assert "200 tasks imported" in result.output
    refused = [e for e in gateway.imports() if not e["forwarded"]]
    accepted = [e for e in gateway.imports() if e["forwarded"]]
    assert refused and accepted and all(e["size"] <= limit for e in accepted)
    assert_each_task_once(ls_server.url, ls_server.connection.api_key, root)


@pytest.fixture
def bad_text(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Keys of paragraphs whose task goes out without its text, which the real server refuses (HTTP 400,
    and none of the batch is created)."""
    keys: set[str] = set()
    real_to_task = push_module.to_task

    def to_task(p: Any, prediction: Any) -> dict[str, Any]:
        task = real_to_task(p, prediction)
        if p.key in keys:
            del task["data"]["text"]
        return task

    monkeypatch.setattr(push_module, "to_task", to_task)
    return keys


def test_a_task_the_server_rejects_is_set_aside_and_named_and_the_rest_goes_in(
    ls_server: LabelStudioServer, corpus: Path, tmp_path: Path, bad_text: set[str]
) -> None:
    url, key = ls_server.url, ls_server.connection.api_key
    root = new_root(tmp_path, corpus, "Faults rejected task", articles=1, batch_size=50)
    bad = paragraphs_of(root)[37]
    bad_text.add(bad.key)
    result = cli(root, "push", url=url, key=key)
    assert result.exit_code == 5, result.output
    message = one_paragraph_error(result.stderr)
    assert f"refused to import 1 task(s) even one at a time: paragraph 37 of article 000_report (key {bad.key})" in (
        message
    )
    assert f"{PARAGRAPHS - 1} tasks were imported and every other task is in place" in message
    held = keys_on_server(url, key, project_id_of(root))
    assert set(held) == expected_keys(root) - {bad.key} and max(held.values()) == 1

    bad_text.clear()  # the cause is fixed
    result = cli(root, "push", url=url, key=key)
    assert result.exit_code == 0, result.output
    assert f"1 tasks imported, {PARAGRAPHS - 1} already there" in result.output
    assert_each_task_once(url, key, root)


def test_many_refused_tasks_stop_the_push_early(
    ls_server: LabelStudioServer, corpus: Path, tmp_path: Path, bad_text: set[str]
) -> None:
    """When the server refuses task after task, the cause is the server: push stops instead of bisecting on."""
    url, key = ls_server.url, ls_server.connection.api_key
    root = new_root(tmp_path, corpus, "Faults many refused", articles=1, batch_size=8)
    bad_text.update(p.key for p in paragraphs_of(root) if p.index % 10 == 5)
    result = cli(root, "push", url=url, key=key)
    assert result.exit_code == 5, result.output
    message = one_paragraph_error(result.stderr)
    assert f"refused to import {push_module.MAX_REFUSED} task(s)" in message and "more tasks were not sent" in message
    held = keys_on_server(url, key, project_id_of(root))
    assert max(held.values()) == 1 and not set(held) & bad_text

    bad_text.clear()
    result = cli(root, "push", url=url, key=key)
    assert result.exit_code == 0, result.output
    assert_each_task_once(url, key, root)


def test_two_commands_at_once_the_second_is_refused_and_nothing_is_corrupted(
    ls_server: LabelStudioServer, gateway: Gateway, corpus: Path, tmp_path: Path
) -> None:
    held = threading.Event()  # the first push's imports wait at the gateway until the other commands were refused
    gateway.rule = lambda method, path, body: ("hold", held) if path.endswith("/import") else None
    key = ls_server.connection.api_key
    root = new_root(tmp_path, corpus, "Faults two at once", articles=1, batch_size=25)
    first = spawn(root, "push", url=gateway.url, key=key)
    try:
        wait_for(gateway.imports, 120, "the first push to start importing")
        for command in (["push"], ["pull"], ["release", "0.1.0"]):
            result = cli(root, *command, url=ls_server.url, key=key)
            assert result.exit_code == 9, result.output
            message = one_paragraph_error(result.stderr)
            assert "Another workbench command is running on this project (`workbench push, pid" in message
            assert f"so `workbench {command[0]}` did not start" in message
            assert "workbench.lock" in message
        assert first.poll() is None, "the refusals must have happened while the first push ran"
    finally:
        held.set()
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert f"{PARAGRAPHS} tasks imported, 0 already there" in out
    assert_each_task_once(ls_server.url, key, root)
    assert not snapshot_files(root)
    assert not (root / "exports").exists()


# ------------------------------------------------------------------------- the shared server: bad answers


@pytest.fixture
def pushed(ls_server: LabelStudioServer, corpus: Path, tmp_path: Path) -> Path:
    """A small project pushed to the shared server (2 articles, 200 tasks)."""
    title = f"Faults {tmp_path.name}"
    root = new_root(tmp_path, corpus, title, articles=2)
    result = cli(root, "push", url=ls_server.url, key=ls_server.connection.api_key)
    assert result.exit_code == 0, result.output
    return root


def test_an_export_cut_short_leaves_no_snapshot(ls_server: LabelStudioServer, gateway: Gateway, pushed: Path) -> None:
    gateway.rule = lambda method, path, body: ("truncate", 0.5) if path.endswith("/download") else None
    key = ls_server.connection.api_key
    result = cli(pushed, "pull", url=gateway.url, key=key)
    assert result.exit_code == 6, result.output
    message = one_paragraph_error(result.stderr)
    assert "is not valid JSON" in message and "Run `workbench pull` again" in message
    assert not snapshot_files(pushed)

    result = cli(pushed, "pull", url=ls_server.url, key=key)
    assert result.exit_code == 0, result.output
    assert "200 tasks pulled" in result.output


def test_a_rejected_or_revoked_token(ls_server: LabelStudioServer, pushed: Path) -> None:
    email = f"revoked-{pushed.parent.name[-12:]}@example.org".lower()
    login = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, email)
    revoked = accounts.mint_token(ls_server.url, email, login.password)
    accounts.mint_token(ls_server.url, email, login.password)  # one live token per user: the first is revoked
    for token in (revoked, "0123456789abcdef0123456789abcdef01234567"):
        for command in ("push", "pull", "status"):
            result = cli(pushed, command, url=ls_server.url, key=token)
            assert result.exit_code == 5, result.output
            message = one_paragraph_error(result.stderr)
            assert "rejected the API token" in message and "personal access token" in message
            assert token not in result.output
    assert not snapshot_files(pushed)


def test_a_project_deleted_on_the_server(ls_server: LabelStudioServer, pushed: Path) -> None:
    url, key = ls_server.url, ls_server.connection.api_key
    project_id = project_id_of(pushed)
    with sdk(url, key) as client:
        client.projects.delete(id=project_id)
    for command in ("push", "pull", "status"):
        result = cli(pushed, command, url=url, key=key)
        assert result.exit_code == 5, result.output
        message = one_paragraph_error(result.stderr)
        assert f"project {project_id}" in message and "remove .workbench/project.json" in message
    assert not snapshot_files(pushed)

    (pushed / ".workbench" / "project.json").unlink()
    result = cli(pushed, "push", url=url, key=key)
    assert result.exit_code == 0, result.output
    assert "200 tasks imported" in result.output and project_id_of(pushed) != project_id
    assert_each_task_once(url, key, pushed)


def test_a_project_id_from_another_server_is_not_pulled(ls_server: LabelStudioServer, pushed: Path) -> None:
    """project.json says project N; on another server (here: the record's URL changed) N is someone else's."""
    url, key = ls_server.url, ls_server.connection.api_key
    record_file = pushed / ".workbench" / "project.json"
    record = read_json(record_file)
    with sdk(url, key) as client:
        other = client.projects.create(title="Somebody else's project").id
    record_file.write_text(json.dumps({**record, "url": "http://127.0.0.1:1", "project_id": other}))
    result = cli(pushed, "pull", url=url, key=key)
    assert result.exit_code == 5, result.output
    message = one_paragraph_error(result.stderr)
    assert f'project {other} at {url} is "Somebody else\'s project", another project' in message
    assert not snapshot_files(pushed)

    # The same project seen at a new URL (a restart on another port): pulled.
    record_file.write_text(json.dumps({**record, "url": "http://127.0.0.1:1"}))
    result = cli(pushed, "pull", url=url, key=key)
    assert result.exit_code == 0, result.output


def test_annotations_with_a_label_outside_the_config_fail_the_release_naming_them(
    ls_server: LabelStudioServer, pushed: Path, tmp_path: Path
) -> None:
    """Annotators used LAW; the config then dropped it. The release names every such region and writes nothing;
    mapping LAW to a kept label releases."""
    url, key = ls_server.url, ls_server.connection.api_key
    admin = Annotator.connect(url, key)
    tasks = admin.tasks(project_id_of(pushed))
    law_task = tasks[("000_report", 1)]
    annotated = []
    for (_, index), task in sorted(tasks.items()):
        if index in (1, 2):
            text = task["data"]["text"]
            start, end = find(text, "Monday")
            label = "LAW" if task is law_task else "DATE"
            annotated.append((task, admin.submit(task, [browser_region(text, start, end, label, f"reg{index}")])))
    assert cli(pushed, "pull", url=url, key=key).exit_code == 0

    config = pushed / "configs" / "workbench.toml"
    labels = 'labels = ["PERSON", "NORP", "ORG", "GPE", "LOC", "FAC", "PRODUCT", "EVENT", "DATE"]\n'
    config.write_text(labels + config.read_text())
    law_annotation = next(a for t, a in annotated if t is law_task)
    for command in (["release", "0.1.0"], ["report"]):
        result = cli(pushed, *command, url=url, key=key)
        assert result.exit_code == 7, result.output
        message = one_paragraph_error(result.stderr)
        assert "1 annotated region(s) cannot be kept exactly" in message
        assert (
            f"task {law_task['id']}, annotation {law_annotation} by annotator {admin.user_id}, region reg1: "
            "label 'LAW' is not in the config's label set"
        ) in message
    assert not (pushed / "exports").exists()

    config.write_text('label_mapping = { LAW = "EVENT" }\n' + config.read_text())
    result = cli(pushed, "release", "0.1.0", url=url, key=key)
    assert result.exit_code == 0, result.output


# ----------------------------------------------------------------------------------------- an own server


@dataclass
class Own:
    """A project whose local server the tests may kill and restart."""

    project: Project
    root: Path

    @property
    def creds(self) -> dict[str, Any]:
        return read_json(self.project.credentials_file)

    @property
    def url(self) -> str:
        return str(self.creds["url"])

    @property
    def key(self) -> str:
        return str(self.creds["api_key"])

    def pid(self) -> int:
        return int((self.project.server_dir / "server.pid").read_text())

    def kill_server(self) -> None:
        """SIGKILL the server's whole process group, as the OOM killer would; its pid file stays behind."""
        pid = self.pid()
        os.killpg(pid, signal.SIGKILL)
        wait_for(lambda: _dead(pid), 30, "the server to die")
        assert (self.project.server_dir / "server.pid").exists()

    def ready(self) -> None:
        """The server runs and holds every task (each test may also run alone)."""
        server.start(self.project)
        if not (self.root / ".workbench" / "project.json").exists():
            result = cli(self.root, "push")
            assert result.exit_code == 0, result.output


def _dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(scope="module")
def own(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Own]:
    root = tmp_path_factory.mktemp("own")
    project = make_project(root, config='[labelstudio]\nproject_title = "Own"\nbatch_size = 200\n')
    (root / "seeds").mkdir()
    for path in sorted((corpus / "seeds").glob("*.txt"))[:OWN_ARTICLES]:
        shutil.copy(path, root / "seeds" / path.name)
    (root / ".workbench").mkdir()
    shutil.copy(corpus / ".workbench" / "preannotations.parquet", root / ".workbench" / "preannotations.parquet")
    server.start(project)
    try:
        yield Own(project=project, root=root)
    finally:
        server.stop(project)


def test_server_killed_during_push_then_started_again(own: Own) -> None:
    server.start(own.project)
    url, key = own.url, own.key
    process = spawn(own.root, "push")
    try:
        wait_for(lambda: (own.root / ".workbench" / "project.json").exists(), 120, "the project")
        project_id = project_id_of(own.root)
        wait_for(lambda: task_count(url, key, project_id) > 0, 120, "the first batch")
        own.kill_server()
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 5, err
    message = one_paragraph_error(err)
    assert own.url in message and ("not reachable" in message or "broke" in message), message
    assert "workbench server start" in message or "workbench server status" in message

    status = cli(own.root, "server", "status")
    assert status.exit_code == 3 and "not running" in status.output  # the stale pid file does not fool it
    assert server.start(own.project).launched is True
    result = cli(own.root, "push")
    assert result.exit_code == 0, result.output
    assert "already there" in result.output
    assert_each_task_once(own.url, own.key, own.root)


def test_server_killed_during_pull_leaves_no_snapshot(own: Own) -> None:
    own.ready()
    url, key = own.url, own.key
    project_id = project_id_of(own.root)
    with sdk(url, key) as client:
        before = {e.id for e in client.projects.exports.list(id=project_id)}
        process = spawn(own.root, "pull")
        try:
            # The server builds the export inside the request (seconds for 3,000 tasks): kill it then.
            wait_for(lambda: {e.id for e in client.projects.exports.list(id=project_id)} - before, 120, "export")
            own.kill_server()
            _, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 5, err
    message = one_paragraph_error(err)
    assert own.url in message
    assert not snapshot_files(own.root), "no snapshot, metadata or partial download"

    server.start(own.project)
    result = cli(own.root, "pull")
    assert result.exit_code == 0, result.output
    assert f"{OWN_TASKS} tasks pulled" in result.output


def test_a_release_needs_no_server_and_a_killed_release_leaves_no_partial_one(own: Own) -> None:
    own.ready()
    with sdk(own.url, own.key) as admin:
        listing = admin.tasks.list(project=project_id_of(own.root), include="id,data", fields="task_only")
        for task in listing:  # the first paragraph of every article, so both splits get articles
            if task.data["paragraph"] == 1:
                text = task.data["text"]
                region = browser_region(text, *find(text, "Monday"), "DATE", "d1")
                admin.annotations.create(id=task.id, result=[region], lead_time=3.0)
    assert cli(own.root, "pull").exit_code == 0
    own.kill_server()

    releases = own.project.releases_dir
    # killed while writing the manifest, the last file before the staging folder is renamed into place
    killed = run_dying(own.root, "workbench.release.writer._write_manifest", "function", 0, "release", "0.1.0")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (releases / "0.1.0").exists()  # only the hidden temporary folder
    assert [p.name for p in releases.iterdir() if p.name.startswith(".0.1.0.tmp-")]
    result = cli(own.root, "release", "0.1.0")
    assert result.exit_code == 0, result.output
    assert not [p.name for p in releases.iterdir() if p.name.startswith(".")], "no temporary folder is left"
    verify = cli(own.root, "release", "verify", "0.1.0")
    assert verify.exit_code == 0, verify.output
    assert server.status(own.project).running is False


def test_a_restart_on_another_port_because_the_old_one_is_taken(own: Own) -> None:
    own.ready()
    server.stop(own.project)
    old_port = int(own.creds["port"])
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen()
        result = cli(own.root, "server", "start")
        assert result.exit_code == 0, result.output
        assert own.creds["port"] != old_port and "started at" in result.output
        result = cli(own.root, "push")
        assert result.exit_code == 0, result.output
        assert f"0 tasks imported, {OWN_TASKS} already there" in result.output
        assert read_json(own.root / ".workbench" / "project.json")["url"] == own.url
    assert_each_task_once(own.url, own.key, own.root)


def test_a_data_folder_from_an_older_run_without_its_credentials(own: Own, tmp_path: Path) -> None:
    own.ready()
    assert server.stop(own.project) is True
    kept = tmp_path / "labelstudio.json"
    shutil.move(own.project.credentials_file, kept)
    try:
        result = cli(own.root, "server", "start")
        assert result.exit_code == 5, result.output
        message = one_paragraph_error(result.stderr)
        assert str(own.project.server_dir / "data") in message and "move the data folder away" in message
        assert not (own.project.server_dir / "server.pid").exists() and not server.status(own.project).running
        leaked = read_json(own.project.credentials_file)["password"]  # the new password it tried
        assert leaked not in result.output
    finally:
        shutil.move(kept, own.project.credentials_file)
    result = cli(own.root, "server", "start")
    assert result.exit_code == 0, result.output
    result = cli(own.root, "status")
    assert result.exit_code == 0, result.output
    assert f"{OWN_TASKS} tasks: " in result.output
