"""`python -m bench.cluster`: pre-annotation on a two-worker Dask cluster against the local two processes.

    BENCH_PARAGRAPHS=10000 BENCH_REPEATS=3 .venv/bin/python -m bench.cluster

One generated corpus (bench/corpus.py), pre-annotated from scratch by `workflow.do_preannotate` each time: on
this machine (spaCy's processes, as without a cluster) and on a local Dask cluster of one scheduler and two
single-thread workers (tests/services.py starts them as a team would: `dask scheduler`, `dask worker`), taking
turns, best of BENCH_REPEATS each. The first cluster run includes the workers loading the pipeline (`cold`);
later ones reuse it. Recorded with the figures: words/s, the ratio, each worker's and the scheduler's peak RSS,
and the client's own CPU seconds per paragraph and peak RSS (what one `preannotate` process spends feeding the
cluster, and holds: where adding workers stops paying). Results: bench/results/cluster-<N>.json.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from distributed import Client

from bench.corpus import generate
from bench.measure import MB, machine, uptime
from tests.services import DaskCluster
from workbench import workflow
from workbench.project import Project

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    paragraphs = int(os.environ.get("BENCH_PARAGRAPHS", "10000"))
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    report: dict[str, Any] = {"paragraphs": paragraphs, "repeats": repeats, "uptime_before": uptime(),
                              "machine": machine(None)}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="workbench-cluster-bench-") as tmp:
        root = Path(tmp)
        (root / "configs").mkdir()
        (root / "configs" / "workbench.toml").write_text("", encoding="utf-8")
        project = Project.open(root)
        words = generate(REPO / "seeds", project.seeds_dir, paragraphs)
        report["words"] = words
        cluster = DaskCluster(workers=2).start()
        try:
            with Client(cluster.address, set_as_default=False) as client:
                client.wait_for_workers(2, timeout=120)
                worker_pids = list(client.run(os.getpid).values())
            scheduler_pid = cluster.processes[0].pid
            local, remote = [], []
            for _ in range(repeats):
                local.append(_timed(project, None, words, [os.getpid()]))
                remote.append(_timed(project, cluster.address, words, [os.getpid(), scheduler_pid, *worker_pids]))
                rates = (local[-1]["words_per_second"], remote[-1]["words_per_second"])
                say("local {:,.0f} words/s, cluster {:,.0f}".format(*rates))
        finally:
            cluster.stop()
    best_local = max(local, key=lambda run: run["words_per_second"])
    best_cluster = max(remote, key=lambda run: run["words_per_second"])
    report |= {
        "local": best_local,
        "cluster": best_cluster,
        "cluster_cold": remote[0],
        "ratio": round(best_cluster["words_per_second"] / best_local["words_per_second"], 3),
        "per_worker_words_per_second": round(best_cluster["words_per_second"] / 2),
        "uptime_after": uptime(),
    }
    out = REPO / "bench" / "results" / f"cluster-{paragraphs}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("ratio", "per_worker_words_per_second")} | {
        "local": best_local["words_per_second"], "cluster": best_cluster["words_per_second"]}))  # fmt: skip
    return 0


def _timed(project: Project, address: str | None, words: int, pids: list[int]) -> dict[str, Any]:
    """One pre-annotation from scratch; peak RSS of `pids` (scheduler, workers) sampled meanwhile."""
    project.preannotations_file.unlink(missing_ok=True)
    peaks = dict.fromkeys(pids, 0)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    peaks[pid] = max(peaks[pid], psutil.Process(pid).memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began, cpu = time.perf_counter(), time.process_time()
    _, summary = workflow.do_preannotate(project, cluster=address)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    stop.set()
    sampler.join()
    return {
        "seconds": round(seconds, 2),
        "words_per_second": round(words / seconds),
        "processes": summary.processes,
        "client_cpu_seconds": round(cpu, 2),
        "client_cpu_ms_per_paragraph": round(1000 * cpu / summary.paragraphs, 3),
        "peak_rss_mb": {(["client", "scheduler"][i] if i < 2 else f"worker {i - 1}"): round(peaks[pid] / MB, 1)
                        for i, pid in enumerate(pids)},  # fmt: skip
    }


def say(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
