"""Does the order tweets are annotated in pay? Uncertainty, random and sequential order on WNUT-16, by the cheaper
path: no Label Studio round trip (the oracle would submit the gold anyway, `bench.loop`'s rounds show that it comes
back exact), the workbench's own code for everything else.

Each (ordering, seed) run starts from nothing labelled and takes `k` tweets of the pool a step:
- uncertainty: the workbench's `push --next` choice (`choose_next`: lowest score first, at most
  `[labelstudio] next_article_share` of k from one article), the scores made by the workbench's own confidence
  (`scored_docs`) with the model in use: the stock pipeline at first, then the one trained on the labels so far;
- random: a seeded draw; sequential: corpus order (its seeds differ in the training seed only).
After each step the labels so far train a model with the workbench's own `fit_model` (the stock pipeline's ner
fine-tuned through `[model] label_map`, a dev share held out by article from the labels used to choose the
checkpoint, `[train] seed` = the run's seed) and `evaluate` scores it on the held-out articles, never chosen from.

The share of random's final labels uncertainty needs to reach random's final F1 (means over seeds) is read off
the mean curves by linear interpolation between steps (None when it never gets there).
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from statistics import mean, pstdev
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from bench.wnut import LABELS, Article, Tweet
from workbench.model.data import hold_out_dev
from workbench.model.evaluation import evaluate
from workbench.model.training import fit_model
from workbench.preannotation.confidence import scored_docs
from workbench.preannotation.pool import choose_next
from workbench.project import Project
from workbench.records import Paragraph, text_key

ORDERINGS = ("uncertainty", "random", "sequential")
Place = tuple[int, int]  # (article's place in the pool, tweet's place in the article)


def gold_doc(nlp: Language, tweet: Tweet, doc_id: str) -> Doc:
    """The tweet as a Doc with its gold entities (WNUT's spans sit between spaces, so on token edges; a seed
    reference span inside a token, "Ankara" in "Ankaras'", gets the paragraph's own tokens, cut at span edges)."""
    doc = nlp.make_doc(tweet.text)
    ents = [doc.char_span(s.start, s.end, label=s.label) for s in tweet.spans]
    if any(ent is None for ent in ents):
        offsets = tweet.token_offsets()
        ends = [start for start, _ in offsets[1:]] + [len(tweet.text)]
        doc = Doc(nlp.vocab, words=[tweet.text[a:b] for a, b in offsets],
                  spaces=[after > end for (_, end), after in zip(offsets, ends, strict=True)])  # fmt: skip
        if doc.text != tweet.text:
            raise ValueError(f"the tokens do not make the text again: {tweet.text!r}")
        ents = [doc.char_span(s.start, s.end, label=s.label) for s in tweet.spans]
    if any(ent is None for ent in ents):
        raise ValueError(f"a gold span is off the tokens of {tweet.text!r}")
    doc.ents = ents
    doc.user_data["doc_id"] = doc_id
    return doc


def gold_docs(tweets: Sequence[Tweet], doc_ids: Sequence[str], labels: Sequence[str] = LABELS) -> list[Doc]:
    """Tweets as gold Docs on one blank vocab that knows every label of the corpus (WNUT's by default; a
    prediction's label must be in the gold's string store for spaCy's scorer to align it: FAC is no spaCy symbol)."""
    nlp = spacy.blank("en")
    for label in labels:
        nlp.vocab.strings.add(label)
    return [gold_doc(nlp, tweet, doc_id) for tweet, doc_id in zip(tweets, doc_ids, strict=True)]


def pick(name: str, seed: int, step: int, left: Sequence[Place], pool: Sequence[Article], k: int,
         model: Language | None, share: float) -> list[Place]:  # fmt: skip
    """The next k places of `left` in ordering `name`."""
    if name == "sequential":
        return list(left[:k])
    if name == "random":
        return random.Random(f"{seed}-{step}").sample(list(left), min(k, len(left)))
    assert model is not None
    texts = [pool[a].tweets[t].text for a, t in left]
    scores = {text_key(text): score for text, (_, score) in zip(texts, scored_docs(model, texts), strict=True)}
    paragraphs = [Paragraph(doc_id=pool[a].doc_id, index=t + 1, offset=0, title=pool[a].title, text=text, count=0,
                            key=f"{a}-{t}") for (a, t), text in zip(left, texts, strict=True)]  # fmt: skip
    by_key = {p.key: place for p, place in zip(paragraphs, left, strict=True)}
    return [by_key[p.key] for p in choose_next(paragraphs, scores, k, share)]


def run_ordering(name: str, seed: int, project: Project, pool: Sequence[Article], held: Sequence[Doc], k: int,
                 steps: int, base: str, say: Callable[[str], None] = print) -> list[dict[str, Any]]:  # fmt: skip
    """One run: `steps` steps of k tweets; after each, train on the labels so far and score on `held`."""
    config = project.config
    nlp = spacy.blank("en")
    places = [(a, t) for a, article in enumerate(pool) for t in range(len(article.tweets))]
    chosen: list[Place] = []
    model: Language | None = spacy.load(base) if name == "uncertainty" else None
    curve = []
    work = project.state_dir / f"ordering-{name}-{seed}"
    for step in range(steps):
        taken = set(chosen)
        left = [p for p in places if p not in taken]
        chosen += pick(name, seed, step, left, pool, k, model, config.labelstudio.next_article_share)
        docs = [gold_doc(nlp, pool[a].tweets[t], pool[a].doc_id) for a, t in chosen]
        fit, dev = hold_out_dev(docs, config.train.dev_fraction, config.train.seed)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        began = time.perf_counter()
        trained = fit_model(project, fit, dev, work)
        seconds = time.perf_counter() - began
        scores = evaluate(trained, held, config.labels, config.model.label_map)
        model = trained if name == "uncertainty" else None
        point = {"labels": len(chosen), "entities": sum(len(d.ents) for d in docs), "dev": len(dev),
                 "f1": scores.f1, "precision": scores.precision, "recall": scores.recall,
                 "train_seconds": round(seconds, 1)}  # fmt: skip
        curve.append(point)
        say(f"ordering {name} seed {seed}: {point['labels']} tweets ({point['entities']} entities) -> held-out F1 "
            f"{scores.f1} ({seconds:.0f} s training)")
    shutil.rmtree(work, ignore_errors=True)
    return curve


def summary(curves: Mapping[str, Mapping[int, Sequence[Mapping[str, Any]]]], start: float = 0.0) -> dict[str, Any]:
    """Mean and spread of F1 per step and ordering, and the share of random's final labels uncertainty needs to
    reach random's final mean F1; `start` is the F1 at 0 labels (the base pipeline's, which every run fine-tunes)."""
    out: dict[str, Any] = {}
    for name, runs in curves.items():
        series = list(runs.values())
        out[name] = [{"labels": points[0]["labels"], "f1_mean": round(mean(p["f1"] for p in points), 4),
                      "f1_sd": round(pstdev(p["f1"] for p in points), 4),
                      "entities_mean": round(mean(p["entities"] for p in points), 1)}
                     for points in zip(*series, strict=True)]  # fmt: skip
    reach = None
    if "random" in out and "uncertainty" in out:
        target = out["random"][-1]["f1_mean"]
        labels = out["random"][-1]["labels"]
        reach = {"random_final_f1": target, "random_final_labels": labels,
                 "uncertainty_labels_to_reach": labels_to_reach(out["uncertainty"], target, start)}  # fmt: skip
        needed = reach["uncertainty_labels_to_reach"]
        reach["share_of_random_labels"] = None if needed is None else round(needed / labels, 3)
    return {"mean_curves": out, "uncertainty_vs_random": reach}


def labels_to_reach(curve: Sequence[Mapping[str, Any]], target: float, start: float = 0.0) -> float | None:
    """The labels at which a mean curve first reaches `target` F1, interpolated between steps (from 0 labels at
    F1 `start` before the first step); None if it never does."""
    before = (0.0, start)
    if start >= target:
        return 0.0
    for point in curve:
        here = (float(point["labels"]), float(point["f1_mean"]))
        if here[1] >= target:
            if here[1] == before[1]:
                return here[0]
            return round(before[0] + (target - before[1]) * (here[0] - before[0]) / (here[1] - before[1]), 1)
        before = here
    return None


def run_all(project_for: Callable[[int], Project], pool: Sequence[Article], held: Sequence[Doc], *, k: int,
            steps: int, seeds: Sequence[int], base: str,
            say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:  # fmt: skip
    """Every ordering with every seed; `project_for(seed)` is a workbench project whose [train] seed is `seed`."""
    began = time.perf_counter()
    base_f1 = evaluate(spacy.load(base), held, project_for(seeds[0]).config.labels,
                       project_for(seeds[0]).config.model.label_map).f1  # fmt: skip
    curves: dict[str, dict[int, list[dict[str, Any]]]] = {name: {} for name in ORDERINGS}
    for seed in seeds:
        project = project_for(seed)
        for name in ORDERINGS:
            curves[name][seed] = run_ordering(name, seed, project, pool, held, k, steps, base, say)
    return {"k": k, "steps": steps, "seeds": list(seeds), "held_out_tweets": len(held), "base_f1": base_f1,
            "runs": curves, **summary(curves, base_f1), "seconds": round(time.perf_counter() - began, 1)}  # fmt: skip
