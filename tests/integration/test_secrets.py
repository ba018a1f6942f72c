"""Nothing leaked: the whole loop on a local server the CLI starts itself, then every file and every output searched.

The loop: `run` (starts the server, pre-annotates, pushes), one annotation per article through the SDK, `pull`,
`release`, `report`, `status`, and the commands that print state. Then the admin password and the API token are
searched for in every file the workbench wrote (the credentials file and the server's own database excepted),
inside compressed release files too, and in everything the CLI printed, errors included.

Also here: how the server is exposed (loopback only, no open sign-up, no telemetry, a personal access token) and
task text treated as data (HTML is shown as text, never rendered).

All of it twice: on the default setup, and on the team setup (Label Studio on PostgreSQL, served by gunicorn,
the database URL with its password in WORKBENCH_LABEL_STUDIO_DATABASE), where the database password is one more
secret that must appear nowhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyarrow.parquet as pq
import pytest
import requests
import spacy
from click.testing import Result
from label_studio_sdk.client import LabelStudio as Sdk
from spacy.tokens import DocBin
from typer.testing import CliRunner

from tests.integration.annotators import browser_region, find
from tests.support import (
    REPO_ROOT,
    SERVER_ENV_BESIDES_LABEL_STUDIO,
    SERVER_ENV_FOR_GUNICORN,
    SERVER_ENV_FOR_POSTGRES,
    make_project,
)
from workbench import server, workflow
from workbench.cli import app
from workbench.config.database import ENV_DATABASE
from workbench.errors import AuthError
from workbench.labelstudio import accounts
from workbench.project import Project, read_json

HTML_ARTICLE = (
    "Breaking <b>news</b> <img src=x onerror=alert(1)>\n"
    "Alice Smith visited <b>Paris</b> on Monday. <script>alert('x')</script> &lt;not a tag&gt;\n"
)
HTML_PARAGRAPH = HTML_ARTICLE.splitlines()[1]
GUIDELINES = "# Labels\n\nLabel people. <script>alert('guidelines')</script>\n"


@dataclass
class Loop:
    root: Path
    project: Project
    creds: dict[str, Any]
    outputs: dict[str, Result] = field(default_factory=dict)
    annotator_password: str = ""
    database_url: str | None = None  # the team setup's PostgreSQL, password included

    @property
    def secrets(self) -> dict[str, str]:
        token = str(self.creds["api_key"])
        found = {
            "password": str(self.creds["password"]),
            "api token": token,
            "api token signature": token.rsplit(".", 1)[-1],
        }
        if self.database_url:
            found["database password"] = self.database_url.split("@")[0].rsplit(":", 1)[1]
        return found

    def cli(self, name: str, *args: str, env: dict[str, str | None] | None = None) -> Result:
        """Run a command (the local server: no LABEL_STUDIO_* in the environment) and keep what it printed."""
        result = CliRunner().invoke(
            app,
            ["-C", str(self.root), *args],
            env={server.ENV_URL: None, server.ENV_API_KEY: None, ENV_DATABASE: self.database_url, **(env or {})},
        )
        self.outputs[name] = result
        return result


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def loop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    root = tmp_path_factory.mktemp("secrets")
    team = "workers = 2\n" if request.param == "postgres" else ""
    project = make_project(root, config=f'[labelstudio]\nproject_title = "Secrets"\n{team}')
    shutil.copytree(REPO_ROOT / "seeds", root / "seeds")
    (root / "seeds" / "009_html.txt").write_text(HTML_ARTICLE, encoding="utf-8")
    (root / "configs" / "guidelines.md").write_text(GUIDELINES, encoding="utf-8")
    loop = Loop(root=root, project=project, creds={})
    if request.param == "postgres":
        loop.database_url = request.getfixturevalue("postgres").create_database("secrets")
    try:
        result = loop.cli("run", "run")
        assert result.exit_code == 0, result.output
        loop.creds = read_json(project.credentials_file)
        _annotate_one_paragraph_per_article(loop)
        for name, args in {
            "pull": ["pull"],
            "release": ["release", "0.1.0"],
            "report": ["report"],
            "report --json": ["report", "--json"],
            "status": ["status"],
            "status --json": ["status", "--json"],
            "verify": ["release", "verify", "0.1.0"],
            "releases": ["releases"],
            "server status": ["server", "status"],
            "server status --json": ["server", "status", "--json"],
            "server start": ["server", "start"],
        }.items():
            result = loop.cli(name, *args)
            assert result.exit_code == 0, (name, result.output)
        # Shown once, on purpose, to hand to the annotator; it must not be kept anywhere.
        result = loop.cli("annotators add", "annotators", "add", "second.annotator@example.org")
        assert result.exit_code == 0, result.output
        loop.annotator_password = result.output.split("second.annotator@example.org / ")[1].split()[0]
        # Failures print the server and the problem, never the key they were given.
        token, url = str(loop.creds["api_key"]), str(loop.creds["url"])
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
        for name, env in {
            "pull, server down": {server.ENV_URL: closed, server.ENV_API_KEY: token},
            "pull, key rejected": {server.ENV_URL: url, server.ENV_API_KEY: token[:-4] + "AAAA"},
            "status, key not a token": {server.ENV_URL: url, server.ENV_API_KEY: loop.secrets["password"]},
        }.items():
            result = loop.cli(name, name.split(",")[0], env=env)
            assert result.exit_code == 5, (name, result.output)
        result = loop.cli("release again", "release", "0.1.0")
        assert result.exit_code == 8
        yield loop
    finally:
        workflow.server_stop(project)  # `run` started the model backend too


def _annotate_one_paragraph_per_article(loop: Loop) -> None:
    """What an annotator does in the UI, through the API: one paragraph of each article, the HTML one included."""
    project_id = int(read_json(loop.project.project_file)["project_id"])
    done: set[str] = set()
    with sdk(loop) as client:
        for task in client.tasks.list(project=project_id, include="id,data", fields="task_only", page_size=1000):
            data = task.data
            if data["doc_id"] in done or data["paragraph"] == 0:
                continue
            text = data["text"]
            match = re.search(r"\b[A-Z][a-z]+\b", text[1:])
            if data["doc_id"] == "009_html":
                start, end = find(text, "Alice Smith")
            elif match:
                start, end = match.start() + 1, match.end() + 1
            else:
                continue
            region = browser_region(text, start, end, "PERSON", "p1")
            client.annotations.create(id=task.id, result=[region], lead_time=5)
            done.add(data["doc_id"])
    assert "009_html" in done and len(done) == 6


@contextlib.contextmanager
def sdk(loop: Loop) -> Iterator[Sdk]:
    with httpx.Client(timeout=120) as http_client:
        yield Sdk(base_url=loop.creds["url"], api_key=loop.creds["api_key"], httpx_client=http_client)


# ------------------------------------------------------------------------------------------------ no leaks


def _written_files(loop: Loop) -> list[Path]:
    """Every file the workbench wrote in the project: all but the inputs, the credentials file itself, and the
    server's own data folder (its database stores the password hash and the token list by design)."""
    skip = {loop.root / "configs", loop.root / "seeds", loop.project.server_dir / "data"}
    found = []
    for folder, dirs, files in os.walk(loop.root):  # symlinks (the server's venv) are not followed
        dirs[:] = [d for d in dirs if Path(folder, d) not in skip]
        found += [Path(folder, f) for f in files if Path(folder, f) != loop.project.credentials_file]
    return sorted(p for p in found if p.is_file() and not p.is_symlink())


