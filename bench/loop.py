"""Does the loop pay on real annotations? WNUT-16 tweets through the workbench's own commands, an oracle annotating.

    .venv/bin/python -m bench.loop                 # the full run (~40 min on 2 busy cores; bench/README.md)
    BENCH_QUICK=1 .venv/bin/python -m bench.loop   # 15 articles (~300 tweets), the same pieces in minutes

The corpus (`bench.wnut`) becomes a real workbench project in a temporary folder (`bench.loopkit`): seeds/
(articles of ~20 tweets), configs/workbench.toml with the ten WNUT labels and `[model] label_map` from the stock
pipeline's labels. A share of the articles is held out: never in seeds/, so never pushed, annotated or chosen
from; every model is scored on it from gold. The bench starts its own Label Studio with `workbench server start`,
drives the workbench only through its CLI (as a user, in subprocesses; the worktree's code first on PYTHONPATH),
annotates with the oracle through the API (`bench.oracle`), and stops the server at the end.

1. Retraining rounds, through the workbench's own commands, uncertainty order: round 0 the stock pipeline
   pre-annotates the pool; each round `push --next k`, the oracle annotates, `pull`, `report --json`, `release
   0.<r+1>.0`, `train`, and (but after the last round) `preannotate --model` the new model: the guard decides, and
   its decision is recorded; a refused model leaves the pool's predictions as they were. Per round: the served
   batch's pre-annotations against gold and their corrections per task (as `report` counts them; the report's own
   figures are kept and checked), the stock pipeline's on the same tweets, and the trained model's F1 on the
   release's test split and on the held-out articles, with the training time.
2. Orderings (`bench.orderings`): uncertainty, random and sequential, a few seeds each, by the cheaper path (the
   workbench's own selection, training and scoring code in this process, no Label Studio round trip).
3. Review on real annotations (`bench.review_real`): planted and clean copies of the gold of the first
   BENCH_REVIEW_ARTICLES articles, each its own project on the same server, loaded by the oracle, pulled,
   `workbench review --json`; then `release` + `train` and review again, so the model reason runs too
   (BENCH_REVIEW_MODEL=0 skips it); then the planted copy once more per BENCH_REVIEW_VARIANTS ([review] settings,
   "key=value,key=value;...").

Writes bench/results/loop-wnut16.json (loop-wnut16-quick.json for the quick variant) with the machine and the
load before and after, a plot beside it (`bench.loop_plot`), review-wnut16-unplanted.json and
review-wnut16-planted-items.json. BENCH_CORPUS=reference runs the same on the seed articles' hand-checked reference
(`bench.seedref`: 5 news articles cut into parts of ~5 paragraphs, one article held out, k = 10) and writes
loop-reference.json, its plot and review-reference-*.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench import loop_plot, orderings, review_real, seedref, wnut
from bench.loopkit import (
    CORPUS,
    RESULTS,
    STOCK,
    CommandFailed,
    LoopRun,
    Settings,
    Uncertainty,
    Workbench,
    config_text,
    credentials,
    make_project,
    prf_line,
    run_round,
    say,
    score_mapped_pipeline,
    use_corpus,
)  # fmt: skip
from bench.measure import load_now, machine
from bench.oracle import Oracle
from bench.wnut import Article, Gold

# ---- retraining rounds ----------------------------------------------------------------------------------------


def retraining_rounds(run: LoopRun, settings: Settings, held: Sequence[Any]) -> None:
    """Round 0 with the stock pipeline, then `settings.rounds` rounds each served by the model the guard let in
    (or the one in use still). After each round: release, train, score on `held`, and offer the model to the guard
    (`preannotate --model`) for the next round."""
    strategy = Uncertainty()
    for number in range(settings.rounds + 1):
        k = (settings.first_batch or settings.batch) if number == 0 else settings.batch
        record = run_round(run, strategy, k, number=number, preannotate=number == 0)
        say(f"round {number}: {record['served_tweets']} tweets served by {', '.join(record['model_versions_shown'])}: "
            f"{prf_line(record['preannotation_vs_gold'])}; corrections per task {record['corrections']['per_task']}"
            f" (the stock pipeline on the same tweets: {record['stock_same_tweets']['corrections']['per_task']})")
        version = f"0.{number + 1}.0"
        run.wb("release", version)
        before = run.wb.seconds.get("train", 0.0)
        run.wb("train", version)
        trained = next(m for m in run.wb.json("models") if m["release"] == version)
        record["trained"] = {**trained, "train_seconds": round(run.wb.seconds["train"] - before, 1),
                             "held_out": held_out_scores(trained["path"], held)}  # fmt: skip
        say(f"round {number}: trained {trained['model_version']} in {record['trained']['train_seconds']} s: release "
            f"test F1 {trained['f1']} ({trained['replaces']}: {trained['replaces_f1']}), held-out F1 "
            f"{record['trained']['held_out']['f1']}")
        if number < settings.rounds:
            record["guard"] = offer(run.wb, trained["path"])
            say(f"round {number}: the guard {record['guard']['decision']} {trained['model_version']}")


def offer(wb: Workbench, model: str) -> dict[str, Any]:
    """`preannotate --model`: the guard deploys the model or refuses it (exit 16); what it decided and said."""
    try:
        wb("preannotate", "--model", model)
    except CommandFailed as exc:
        if exc.code != 16:
            raise
        return {"decision": "refused", "said": exc.output[-1500:]}
    record = json.loads((wb.root / ".workbench" / "model.json").read_text(encoding="utf-8"))
    return {"decision": "deployed", "said": record.get("verdict"), "forced": record.get("forced")}


def held_out_scores(model: str, held: Sequence[Any]) -> dict[str, Any]:
    """The model's F1 on the held-out articles (spaCy's scorer through the label map, as `train` scores)."""
    import spacy

    from workbench.model.evaluation import evaluate

    scores = evaluate(spacy.load(model), held, CORPUS["labels"], CORPUS["label_map"])
    return {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1}


def goal_corrections(rounds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Retrained pre-annotations against the stock pipeline's on the same tweets, per round: the cut in corrections
    per task (goal: at least 30% by round 4)."""
    out = []
    for r in rounds:
        ours, stock = r["corrections"]["per_task"], r["stock_same_tweets"]["corrections"]["per_task"]
        cut = None if not stock or ours is None else round(1 - ours / stock, 3)
        out.append({"round": r["round"], "served_by": r["model_versions_shown"], "corrections_per_task": ours,
                    "stock_corrections_per_task": stock, "cut": cut})  # fmt: skip
    last = out[-1] if out else None
    return {"per_round": out, "last_round": last, "met": bool(last and last["cut"] is not None and last["cut"] >= 0.3)}


