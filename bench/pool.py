"""A pool of a million paragraphs: what `push --next`, `status` and `preannotate` cost when the pool is large.

    BENCH_POOL_PARAGRAPHS=1000000 .venv/bin/python -m bench.pool      # ~15 min on 2 cores, most of it set-up

Builds a throw-away project whose seeds hold BENCH_POOL_PARAGRAPHS paragraphs (the bench corpus generator,
`corpus.generate`) and writes its pool through the workbench's own `PoolWriter`, as `preannotate` would: each
paragraph's entities are the names and dates the generator swapped in (found with its own word lists), its score a
deterministic draw, its model version the configured pipeline's, so `preannotate` finds every text pre-annotated.
Then each command, as a user runs it (`python -m workbench.cli`, so interpreter start and imports are timed too),
in a process of its own with its RSS sampled (`measure.command`), against the project's own Label Studio:

- `preannotate` reusing the unchanged pool, first with no seed index (it is built: every file read once), then
  with the index kept by that run;
- `push --next 1000` twice: into a new project, then with 1,000 tasks already there;
- `status`.

BENCH_POOL_ROOT=<folder> keeps the project there and reuses its seeds and pool on the next run (the set-up is
most of the time). Results: bench/results/pool-<N>.json, with the machine and the load before and after.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.corpus import POOLS, generate, swapped
from bench.measure import command, load_now, machine
from bench.run import REPO, make_project
from workbench import server
from workbench.articles import SeedIndex
from workbench.pipeline import pipeline_version, resolve
from workbench.preannotation.entities import LabelSet
from workbench.preannotation.pool import PoolWriter
from workbench.project import Project
from workbench.records import Prediction, Span

NEXT = 1000
LABELS = {"country": "GPE", "city": "GPE", "person": "PERSON", "weekday": "DATE", "month": "DATE"}
_KIND = {word: LABELS[kind] for kind, words in POOLS.items() for word in words.split()}


def main() -> int:
    paragraphs = int(os.environ.get("BENCH_POOL_PARAGRAPHS", "1000000"))
    for name in (server.ENV_URL, server.ENV_API_KEY):  # always our own server
        os.environ.pop(name, None)
    load_at_start = load_now()
    keep = os.environ.get("BENCH_POOL_ROOT")
    with tempfile.TemporaryDirectory(prefix="workbench-pool-") as tmp:
        root = Path(keep) if keep else Path(tmp) / "project"
        project = Project.open(root) if (root / "configs").is_dir() else make_project(root)
        setup = prepare(project, paragraphs)
        info = server.start(project)
        say(f"Label Studio {info.url} up in {info.seconds:.0f} s")
        try:
            stages = measure(str(root))
            sizes = {"pool_mb": mb(project.preannotations_file), "seed_index_mb": mb(project.seed_index_file),
                     "seeds_mb": round(sum(p.stat().st_size for p in project.seeds_dir.iterdir()) / 2**20, 1)}
            result = {"paragraphs": paragraphs, "articles": setup["articles"], "setup": setup, "sizes": sizes,
                      "machine": machine(server.status(project).version) | {"load_at_start": load_at_start,
                                                                             "load_at_end": load_now()},
                      "stages": stages}  # fmt: skip
        finally:
            server.stop(project)
    path = REPO / "bench" / "results" / f"pool-{paragraphs}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    return 0


def prepare(project: Project, paragraphs: int) -> dict[str, Any]:
    """The seeds and the pool, unless a kept project already holds them (untimed)."""
    began = time.monotonic()
    if not project.seeds_dir.is_dir() or not any(project.seeds_dir.glob("*.txt")):
        words = generate(REPO / "seeds", project.seeds_dir, paragraphs)
        say(f"corpus: {paragraphs:,} paragraphs, {words:,} words in {time.monotonic() - began:.0f} s")
    seeds = SeedIndex.open(project.seeds_dir)  # not kept: the first timed run builds the project's own
    if not project.preannotations_file.exists():
        write_pool(project, seeds)
        say(f"pool written: {project.preannotations_file} ({mb(project.preannotations_file)} MB)")
    return {"seconds": round(time.monotonic() - began, 1), "articles": len(seeds.doc_ids)}


def write_pool(project: Project, seeds: SeedIndex) -> None:
    """Every text's prediction through the workbench's PoolWriter: the generator's names and dates as entities."""
    config = project.config
    version = pipeline_version(resolve(config.model.name, project.root))
    label_set = LabelSet.of(config.labels, config.model.label_map).key
    rng = random.Random(13)
    project.state_dir.mkdir(parents=True, exist_ok=True)
    writer = PoolWriter(project.preannotations_file)
    seen: set[str] = set()
    try:
        for article in seeds.read_articles():
            for paragraph in article.paragraphs:
                if paragraph.text_key in seen:
                    continue
                seen.add(paragraph.text_key)
                spans = tuple(Span(m.start(), m.end(), _KIND[m.group(0)], m.group(0))
                              for m in swapped(paragraph.text) if m.group(0) in _KIND)  # fmt: skip
                writer.add(Prediction(paragraph.text_key, version, spans, round(rng.random(), 6)), label_set)
    finally:
        writer.close()


def measure(root: str) -> dict[str, Any]:
    """Each command as a user runs it (`python -m workbench.cli`, this checkout's code), in its own process."""
    config = Path(root) / "configs" / "workbench.toml"
    title = f'project_title = "pool bench {time.time_ns()}"'  # a new Label Studio project, whatever the server holds
    lines = [line for line in config.read_text(encoding="utf-8").splitlines() if not line.startswith("project_title")]
    at = lines.index("[labelstudio]") + 1 if "[labelstudio]" in lines else len(lines)
    if at == len(lines) and "[labelstudio]" not in lines:
        lines.append("[labelstudio]")
        at += 1
    config.write_text("\n".join([*lines[:at], title, *lines[at:]]) + "\n", encoding="utf-8")
    project = Project.open(root)
    project.seed_index_file.unlink(missing_ok=True)
    project.project_file.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_DATASETS_OFFLINE": "1"}
    workbench = [sys.executable, "-m", "workbench.cli", "-q", "-C", root]
    out = {}
    for name, args in (
        ("preannotate_cold_index", ["preannotate"]),
        ("preannotate", ["preannotate"]),
        ("push_next_new_project", ["push", "--next", str(NEXT)]),
        ("push_next", ["push", "--next", str(NEXT)]),
        ("status", ["status"]),
    ):
        out[name] = command([*workbench, *args], env=env) | {"load": load_now()["load_average"]}
        say(f"{name}: {out[name]['seconds']:.2f} s, CPU {out[name]['cpu_seconds']:.2f} s, peak RSS "
            f"{out[name]['peak_rss_mb']:.0f} MB")  # fmt: skip
    return out


def mb(path: Path) -> float:
    return round(path.stat().st_size / 2**20, 1) if path.exists() else 0.0


def table(result: dict[str, Any]) -> str:
    lines = [f"{result['paragraphs']:,} paragraphs in {result['articles']:,} articles; pool "
             f"{result['sizes']['pool_mb']} MB, seed index {result['sizes']['seed_index_mb']} MB", "",
             "| stage | seconds | CPU s | peak RSS MB |", "|---|---:|---:|---:|"]  # fmt: skip
    for name, s in result["stages"].items():
        lines.append(f"| {name} | {s['seconds']:.2f} | {s['cpu_seconds']:.2f} | {s['peak_rss_mb']:,.0f} |")
    return "\n".join(lines)


def say(message: str) -> None:
    print(f"bench.pool: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
