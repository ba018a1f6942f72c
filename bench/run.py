"""`make bench`: every workbench stage against the raw library doing the same work, on one generated corpus.

    BENCH_PARAGRAPHS=10000 BENCH_REPEATS=3 .venv/bin/python -m bench.run

Builds a throw-away project whose seeds folder holds BENCH_PARAGRAPHS unique paragraphs scaled from `seeds/`,
starts its own Label Studio, measures each side BENCH_REPEATS times (alternating, best run kept, because a
shared machine is noisy), stops the server, prints a markdown table and writes bench/results/latest.json (and
paragraphs-<N>.json, to keep one result per size).

    BENCH_STAGES=incremental BENCH_PARAGRAPHS=100000 BENCH_REPEATS=1 .venv/bin/python -m bench.run

runs only what a loop turn costs (the annotated import, then `pull_incremental` and `release_incremental`) and
writes bench/results/paragraphs-<N>-incremental.json, leaving latest.json alone; BENCH_STAGES=push runs only the
push against the raw import (after an untimed pre-annotation) into paragraphs-<N>-push.json; BENCH_STAGES=transfer
runs push and pull against the raw import and export, then the loop turn (paragraphs-<N>-transfer.json).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import stages
from bench.corpus import generate
from bench.measure import RssSampler, isolated, load_now, machine
from workbench import server
from workbench.articles import read_corpus
from workbench.pipeline import load_ner_pipeline
from workbench.preannotation.annotate import choose_batch_size, processes_for_text
from workbench.project import Project

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "latest.json"
# The batch sizes the workbench itself uses with several processes and with one (see workbench.preannotation.annotate).
RAW_BATCH_SIZES = (64, 256)
UNITS = {"preannotate": "words", "push": "tasks", "pull": "tasks", "release": "examples", "train": "steps",
         "preannotate_trained": "words"}
# The bench project's `pull_overlap_seconds`: after its import, the longest write on its server is one annotation
# update (~0.1 s). Each incremental round waits this long after the last change before its base pull, so that pull
# fetches exactly the 1% changed, as a pull a day after the last one would (see bench/README.md).
OVERLAP_SECONDS = 30
CHANGED_FRACTION = 0.01


def main() -> int:
    paragraphs = int(os.environ.get("BENCH_PARAGRAPHS", "10000"))
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    only = os.environ.get("BENCH_STAGES", "all")
    for name in (server.ENV_URL, server.ENV_API_KEY):  # always our own server, whatever the shell says
        os.environ.pop(name, None)
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    load_at_start = load_now()
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as tmp:
        root = str(Path(tmp) / "project")
        project = make_project(Path(root))
        total_words = generate(REPO / "seeds", project.seeds_dir, paragraphs)
        say(f"corpus: {paragraphs:,} paragraphs, {total_words:,} words in {project.seeds_dir}")
        info = server.start(project)
        say(f"Label Studio {info.url} (pid {info.pid}) up in {info.seconds:.0f} s")
        try:
            with RssSampler(info.pid, interval=0.2) as server_rss:
                run = {"incremental": run_incremental_only, "push": run_push_only,
                       "transfer": run_transfer_only}.get(only, run_stages)  # fmt: skip
                stages_ = run(root, project, paragraphs, repeats, server_rss)
            result = {
                "paragraphs": paragraphs,
                "words": total_words,
                "repeats": repeats,
                "machine": machine(server.status(project).version) | {"model": load_ner_pipeline(
                    project.config.model.name)[1], "load_at_start": load_at_start, "load_at_end": load_now()},
                "stages": stages_,
                "server_peak_rss_mb": round(server_rss.total_peak / 2**20, 1),
            }
        finally:
            server.stop(project)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    paths = ([RESULTS.with_name(f"paragraphs-{paragraphs}-{only}.json")] if only != "all"
             else [RESULTS, RESULTS.with_name(f"paragraphs-{paragraphs}.json")])  # the latest, and per size
    for path in paths:
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    return 0


def make_project(root: Path) -> Project:
    """A default-config project beside the real server's virtual environment."""
    (root / "configs").mkdir(parents=True)
    # training runs a fixed number of steps, with no early stop, so both sides do the same work
    (root / "configs" / "workbench.toml").write_text(
        f"[train]\nmax_steps = {stages.TRAIN_STEPS}\npatience = 0\neval_frequency = {stages.TRAIN_STEPS}\n"
        f"[labelstudio]\npull_overlap_seconds = {OVERLAP_SECONDS}\n",
        encoding="utf-8",
    )
    (root / ".venv-labelstudio").symlink_to(REPO / ".venv-labelstudio", target_is_directory=True)
    return Project.open(root)