# ---- review on real annotations -------------------------------------------------------------------------------


def review_measurement(root: Path, articles: Sequence[Article], settings: Settings,
                       env: Mapping[str, str]) -> dict[str, Any]:  # fmt: skip
    """Plant mistakes in a copy of the gold; load the planted and the clean copy into two projects through the
    oracle and pull; `workbench review --json` each (then, with `review_model`, `release` + `train` and review
    again, so the model reason runs); score the planted one's items against the plants. Each of
    `review_variants` ([review] settings) reviews the planted copy once more."""
    planted, plants = review_real.plant(articles, settings.plant_share, seed=settings.seed)
    clean = Gold(articles)
    copies = {"planted": lambda d, t: None if (d, t) in clean.titles else planted[(d, t)], "clean": clean.spans}
    projects = {name: load_copy(root / f"review-{name}", articles, gold_of, name, settings, env)
                for name, gold_of in copies.items()}  # fmt: skip
    variants: dict[str, dict[str, Any]] = {name: {"cheap_reasons": wb.json("review")} for name, wb in projects.items()}
    models: dict[str, Any] = {}
    if settings.review_model:
        for name, wb in projects.items():
            wb("release", "0.1.0")
            wb("train", "0.1.0")
            models[name] = wb.json("models")
            variants[name]["with_model_reason"] = wb.json("review")
    for variant in settings.review_variants:
        overrides = dict(pair.split("=", 1) for pair in variant.split(","))
        wb = projects["planted"]
        (wb.root / "configs" / "workbench.toml").write_text(
            config_text(f"{CORPUS['title']} review planted", settings, review=overrides), encoding="utf-8")
        variants["planted"][variant] = wb.json("review")
    out: dict[str, Any] = {
        "tweets": sum(len(a.tweets) for a in articles),
        "entities": sum(len(t.spans) for a in articles for t in a.tweets),
        "plants": len(plants),
        "plant_share": settings.plant_share,
        "seed": settings.seed,
        "reach": review_real.reach(planted, plants, min_mentions=REVIEW_MIN_MENTIONS),
        "trained_models": models,
    }
    clean_items = {variant: result["items"] for variant, result in variants["clean"].items()}
    items: dict[str, list[dict[str, Any]]] = {}  # the planted copy's items per variant, kept apart (ITEMS file)
    for name, results in variants.items():
        out[name] = {}
        for variant, result in results.items():
            entry = {"settings": variant, "by_reason": result["by_reason"], "open": result["open"],
                     "model": result.get("model"), "note": result.get("note")}  # fmt: skip
            if name == "planted":
                reasons = [r for r, n in result["by_reason"].items() if n is not None]
                entry["against_plants"] = review_real.score_review(result["items"], plants, reasons)
                if "model" in reasons:
                    entry["confidence_sweep"] = review_real.confidence_sweep(result["items"], plants)
                if variant in clean_items:
                    entry["new_items"] = review_real.new_items(result["items"], clean_items[variant], plants)
                items[variant] = review_real.compact(result["items"], plants)
            out[name][variant] = entry
        out[name]["loading"] = {"seconds": {k: round(v, 1) for k, v in projects[name].seconds.items()}}
    tweets = {(a.doc_id, i + 1): t.text for a in articles for i, t in enumerate(a.tweets)}
    shown = variants["clean"].get("with_model_reason") or variants["clean"]["cheap_reasons"]
    out["unplanted_top20"] = review_real.unplanted_items(shown["items"], tweets, 20)
    out["plants_list"] = [review_real.plant_record(p) for p in plants]
    out["planted_items"] = items
    return out


