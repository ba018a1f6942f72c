"""Bad input through the real CLI: one paragraph naming the thing and the fix, a non-zero exit code, no traceback.

No Label Studio server here: the servers are a closed port, a socket that never answers and a web server that
is not Label Studio. Faults against the real server are in tests/integration/test_faults.py.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from click.testing import Result
from typer.testing import CliRunner

from workbench.articles import read_corpus
from workbench.cli import app
from workbench.labelstudio import transport
from workbench.preannotation.pool import PoolWriter, read_predictions
from workbench.records import Prediction
from workbench.sync.snapshots import meta_path_for

GOOD = "A title\nAlice Smith met Bob Jones in Paris.\n"
NO_SERVER_ENV = {"LABEL_STUDIO_URL": None, "LABEL_STUDIO_API_KEY": None}
TOKEN_SHAPED = "5f4dcc3b5aa765d61d8327deb882cf995f4dcc3b"


def make_root(tmp_path: Path, *, config: str = "", seeds: dict[str, bytes] | None = None) -> Path:
    root = tmp_path / "project"
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "workbench.toml").write_text(config, encoding="utf-8")
    if seeds is not None:
        (root / "seeds").mkdir()
        for name, data in seeds.items():
            (root / "seeds" / name).write_bytes(data)
    return root


def cli(root: Path, *args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, ["-C", str(root), *args], env={**NO_SERVER_ENV, **(env or {})})


def error_of(result: Result, exit_code: int) -> str:
    """The error paragraph: the only thing on stderr, one line, with the exit code of its kind."""
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# --- seeds ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "is empty"),
        (b" \n\t\n", "holds only whitespace"),
        (b"Title\nbinary\x00\x00stuff\n", "is binary"),
        ("Café\n".encode("cp1252"), "is not UTF-8"),
    ],
    ids=["empty", "whitespace", "binary", "cp1252"],
)
@pytest.mark.parametrize("command", ["preannotate", "push", "run"])
def test_a_bad_seed_file_stops_every_command_that_reads_seeds(
    tmp_path: Path, command: str, data: bytes, expected: str
) -> None:
    root = make_root(tmp_path, seeds={"000_ok.txt": GOOD.encode(), "001_bad.txt": data})
    # `run` would start the local server first; give it an external one instead (never reached).
    external = {"LABEL_STUDIO_URL": "http://127.0.0.1:9", "LABEL_STUDIO_API_KEY": TOKEN_SHAPED}
    env = external if command == "run" else None
    message = error_of(cli(root, command, env=env), 3)
    assert "001_bad.txt" in message and expected in message
    assert not (root / ".workbench" / "preannotations.parquet").exists()


def test_an_enormous_seed_file(tmp_path: Path) -> None:
    root = make_root(tmp_path, seeds={"000_ok.txt": GOOD.encode()})
    with (root / "seeds" / "001_dump.txt").open("wb") as handle:
        handle.truncate(65 * 2**20)
    message = error_of(cli(root, "preannotate"), 3)
    assert "001_dump.txt is 65 MiB, larger than any article" in message


def test_a_missing_or_empty_seeds_folder(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    message = error_of(cli(root, "preannotate"), 3)
    assert f"{root / 'seeds'} does not exist" in message
    (root / "seeds").mkdir()
    assert "holds no .txt article" in error_of(cli(root, "preannotate"), 3)


def test_duplicate_articles_are_reported_and_not_annotated_twice(tmp_path: Path) -> None:
    root = make_root(tmp_path, seeds={"000_a.txt": GOOD.encode(), "001_copy.txt": GOOD.encode()})
    result = cli(root, "preannotate")
    assert result.exit_code == 0, result.output
    assert "note: article 001_copy repeats 000_a word for word; it was not imported." in result.stderr
    saved = list(read_predictions(root / ".workbench" / "preannotations.parquet"))
    assert len(saved) == 2
    assert {p.key for p in saved} == {p.text_key for p in read_corpus(root / "seeds").paragraphs()}


# --- config ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("colour = 'red'\n", "is not a known setting (remove it or check its spelling)"),
        ("[labelstudio]\nbatch_size = 'big'\n", "Input should be a valid integer"),
        ("labels = ['PERSON']\nlabel_mapping = { PER = 'PERSN' }\n", "maps 'PER' to 'PERSN', which is not in labels"),
        ("labels = ['PERSON', 'O']\n", "'O' is reserved"),
        ("labels = ['PERSON'\n", "is not valid TOML"),
    ],
)
@pytest.mark.parametrize("command", ["status", "preannotate", "release 0.1.0"])
def test_a_bad_config_stops_every_command(tmp_path: Path, config: str, expected: str, command: str) -> None:
    root = make_root(tmp_path, config=config, seeds={"000_ok.txt": GOOD.encode()})
    message = error_of(cli(root, *command.split()), 2)
    assert str(root / "configs" / "workbench.toml") in message and expected in message


def test_a_bad_config_message_keeps_the_setting_it_names(tmp_path: Path) -> None:
    root = make_root(tmp_path, config="[labelstudio]\nbatch_size = 'big'\n")
    message = error_of(cli(root, "status"), 2)
    assert "[labelstudio -> batch_size]" in message


def test_a_config_path_that_is_a_folder(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    message = error_of(cli(root, "--config", str(root / "configs"), "status"), 2)
    assert "cannot be read" in message


def test_a_model_that_is_not_installed(tmp_path: Path) -> None:
    root = make_root(tmp_path, config="[model]\nname = 'xx_no_such_pipeline'\n", seeds={"a.txt": GOOD.encode()})
    message = error_of(cli(root, "preannotate"), 4)
    assert "'xx_no_such_pipeline' is not installed" in message and "make setup" in message


# --- two commands at once ------------------------------------------------------------------------------------


def test_a_command_is_refused_while_another_holds_the_project(tmp_path: Path) -> None:
    root = make_root(tmp_path, seeds={"a.txt": GOOD.encode()})
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from workbench.project import Project\n"
            "with Project.open(sys.argv[1]).lock('workbench push'):\n"
            "    print('locked', flush=True); time.sleep(60)",
            str(root),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        for command in ("push", "pull", "release 0.1.0"):
            message = error_of(cli(root, *command.split()), 9)
            assert f"running on this project (`workbench push, pid {holder.pid}`)" in message
            assert f"so `workbench {command.split()[0]}` did not start" in message
    finally:
        holder.kill()
        holder.wait()
    # Killed, it holds nothing: the next command is not refused.
    assert cli(root, "release", "0.1.0").exit_code == 6  # no snapshot yet, but it ran


# --- the server -----------------------------------------------------------------------------------------------


def _pushed(root: Path, url: str) -> None:
    """What a push leaves behind (pre-annotations and the project record), so commands go to the server."""
    state = root / ".workbench"
    state.mkdir(parents=True, exist_ok=True)
    pool = PoolWriter(state / "preannotations.parquet")
    for p in read_corpus(root / "seeds").paragraphs():
        pool.add(Prediction(key=p.text_key, model_version="m-1", spans=(), score=0.5), "x")
    pool.close()
    (state / "project.json").write_text(json.dumps({"url": url, "project_id": 1, "title": "Workbench NER"}))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections (the kernel does) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def not_label_studio() -> Iterator[str]:
    """A web server that answers every request with an HTML page."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _page(self) -> None:
            body = b"<html><body>Welcome to nginx!</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = _page

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _personal_token(**claims: Any) -> str:
    """A JWT shaped like Label Studio's personal access token (signed with a key the server does not know)."""
    payload = {"token_type": "refresh", "user_id": 1, "jti": "0" * 32, **claims}
    return jwt.encode(payload, "a-signing-key-that-is-long-enough-for-hs256", algorithm="HS256")