def run_stages(
    root: str, project: Project, paragraphs: int, repeats: int, server_rss: RssSampler
) -> dict[str, dict[str, Any]]:
    chars = sum(len(p.text) for p in read_corpus(project.seeds_dir).paragraphs())
    n_process = processes_for_text(project.config.model.processes, chars)  # what the workbench will choose
    batch_size = choose_batch_size(project.config.model.batch_size, n_process)
    out: dict[str, dict[str, Any]] = {}
    out["preannotate"] = compare(
        "preannotate",
        repeats,
        lambda r: isolated(stages.workbench_preannotate, root),
        {f"batch {b}": (lambda r, b=b: isolated(stages.raw_pipe, root, n_process, b)) for b in RAW_BATCH_SIZES},
    ) | {"n_process": n_process, "batch_size": batch_size}
    out["push"] = compare_push(root, repeats, server_rss)
    out["pull"], project_id, imported = compare_pull(root, paragraphs, repeats, server_rss)
    out["release"] = compare("release", repeats, lambda r: isolated(stages.workbench_release, root), {})
    out["train"] = compare(
        "train", repeats, lambda r: isolated(stages.workbench_train, root), {"spacy train": lambda r: isolated(
            stages.raw_train, root)},
    )  # fmt: skip
    model = str(project.models_dir / "1.0.0")
    out["preannotate_trained"] = compare(
        "preannotate_trained",
        repeats,
        lambda r: isolated(stages.workbench_preannotate, root, model),
        {f"batch {b}": (lambda r, b=b: isolated(stages.raw_pipe, root, n_process, b, model)) for b in RAW_BATCH_SIZES},
    ) | {"model": model}
    out |= run_incremental(root, project, project_id, repeats, imported)
    return out


def run_incremental_only(
    root: str, project: Project, paragraphs: int, repeats: int, server_rss: RssSampler
) -> dict[str, dict[str, Any]]:
    """The annotated copy of the corpus (its annotations are the pre-annotations, edited), then only the
    incremental pull and release against full ones."""
    isolated(stages.workbench_preannotate, root)
    _, project_id, imported = annotated_copy(root)
    return run_incremental(root, project, project_id, repeats, imported)


def run_push_only(
    root: str, project: Project, paragraphs: int, repeats: int, server_rss: RssSampler
) -> dict[str, dict[str, Any]]:
    """Only the push against the raw import (the pool made first, untimed)."""
    isolated(stages.workbench_preannotate, root)
    return {"push": compare_push(root, repeats, server_rss)}


def run_transfer_only(
    root: str, project: Project, paragraphs: int, repeats: int, server_rss: RssSampler
) -> dict[str, dict[str, Any]]:
    """Push and pull against the raw import and export, then the loop turn: the stages that talk to Label Studio
    (the pool made first, untimed), without pre-annotation and training, for a machine with little time."""
    out = run_push_only(root, project, paragraphs, repeats, server_rss)
    out["pull"], project_id, imported = compare_pull(root, paragraphs, repeats, server_rss)
    return out | run_incremental(root, project, project_id, repeats, imported)


def compare_push(root: str, repeats: int, server_rss: RssSampler) -> dict[str, Any]:
    """The workbench's push against one raw SDK import of the same pool, with the server's peak memory."""
    server_rss.take_window()
    return compare(
        "push",
        repeats,
        lambda r: isolated(stages.workbench_push, root, f"bench push {r}"),
        {"import": lambda r: isolated(stages.raw_import, root, f"bench raw import {r}")},
    ) | {"server_peak_rss_mb": server_rss.take_window()}


def compare_pull(
    root: str, paragraphs: int, repeats: int, server_rss: RssSampler
) -> tuple[dict[str, Any], int, float]:
    """The annotated copy made, then the workbench's pull against the raw export of it; also the copy's project id
    and import time, which the loop turn needs."""
    annotated, project_id, imported = annotated_copy(root)
    server_rss.take_window()
    pulled = compare(
        "pull",
        repeats,
        lambda r: isolated(stages.workbench_pull, root),
        {"export": lambda r: isolated(stages.raw_export, root, project_id, paragraphs)},
    ) | {"server_peak_rss_mb": server_rss.take_window(), "annotated_import_per_second": annotated["per_second"]}
    return pulled, project_id, imported


