"""A benchmark corpus of any size, scaled from the seed articles, with no two paragraphs alike.

Each generated article is a seed article with its countries, cities, people, weekdays, months and numbers
swapped for others (the same swap throughout one article, as a real article would be); a paragraph that still
repeats one already written gets one more sentence of the same kind. The output is deterministic.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.articles import read_corpus

POOLS = {
    "country": "Turkey Ukraine Russia Syria Armenia Libya Greece Poland Romania Georgia Azerbaijan Moldova Bulgaria "
    "Finland Hungary Serbia Egypt Iraq Jordan Lebanon Cyprus Albania Estonia Latvia Lithuania Kazakhstan",
    "city": "Moscow Ankara Washington Kyiv Kiev Brussels Idlib Istanbul Paris Berlin Warsaw Athens Bucharest "
    "Tbilisi Baku Vienna Sofia Helsinki Budapest Belgrade Cairo Baghdad Amman Beirut Nicosia Tirana Riga",
    "person": "Zelensky Putin Erdogan Austin Akar Sullivan Pompeo Cavusoglu Trump Blinken Lavrov Macron Scholz "
    "Duda Mitsotakis Iohannis Aliyev Sandu Orban Vucic Sisi Stoltenberg Borrell Kuleba Shoigu Kalın",
    "weekday": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
    "month": "January February March April May June July August September October November December",
}
EXTRA = (
    "{person} told reporters in {city} on {weekday} that {number} officials had taken part.",
    "Talks between {country} and {country} are expected to resume in {month}, according to {person}.",
    "The statement was published in {city} on {weekday}, {month} {day}.",
    "{person} is due to visit {country} in {month} with a delegation of {number}.",
)
_SWAPPABLE = {word: kind for kind, words in POOLS.items() for word in words.split()}
_WORD = re.compile(r"\b(" + "|".join(sorted(_SWAPPABLE, key=len, reverse=True)) + r")\b|\d+")


def generate(seeds: Path, out: Path, paragraphs: int, *, seed: int = 13) -> int:
    """Write articles to `out` holding exactly `paragraphs` unique paragraphs in all; return the word count."""
    sources = [[p.text for p in article.paragraphs] for article in read_corpus(seeds).articles]
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    seen: set[str] = set()
    written = words = 0
    copy = 0
    while written < paragraphs:
        lines = _vary(sources[copy % len(sources)], rng, seen)[: paragraphs - written]
        (out / f"{copy:06d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        written += len(lines)
        words += sum(len(line.split()) for line in lines)
        copy += 1
    return words


def swapped(text: str) -> Iterator[re.Match[str]]:
    """Where the names and numbers the generator swaps stand in `text`."""
    return _WORD.finditer(text)


def _vary(lines: list[str], rng: random.Random, seen: set[str]) -> list[str]:
    """One article's lines with one consistent swap of names and numbers; every line new to `seen`."""
    swap = {word: rng.choice(POOLS[kind].split()) for word, kind in _SWAPPABLE.items()}

    def replace(match: re.Match[str]) -> str:
        word = match.group(0)
        return swap[word] if word in swap else str(rng.randrange(10 ** (len(word) - 1), 10 ** len(word)))

    out = []
    for line in lines:
        text = _WORD.sub(replace, line)
        while text in seen:
            text += " " + _sentence(rng)
        seen.add(text)
        out.append(text)
    return out


def _sentence(rng: random.Random) -> str:
    fields = {kind: rng.choice(words.split()) for kind, words in POOLS.items()}
    return rng.choice(EXTRA).format(**fields, number=rng.randrange(2, 400), day=rng.randrange(1, 29))


def labelled_copies(reference: list[dict[str, Any]], copies: int, *, seed: int = 13) -> list[dict[str, Any]]:
    """`copies` variants of every reference article (the first as it is), each with one swap of names and numbers
    applied to its text and its labelled spans alike (a swapped entity keeps its label). A paragraph whose text
    is already taken is left out rather than lengthened (an added sentence would carry unlabelled entities).
    Every record gets `doc_id` "<article>-<copy>" and a `key`."""
    articles: dict[str, list[dict[str, Any]]] = {}
    for record in reference:
        articles.setdefault(record["doc_id"], []).append(record)
    rng = random.Random(seed)
    seen: set[str] = set()
    out = []
    for copy in range(copies):
        for doc_id, records in articles.items():
            swap = {word: rng.choice(POOLS[kind].split()) for word, kind in _SWAPPABLE.items()} if copy else {}
            for record in records:
                varied = _vary_labelled(record, swap, rng) if copy else record
                if varied is None or varied["text"] in seen:
                    continue
                seen.add(varied["text"])
                name = f"{doc_id}-{copy:03d}"
                out.append({**varied, "doc_id": name, "paragraph": record["paragraph"],
                            "key": f"{name}-{record['paragraph']}"})  # fmt: skip
    return out


def _vary_labelled(record: dict[str, Any], swap: dict[str, str], rng: random.Random) -> dict[str, Any] | None:
    """One paragraph with `swap` applied (numbers redrawn), its spans moved with the text; None if a span edge
    falls inside a swapped word."""
    text, pieces, moves, cursor = record["text"], [], [], 0
    for match in _WORD.finditer(text):
        word = match.group(0)
        new = swap[word] if word in swap else str(rng.randrange(10 ** (len(word) - 1), 10 ** len(word)))
        pieces += [text[cursor : match.start()], new]
        moves.append((match.start(), match.end(), len(new) - len(word)))
        cursor = match.end()
    pieces.append(text[cursor:])

    def moved(position: int) -> int | None:
        shift = 0
        for start, end, delta in moves:
            if start < position < end:
                return None
            if end <= position:
                shift += delta
        return position + shift

    new_text, spans = "".join(pieces), []
    for span in record["spans"]:
        start, end = moved(span["start"]), moved(span["end"])
        if start is None or end is None:
            return None
        spans.append({**span, "start": start, "end": end, "text": new_text[start:end]})
    return {"text": new_text, "spans": spans}
