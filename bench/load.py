"""`python -m bench.load`: annotators submitting at once through the API, against each way of serving the local
Label Studio, and the proof that every accepted submission is in the next pull.

    BENCH_ANNOTATORS=10,30 BENCH_SUBMISSIONS=20 BENCH_WORKERS=4 .venv/bin/python -m bench.load

Setups (BENCH_SETUPS, comma-separated): `dev-sqlite` (the default install: Django's development server on
SQLite), `gunicorn-sqlite` and `gunicorn-postgres` (BENCH_WORKERS gunicorn workers; PostgreSQL is a private
cluster started here, as the tests start theirs). For each setup: one project of generated paragraphs pushed by
the workbench with predictions, one account per annotator (through the invite link, as `workbench annotators
add` makes them), then for each crowd size every annotator submits BENCH_SUBMISSIONS annotations (the predicted
regions, accepted) to tasks of their own, back to back, all starting together: a closed loop, the worst case
of a team pressing Submit. Per crowd: submissions/s, p50/p95 latency, errors by kind, and lost = accepted
submissions missing from the `workbench pull` that follows. Results: bench/results/load.json, a markdown table.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.corpus import generate
from bench.measure import RssSampler, machine, uptime
from tests.services import PostgresCluster, postgres_bindir
from workbench import server, workflow
from workbench.config.database import ENV_DATABASE
from workbench.labelstudio import accounts
from workbench.project import Project, read_json
from workbench.sync.snapshots import iter_export

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "load.json"
SETUPS = ("dev-sqlite", "gunicorn-sqlite", "gunicorn-postgres")


@dataclass
class Crowd:
    """What one crowd of annotators did."""

    annotators: int
    latencies: list[float] = field(default_factory=list)
    accepted: set[int] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def result(self, pulled: set[int]) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "annotators": self.annotators,
            "submissions": len(ordered) + sum(self.errors.values()),
            "accepted": len(self.accepted),
            "seconds": round(self.seconds, 2),
            "per_second": round(len(self.accepted) / self.seconds, 1) if self.seconds else 0,
            "p50_s": round(statistics.median(ordered), 3) if ordered else None,
            "p95_s": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 3) if ordered else None,
            "max_s": round(ordered[-1], 3) if ordered else None,
            "errors": dict(self.errors),
            "lost": len(self.accepted - pulled),
        }


def main() -> int:
    crowds = [int(n) for n in os.environ.get("BENCH_ANNOTATORS", "10,30").split(",")]
    submissions = int(os.environ.get("BENCH_SUBMISSIONS", "20"))
    workers = int(os.environ.get("BENCH_WORKERS", "4"))
    setups = os.environ.get("BENCH_SETUPS", ",".join(SETUPS)).split(",")
    for name in (server.ENV_URL, server.ENV_API_KEY, ENV_DATABASE):  # always our own servers
        os.environ.pop(name, None)
    report: dict[str, Any] = {"submissions_per_annotator": submissions, "workers": workers, "uptime_before": uptime(),
                              "machine": machine(None), "setups": {}}  # fmt: skip
    postgres = None
    try:
        if "gunicorn-postgres" in setups:
            bindir = postgres_bindir()
            if bindir is None:
                raise SystemExit("PostgreSQL is not installed: run `make postgres-deps` first")
            postgres = PostgresCluster(bindir).start()
        for setup in setups:
            report["setups"][setup] = run_setup(setup, crowds, submissions, workers, postgres)
    finally:
        if postgres is not None:
            postgres.stop()
    report["uptime_after"] = uptime()
    if setups:  # the load average was taken before the servers started; the version is known only now
        report["machine"]["versions"]["label-studio (server)"] = report["setups"][setups[0]]["version"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table(report))
    return 0


def run_setup(setup: str, crowds: list[int], submissions: int, workers: int, postgres: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"workbench-load-{setup}-") as tmp:
        root = Path(tmp)
        (root / "configs").mkdir()
        config = f"[labelstudio]\nworkers = {0 if setup.startswith('dev') else workers}\nbatch_size = 2000\n"
        (root / "configs" / "workbench.toml").write_text(config, encoding="utf-8")
        (root / ".venv-labelstudio").symlink_to(REPO / ".venv-labelstudio", target_is_directory=True)
        if setup.endswith("postgres"):
            os.environ[ENV_DATABASE] = postgres.create_database(setup.replace("-", "_"))
        project = Project.open(root)
        generate(REPO / "seeds", project.seeds_dir, sum(crowds) * submissions + 50)
        info = server.start(project)
        say(f"{setup}: Label Studio at {info.url} ({server.status(project).serving}) up in {info.seconds:.0f} s")
        try:
            with RssSampler(info.pid, interval=0.2) as server_rss:
                result = _load(project, crowds, submissions)
            result["server_peak_rss_mb"] = round(server_rss.total_peak / 2**20, 1)
            log = (project.server_dir / "server.log").read_text(encoding="utf-8", errors="replace")
            result["server_log"] = {sign: log.count(sign) for sign in ("Internal Server Error", "database is locked")}
            result["version"] = server.status(project).version
        finally:
            server.stop(project)
            os.environ.pop(ENV_DATABASE, None)
    return result


def _load(project: Project, crowds: list[int], submissions: int) -> dict[str, Any]:
    corpus, _ = workflow.do_preannotate(project)
    workflow.do_push(project, corpus=corpus)
    creds = read_json(project.credentials_file)
    url, admin_key = str(creds["url"]), str(creds["api_key"])
    project_id = int(read_json(project.project_file)["project_id"])
    tasks = _tasks_with_regions(url, admin_key, project_id)
    people = [accounts.create_annotator(url, admin_key, f"annotator{i}@bench.local") for i in range(max(crowds))]
    tokens = [accounts.mint_token(url, login.email, login.password) for login in people]
    results, offset = [], 0
    for size in crowds:
        crowd = Crowd(size)
        shares = [tasks[offset + i * submissions : offset + (i + 1) * submissions] for i in range(size)]
        offset += size * submissions
        start = threading.Barrier(size + 1)
        threads = [threading.Thread(target=_annotate, args=(url, tokens[i], shares[i], crowd, start))
                   for i in range(size)]  # fmt: skip
        for thread in threads:
            thread.start()
        start.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        crowd.seconds = time.perf_counter() - began
        snapshot = workflow.do_pull(project).snapshot
        pulled = {a["id"] for task in iter_export(snapshot.path) for a in task.get("annotations", [])}
        results.append(crowd.result(pulled))
        say(f"  {size} annotators: {results[-1]}")
    return {"tasks": len(tasks), "crowds": results}


def _tasks_with_regions(url: str, key: str, project_id: int) -> list[tuple[int, list[dict[str, Any]]]]:
    """(task id, the predicted regions) for every task, in id order."""
    with httpx.Client(base_url=url, timeout=300) as http:
        access = http.post("/api/token/refresh/", json={"refresh": key}).json()["access"]
        listing = http.get("/api/tasks", params={"project": project_id, "page_size": 100000, "fields": "all"},
                           headers={"Authorization": f"Bearer {access}"}).json()["tasks"]  # fmt: skip
    return sorted((task["id"], task["predictions"][0]["result"] if task["predictions"] else []) for task in listing)


def _annotate(url: str, token: str, share: list[tuple[int, list]], crowd: Crowd, start: threading.Barrier) -> None:
    """One annotator: Submit on each of their tasks, back to back."""
    with httpx.Client(base_url=url, timeout=120) as http:
        access = http.post("/api/token/refresh/", json={"refresh": token}).json()["access"]
        headers = {"Authorization": f"Bearer {access}"}
        start.wait()
        for task_id, regions in share:
            began = time.perf_counter()
            try:
                response = http.post(f"/api/tasks/{task_id}/annotations/", headers=headers,
                                     json={"result": regions, "lead_time": 5.0, "was_cancelled": False})  # fmt: skip
                kind = None if response.status_code == 201 else _kind(response)
            except httpx.HTTPError as exc:
                kind, response = type(exc).__name__, None
            elapsed = time.perf_counter() - began
            with crowd.lock:
                if kind is None and response is not None:
                    crowd.latencies.append(elapsed)
                    crowd.accepted.add(int(response.json()["id"]))
                else:
                    crowd.errors[str(kind)] += 1


def _kind(response: httpx.Response) -> str:
    text = response.text.lower()
    known = next((k for k in ("database is locked", "deadlock", "timeout") if k in text), "")
    return f"HTTP {response.status_code}" + (f" {known}" if known else "")


def table(report: dict[str, Any]) -> str:
    lines = ["| setup | annotators | submissions/s | p50 s | p95 s | max s | errors | lost |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]  # fmt: skip
    for setup, result in report["setups"].items():
        for crowd in result["crowds"]:
            lines.append(
                f"| {setup} | {crowd['annotators']} | {crowd['per_second']} | {crowd['p50_s']} | {crowd['p95_s']} | "
                f"{crowd['max_s']} | {crowd['errors'] or 'none'} | {crowd['lost']} |"
            )
    return "\n".join(lines)


def say(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