def annotated_copy(root: str) -> tuple[dict[str, Any], int, float]:
    """Import a copy of the tasks, each with an annotation, and point the project at it: what pull exports and
    release builds. Returns the import's measurement, the copy's project id and when it was imported."""
    annotated = isolated(stages.raw_import, root, "bench annotated", True)
    imported = time.monotonic()
    say(f"annotated copy: {annotated['count']:,} tasks with annotations imported at {annotated['per_second']:,.0f}/s")
    stages.point_at(root, annotated["details"]["project_id"])
    return annotated, annotated["details"]["project_id"], imported


def run_incremental(root: str, project: Project, project_id: int, rounds: int, last_change: float) -> dict[str, Any]:
    """Pull and release after 1% of the annotated tasks changed, against a full pull and a full rebuild of the
    same state; `rounds` times, each with fresh changes, the fastest of each kind kept."""
    shutil.rmtree(project.releases_dir, ignore_errors=True)
    settle(last_change)
    isolated(stages.workbench_pull_mode, root, True)  # the base: a full export, then a first release
    isolated(stages.workbench_release_version, root, "1.0.0", False)
    runs: list[dict[str, Any]] = []
    for r in range(rounds):
        if r:
            settle(last_change)
            isolated(stages.workbench_pull_mode, root, False)  # the last pull before the day's changes
        changed = stages.change_annotations(root, project_id, CHANGED_FRACTION, seed=r)
        last_change = time.monotonic()
        version = 2 * r + 1
        run = {"changed_tasks": changed, "load": load_now()}
        run["pull"] = isolated(stages.workbench_pull_mode, root, False)
        run["release"] = isolated(stages.workbench_release_version, root, f"1.{version}.0", True)
        run["full_pull"] = isolated(stages.workbench_pull_mode, root, True)
        run["full_release"] = isolated(stages.workbench_release_version, root, f"1.{version + 1}.0", False)
        run["same_snapshot"] = run["pull"]["details"]["sha256"] == run["full_pull"]["details"]["sha256"]
        run["same_data_files"] = same_data_files(project.releases_dir / f"1.{version}.0",
                                                 project.releases_dir / f"1.{version + 1}.0")  # fmt: skip
        say(f"incremental round {r + 1}/{rounds}: {changed} tasks changed; pull {run['pull']['seconds']:.2f} s "
            f"(full {run['full_pull']['seconds']:.2f} s, {run['pull']['details']['fetched']} fetched), release "
            f"{run['release']['seconds']:.2f} s (full {run['full_release']['seconds']:.2f} s, "
            f"{run['release']['details']['rebuilt']} built); identical: {run['same_snapshot']}, "
            f"{run['same_data_files']}; load {run['load']['load_average']}")
        runs.append(run)
    out = {}
    for stage, kind in (("pull_incremental", "pull"), ("release_incremental", "release")):
        best = min((run[kind] for run in runs), key=lambda measured: measured["seconds"])
        full = min(run[f"full_{kind}"]["seconds"] for run in runs)
        out[stage] = {
            "seconds": round(best["seconds"], 2),
            "full_seconds": round(full, 2),
            "vs_full": round(best["seconds"] / full, 3),
            "changed_tasks": runs[0]["changed_tasks"],
            "changed_fraction": CHANGED_FRACTION,
            "details": best["details"],
            "peak_rss_mb": max(run[kind]["peak_rss_mb"] for run in runs),
            "full_peak_rss_mb": max(run[f"full_{kind}"]["peak_rss_mb"] for run in runs),  # the memory target's peer
            "runs_seconds": [round(run[kind]["seconds"], 2) for run in runs],
            "full_runs_seconds": [round(run[f"full_{kind}"]["seconds"], 2) for run in runs],
            "identical_to_full": all(run["same_snapshot" if kind == "pull" else "same_data_files"] for run in runs),
            "load_per_round": [run["load"] for run in runs],
        }
    both = out["pull_incremental"]["seconds"] + out["release_incremental"]["seconds"]
    both_full = out["pull_incremental"]["full_seconds"] + out["release_incremental"]["full_seconds"]
    out["release_incremental"]["pull_and_release_vs_full"] = round(both / both_full, 3)
    return out