# `workbench review`'s default [review] min_mentions (the config here leaves it as it is)
REVIEW_MIN_MENTIONS = 3


def load_copy(root: Path, articles: Sequence[Article], gold_of: Any, name: str, settings: Settings,
              env: Mapping[str, str]) -> Workbench:  # fmt: skip
    """A project of every article, pushed, each tweet answered by the oracle from `gold_of`, pulled."""
    wb = make_project(root, articles, f"{CORPUS['title']} review {name}", settings, env=env)
    wb("preannotate")
    wb("push")
    oracle = Oracle.connect(env["LABEL_STUDIO_URL"], env["LABEL_STUDIO_API_KEY"], gold_of,
                            workers=settings.oracle_workers)  # fmt: skip
    began = time.perf_counter()
    oracle.annotate(wb.project_id())
    wb.seconds["oracle"] = time.perf_counter() - began
    wb("pull")
    return wb


# ---- the run --------------------------------------------------------------------------------------------------


def corpus(settings: Settings) -> tuple[list[Article], list[Article], list[Article]]:
    """(every article used, the pool, the held-out articles): WNUT-16's, or with `corpus = "reference"` the seed
    reference's parts (`bench.seedref`, held out by seed article)."""
    if settings.corpus == "reference":
        articles = seedref.group_articles(seedref.read_articles())[: settings.articles]
        pool, held = seedref.hold_out(articles, settings.held_out, seed=settings.seed)
        return articles, pool, held
    articles = wnut.group_articles(wnut.read_tweets())[: settings.articles]
    pool, held = wnut.hold_out(articles, settings.held_out, seed=settings.seed)
    return articles, pool, held


def held_docs(held: Sequence[Article]) -> list[Any]:
    """The held-out tweets as gold Docs (on a vocab that knows every label of the corpus, so a model's predictions of a
    label the held-out gold lacks still align)."""
    return orderings.gold_docs([t for a in held for t in a.tweets], [a.doc_id for a in held for _ in a.tweets],
                               CORPUS["labels"])  # fmt: skip


def project_with_seed(root: Path, settings: Settings) -> Callable[[int], Any]:
    """A project folder (config only) whose [train] seed is the one asked for, opened as the workbench opens it."""
    from workbench import workflow

    steps = dataclasses.replace(settings, train_steps=settings.order_train_steps)

    def make(seed: int) -> Any:
        folder = root / f"orderings-{seed}"
        (folder / "configs").mkdir(parents=True, exist_ok=True)
        text = config_text(f"{CORPUS['title']} orderings", steps, seed=seed)
        (folder / "configs" / "workbench.toml").write_text(text, encoding="utf-8")
        return workflow.open_project(folder)

    return make


