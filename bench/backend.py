"""`python -m bench.backend`: how fast the model backend answers Label Studio, against raw `nlp.pipe` on the same
texts in the same run, with the project's Label Studio running.

    BENCH_BACKEND_REQUESTS=300 BENCH_BACKEND_BATCHES=20 BENCH_BACKEND_RETRIEVE=40 .venv/bin/python -m bench.backend

A throw-away project of generated paragraphs (`corpus.py`) gets its own Label Studio (`server.start`) and its
model backend (`workflow.backend_start`), and pushes 100 paragraphs (which connects the backend). Then:

- one paragraph: BENCH_BACKEND_REQUESTS `POST /predict` of one task each, over one keep-alive HTTP connection with
  the backend's login, a different paragraph each time; against `nlp.pipe([text])` of the same NER-only pipeline
  in this process, the same texts. p50/p95/max latency of each; the ratio of the p50s and of the p95s.
- batches of 100: BENCH_BACKEND_BATCHES `POST /predict` of 100 tasks; against `nlp.pipe(texts)` of the same
  100. Paragraphs per second of each (total over the batches); the ratio.
- through Label Studio: BENCH_BACKEND_RETRIEVE times, a task uploaded through Label Studio's import and the Data
  Manager's Retrieve predictions on it (what a user waits for: Label Studio asks /health and /setup, then /predict,
  and stores the prediction). p50/p95.

The two sides alternate request by request (batch by batch), so load on the shared machine hits both alike. The
figures go to bench/results/backend.json and a markdown table; the machine and its load average before and after.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from label_studio_sdk.client import LabelStudio

from bench.corpus import generate
from bench.measure import load_now, machine
from workbench import server, workflow
from workbench.articles import read_corpus
from workbench.backend.files import BackendFiles, read_login
from workbench.pipeline import load_ner_pipeline
from workbench.project import Project, read_json

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "backend.json"
PARAGRAPHS = 3000
BATCH = 100


def main() -> int:
    requests = int(os.environ.get("BENCH_BACKEND_REQUESTS", "300"))
    batches = int(os.environ.get("BENCH_BACKEND_BATCHES", "20"))
    retrieves = int(os.environ.get("BENCH_BACKEND_RETRIEVE", "40"))
    for name in (server.ENV_URL, server.ENV_API_KEY):  # always our own server
        os.environ.pop(name, None)
    before = load_now()
    with tempfile.TemporaryDirectory(prefix="workbench-bench-backend-") as tmp:
        root = Path(tmp) / "project"
        project = _project(root)
        generate(REPO / "seeds", project.seeds_dir, PARAGRAPHS)
        texts = [p.text for p in read_corpus(project.seeds_dir).paragraphs()]
        info = server.start(project)
        try:
            backend = workflow.backend_start(project).info
            _say(f"Label Studio {info.url}, backend {backend.url} serving {backend.model_version}")
            result = _measure(project, texts, requests, batches, retrieves)
            result["machine"] = machine(server.status(project).version) | {
                "model": backend.model_version, "load_before": before, "load_after": load_now()}  # fmt: skip
        finally:
            workflow.server_stop(project)  # the backend, then Label Studio
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    return 0


def _project(root: Path) -> Project:
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "workbench.toml").write_text('[labelstudio]\nproject_title = "Backend bench"\n',
                                                     encoding="utf-8")  # fmt: skip
    (root / ".venv-labelstudio").symlink_to(REPO / ".venv-labelstudio", target_is_directory=True)
    return Project.open(root)


def _measure(project: Project, texts: list[str], requests: int, batches: int, retrieves: int) -> dict[str, Any]:
    login = read_login(BackendFiles.of(project))
    assert login is not None
    nlp, _ = load_ner_pipeline(project.config.model.name, project.root)
    list(nlp.pipe(texts[:BATCH]))  # warm both sides alike
    with httpx.Client(base_url=login.url, auth=(login.username, login.password), timeout=120) as http:
        post = _predictor(http)
        post(texts[:BATCH])

        def raw(batch: list[str]) -> None:
            list(nlp.pipe(batch))

        single = {"backend": [], "raw": []}
        for i in range(requests):
            text = texts[BATCH + i % (len(texts) - BATCH)]
            single["backend"].append(_timed(post, [text]))
            single["raw"].append(_timed(raw, [text]))
        batched = {"backend": [], "raw": []}
        for i in range(batches):
            chunk = texts[(i * BATCH) % (len(texts) - BATCH):][:BATCH]
            batched["backend"].append(_timed(post, chunk))
            batched["raw"].append(_timed(raw, chunk))
    words = sum(len(text.split()) for text in texts) / len(texts)
    one = {side: _latency(seconds) for side, seconds in single.items()}
    many = {side: round(BATCH * batches / sum(seconds), 1) for side, seconds in batched.items()}
    return {
        "paragraph_words_mean": round(words, 1),
        "one_paragraph": {**one, "requests": requests,
                          "ratio_p50": round(one["backend"]["p50_ms"] / one["raw"]["p50_ms"], 2),
                          "ratio_p95": round(one["backend"]["p95_ms"] / one["raw"]["p95_ms"], 2)},
        "batch_of_100": {"backend_paragraphs_per_s": many["backend"], "raw_paragraphs_per_s": many["raw"],
                         "batches": batches, "ratio": round(many["backend"] / many["raw"], 2)},
        "retrieve_predictions_one_task": _through_label_studio(project, texts, retrieves),
    }  # fmt: skip


def _predictor(http: httpx.Client) -> Callable[[list[str]], None]:
    def post(batch: list[str]) -> None:
        response = http.post("/predict", json={"tasks": [{"data": {"text": text}} for text in batch]})
        response.raise_for_status()
        assert len(response.json()["results"]) == len(batch)

    return post


def _through_label_studio(project: Project, texts: list[str], retrieves: int) -> dict[str, Any]:
    """Push 100 paragraphs (connecting the backend), then time Retrieve predictions on uploaded tasks."""
    for path in project.seeds_dir.glob("*.txt"):  # the project holds 100 paragraphs, in one article
        path.unlink()
    (project.seeds_dir / "bench.txt").write_text("\n".join(texts[:BATCH]) + "\n", encoding="utf-8")
    workflow.do_preannotate(project)
    _, pushed = workflow.do_push(project)
    assert pushed.backend_url, pushed.backend_note
    conn = server.connection(project)
    project_id = int(read_json(project.project_file)["project_id"])
    seconds = []
    with httpx.Client(timeout=120) as http:
        sdk = LabelStudio(base_url=conn.url, api_key=conn.api_key, httpx_client=http)

        def retrieve(task_id: int) -> None:
            sdk._client_wrapper.httpx_client.request(
                "api/dm/actions", method="POST", params={"id": "retrieve_tasks_predictions", "project": project_id},
                json={"selectedItems": {"all": False, "included": [task_id]}}).raise_for_status()

        for i in range(retrieves):
            text = texts[-1 - i]
            imported = sdk.projects.import_tasks(id=project_id, return_task_ids=True, request=[
                {"data": {"text": text, "doc_id": "uploaded", "paragraph": i, "title": "Uploaded"}}])  # fmt: skip
            task_id = int(imported.task_ids[0])
            seconds.append(_timed(retrieve, task_id))
    return {**_latency(seconds), "requests": retrieves}


def _timed(call: Callable[..., Any], *args: Any) -> float:
    began = time.perf_counter()
    call(*args)
    return time.perf_counter() - began


def _latency(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    p95 = ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p95_ms": round(p95 * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2)}  # fmt: skip


def table(result: dict[str, Any]) -> str:
    one, many, ls = result["one_paragraph"], result["batch_of_100"], result["retrieve_predictions_one_task"]
    return "\n".join([
        "| measure | backend | raw nlp.pipe | ratio |",
        "|---|---:|---:|---:|",
        f"| one paragraph, p50 ms | {one['backend']['p50_ms']} | {one['raw']['p50_ms']} | {one['ratio_p50']} |",
        f"| one paragraph, p95 ms | {one['backend']['p95_ms']} | {one['raw']['p95_ms']} | {one['ratio_p95']} |",
        f"| batches of 100, paragraphs/s | {many['backend_paragraphs_per_s']} | {many['raw_paragraphs_per_s']} | "
        f"{many['ratio']} |",
        f"| Retrieve predictions in Label Studio, one task, p50 / p95 ms | {ls['p50_ms']} / {ls['p95_ms']} | - | - |",
    ])  # fmt: skip


def _say(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
