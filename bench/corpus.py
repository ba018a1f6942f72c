"""A benchmark corpus of any size, scaled from the seed articles, with no two paragraphs alike.

Each generated article is a seed article with its countries, cities, people, weekdays, months and numbers
swapped for others (the same swap throughout one article, as a real article would be); a paragraph that still
repeats one already written gets one more sentence of the same kind. The output is deterministic.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

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
