"""Pure conversions of a release row to the other formats a release ships: a spaCy `Doc` and CoNLL-2003 lines,
and the one way DocBins are packed and unpacked at speed (`msgpack_plugins_looked_up_once`).

Kept apart from the writer as spaCy keeps its converters: they take a row and give text or a Doc, nothing else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import srsly
from spacy.tokens import Doc
from spacy.vocab import Vocab

from workbench.errors import ReleaseError
from workbench.records import Row

SPAN_GROUP = "sc"


@contextlib.contextmanager
def msgpack_plugins_looked_up_once() -> Iterator[None]:
    """srsly rebuilds its list of msgpack encoders (scanning importlib entry points and catalogue's whole
    registry) for every object it packs or unpacks: ~2 ms per Doc, 90% of a 10k-row release and most of reading a
    release's DocBins back for training. Look the plugins up once, for the time of the block."""
    registries = (srsly.msgpack.msgpack_encoders, srsly.msgpack.msgpack_decoders)
    for registry in registries:
        plugins = registry.get_all()
        registry.get_all = lambda plugins=plugins: dict(plugins)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for registry in registries:
            del registry.get_all


def words_and_spaces(
    text: str, tokens: Sequence[str], tags: Sequence[str]
) -> tuple[list[str], list[bool], list[str]]:
    """spaCy words, trailing-space flags and tags that rebuild `text` exactly from a row's tokens.

    The one place a row's token spacing is derived. A gap between tokens that is not one plain space becomes a
    whitespace word (tagged I-X inside an entity, O otherwise), as spaCy's tokenizer does; a non-whitespace gap
    means the tokens do not belong to the text (ValueError)."""
    words: list[str] = []
    spaces: list[bool] = []
    out_tags: list[str] = []
    cursor = 0

    def absorb(gap: str, next_tag: str) -> None:
        if gap.startswith(" ") and words and not spaces[-1]:
            spaces[-1] = True
            gap = gap[1:]
        if gap:
            words.append(gap)
            spaces.append(False)
            out_tags.append(next_tag if next_tag.startswith("I-") else "O")

    for token, tag in zip(tokens, tags, strict=True):
        if not token:
            raise ValueError("an empty token")
        at = text.find(token, cursor)
        if at < 0 or (at > cursor and not text[cursor:at].isspace()):
            raise ValueError(f"token {token!r} is not found at offset {cursor} of the text")
        absorb(text[cursor:at], tag)
        words.append(token)
        spaces.append(False)
        out_tags.append(tag)
        cursor = at + len(token)
    rest = text[cursor:]
    if rest and not rest.isspace():
        raise ValueError(f"the text after the last token ({rest[:20]!r}) is not whitespace")
    absorb(rest, "O")
    return words, spaces, out_tags


def row_to_doc(vocab: Vocab, row: Row) -> Doc:
    """One row as a Doc: entities from the tags, every human span in `doc.spans["sc"]`, and the row's ids in
    `doc.user_data` to join back to the parquet."""
    try:
        words, spaces, tags = words_and_spaces(row.text, row.tokens, row.ner_tags)
        doc = Doc(vocab, words=words, spaces=spaces, ents=tags)
    except ValueError as exc:
        raise ReleaseError(
            f"Row {row.id!r} cannot become a spaCy Doc: {exc}. Its tokens and tags must rebuild its text; "
            "this is a bug in the build step, so report it with the snapshot file."
        ) from None
    group = []
    for span in row.spans:
        piece = doc.char_span(span.start, span.end, label=span.label)
        if piece is None:
            raise ReleaseError(
                f"Row {row.id!r} has the span {span.text!r} ({span.start}-{span.end}) that "
                "does not start and end on token boundaries. Tokens must be split at every span edge; this is "
                "a bug in the build step, so report it with the snapshot file."
            )
        group.append(piece)
    doc.spans[SPAN_GROUP] = group
    doc.user_data.update({"id": row.id, "doc_id": row.doc_id, "paragraph": row.paragraph})
    return doc


def row_to_conll(row: Row, new_article: bool) -> str:
    """One row in CoNLL-2003 style: `token _ _ tag` lines and a blank line, after -DOCSTART- for a new article.

    Whitespace-only tokens are left out and whitespace inside a token becomes `_`, so every line has exactly
    four space-separated columns for the readers that split on whitespace."""
    lines = ["-DOCSTART- -X- -X- O", ""] if new_article else []
    body = [f"{'_'.join(token.split())} _ _ {tag}" for token, tag in zip(row.tokens, row.ner_tags, strict=True)
            if not token.isspace()]  # fmt: skip
    if body:
        lines += [*body, ""]
    return "".join(f"{line}\n" for line in lines)