@pytest.mark.parametrize("command", ["push", "pull", "status"])
def test_a_server_url_where_nothing_listens(tmp_path: Path, command: str) -> None:
    root = make_root(tmp_path, seeds={"a.txt": GOOD.encode()})
    url = f"http://127.0.0.1:{_closed_port()}"
    _pushed(root, url)
    message = error_of(cli(root, command, env={"LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": TOKEN_SHAPED}), 5)
    assert f"The Label Studio server at {url} is not reachable" in message and "LABEL_STUDIO_URL" in message
    assert TOKEN_SHAPED not in message


def test_a_server_that_never_answers_fails_in_seconds(
    tmp_path: Path, silent_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "QUICK_TIMEOUT", 1.0)  # 60 s in real life; the point is it is not 900 s
    root = make_root(tmp_path, seeds={"a.txt": GOOD.encode()})
    _pushed(root, silent_server)
    token = _personal_token(exp=int(time.time()) + 3600)
    began = time.monotonic()
    result = cli(root, "pull", env={"LABEL_STUDIO_URL": silent_server, "LABEL_STUDIO_API_KEY": token})
    message = error_of(result, 5)
    assert time.monotonic() - began < 30
    assert "did not answer in time" in message and token not in message
    assert not list((root / ".workbench").glob("snapshots/*.json"))


