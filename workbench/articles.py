"""Seed articles -> paragraphs, the unit of annotation.

An article is a UTF-8 text file: its first line is the title, every non-empty line is a paragraph. Files are
read line by line, so an enormous file costs memory per line, not per file. Anything that is not readable text
(empty, binary, not UTF-8, only whitespace) stops the run with the file named, before anything is sent anywhere.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
    files, ignored = _article_files(folder)
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


def _article_files(folder: Path) -> tuple[list[Path], tuple[str, ...]]:
    """The `.txt` articles of `folder` in name order, and the names of its other files (not hidden ones); a missing
    folder, one without articles, and two files of one article are SeedErrors."""
    names, ignored, _ = _listing(folder)
    return [folder / name for name in names], ignored


def _listing(folder: Path) -> tuple[list[str], tuple[str, ...], dict[str, os.stat_result]]:
    """`_article_files` as file names, and each article's stat by file name."""
    if not folder.is_dir():
        state = "is a file, not a folder" if folder.exists() else "does not exist"
        raise SeedError(
            f"The seeds folder {folder} {state}. Put the articles there as UTF-8 .txt files "
            "(one paragraph per line, the title first), or set `seeds` in configs/workbench.toml."
        )
    stats: dict[str, os.stat_result] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_file():
                    stats[entry.name] = entry.stat()
            except OSError:
                continue
    split = [(name, *os.path.splitext(name)) for name in sorted(stats)]
    names = [name for name, _, suffix in split if suffix.lower() == ".txt"]
    ignored = tuple(name for name, _, suffix in split if suffix.lower() != ".txt")
    if not names:
        raise SeedError(
            f"The seeds folder {folder} holds no .txt article. Add the articles as UTF-8 .txt files "
            "(one paragraph per line, the title first)."
        )
    stems: dict[str, str] = {}
    for name, stem, suffix in split:
        if suffix.lower() != ".txt":
            continue
        if stem in stems:
            raise SeedError(
                f"The seeds folder {folder} holds two files for article {stem!r}: {stems[stem]} and "
                f"{name}. An article's file name is its id, so rename or remove one of them."
            )
        stems[stem] = name
    return names, ignored, {name: stats[name] for name in names}


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


# ---- the seed index: a large corpus known without reading it -------------------------------------------------

INDEX_FORMAT = "workbench-seed-index/2"
_PARAGRAPHS = pa.schema([("doc_id", pa.string()), ("index", pa.int32()), ("key", pa.string()),
                         ("text_key", pa.string())])  # fmt: skip
_FILES = pa.schema([("name", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()), ("ctime_ns", pa.int64()),
                    ("inode", pa.int64()), ("sha256", pa.string()), ("first", pa.int64()),
                    ("paragraphs", pa.int64())])  # fmt: skip
# A file changed this close to the moment the index is written may change again within one tick of the file
# system's clock, unseen by its times: it is read again next time rather than trusted.
RACY_NS = 2_000_000_000


