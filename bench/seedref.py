"""The seed articles' hand-checked reference (tests/data/reference/seeds.jsonl) as a second corpus for `bench.loop`.

`BENCH_CORPUS=reference`: the five news articles of `seeds/`, 66 paragraphs (the title lines included, which the
reference labels too), 471 entities of the workbench's own label set (`DEFAULT_LABELS`, OntoNotes names), so the
stock pipeline's labels are the project's and no `[model] label_map` is needed. The shapes are `bench.wnut`'s, so
every piece of the loop bench runs unchanged: a paragraph is a `Tweet` (its text, its gold spans), and each article
is cut into pseudo-articles of about `PART_SIZE` paragraphs (a harmless title line, "paragraphs 1-5", then the
paragraphs, one a line), so five articles give the release's splits, `push --next k`'s per-article share and the
review's projects more than five units to work with.

A paragraph's tokens are spaCy's (the blank English tokenizer), cut again at every gold span's edges (the
reference labels "Ankara" inside "Ankaras'"): `token_offsets` gives them, for the review's boundary plants and
the gold Docs. Held out: whole articles (all their parts), drawn with the seed, never a part of an article the
pool holds.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.wnut import Article, Span, Tweet

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "reference" / "seeds.jsonl"
PART_SIZE = 5
DOC_PREFIX = "ref-"
GUIDELINES = """# Entity types (the workbench's default label set)

See the repository's configs/guidelines.md: PERSON, NORP, ORG, GPE, LOC, FAC, PRODUCT, EVENT, LAW, DATE, as in
OntoNotes; names only, no titles or roles; a name glued to a suffix is labelled alone.
"""


@dataclass(frozen=True)
class Paragraph(Tweet):
    """A reference paragraph: `tokens` are spaCy's cut at span edges, `offsets` where each sits in `text`."""

    offsets: tuple[tuple[int, int], ...] = ()

    def token_offsets(self) -> list[tuple[int, int]]:
        return list(self.offsets)


def labels() -> tuple[str, ...]:
    from workbench.config.settings import DEFAULT_LABELS

    return tuple(DEFAULT_LABELS)


def read_articles(path: Path = REFERENCE) -> list[tuple[str, list[Paragraph]]]:
    """(the seed's doc_id, its paragraphs in order), per article, in file order."""
    import spacy

    tokenizer = spacy.blank("en").tokenizer
    articles: dict[str, list[Paragraph]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        record = json.loads(line)
        text = record["text"]
        spans = tuple(sorted(Span(s["start"], s["end"], s["label"], s["text"]) for s in record["spans"]))
        edges = {edge for s in spans for edge in (s.start, s.end)}
        offsets: list[tuple[int, int]] = []
        for token in tokenizer(text):
            start, end = token.idx, token.idx + len(token.text)
            cuts = sorted({start, end} | {e for e in edges if start < e < end})
            offsets += list(zip(cuts, cuts[1:], strict=False))
        tokens = tuple(text[a:b] for a, b in offsets)
        articles.setdefault(record["doc_id"], []).append(
            Paragraph(number, tokens, ("",) * len(tokens), text, spans, tuple(offsets)))
    return list(articles.items())


def group_articles(read: Sequence[tuple[str, Sequence[Paragraph]]], size: int = PART_SIZE) -> list[Article]:
    """Each article cut into parts of about `size` paragraphs (sizes differ by one at most), in order."""
    out = []
    for n, (seed_id, paragraphs) in enumerate(read):
        count = max(1, round(len(paragraphs) / size))
        bounds = [i * len(paragraphs) // count for i in range(count + 1)]
        for i in range(count):
            out.append(Article(f"{DOC_PREFIX}{n}-{i}-{seed_id[4:12]}",
                               f"paragraphs {bounds[i] + 1}-{bounds[i + 1]}",
                               tuple(paragraphs[bounds[i] : bounds[i + 1]])))  # fmt: skip
    return out


def source(article: Article) -> str:
    """The seed article a part comes from (its number in file order)."""
    return article.doc_id[len(DOC_PREFIX) :].split("-")[0]


def hold_out(articles: Sequence[Article], share: float, *, seed: int) -> tuple[list[Article], list[Article]]:
    """(pool, held out): `share` of the seed articles (at least one), drawn with `seed`, every part of each."""
    sources = sorted({source(a) for a in articles})
    held = set(random.Random(seed).sample(sources, max(1, round(len(sources) * share))))
    return [a for a in articles if source(a) not in held], [a for a in articles if source(a) in held]