def _readable_text(path: Path) -> str:
    """The file's bytes as text, plus what compressed formats hold once opened (parquet pages, DocBin)."""
    data = path.read_bytes()
    parts = [data.decode("utf-8", errors="replace")]
    if path.suffix == ".parquet":
        parts.append(json.dumps(pq.read_table(path).to_pylist(), default=str))
    if path.suffix == ".spacy":
        docs = DocBin().from_bytes(data).get_docs(spacy.blank("en").vocab)
        parts.extend(f"{doc.text} {[(e.text, e.label_) for e in doc.ents]} {doc.user_data}" for doc in docs)
    return "\n".join(parts)


def test_no_file_the_workbench_wrote_holds_the_password_or_the_token(loop: Loop) -> None:
    files = _written_files(loop)
    names = {str(p.relative_to(loop.root)) for p in files}
    release = "exports/news-ner/0.1.0"
    expected = {".workbench/labelstudio/server.log", ".workbench/preannotations.parquet", ".workbench/project.json"}
    expected |= {f"{release}/manifest.json", f"{release}/README.md", f"{release}/train.spacy", f"{release}/test.conll"}
    assert expected <= names, sorted(names)
    assert any(n.startswith(".workbench/snapshots/") and n.endswith(".meta.json") for n in names)
    assert any(n.endswith(".parquet") for n in names)
    secrets = {**loop.secrets, "annotator's password": loop.annotator_password}
    for path in files:
        text = _readable_text(path)
        for what, secret in secrets.items():
            assert secret not in text, f"the {what} is in {path.relative_to(loop.root)}"


def _live_invite_token(loop: Loop) -> str:
    url = loop.creds["url"]
    with requests.Session() as session:
        session.trust_env = False
        access = session.post(f"{url}/api/token/refresh/", json={"refresh": loop.creds["api_key"]}, timeout=30)
        invite = session.get(
            f"{url}/api/invite", headers={"Authorization": f"Bearer {access.json()['access']}"}, timeout=30
        )
    return str(invite.json()["token"])


def test_no_file_holds_a_live_invite_link(loop: Loop) -> None:
    token = _live_invite_token(loop)
    assert all(token not in _readable_text(path) for path in _written_files(loop))


def test_no_command_printed_the_password_or_the_token(loop: Loop) -> None:
    assert len(loop.outputs) >= 16 and loop.annotator_password
    for name, result in loop.outputs.items():
        if name == "run":
            continue  # see the next test
        for what, secret in loop.secrets.items():
            assert secret not in result.output, f"`{name}` printed the {what}"
        if name != "annotators add":
            assert loop.annotator_password not in result.output, name
    for name in ("pull, server down", "pull, key rejected", "status, key not a token"):
        assert "Traceback" not in loop.outputs[name].output
        assert loop.outputs[name].output.startswith("error: ")


