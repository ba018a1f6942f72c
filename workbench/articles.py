"""Seed articles -> paragraphs, the unit of annotation.

An article is a UTF-8 text file: its first line is the title, every non-empty line is a paragraph. Files are
read line by line, so an enormous file costs memory per line, not per file. Anything that is not readable text
(empty, binary, not UTF-8, only whitespace) stops the run with the file named, before anything is sent anywhere.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import SeedError
from workbench.records import Paragraph, stable_hash

# A line longer than this is not a paragraph of an article; reading it whole would make memory unbounded.
MAX_LINE_CHARS = 1_000_000
# An article is held in memory while its paragraphs are keyed; a file larger than this is not an article.
MAX_ARTICLE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Article:
    """One seed file, read and checked."""

    doc_id: str
    path: Path
    title: str
    paragraphs: tuple[Paragraph, ...]
    sha256: str


@dataclass(frozen=True)
class Corpus:
    """Every article of the seeds folder, with duplicates and files that are not articles set aside (reported)."""

    articles: tuple[Article, ...]
    duplicates: tuple[tuple[str, str], ...]  # (duplicate doc_id, the doc_id it repeats)
    ignored: tuple[str, ...] = ()  # file names in the folder that are not .txt articles

    def paragraphs(self) -> Iterator[Paragraph]:
        for article in self.articles:
            yield from article.paragraphs


def read_corpus(folder: Path) -> Corpus:
    """Read every `.txt` article of `folder` (any case: `.TXT` too), in name order, skipping exact duplicates of an
    earlier article; other files (but hidden ones) are named in `ignored`."""
    if not folder.is_dir():
        state = "is a file, not a folder" if folder.exists() else "does not exist"
        raise SeedError(
            f"The seeds folder {folder} {state}. Put the articles there as UTF-8 .txt files "
            "(one paragraph per line, the title first), or set `seeds` in configs/workbench.toml."
        )
    found = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
    files = [path for path in found if path.suffix.lower() == ".txt"]
    ignored = tuple(path.name for path in found if path.suffix.lower() != ".txt")
    if not files:
        raise SeedError(
            f"The seeds folder {folder} holds no .txt article. Add the articles as UTF-8 .txt files "
            "(one paragraph per line, the title first)."
        )
    stems: dict[str, str] = {}
    for path in files:
        if path.stem in stems:
            raise SeedError(
                f"The seeds folder {folder} holds two files for article {path.stem!r}: {stems[path.stem]} and "
                f"{path.name}. An article's file name is its id, so rename or remove one of them."
            )
        stems[path.stem] = path.name
    articles: list[Article] = []
    duplicates: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for path in files:
        article = read_article(path)
        if article.sha256 in seen:
            duplicates.append((article.doc_id, seen[article.sha256]))
            continue
        seen[article.sha256] = article.doc_id
        articles.append(article)
    return Corpus(articles=tuple(articles), duplicates=tuple(duplicates), ignored=ignored)


def read_article(path: Path) -> Article:
    """Read one article; its paragraphs' offsets are code-point offsets in the file as written."""
    doc_id = path.stem
    size = path.stat().st_size
    if size > MAX_ARTICLE_BYTES:
        raise SeedError(
            f"The seed file {path} is {size / 2**20:.0f} MiB, larger than any article "
            f"({MAX_ARTICLE_BYTES // 2**20} MiB at most). Split it into one file per article."
        )
    lines = list(_lines(path))
    if not lines:
        raise SeedError(f"The seed file {path} is empty. Remove it, or give it a title line and paragraphs.")
    paragraphs_text = [(offset, text) for offset, text in lines if text.strip()]
    if not paragraphs_text:
        raise SeedError(
            f"The seed file {path} holds only whitespace. Remove it, or give it a title line and paragraphs."
        )
    title = paragraphs_text[0][1].strip()
    digest = hashlib.sha256()
    occurrences: dict[str, int] = {}
    paragraphs = []
    for index, (offset, text) in enumerate(paragraphs_text):
        digest.update(text.encode("utf-8") + b"\n")
        occurrence = occurrences.get(text, 0)
        occurrences[text] = occurrence + 1
        paragraphs.append(
            Paragraph(
                doc_id=doc_id,
                index=index,
                offset=offset,
                title=title,
                text=text,
                count=len(paragraphs_text),
                key=stable_hash(doc_id, text, occurrence),
            )
        )
    return Article(doc_id=doc_id, path=path, title=title, paragraphs=tuple(paragraphs), sha256=digest.hexdigest())


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (code-point offset, line without its line end) for each line; CRLF and LF alike."""
    offset = 0
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            while True:
                raw = handle.readline(MAX_LINE_CHARS + 1)
                if not raw:
                    return
                if len(raw) > MAX_LINE_CHARS and not raw.endswith("\n"):
                    raise SeedError(
                        f"The seed file {path} has a line longer than {MAX_LINE_CHARS:,} characters near "
                        f"character {offset:,}; it is not an article. Split it into paragraphs (one per line)."
                    )
                if "\x00" in raw:
                    raise SeedError(
                        f"The seed file {path} is binary (it contains NUL bytes), not a text article. "
                        "Remove it from the seeds folder or convert it to UTF-8 text."
                    )
                text = raw.rstrip("\r\n")
                yield offset, text
                offset += len(raw)
    except UnicodeDecodeError:
        position, line = _first_undecodable_byte(path)
        raise SeedError(
            f"The seed file {path} is not UTF-8 (undecodable byte at offset {position:,}, line {line:,}). "
            "Re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8`, or remove it from the seeds folder."
        ) from None
    except OSError as exc:
        raise SeedError(
            f"The seed file {path} cannot be read ({exc.strerror or type(exc).__name__}). Fix its permissions "
            "or remove it from the seeds folder."
        ) from None


def _first_undecodable_byte(path: Path, block: int = 1 << 16) -> tuple[int, int]:
    """The file offset and 1-based line of the first byte that is not UTF-8, read block by block.

    The decoder's own position is relative to its buffer, not the file, so it is recomputed here.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    position, line = 0, 1
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            pending = len(decoder.getstate()[0])  # bytes of a character split across blocks, decoded again
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                offset = position - pending + exc.start
                return offset, line + chunk[: max(offset - position, 0)].count(b"\n")
            position += len(chunk)
            line += chunk.count(b"\n")
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:  # the file ends inside a character
            return position - pending + exc.start, line
    return position, line