@pytest.mark.parametrize("key", [TOKEN_SHAPED, "personal"])
def test_a_server_that_is_not_label_studio(tmp_path: Path, not_label_studio: str, key: str) -> None:
    root = make_root(tmp_path, seeds={"a.txt": GOOD.encode()})
    _pushed(root, not_label_studio)
    token = _personal_token(exp=int(time.time()) + 3600) if key == "personal" else key
    env = {"LABEL_STUDIO_URL": not_label_studio, "LABEL_STUDIO_API_KEY": token}
    message = error_of(cli(root, "pull", env=env), 5)
    assert "not like Label Studio's API" in message or "not Label Studio's API" in message
    assert "LABEL_STUDIO_URL points at a Label Studio server" in message and token not in message


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "ftp://127.0.0.1:8080", "http://"])
def test_a_server_url_that_is_not_an_http_url(tmp_path: Path, url: str) -> None:
    root = make_root(tmp_path, seeds={"a.txt": GOOD.encode()})
    _pushed(root, url)
    message = error_of(cli(root, "pull", env={"LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": TOKEN_SHAPED}), 5)
    assert f"The Label Studio URL {url.rstrip('/')!r} is not an http(s) URL" in message


@pytest.mark.parametrize(
    ("claims", "expected"),
    [({"exp": 1_600_000_000}, "API key has expired"), ({}, "does not have an expiration")],
    ids=["expired", "no-expiry"],
)
def test_an_expired_or_malformed_personal_token(tmp_path: Path, claims: dict[str, Any], expected: str) -> None:
    root = make_root(tmp_path, seeds={"a.txt": GOOD.encode()})
    url = f"http://127.0.0.1:{_closed_port()}"
    _pushed(root, url)
    token = _personal_token(**claims)
    message = error_of(cli(root, "pull", env={"LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": token}), 5)
    assert expected in message and "personal access token" in message and token not in message


def test_half_the_server_environment(tmp_path: Path) -> None:
    root = make_root(tmp_path, seeds={"a.txt": GOOD.encode()})
    _pushed(root, "http://127.0.0.1:9")
    message = error_of(cli(root, "pull", env={"LABEL_STUDIO_URL": "http://127.0.0.1:9"}), 5)
    assert "Set LABEL_STUDIO_API_KEY too" in message


def test_run_with_half_the_server_environment_starts_no_local_server(tmp_path: Path) -> None:
    root = make_root(tmp_path, seeds={"a.txt": GOOD.encode()})
    message = error_of(cli(root, "run", env={"LABEL_STUDIO_URL": "http://127.0.0.1:9"}), 5)
    assert "Set LABEL_STUDIO_API_KEY too" in message
    assert not (root / ".workbench" / "labelstudio").exists()  # nothing was started or prepared


def test_no_local_server_yet(tmp_path: Path) -> None:
    root = make_root(tmp_path, seeds={"a.txt": GOOD.encode()})
    _pushed(root, "http://127.0.0.1:9")
    message = error_of(cli(root, "status"), 5)
    assert "Run `workbench server start`" in message


# --- snapshots and releases (no server needed: they are built from the pulled snapshot) ------------------------

TEXT = "Alice Smith met Bob Jones in Paris."