def test_run_does_not_print_the_password(loop: Loop) -> None:
    assert loop.secrets["password"] not in loop.outputs["run"].output


def test_the_run_output_still_says_how_to_log_in(loop: Loop) -> None:
    output = loop.outputs["run"].output
    assert "Annotate at" in output and server.ADMIN_EMAIL in output
    assert loop.secrets["api token"] not in output


# ------------------------------------------------------------------------------------------- credentials


def test_credentials_are_private_files(loop: Loop) -> None:
    assert stat.S_IMODE(loop.project.credentials_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(loop.project.state_dir.stat().st_mode) == 0o700
    assert loop.project.credentials_file.parent == loop.project.state_dir
    assert set(loop.creds) == set(server.CREDENTIAL_KEYS)
    password = loop.secrets["password"]
    assert len(password) >= 24 and len(set(password)) >= 12, "generated, not typed"


def test_the_api_key_is_a_personal_access_token_not_a_legacy_one(loop: Loop) -> None:
    token = loop.secrets["api token"]
    assert not re.fullmatch(r"[0-9a-f]{40}", token)
    claims = accounts.jwt_claims(token)
    assert claims is not None and claims.get("token_type") == "refresh" and claims.get("exp")
    assert accounts.whoami(loop.creds["url"], token)["email"] == server.ADMIN_EMAIL


# ------------------------------------------------------------------------------------------------ exposure


def _server_processes(loop: Loop) -> list[psutil.Process]:
    pid = server.status(loop.project).pid
    assert pid is not None
    process = psutil.Process(pid)
    return [process, *process.children(recursive=True)]


def test_the_server_listens_on_loopback_only(loop: Loop) -> None:
    listening = [
        conn.laddr
        for proc in _server_processes(loop)
        for conn in proc.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    ]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
    assert {addr.port for addr in listening} == {loop.creds["port"]}


def test_the_server_runs_without_telemetry_or_stray_settings(loop: Loop) -> None:
    env = _server_processes(loop)[0].environ()
    assert env["SENTRY_DSN"] == "" and env["FRONTEND_SENTRY_DSN"] == ""
    assert env["COLLECT_ANALYTICS"] == "false" and env["LATEST_VERSION_CHECK"] == "false"
    assert env["LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK"] == "true"
    allowed = SERVER_ENV_BESIDES_LABEL_STUDIO
    if loop.database_url:
        allowed |= SERVER_ENV_FOR_GUNICORN | SERVER_ENV_FOR_POSTGRES
    stray = {k for k in env if not k.startswith("LABEL_STUDIO_")} - allowed
    assert not stray, stray


def test_sign_up_without_an_invite_is_refused(loop: Loop) -> None:
    url = loop.creds["url"]
    email, password = "intruder@example.org", "an-intruders-password-123"
    with requests.Session() as session:
        session.trust_env = False
        session.get(f"{url}/user/signup/", timeout=30)
        response = session.post(
            f"{url}/user/signup/",
            data={"email": email, "password": password, "csrfmiddlewaretoken": session.cookies.get("csrftoken")},
            headers={"Referer": f"{url}/user/signup/"},
            allow_redirects=False,
            timeout=30,
        )
    assert response.status_code != 302, "a sign-up without an invite link must not create an account"
    with pytest.raises(AuthError):
        accounts.mint_token(url, email, password)


# ------------------------------------------------------------------------------------------ text is data


def test_task_text_with_html_is_stored_and_shown_as_text(loop: Loop) -> None:
    project_id = int(read_json(loop.project.project_file)["project_id"])
    with sdk(loop) as client:
        project = client.projects.get(id=project_id)
        listing = client.tasks.list(project=project_id, include="id,data", fields="task_only", page_size=1000)
        texts = {task.data["text"] for task in listing}
    config = project.label_config
    assert '<Text name="text" value="$text"' in config
    assert "HyperText" not in config and "<Html" not in config
    assert "<script" not in (project.expert_instruction or "")
    assert "&lt;script&gt;" in (project.expert_instruction or "")
    assert HTML_PARAGRAPH in texts and HTML_ARTICLE.splitlines()[0] in texts


def test_html_text_reaches_the_release_verbatim(loop: Loop) -> None:
    release = loop.project.releases_dir / "0.1.0"
    rows = [row for path in release.rglob("*.parquet") for row in pq.read_table(path).to_pylist()]
    (row,) = [r for r in rows if r["doc_id"] == "009_html"]
    assert row["text"] == HTML_PARAGRAPH
    assert [(s["text"], s["label"]) for s in row["spans"]] == [("Alice Smith", "PERSON")]


def test_the_state_folder_is_not_world_readable(loop: Loop) -> None:
    """Snapshots and pre-annotations hold the texts being labelled: they stay inside the 0700 folder."""
    for path in (loop.project.snapshots_dir, loop.project.preannotations_file, loop.project.project_file):
        assert loop.project.state_dir in path.parents
    assert os.stat(loop.project.state_dir).st_mode & 0o077 == 0