@dataclass
class SeedIndex:
    """The seeds folder in columns: every paragraph's article, place, key and text key (no text), the articles in
    corpus order, the duplicates and the files that are not articles.

    `open` keeps it beside the project and reads again only the files whose size, times or inode changed since,
    so a corpus of a million paragraphs is known in a second; articles are read whole only when asked for
    (`read_articles`), and checked to be the ones indexed."""

    folder: Path
    paragraphs: pa.Table  # doc_id, index, key, text_key; corpus order, duplicates left out
    doc_ids: tuple[str, ...]  # the articles in corpus order
    names: dict[str, str]  # doc_id -> file name
    digests: dict[str, str]  # doc_id -> the article's sha256 (`Article.sha256`)
    duplicates: tuple[tuple[str, str], ...] = ()
    ignored: tuple[str, ...] = ()
    held: dict[str, Article] = field(default_factory=dict)  # articles already read
    keys_distinct: bool | None = None  # no two paragraphs have the same key (None: not known)

    def __len__(self) -> int:
        return self.paragraphs.num_rows

    @classmethod
    def of_corpus(cls, corpus: Corpus) -> SeedIndex:
        """The index of a corpus already read (its articles held, never read again)."""
        columns: dict[str, list[Any]] = {name: [] for name in _PARAGRAPHS.names}
        for article in corpus.articles:
            _add_paragraphs(columns, article)
        folder = corpus.articles[0].path.parent if corpus.articles else Path()
        return cls(folder=folder, paragraphs=pa.table(columns, schema=_PARAGRAPHS),
                   doc_ids=tuple(a.doc_id for a in corpus.articles),
                   names={a.doc_id: a.path.name for a in corpus.articles},
                   digests={a.doc_id: a.sha256 for a in corpus.articles}, duplicates=corpus.duplicates,
                   ignored=corpus.ignored, held={a.doc_id: a for a in corpus.articles})  # fmt: skip

    @classmethod
    def open(cls, folder: Path, cache: Path | None = None) -> SeedIndex:
        """The index of `folder`, from the index kept at `cache` for every file unchanged since (size, times and
        inode as recorded), reading the others; the kept index is brought up to date. Every check of
        `read_corpus` applies to every file read."""
        started = time.time_ns()
        files, ignored, stats = _listing(folder)
        kept, known, known_distinct = _read_index(cache, folder) if cache else (None, {}, None)
        fresh: dict[str, list[Any]] = {name: [] for name in _PARAGRAPHS.names}
        base = kept.num_rows if kept is not None else 0
        ranges: list[tuple[int, int]] = []  # each file's rows in kept + fresh, in name order
        records: list[tuple[Any, ...]] = []  # each file's (name, size, mtime_ns, ctime_ns, inode, sha256, paragraphs)
        changed = kept is None or len(known) != len(files)
        for name in files:
            stat = stats[name]
            record = known.get(name)
            if record is not None and record[:4] == (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino):
                sha, first, count = record[4:]
            else:
                changed = True
                article = read_article(folder / name)
                sha, first, count = article.sha256, base + len(fresh["key"]), len(article.paragraphs)
                _add_paragraphs(fresh, article)
            racy = max(stat.st_mtime_ns, stat.st_ctime_ns) > started - RACY_NS
            changed = changed or racy
            ranges.append((first, count))
            records.append((name, -1 if racy else stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, sha,
                            count))  # fmt: skip
        del stats, known
        distinct = known_distinct
        if changed:  # every file's rows, in name order
            every = pa.concat_tables([t for t in (kept, pa.table(fresh, schema=_PARAGRAPHS)) if t is not None])
            every = every.take(pa.array(_rows(ranges), pa.int64()))
            distinct = pc.count_distinct(every["key"]).as_py() == every.num_rows
            if cache:
                _write_index(cache, folder, every, records, distinct)
        else:
            every = kept
        assert every is not None
        doc_ids, names, digests, duplicates, seen, kept_rows = [], {}, {}, [], {}, []
        at = 0
        for name, *_, sha, count in records:
            doc_id = os.path.splitext(name)[0]
            if sha in seen:
                duplicates.append((doc_id, seen[sha]))
            else:
                seen[sha] = doc_id
                doc_ids.append(doc_id)
                names[doc_id], digests[doc_id] = name, sha
                kept_rows.append((at, count))
            at += count
        paragraphs = every.take(pa.array(_rows(kept_rows), pa.int64())) if duplicates else every
        return cls(folder=folder, paragraphs=paragraphs, doc_ids=tuple(doc_ids), names=names, digests=digests,
                   duplicates=tuple(duplicates), ignored=ignored, keys_distinct=distinct or None)  # fmt: skip

    def read_articles(self, doc_ids: Iterable[str] | None = None) -> Iterator[Article]:
        """The articles `doc_ids` (every one by default), read whole, in corpus order; a SeedError if a file is
        no longer the article indexed (changed while the command ran)."""
        wanted = None if doc_ids is None else set(doc_ids)
        for doc_id in self.doc_ids:
            if wanted is not None and doc_id not in wanted:
                continue
            article = self.held.get(doc_id) or read_article(self.folder / self.names[doc_id])
            if article.sha256 != self.digests[doc_id]:
                raise SeedError(
                    f"The seed file {self.folder / self.names[doc_id]} changed while the command ran. Run it again."
                )
            yield article

    def article_numbers(self) -> np.ndarray:
        """Each paragraph's article, numbered in corpus order (the paragraphs of an article are together)."""
        docs = self.paragraphs["doc_id"]
        if len(docs) < 2:
            return np.zeros(len(docs), dtype=np.int64)
        changes = pc.not_equal(docs.slice(1), docs.slice(0, len(docs) - 1)).to_numpy(zero_copy_only=False)
        return np.concatenate(([0], np.cumsum(changes))).astype(np.int64)

    def corpus(self) -> Corpus:
        """Every article, read whole (the memory of the whole corpus)."""
        return Corpus(articles=tuple(self.read_articles()), duplicates=self.duplicates, ignored=self.ignored)