def _region(start: int, end: int, label: str, region_id: str = "r1") -> dict[str, Any]:
    return {
        "id": region_id,
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "origin": "manual",
        "value": {"start": start, "end": end, "text": TEXT[start:end], "labels": [label]},
    }


def _task(n: int, regions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": 100 + n,
        "data": {"text": TEXT, "doc_id": f"doc{n:02d}", "paragraph": 1, "key": f"key{n:02d}", "title": "T"},
        "annotations": [
            {
                "id": 1000 + n,
                "completed_by": 7,
                "was_cancelled": False,
                "ground_truth": False,
                "result": regions,
                "created_at": "2026-11-21T05:00:00.000000Z",
                "updated_at": "2026-11-21T05:00:00.000000Z",
            }
        ],
        "predictions": [],
    }


def _snapshot(root: Path, content: bytes | list[dict[str, Any]], name: str = "2026-11-21T050000-000000Z") -> Path:
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    folder = root / ".workbench" / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_bytes(data)
    meta = {
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "pulled_at": "2026-11-21T05:00:00.000000Z",
        "project_id": 1,
        "label_studio_version": "1.23.2",
        "tasks": 0,
    }
    meta_path_for(path).write_text(json.dumps(meta))
    return path


def _annotated(n: int = 10) -> list[dict[str, Any]]:
    return [_task(i, [_region(0, 11, "PERSON"), _region(29, 34, "GPE", "r2")]) for i in range(n)]


@pytest.fixture
def hf_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"<html>502 Bad Gateway</html>", "is not a list of tasks"),
        (b'[{"id": 1, "data": {"text": "a"}}, {"id": 2, "da', "is not valid JSON"),
        (b'{"detail": "export failed"}', "is not a list of tasks"),
        (b'[{"id": 1, "data": {"text": "a"}}, ["not", "a", "task"]]', "Task #1 of the export"),
        (b'[{"id": 5, "data": {"text": "a"}, "annotations": {"1": 2}}]', "Task 5 of the export"),
    ],
    ids=["html", "truncated", "object", "not-a-task", "annotations-not-a-list"],
)
@pytest.mark.parametrize("command", ["release 0.1.0", "report"])
def test_a_malformed_snapshot_is_named_and_nothing_is_released(
    tmp_path: Path, hf_offline: None, content: bytes, expected: str, command: str
) -> None:
    root = make_root(tmp_path)
    snapshot = _snapshot(root, content)
    message = error_of(cli(root, *command.split()), 6)
    assert snapshot.name in message and expected in message and "workbench pull" in message
    assert not (root / "exports").exists()


@pytest.mark.parametrize("command", ["release 0.1.0", "report", "report --html page.html"])
def test_no_snapshot_yet(tmp_path: Path, command: str) -> None:
    root = make_root(tmp_path)
    message = error_of(cli(root, *command.split()), 6)
    assert "There is no snapshot" in message and "workbench pull" in message
    assert not (Path.cwd() / "page.html").exists()


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (lambda tmp: tmp / "no-such-folder" / "report.html", "the folder does not exist"),
        (lambda tmp: tmp, "it is a folder"),
    ],
    ids=["missing-folder", "a-folder"],
)
def test_a_report_page_path_that_cannot_be_written_is_said_before_the_build(
    tmp_path: Path, hf_offline: None, where: Any, expected: str
) -> None:
    root = make_root(tmp_path)
    _snapshot(root, b"not even an export")  # the path is checked first: this snapshot is never read
    path = where(tmp_path)
    message = error_of(cli(root, "report", "--html", str(path)), 2)
    assert f"The report page cannot be written to {path}: {expected}" in message and "--html" in message


