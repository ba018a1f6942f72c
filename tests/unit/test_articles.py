"""Seed articles: every kind of bad file stops the run naming the file and the fix, with bounded memory."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from workbench.articles import MAX_ARTICLE_BYTES, MAX_LINE_CHARS, read_corpus
from workbench.errors import SeedError

GOOD = "A title\nFirst paragraph about Alice.\n\nSecond paragraph about Bob.\n"


def _seeds(tmp_path: Path, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "seeds"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def _error(folder: Path) -> str:
    with pytest.raises(SeedError) as caught:
        read_corpus(folder)
    message = str(caught.value)
    assert "\n" not in message, "one paragraph"
    return message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "is empty"),
        (b"   \n\t\r\n\n \xc2\xa0 \n", "only whitespace"),
        (b"\xef\xbb\xbf\n\n", "only whitespace"),  # a UTF-8 BOM and blank lines
        (b"title\nsome text\x00\x01\x02 more\n", "binary"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
        ("Café au lait\n".encode("latin-1"), "not UTF-8"),
        ("Title\nParagraph\n".encode("utf-16"), "not UTF-8"),  # Notepad's "Unicode"
    ],
    ids=["empty", "whitespace", "bom-only", "nul-bytes", "png", "latin-1", "utf-16"],
)
def test_a_bad_seed_file_is_named_with_the_fix(tmp_path: Path, data: bytes, expected: str) -> None:
    folder = _seeds(tmp_path, {"000_good.txt": GOOD.encode(), "001_bad.txt": data})
    message = _error(folder)
    assert expected in message
    assert "001_bad.txt" in message and "000_good.txt" not in message
    assert any(word in message for word in ("Remove", "Re-save", "convert", "Split")), message


def test_an_undecodable_byte_is_located_in_the_file_not_the_read_buffer(tmp_path: Path) -> None:
    # Past the first read buffer: the decoder's own position would be relative to its buffer.
    body = ("Title\n" + "Ünïcödé paragraph number one is fine.\n" * 5000).encode("utf-8")
    folder = _seeds(tmp_path, {"a.txt": body + b"caf\xe9\n"})
    message = _error(folder)
    assert f"offset {len(body) + 3:,}" in message
    assert f"line {5002:,}" in message


def test_a_file_larger_than_any_article_is_refused_before_it_is_read(tmp_path: Path) -> None:
    folder = _seeds(tmp_path, {"000_good.txt": GOOD.encode()})
    huge = folder / "001_dump.txt"
    with huge.open("wb") as handle:  # sparse: costs no disk, and would be NUL bytes if it were read
        handle.truncate(MAX_ARTICLE_BYTES + 1)
    tracemalloc.start()
    try:
        message = _error(folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "001_dump.txt" in message and "larger than any article" in message and "Split it" in message
    assert peak < 1_000_000


def test_an_enormous_line_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    """A 40 MB file with no line end (under the article size limit): refused after reading one line's worth."""
    folder = _seeds(tmp_path, {})
    path = folder / "one_line.txt"
    chunk = b"word " * 200_000  # 1 MB
    with path.open("wb") as handle:
        handle.write(b"Title\n")
        for _ in range(40):
            handle.write(chunk)
    assert path.stat().st_size < MAX_ARTICLE_BYTES
    tracemalloc.start()
    try:
        message = _error(folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "one_line.txt" in message and f"longer than {MAX_LINE_CHARS:,} characters" in message
    assert peak < 8 * MAX_LINE_CHARS, f"peak {peak:,} bytes for a {path.stat().st_size:,} byte file"


def test_a_missing_seeds_folder(tmp_path: Path) -> None:
    message = _error(tmp_path / "nowhere")
    assert "nowhere" in message and "does not exist" in message and "`seeds`" in message


def test_a_seeds_path_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "seeds"
    path.write_text(GOOD)
    message = _error(path)
    assert "is a file, not a folder" in message


def test_an_empty_seeds_folder_and_one_without_txt_files(tmp_path: Path) -> None:
    folder = _seeds(tmp_path, {})
    assert "holds no .txt article" in _error(folder)
    (folder / "notes.md").write_text(GOOD)
    (folder / "sub.txt").mkdir()  # a folder named like an article is not one
    assert "holds no .txt article" in _error(folder)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_seed_file(tmp_path: Path) -> None:
    folder = _seeds(tmp_path, {"a.txt": GOOD.encode()})
    (folder / "a.txt").chmod(0)
    assert "cannot be read" in _error(folder)


def test_duplicate_articles_are_reported_and_kept_once(tmp_path: Path) -> None:
    twin = GOOD.replace("\n\n", "\n\n\n\n")  # the same paragraphs; blank lines do not make it new
    folder = _seeds(
        tmp_path,
        {"000_a.txt": GOOD.encode(), "001_b.txt": twin.encode(), "002_c.txt": (GOOD + "More.\n").encode()},
    )
    corpus = read_corpus(folder)
    assert [a.doc_id for a in corpus.articles] == ["000_a", "002_c"]
    assert corpus.duplicates == (("001_b", "000_a"),)
    keys = [p.key for p in corpus.paragraphs()]
    assert len(keys) == len(set(keys)) == 3 + 4
    assert all(p.doc_id != "001_b" for p in corpus.paragraphs())


def test_a_bom_and_windows_line_ends_are_read_as_text(tmp_path: Path) -> None:
    folder = _seeds(tmp_path, {"a.txt": b"\xef\xbb\xbfTitle\r\nOne.\r\n\r\nTwo.\r\n"})
    (article,) = read_corpus(folder).articles
    assert [p.text for p in article.paragraphs] == ["Title", "One.", "Two."]
    assert article.title == "Title"


def test_html_in_an_article_is_kept_verbatim_as_text(tmp_path: Path) -> None:
    html = "<script>alert('x')</script> Alice met <b>Bob</b> &amp; co."
    folder = _seeds(tmp_path, {"a.txt": f"Title\n{html}\n".encode()})
    (article,) = read_corpus(folder).articles
    assert article.paragraphs[1].text == html
    assert article.paragraphs[1].task_data()["text"] == html


def test_the_limits_are_consistent() -> None:
    # A line longer than an article could never be reached; a limit of 0 would refuse everything.
    assert 0 < MAX_LINE_CHARS * 4 <= MAX_ARTICLE_BYTES


def test_upper_case_txt_files_are_articles_and_other_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "a.TXT").write_text("Title\nText.\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("# not an article\n", encoding="utf-8")
    (tmp_path / ".hidden").write_text("editor state\n", encoding="utf-8")
    corpus = read_corpus(tmp_path)
    assert [a.doc_id for a in corpus.articles] == ["a"]
    assert corpus.ignored == ("notes.md",)


def test_two_files_for_one_article_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Title\nText.\n", encoding="utf-8")
    (tmp_path / "a.TXT").write_text("Title\nOther text.\n", encoding="utf-8")
    with pytest.raises(SeedError, match="two files for article 'a'"):
        read_corpus(tmp_path)


# ---- the seed index ----------------------------------------------------------------------------------------------


def _index_of(folder: Path) -> tuple[Any, ...]:
    from workbench.articles import SeedIndex

    index = SeedIndex.of_corpus(read_corpus(folder))
    return index.paragraphs.to_pylist(), index.doc_ids, index.duplicates, index.ignored


def _opened(folder: Path, cache: Path) -> tuple[Any, ...]:
    from workbench.articles import SeedIndex

    index = SeedIndex.open(folder, cache)
    return index.paragraphs.to_pylist(), index.doc_ids, index.duplicates, index.ignored


@pytest.fixture
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the seed files read whole; files are not 'racy' here (the clock check is tested apart)."""
    from workbench import articles

    reads: list[str] = []
    real = articles.read_article
    monkeypatch.setattr(articles, "RACY_NS", 0)
    monkeypatch.setattr(articles, "read_article", lambda path: reads.append(path.name) or real(path))
    return reads


def test_the_index_is_the_corpus_and_reads_only_what_changed(tmp_path: Path, counted_reads: list[str]) -> None:
    folder = _seeds(tmp_path, {"a.txt": GOOD.encode(), "b.txt": b"B title\nAnkara and Moscow.\n",
                               "c.txt": GOOD.encode(), "notes.md": b"not an article"})  # fmt: skip
    cache = tmp_path / "state" / "seed-index.arrow"

    def opened_reading() -> list[str]:
        expected = _index_of(folder)
        counted_reads.clear()
        assert _opened(folder, cache) == expected
        return sorted(counted_reads)

    assert opened_reading() == ["a.txt", "b.txt", "c.txt"]
    assert opened_reading() == [], "nothing changed: nothing read"
    (folder / "b.txt").write_text("B title\nAnkara, Moscow and Kyiv.\n", encoding="utf-8")
    (folder / "a.txt").unlink()  # c.txt is no longer a duplicate of a.txt
    (folder / "d.txt").write_text("D title\nA new article.\n", encoding="utf-8")
    assert opened_reading() == ["b.txt", "d.txt"]


def test_an_index_kept_for_another_folder_or_damaged_is_not_used(tmp_path: Path, counted_reads: list[str]) -> None:
    folder = _seeds(tmp_path, {"a.txt": GOOD.encode()})
    cache = tmp_path / "seed-index.arrow"
    _opened(folder, cache)
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("Another title\nAnother text.\n", encoding="utf-8")
    assert _opened(other, cache) == _index_of(other)
    cache.write_bytes(b"not arrow")
    expected = _index_of(folder)
    counted_reads.clear()
    assert _opened(folder, cache) == expected and counted_reads == ["a.txt"]


def test_a_file_changed_within_a_tick_of_the_index_is_read_again(tmp_path: Path, monkeypatch) -> None:
    from workbench import articles

    folder = _seeds(tmp_path, {"a.txt": GOOD.encode()})
    cache = tmp_path / "seed-index.arrow"
    reads: list[str] = []
    real = articles.read_article
    monkeypatch.setattr(articles, "read_article", lambda path: reads.append(path.name) or real(path))
    _opened(folder, cache)
    _opened(folder, cache)
    assert reads == ["a.txt", "a.txt"], "written a moment ago: the file's times cannot be trusted yet"


def test_an_article_read_from_the_index_must_be_the_one_indexed(tmp_path: Path, counted_reads: list[str]) -> None:
    from workbench.articles import SeedIndex

    folder = _seeds(tmp_path, {"a.txt": GOOD.encode()})
    index = SeedIndex.open(folder, tmp_path / "seed-index.arrow")
    (folder / "a.txt").write_text("A title\nChanged meanwhile.\n", encoding="utf-8")
    with pytest.raises(SeedError, match="changed while the command ran"):
        list(index.read_articles())
