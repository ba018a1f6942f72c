"""Spans that stay exact at token level: tokens split at every span edge, IOB2 tags, and the way back.

spaCy's `char_span` and `offsets_to_biluo_tags` either drop or stretch a span that ends inside a token
("Ankara" in "Ankaras’"). Here the tokenizer's tokens are split at every span boundary instead, so every
human span is a whole number of tokens and `tokens`/`ner_tags` decode back to exactly the character spans.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from spacy.attrs import IDX, LENGTH
from spacy.tokens import Doc

from workbench.records import Span

Overlap = Literal["longest", "first"]


@dataclass(frozen=True)
class Aligned:
    """One paragraph as tokens + IOB2 tags.

    The tokens cover `text` with nothing between them but single spaces (`release.converters.words_and_spaces`
    derives the spacing, for a spaCy Doc). `tagged` are the spans the tags encode
    (non-overlapping); `conflicts` are `(untagged, tagged)` pairs: a span that overlapped a preferred one and so
    got no tags (it stays in the row's spans). `split_tokens` counts tokenizer tokens cut at a span edge.
    """

    tokens: list[str]
    tags: list[str]
    split_tokens: int
    conflicts: list[tuple[Span, Span]]
    tagged: tuple[Span, ...] = ()


def align(
    text: str,
    spans: Sequence[Span],
    tokenizer: Callable[[str], Doc],
    *,
    overlap: Overlap = "longest",
) -> Aligned:
    """Tokenize `text`, split tokens at every span boundary inside them, and tag the spans the policy keeps.

    Spans must hold their own text and have no whitespace at their edges (`offsets.region_to_spans` trims):
    a tag sequence cannot say whether a space belongs to a span, so such a span could not decode exactly.
    Overlap policy: `longest` prefers the longer span (ties: the earlier start); `first` prefers the earlier
    start (ties: the longer). Remaining ties (same start and end) go to the label that sorts first.
    """
    for span in spans:
        _check_span(text, span)
    boundaries = sorted({edge for span in spans for edge in (span.start, span.end)})

    tokens: list[str] = []
    starts: list[int] = []
    split_tokens = 0
    doc = tokenizer(text)
    # Read offsets as one array: creating a Token object per token costs more than the rest of the loop.
    for begin, length in doc.to_array([IDX, LENGTH]).tolist() if len(doc) else []:
        end = begin + length
        first = bisect_right(boundaries, begin)  # the span edges strictly inside the token
        last = bisect_left(boundaries, end, first)
        if first < last:
            split_tokens += 1
        pieces = [begin, *boundaries[first:last], end]
        for left, right in zip(pieces, pieces[1:], strict=False):
            tokens.append(text[left:right])
            starts.append(left)

    tagged, conflicts = choose_tagged(spans, overlap=overlap)
    tags = ["O"] * len(tokens)
    index_of = {start: i for i, start in enumerate(starts)}
    for span in tagged:
        i = index_of[span.start]
        tags[i] = f"B-{span.label}"
        i += 1
        while i < len(tokens) and starts[i] < span.end:
            tags[i] = f"I-{span.label}"
            i += 1
    return Aligned(
        tokens=tokens,
        tags=tags,
        split_tokens=split_tokens,
        conflicts=conflicts,
        tagged=tagged,
    )


def choose_tagged(
    spans: Sequence[Span], *, overlap: Overlap = "longest"
) -> tuple[tuple[Span, ...], list[tuple[Span, Span]]]:
    """Which spans get tags: a greedy pass in policy order; each loser is paired with the winner it overlaps.

    Identical spans count once. Returns (tagged spans by position, [(untagged, tagged), ...] by position).
    """
    if overlap == "longest":
        order = sorted(set(spans), key=lambda s: (s.start - s.end, s.start, s.label, s.text))
    elif overlap == "first":
        order = sorted(set(spans), key=lambda s: (s.start, s.start - s.end, s.label, s.text))
    else:
        raise ValueError(f"unknown overlap policy {overlap!r}; use 'longest' or 'first'")
    winners: list[Span] = []
    conflicts: list[tuple[Span, Span]] = []
    for span in order:
        winner = next((w for w in winners if w.start < span.end and span.start < w.end), None)
        if winner is None:
            winners.append(span)
        else:
            conflicts.append((span, winner))
    return tuple(sorted(winners)), sorted(conflicts)


def tags_to_spans(text: str, tokens: Sequence[str], tags: Sequence[str]) -> list[Span]:
    """The character spans that IOB2 `tags` over `tokens` encode, tokens located in `text` in order.

    Tokens are separated by nothing or one space (how `Doc(words, spaces)` rebuilds text). An `I-X` that does
    not continue an `X` span starts one (conlleval's reading).
    """
    if len(tokens) != len(tags):
        raise ValueError(f"{len(tokens)} tokens but {len(tags)} tags")
    starts = _locate(text, tokens)
    spans: list[Span] = []
    current: tuple[int, int, str] | None = None  # start, end, label
    for token, start, tag in zip(tokens, starts, tags, strict=True):
        end = start + len(token)
        if tag == "O":
            prefix, label = "O", ""
        elif tag[:2] in ("B-", "I-") and len(tag) > 2:
            prefix, label = tag[0], tag[2:]
        else:
            raise ValueError(f"{tag!r} is not an IOB2 tag (O, B-LABEL or I-LABEL)")
        if prefix == "I" and current is not None and current[2] == label:
            current = (current[0], end, label)
            continue
        if current is not None:
            spans.append(Span(current[0], current[1], current[2], text[current[0] : current[1]]))
            current = None
        if prefix != "O":
            current = (start, end, label)
    if current is not None:
        spans.append(Span(current[0], current[1], current[2], text[current[0] : current[1]]))
    return spans


def iob_names(labels: Sequence[str]) -> list[str]:
    """The IOB2 tag names in label order: the `ClassLabel` names, so tag ids are stable across releases."""
    return ["O", *(f"{prefix}-{label}" for label in labels for prefix in ("B", "I"))]


def _locate(text: str, tokens: Sequence[str]) -> list[int]:
    starts: list[int] = []
    position = 0
    for token in tokens:
        if not token:
            raise ValueError("empty token")
        if text.startswith(token, position):
            starts.append(position)
        elif text.startswith(" ", position) and text.startswith(token, position + 1):
            starts.append(position + 1)
        else:
            raise ValueError(f"token {token!r} is not found at character {position} of the text")
        position = starts[-1] + len(token)
    if text[position:] not in ("", " "):
        raise ValueError(f"the tokens end at character {position} but the text goes on: {text[position:]!r}")
    return starts


def _check_span(text: str, span: Span) -> None:
    if not 0 <= span.start < span.end <= len(text) or text[span.start : span.end] != span.text:
        raise ValueError(f"span {span.start}-{span.end} {span.label} {span.text!r} does not match the text")
    if span.text != span.text.strip():
        raise ValueError(f"span {span.start}-{span.end} {span.text!r} has whitespace at an edge; trim it first")