@pytest.mark.parametrize("command", ["release 0.1.0", "report"])
def test_regions_with_labels_outside_the_config_fail_the_build_naming_each(
    tmp_path: Path, hf_offline: None, command: str
) -> None:
    root = make_root(tmp_path, config="labels = ['PERSON', 'GPE']\n")
    tasks = _annotated()
    tasks[3]["annotations"][0]["result"].append(_region(16, 25, "MISC", "r-misc"))
    tasks[6]["annotations"][0]["result"][1]["value"]["start"] = 28  # its text no longer matches its offsets
    _snapshot(root, tasks)
    message = error_of(cli(root, *command.split()), 7)
    assert "2 annotated region(s) cannot be kept exactly" in message
    assert "task 103, annotation 1003 by annotator 7, region r-misc: label 'MISC' is not in the config" in message
    assert "task 106, annotation 1006 by annotator 7, region r2" in message
    assert "label_mapping" in message and "Nothing was written" in message
    assert not (root / "exports").exists()


def test_release_versions_that_are_not_versions_or_not_above_the_last(tmp_path: Path, hf_offline: None) -> None:
    root = make_root(tmp_path, config="labels = ['PERSON', 'GPE']\n")
    _snapshot(root, _annotated())
    result = cli(root, "release", "0.2.0")
    assert result.exit_code == 0, result.output
    before = _tree(root / "exports")
    for version, expected in [
        ("v1.0.0", "is not a semantic version"),
        ("1.0", "is not a semantic version"),
        ("1.0.0rc1", "is not a semantic version"),
        ("latest", "is not a semantic version"),
        ("../0.3.0", "is not a semantic version"),
        ("0.2.0", "already exists"),
        ("0.1.9", "is lower than the latest release 0.2.0"),
    ]:
        message = error_of(cli(root, "release", version), 8)
        assert repr(version) in message or version in message
        assert expected in message, message
        assert _tree(root / "exports") == before, version
    assert cli(root, "release", "0.2.1").exit_code == 0


def test_what_is_wrong_with_the_annotations_is_said_before_what_the_release_refuses(
    tmp_path: Path, hf_offline: None
) -> None:
    root = make_root(tmp_path, config="labels = ['PERSON', 'GPE']\n")
    _snapshot(root, _annotated())
    assert cli(root, "release", "0.1.0").exit_code == 0
    # GPE leaves the config without a mapping: the release would refuse that, but the snapshot's GPE regions
    # are the first thing to fix, and they are named, as when the release is the first one
    (root / "configs" / "workbench.toml").write_text("labels = ['PERSON']\n", encoding="utf-8")
    message = error_of(cli(root, "release", "0.2.0"), 7)
    assert "cannot be kept exactly" in message and "label 'GPE' is not in the config" in message
    _snapshot(root, [], name="2026-11-21T060000-000000Z")
    message = error_of(cli(root, "release", "0.2.0"), 8)
    assert "has no task with a submitted annotation (0 tasks" in message


# --- what a release is built from, and what it leaves ------------------------------------------------------------


def test_a_snapshot_changed_after_pull_is_refused_naming_it(tmp_path: Path, hf_offline: None) -> None:
    root = make_root(tmp_path)
    path = _snapshot(root, _annotated())
    path.write_bytes(path.read_bytes().replace(b"Alice", b"Alicia"))
    message = error_of(cli(root, "release", "0.1.0"), 6)
    assert path.name in message and "was changed after it was pulled" in message
    assert not (root / "exports").exists()


@pytest.mark.parametrize("damage", ["missing", "not JSON", "a key short"])
def test_a_snapshot_without_its_record_is_an_error_not_a_step_back(tmp_path: Path, hf_offline: None,
                                                                   damage: str) -> None:
    root = make_root(tmp_path)
    _snapshot(root, _annotated())
    newest = _snapshot(root, _annotated(3), name="2026-11-21T060000-000000Z")
    meta = meta_path_for(newest)
    if damage == "missing":
        meta.unlink()
    elif damage == "not JSON":
        meta.write_text("{", encoding="utf-8")
    else:
        meta.write_text(json.dumps({"file": newest.name, "sha256": "ab"}), encoding="utf-8")
    message = error_of(cli(root, "release", "0.1.0"), 6)
    assert newest.name in message and meta.name in message and "workbench pull" in message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"paragraph": "three"}, "has data.paragraph 'three', not a whole number"),
        ({"paragraph": None}, "has data.paragraph None"),
        ({"doc_id": None}, "has no data.doc_id"),
    ],
)
def test_a_task_that_does_not_say_where_its_paragraph_is(tmp_path: Path, data: dict, expected: str) -> None:
    tasks = _annotated(3)
    tasks[1]["data"] = {key: value for key, value in {**tasks[1]["data"], **data}.items() if value is not None}
    root = make_root(tmp_path)
    _snapshot(root, tasks)
    message = error_of(cli(root, "release", "0.1.0"), 6)
    assert f"task {tasks[1]['id']} {expected}" in message


