"""A release's DocBin written from per-row pieces is the DocBin spaCy writes, byte for byte; the pieces file gives
back any rows asked for, reading only the batches that hold them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import srsly
from spacy.tokens import DocBin
from spacy.vocab import Vocab

from workbench.records import Row, Span
from workbench.release.converters import row_to_conll, row_to_doc
from workbench.release.pieces import Pieces, PiecesWriter, array_header, bin_header, entry, pieces_batch
from workbench.release.writer import DOCBIN_ATTRS


@pytest.mark.parametrize("size", [0, 1, 15, 16, 255, 256, 65535, 65536, 70000])
def test_msgpack_headers_are_the_ones_srsly_writes(size: int) -> None:
    assert srsly.msgpack_dumps(b"\0" * size).startswith(bin_header(size))
    assert srsly.msgpack_dumps([0] * size).startswith(array_header(size))


def rows(n: int) -> list[Row]:
    made = []
    for i in range(n):
        text = f"Erdoğan met Biden in Ankara {i} times  🙂 ."
        tokens = tuple(text.split())
        tags = tuple("B-PERSON" if t in ("Erdoğan", "Biden") else "B-GPE" if t == "Ankara" else "O" for t in tokens)
        made.append(Row(id=f"r{i}", doc_id=f"d{i // 3}", paragraph=i % 3, text=text, tokens=tokens, ner_tags=tags,
                        spans=(Span(0, 7, "PERSON", "Erdoğan"),), task_id=i, annotation_ids=(i,), annotators=(1,)))
    return made


def pieces_of(docs: DocBin, ids: list[str]) -> list[tuple]:
    fields = {name: getattr(docs, name) for name in ("tokens", "spaces", "cats", "flags", "span_groups", "user_data")}
    return [entry(fields, i, row_id, "") for i, row_id in enumerate(ids)]


@pytest.mark.parametrize("n", [0, 1, 40])
def test_a_docbin_written_from_pieces_is_the_one_spacy_writes(n: int) -> None:
    from workbench.release.pieces import DocBinStream

    docs = DocBin(attrs=DOCBIN_ATTRS, store_user_data=True)
    vocab = Vocab()
    for row in rows(n):
        docs.add(row_to_doc(vocab, row))
    stream = DocBinStream(attrs=list(docs.attrs), version=str(docs.version))
    made = pieces_of(docs, [f"r{i}" for i in range(n)])
    for start in range(0, max(n, 1), 7):  # in shards
        stream.add(pieces_batch(made[start : start + 7]), set(docs.strings) if start == 0 else ())
    out = io.BytesIO()
    stream.write(out)
    assert out.getvalue() == docs.to_bytes()


def test_pieces_are_read_back_in_any_order_from_the_batches_that_hold_them(tmp_path: Path) -> None:
    docs = DocBin(attrs=DOCBIN_ATTRS, store_user_data=True)
    vocab = Vocab()
    made = rows(10)
    for row in made:
        docs.add(row_to_doc(vocab, row))
    entries = [(*piece[:-1], row_to_conll(row, False)) for piece, row in zip(pieces_of(docs, [r.id for r in made]),
                                                                             made, strict=True)]  # fmt: skip
    writer = PiecesWriter(tmp_path / "p.arrow", stamp="s1")
    for start in (0, 4, 8):
        writer.add(pieces_batch(entries[start : start + 4]))
    writer.close(docs.strings)
    pieces = Pieces.open(tmp_path / "p.arrow", "s1", rows=10)
    taken = pieces.take([9, 0, 5, 4])
    assert taken.column("id").to_pylist() == ["r9", "r0", "r5", "r4"]
    assert taken.column("conll").to_pylist()[1] == row_to_conll(made[0], False)
    assert pieces.strings_of([taken.column("tokens")[0].as_py()], docs.attrs, ["PERSON"]) >= {"Ankara", "PERSON", ""}
    with pytest.raises(Exception, match="not the ones written"):
        Pieces.open(tmp_path / "p.arrow", "another stamp", rows=10)
    with pytest.raises(Exception, match="one entry per row"):
        Pieces.open(tmp_path / "p.arrow", "s1", rows=11)
