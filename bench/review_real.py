"""Review on real annotations: plant the mistakes annotators make in a copy of the WNUT-16 gold, and score what
`workbench review` finds against the plants.

Planted, in `share` of the gold entities (one per tweet, drawn with a fixed seed, the kinds dealt in turn):
- `relabelled`: the mention keeps its place and gets the label it is most easily confused with (person <->
  musicartist, company <-> product, geo-loc <-> facility, sportsteam -> company, tvshow <-> movie, other -> product;
  on the seed reference GPE <-> LOC, NORP -> GPE, ORG -> GPE, FAC / PRODUCT / PERSON / LAW -> ORG, EVENT <-> DATE);
- `left_out`: the mention is not marked at all;
- `boundary`: one edge is off by one token: the span takes in the next (or previous) token, or drops its last (or
  first) one, whichever the tweet allows (a token taken in belongs to no other entity).

A review item points at a plant when it is in the plant's tweet and its characters overlap the planted span or the
gold span it replaced. Precision of a reason = its items that point at a plant / its items; recall = plants some
item of that reason points at / plants. The items on the gold itself (nothing planted) are WNUT's own
inconsistencies or review's false alarms: a human has to look (`unplanted` keeps them for that).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.wnut import Article, Span, Tweet

KINDS = ("relabelled", "left_out", "boundary")
CONFUSED_WITH = {"person": "musicartist", "musicartist": "person", "company": "product", "product": "company",
                 "geo-loc": "facility", "facility": "geo-loc", "sportsteam": "company", "tvshow": "movie",
                 "movie": "tvshow", "other": "product",
                 # the seed reference's (OntoNotes) labels: the pairs its guidelines discuss
                 "GPE": "LOC", "LOC": "GPE", "NORP": "GPE", "ORG": "GPE", "PERSON": "ORG", "FAC": "ORG",
                 "PRODUCT": "ORG", "EVENT": "DATE", "LAW": "ORG", "DATE": "EVENT"}  # fmt: skip


@dataclass(frozen=True)
class Plant:
    """One planted mistake: where, what the gold had, and what the copy holds instead (None: left out)."""

    kind: str
    doc_id: str
    paragraph: int  # the tweet's paragraph in its seed file (the title is 0)
    text: str
    gold: Span
    planted: Span | None

    def covers(self) -> list[tuple[int, int]]:
        return [(self.gold.start, self.gold.end)] + ([(self.planted.start, self.planted.end)] if self.planted else [])


def plant(articles: Sequence[Article], share: float, *, seed: int) -> tuple[dict[tuple[str, str], tuple[Span, ...]],
                                                                             list[Plant]]:  # fmt: skip
    """A copy of the gold with `share` of its entities made wrong: (spans by (doc_id, text), the plants)."""
    places = [(article, i, tweet) for article in articles for i, tweet in enumerate(article.tweets)]
    entities = [(article, i, tweet, span) for article, i, tweet in places for span in tweet.spans]
    wanted = round(len(entities) * share)
    rng = random.Random(seed)
    order = rng.sample(entities, len(entities))
    copy = {(article.doc_id, tweet.text): list(tweet.spans) for article, _, tweet in places}
    plants: list[Plant] = []
    used_tweets: set[tuple[str, int]] = set()
    for article, i, tweet, span in order:
        if len(plants) == wanted:
            break
        if (article.doc_id, i) in used_tweets:
            continue
        kind = KINDS[len(plants) % len(KINDS)]
        changed = _mistake(kind, tweet, span, rng)
        if changed is None and kind == "boundary":  # no token to take in or drop: another kind for this one
            kind, changed = "relabelled", _mistake("relabelled", tweet, span, rng)
        spans = copy[(article.doc_id, tweet.text)]
        spans.remove(span)
        if changed is not None:
            spans.append(changed)
        used_tweets.add((article.doc_id, i))
        plants.append(Plant(kind, article.doc_id, i + 1, tweet.text, span, changed))
    return {place: tuple(sorted(spans)) for place, spans in copy.items()}, plants


def _mistake(kind: str, tweet: Tweet, span: Span, rng: random.Random) -> Span | None:
    if kind == "relabelled":
        return Span(span.start, span.end, CONFUSED_WITH[span.label], span.text)
    if kind == "left_out":
        return None
    offsets = tweet.token_offsets()
    first = next(n for n, (start, _) in enumerate(offsets) if start == span.start)
    last = next(n for n, (_, end) in enumerate(offsets) if end == span.end)
    taken = {n for other in tweet.spans if other != span
             for n, (start, end) in enumerate(offsets) if start < other.end and other.start < end}  # fmt: skip
    options = []
    if last + 1 < len(offsets) and last + 1 not in taken:
        options.append((first, last + 1))
    if first > 0 and first - 1 not in taken:
        options.append((first - 1, last))
    if last > first:
        options += [(first, last - 1), (first + 1, last)]
    if not options:
        return None
    a, b = rng.choice(options)
    start, end = offsets[a][0], offsets[b][1]
    return Span(start, end, span.label, tweet.text[start:end])


def score_review(items: Sequence[Mapping[str, Any]], plants: Sequence[Plant], reasons: Iterable[str]) -> dict[str, Any]:
    """Precision and recall of the review's items against the plants, per reason, per kind of plant, overall."""
    by_place: dict[tuple[str, int], list[int]] = {}
    for n, p in enumerate(plants):
        by_place.setdefault((p.doc_id, p.paragraph), []).append(n)

    def hits(item: Mapping[str, Any]) -> set[int]:
        found = set()
        for n in by_place.get((str(item["doc_id"]), int(item["paragraph"])), []):
            if any(int(item["start"]) < end and start < int(item["end"]) for start, end in plants[n].covers()):
                found.add(n)
        return found

    found_by = [hits(item) for item in items]
    per_reason = {}
    for reason in reasons:
        mine = [f for item, f in zip(items, found_by, strict=True) if item["reason"] == reason]
        per_reason[reason] = _pr(len(mine), sum(1 for f in mine if f), set().union(*mine) if mine else set(),
                                 len(plants))  # fmt: skip
    everything = set().union(*found_by) if found_by else set()
    per_kind = {kind: {"planted": sum(p.kind == kind for p in plants),
                       "found": sum(1 for n in everything if plants[n].kind == kind)} for kind in KINDS}  # fmt: skip
    for counts in per_kind.values():
        counts["recall"] = round(counts["found"] / counts["planted"], 4) if counts["planted"] else None
    return {
        "overall": _pr(len(items), sum(1 for f in found_by if f), everything, len(plants)),
        "per_reason": per_reason,
        "per_kind": per_kind,
    }