def test_a_folder_that_cannot_be_written_is_named(tmp_path: Path, hf_offline: None) -> None:
    root = make_root(tmp_path)
    _snapshot(root, _annotated())
    (root / "exports").mkdir()
    (root / "exports" / "news-ner").write_text("a file where the releases folder should be")
    message = error_of(cli(root, "release", "0.1.0"), 8)
    assert "could not be written into" in message and "exports/news-ner" in message


def _released(tmp_path: Path) -> Path:
    root = make_root(tmp_path)
    _snapshot(root, _annotated())
    assert cli(root, "release", "0.1.0").exit_code == 0
    assert cli(root, "release", "0.2.0").exit_code == 0
    return root


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("counts removed", "lacks counts"),
        ("not JSON", "has no readable manifest.json"),
        ("folder emptied", "has no readable manifest.json"),
    ],
)
def test_a_damaged_manifest_is_a_clear_error_for_every_command(tmp_path: Path, hf_offline: None, damage: str,
                                                               expected: str) -> None:
    root = _released(tmp_path)
    folder = root / "exports" / "news-ner" / "0.1.0"
    manifest = folder / "manifest.json"
    if damage == "counts removed":
        manifest.write_text(json.dumps({k: v for k, v in json.loads(manifest.read_text()).items() if k != "counts"}))
    elif damage == "not JSON":
        manifest.write_text("{")
    else:
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    assert expected in error_of(cli(root, "diff", "0.1.0", "0.2.0"), 8)
    listing = cli(root, "releases")
    assert listing.exit_code == 0 and "unreadable" in listing.stdout and expected in listing.stderr
    assert "Traceback" not in listing.output
    verified = cli(root, "release", "verify", "0.1.0")
    assert verified.exit_code == 8 and "Traceback" not in verified.output


def test_verify_notices_an_edited_manifest_without_the_changelog(tmp_path: Path, hf_offline: None) -> None:
    root = _released(tmp_path)
    (root / "exports" / "news-ner" / "CHANGELOG.md").unlink()
    manifest = root / "exports" / "news-ner" / "0.2.0" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"version": "1.23.2"', '"version": "9.9.9"'))
    result = cli(root, "release", "verify", "0.2.0")
    assert result.exit_code == 8
    assert "changed: manifest.json (its sha256 is not the one in manifest.sha256)" in result.stderr
    assert cli(root, "release", "verify", "0.1.0").exit_code == 0


# ------------------------------------------------------------------------------------------ a Dask cluster


@pytest.mark.parametrize("address", ["10.0.0.5:8786", "http://10.0.0.5:8786", "tcp://10.0.0.5"])
def test_a_cluster_address_that_is_not_one(tmp_path: Path, address: str) -> None:
    root = make_root(tmp_path, seeds={"a.txt": GOOD.encode()})
    assert "is not a Dask scheduler address" in error_of(cli(root, "preannotate", "--cluster", address), 2)
    assert not (root / ".workbench" / "preannotations.jsonl").exists()
    root_config = make_root(tmp_path / "config", config=f'[model]\ncluster = "{address}"\n', seeds={"a.txt": b"x"})
    assert "[model -> cluster]" in error_of(cli(root_config, "preannotate"), 2)


def test_a_scheduler_where_nothing_listens(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    root = make_root(tmp_path, seeds={"a.txt": GOOD.encode()})
    message = error_of(cli(root, "preannotate", "--cluster", address), 14)
    assert message.startswith(f"error: The Dask scheduler at {address} cannot be reached (")
    assert "refused" in message  # the port's own answer, not Dask's connect retries running out after seconds
    assert "dask scheduler" in message and "[model] cluster" in message
    assert not (root / ".workbench" / "preannotations.jsonl").exists()