def settle(last_change: float) -> None:
    """Wait until the overlap has passed since the last change, so a pull's window holds no earlier change."""
    wait = OVERLAP_SECONDS + 2 - (time.monotonic() - last_change)
    if wait > 0:
        say(f"waiting {wait:.0f} s: more than the pull overlap ({OVERLAP_SECONDS} s) since the last change")
        time.sleep(wait)


def same_data_files(a: Path, b: Path) -> bool:
    """Two releases hold the same rows, byte for byte (parquet, DocBin, CoNLL; the manifests name their versions)."""
    names = [p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.suffix in (".parquet", ".spacy", ".conll")]
    return bool(names) and all((a / name).read_bytes() == (b / name).read_bytes() for name in names)


Measure = Callable[[int], dict[str, Any]]


def compare(stage: str, repeats: int, workbench: Measure, raw: dict[str, Measure]) -> dict[str, Any]:
    """Alternate the workbench and each raw variant `repeats` times; keep the fastest run of each side."""
    runs: dict[str, list[dict[str, Any]]] = {"workbench": [], **{name: [] for name in raw}}
    for r in range(repeats):
        for name, measure in [("workbench", workbench), *raw.items()]:
            run = measure(r)
            runs[name].append(run)
            say(f"{stage} {name} run {r + 1}/{repeats}: {run['seconds']:.1f} s, "
                f"{run['per_second']:,.0f} {UNITS[stage]}/s, peak RSS {run['peak_rss_mb']:.0f} MB")
    best = max(runs["workbench"], key=lambda run: run["per_second"])
    result = {
        "seconds": round(best["seconds"], 2),
        "cpu_seconds": round(best["cpu_seconds"], 2),
        "per_second": round(best["per_second"], 1),
        "raw_per_second": None,
        "ratio_vs_raw": None,
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs["workbench"]),
        "unit": UNITS[stage],
        "runs_per_second": [round(run["per_second"], 1) for run in runs["workbench"]],
    }
    if raw:
        name, raw_best = max(
            ((name, run) for name in raw for run in runs[name]), key=lambda item: item[1]["per_second"]
        )
        result |= {
            "raw_per_second": round(raw_best["per_second"], 1),
            "raw_cpu_seconds": round(raw_best["cpu_seconds"], 2),
            "ratio_vs_raw": round(best["per_second"] / raw_best["per_second"], 3),
            "raw_best": name,
            "raw_peak_rss_mb": max(run["peak_rss_mb"] for name in raw for run in runs[name]),
            "raw_runs_per_second": {name: [round(run["per_second"], 1) for run in runs[name]] for name in raw},
        }
    if best.get("details"):
        result["details"] = best["details"]
    if stage in ("preannotate", "release"):  # worker processes (spaCy's, the build's), apart from the process itself
        result["workers_peak_rss_mb"] = max(run["children_peak_rss_mb"] for run in runs["workbench"])
    return result


def table(result: dict[str, Any]) -> str:
    """The markdown table printed at the end."""
    lines = [
        f"{result['paragraphs']:,} paragraphs ({result['words']:,} words), best of {result['repeats']}; "
        f"Label Studio peak RSS {result['server_peak_rss_mb']:,.0f} MB",
        "",
        "| stage | seconds | workbench /s | raw /s | ratio | peak RSS MB (raw) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in result["stages"].items():
        if "vs_full" in s:
            continue
        raw = f"{s['raw_per_second']:,.0f}" if s["raw_per_second"] else "-"
        ratio = f"{s['ratio_vs_raw']:.2f}" if s["ratio_vs_raw"] else "-"
        memory = f"{s['peak_rss_mb']:,.0f}" + (f" ({s['raw_peak_rss_mb']:,.0f})" if s["raw_per_second"] else "")
        cells = [f"{name} ({s['unit']})", f"{s['seconds']:.1f}", f"{s['per_second']:,.0f}", raw, ratio, memory]
        lines.append("| " + " | ".join(cells) + " |")
    incremental = {name: s for name, s in result["stages"].items() if "vs_full" in s}
    if incremental:
        lines += ["", "| after 1% of the annotated tasks changed | seconds | full | vs full |", "|---|---:|---:|---:|"]
        for name, s in incremental.items():
            lines.append(f"| {name} | {s['seconds']:.2f} | {s['full_seconds']:.2f} | {s['vs_full']:.3f} |")
        both = incremental.get("release_incremental", {}).get("pull_and_release_vs_full")
        if both is not None:
            lines.append(f"| pull + release | | | {both:.3f} |")
    return "\n".join(lines)


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