def _pr(items: int, right: int, found: set[int], planted: int) -> dict[str, Any]:
    return {
        "items": items,
        "items_at_a_plant": right,
        "precision": round(right / items, 4) if items else None,
        "plants_found": len(found),
        "recall": round(len(found) / planted, 4) if planted else None,
    }


def plant_record(p: Plant) -> dict[str, Any]:
    return {**asdict(p), "gold": asdict(p.gold), "planted": asdict(p.planted) if p.planted else None}


def unplanted_items(items: Sequence[Mapping[str, Any]], tweets: Mapping[tuple[str, int], str],
                    top: int) -> list[dict[str, Any]]:  # fmt: skip
    """The first `top` items (review's own order) that review raises on the gold itself, with the tweet, for a
    human to say whether WNUT's annotation is wrong there."""
    keep = ("reason", "score", "doc_id", "paragraph", "start", "end", "text", "label", "suggestion", "detail")
    return [{**{k: item[k] for k in keep}, "tweet": tweets.get((str(item["doc_id"]), int(item["paragraph"])), "")}
            for item in items[:top]]  # fmt: skip


def reach(copy: Mapping[tuple[str, str], Sequence[Span]], plants: Sequence[Plant], *,
          min_mentions: int) -> dict[str, Any]:  # fmt: skip
    """How many relabelled and left-out plants the surface-form reasons (label, missing) can reach at all: those
    whose string is annotated at least `min_mentions` times in the planted copy (review's threshold; it groups
    mentions by their exact string)."""
    mentions: dict[str, int] = {}
    for spans in copy.values():
        for span in spans:
            mentions[span.text] = mentions.get(span.text, 0) + 1
    out = {}
    for kind in ("relabelled", "left_out"):
        mine = [p for p in plants if p.kind == kind]
        enough = sum(mentions.get(p.gold.text, 0) >= min_mentions for p in mine)
        out[kind] = {"planted": len(mine), "string_annotated_enough": enough}
    out["min_mentions"] = min_mentions
    once = sum(n == 1 for n in mentions.values())
    out["strings_annotated_once"] = round(once / len(mentions), 4) if mentions else None
    return out


def new_items(planted: Sequence[Mapping[str, Any]], clean: Sequence[Mapping[str, Any]],
              plants: Sequence[Plant]) -> dict[str, Any]:  # fmt: skip
    """The items raised on the planted copy and not at the same place (reason, tweet, characters) on the clean one:
    what the plants added, and how many of those point at a plant."""
    def place(item: Mapping[str, Any]) -> tuple:
        return item["reason"], str(item["doc_id"]), int(item["paragraph"]), int(item["start"]), int(item["end"])

    seen = {place(item) for item in clean}
    new = [item for item in planted if place(item) not in seen]
    scored = score_review(new, plants, sorted({item["reason"] for item in new}))
    return {"items": len(new), "by_reason": {r: s["items"] for r, s in scored["per_reason"].items()},
            "precision": scored["overall"]["precision"], "plants_found": scored["overall"]["plants_found"]}  # fmt: skip


def confidence_sweep(items: Sequence[Mapping[str, Any]], plants: Sequence[Plant],
                     thresholds: Sequence[float] = (0.8, 0.9, 0.95, 0.99, 0.999)) -> list[dict[str, Any]]:  # fmt: skip
    """Precision and recall against the plants had `[review] confidence` been each threshold: the model items
    scored below it left out (an item's score is the model's probability, so this is what review would raise),
    the other reasons' items kept."""
    out = []
    for threshold in thresholds:
        kept = [item for item in items if item["reason"] != "model" or float(item["score"]) >= threshold]
        scored = score_review(kept, plants, ["model"])
        model_items = scored["per_reason"]["model"]["items"]
        out.append({"confidence": threshold, **scored["overall"], "model_items": model_items})
    return out


def compact(items: Sequence[Mapping[str, Any]], plants: Sequence[Plant]) -> list[dict[str, Any]]:
    """The items as kept in the results: where, what, and the kind of plant each points at (None: none)."""
    keep = ("reason", "score", "doc_id", "paragraph", "start", "end", "text", "label", "suggestion")
    out = []
    for item in items:
        hit = [p.kind for p in plants if (p.doc_id, p.paragraph) == (str(item["doc_id"]), int(item["paragraph"]))
               and any(int(item["start"]) < end and start < int(item["end"]) for start, end in p.covers())]
        out.append({**{k: item.get(k) for k in keep}, "plant": hit[0] if hit else None})
    return out