def _add_paragraphs(columns: dict[str, list[Any]], article: Article) -> None:
    for paragraph in article.paragraphs:
        columns["doc_id"].append(paragraph.doc_id)
        columns["index"].append(paragraph.index)
        columns["key"].append(paragraph.key)
        columns["text_key"].append(paragraph.text_key)


def _rows(ranges: list[tuple[int, int]]) -> np.ndarray:
    """The row numbers of (first, count) ranges, one after the other."""
    if not ranges:
        return np.zeros(0, dtype=np.int64)
    firsts, counts = np.array(ranges, dtype=np.int64).T
    starts = np.repeat(firsts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return starts + np.arange(int(counts.sum()), dtype=np.int64)


def _files_path(cache: Path) -> Path:
    return cache.with_name(cache.stem + ".files.arrow")


def _read_index(cache: Path, folder: Path) -> tuple[pa.Table | None, dict[str, tuple[Any, ...]], bool | None]:
    """The kept index of `folder` (every indexed file's rows, in name order), each file's record by name, and
    whether its keys are distinct; or (None, {}, None) if there is none fit to use."""
    try:
        tables = []
        for path in (cache, _files_path(cache)):
            with pa.memory_map(str(path)) as source:
                tables.append(pa.ipc.open_file(source).read_all())
    except (OSError, pa.ArrowException):
        return None, {}, None
    table, files = tables
    metas = [{k.decode(): v.decode() for k, v in (t.schema.metadata or {}).items()} for t in tables]
    stamp = {"format": INDEX_FORMAT, "folder": str(folder.resolve())}
    if any({k: meta.get(k) for k in ("format", "folder")} != stamp for meta in metas) or (
        metas[0].get("stamp") != metas[1].get("stamp") or table.schema.remove_metadata() != _PARAGRAPHS
        or files.schema.remove_metadata() != _FILES
    ):
        return None, {}, None
    columns = [files.column(name).to_pylist() for name in _FILES.names]
    known = {name: (size, mtime, ctime, inode, sha, first, count)
             for name, size, mtime, ctime, inode, sha, first, count in zip(*columns, strict=True)}  # fmt: skip
    if sum(record[6] for record in known.values()) != table.num_rows:
        return None, {}, None
    return table.replace_schema_metadata(None), known, metas[0].get("distinct_keys") == "1"


def _write_index(cache: Path, folder: Path, table: pa.Table, files: list[tuple[Any, ...]], distinct: bool) -> None:
    """Keep the index, its paragraphs and its files (stamped alike, so a pair half written is not used); a failure
    to write it costs the next command time, nothing else."""
    meta = {"format": INDEX_FORMAT, "folder": str(folder.resolve()), "stamp": f"{time.time_ns()}-{os.getpid()}",
            "distinct_keys": "1" if distinct else "0"}
    columns = [list(values) for values in zip(*files, strict=True)] if files else [[] for _ in range(7)]
    counts = np.array(columns[6], dtype=np.int64)
    firsts = np.concatenate(([0], np.cumsum(counts)[:-1])).tolist() if len(counts) else []
    listed = pa.table([*columns[:6], firsts, columns[6]], schema=_FILES.with_metadata(meta))
    parts = ((cache, table.replace_schema_metadata(meta)), (_files_path(cache), listed))
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        for path, part in parts:
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            try:
                with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, part.schema) as writer:
                    writer.write_table(part)
                os.replace(tmp, path)
            finally:
                with contextlib.suppress(OSError):
                    tmp.unlink()
    except (OSError, pa.ArrowException):
        return