def main() -> int:
    settings = Settings.from_env()
    use_corpus(settings.corpus)
    for name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"):  # always our own server, whatever the shell says
        os.environ.pop(name, None)
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    began, load_before = time.perf_counter(), load_now()
    articles, pool, held = corpus(settings)
    say(f"{sum(len(a.tweets) for a in articles)} tweets in {len(articles)} articles: pool {len(pool)}, held out "
        f"{len(held)}")
    result: dict[str, Any] = {"settings": settings.__dict__, "corpus": wnut.counts([t for a in articles for t in
                              a.tweets]), "label_map": CORPUS["label_map"], "corpus_name": settings.corpus}  # fmt: skip
    docs = held_docs(held)
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix=f"{settings.corpus}-loop-") as tmp:
        wb = make_project(Path(tmp) / "loop", pool, f"{CORPUS['title']} loop", settings)
        wb("server", "start")
        try:
            url, key = credentials(wb.root)
            wb.env.update(LABEL_STUDIO_URL=url, LABEL_STUDIO_API_KEY=key)
            result["machine"] = machine(json.loads(wb("server", "status", "--json")).get("version"))
            gold = Gold(pool)
            run = LoopRun(wb, pool, gold, Oracle.connect(url, key, gold.spans, workers=settings.oracle_workers))
            held_tweets = [t for a in held for t in a.tweets]
            stock_held = score_mapped_pipeline(STOCK, held_tweets)
            result["held_out"] = {"articles": len(held), "tweets": len(held_tweets),
                                  "stock_through_label_map": stock_held}  # fmt: skip
            say(f"held out: the stock pipeline through the label map {prf_line(stock_held)}")
            started = time.perf_counter()
            if "rounds" in settings.parts:
                retraining_rounds(run, settings, docs)
                seconds["rounds"] = time.perf_counter() - started
                result["rounds"] = run.rounds
                result["goal_corrections"] = goal_corrections(run.rounds)
                result["loop_seconds"] = {k: round(v, 1) for k, v in wb.seconds.items()}
                say("corrections: " + json.dumps(result["goal_corrections"]["last_round"]))
            started = time.perf_counter()
            if "orderings" in settings.parts:
                result["orderings"] = orderings.run_all(
                    project_with_seed(Path(tmp), settings), pool, docs, k=settings.order_k,
                    steps=settings.order_steps, seeds=settings.order_seeds, base=STOCK, say=say)  # fmt: skip
                seconds["orderings"] = time.perf_counter() - started
                say("orderings: " + json.dumps(result["orderings"]["uncertainty_vs_random"]))
            started = time.perf_counter()
            if "review" in settings.parts:
                review = review_measurement(Path(tmp), articles[: settings.review_articles], settings, wb.env)
                seconds["review"] = time.perf_counter() - started
                result["review"] = {k: v for k, v in review.items() if k not in ("unplanted_top20", "planted_items")}
                say("review: " + json.dumps({k: review["planted"][k]["against_plants"]["overall"]
                                             for k in review["planted"] if "against_plants" in review["planted"][k]}))
        finally:
            wb("server", "stop")
    result["load_before"], result["load_after"] = load_before, load_now()
    result["parts_seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    result["seconds"] = round(time.perf_counter() - began, 1)
    write_results(result, review if "review" in settings.parts else None, settings)
    say(f"done in {result['seconds']:.0f} s")
    return 0


def write_results(result: Mapping[str, Any], review: Mapping[str, Any] | None, settings: Settings) -> None:
    suffix = f"-{settings.name}" if settings.name else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"loop-{settings.corpus}{suffix}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    loop_plot.draw(result, RESULTS / f"loop-{settings.corpus}{suffix}.png")
    if review is None:
        return
    unplanted = {"note": "The first 20 items `workbench review` raises on the gold itself (nothing planted), "
                 "in review's own order, for a human to judge.", "settings": settings.__dict__,
                 "items": review["unplanted_top20"]}  # fmt: skip
    (RESULTS / f"review-{settings.corpus}-unplanted{suffix}.json").write_text(json.dumps(unplanted, indent=2) + "\n",
                                                                    encoding="utf-8")  # fmt: skip
    planted_items = {"note": "Every item `workbench review` raised on the planted copy, per [review] settings, with "
                     "the kind of plant it points at (null: none).", "items": review["planted_items"]}  # fmt: skip
    (RESULTS / f"review-{settings.corpus}-planted-items{suffix}.json").write_text(
        json.dumps(planted_items, indent=1) + "\n", encoding="utf-8")  # fmt: skip


if __name__ == "__main__":
    import sys

    sys.exit(main())
