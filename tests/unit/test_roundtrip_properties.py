"""Round-trip properties over random paragraphs: regions, tokens and tags never lose or move a span."""

from __future__ import annotations

import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc

from workbench.records import Span
from workbench.release.converters import words_and_spaces
from workbench.spans.alignment import align, tags_to_spans
from workbench.spans.offsets import region_to_spans, spans_to_regions


def spaces_of(text: str, tokens: list[str]) -> list[bool]:
    """The tokens' trailing spaces, derived where the release derives them; the tokens cover the text exactly."""
    words, spaces, _ = words_and_spaces(text, tokens, ["O"] * len(tokens))
    assert words == tokens  # no gap between tokens but one plain space
    return spaces

NLP = spacy.blank("en")
TOKENIZER = NLP.tokenizer
LABELS = ["PERSON", "GPE", "ORG"]

WORDS = [
    "Ankara",
    "Ankaras’",
    "Zelenskys",
    "Volodymyr",
    "Erdoğan",
    "Türkçe",
    "İstanbul",
    "Русский",
    "Киев",
    "中文",
    "北京",
    "🙂",
    "🇹🇷",
    "🇺🇦",
    "👨\u200d👩\u200d👧",
    "e\u0301",
    "S-400s",
    "U.S.",
    "(Kyiv)",
    "’",
    "'s",
    ",",
    ".",
    "—",
    '"',
    "a",
    "aa",
    "100",
    "𝔘𝔫𝔦",
]
SEPARATORS = [" ", " ", " ", "", "  ", "   ", "\t", " \t ", "\u00a0", "\u2003"]
LINE_BREAKS = set("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")

words_text = st.lists(st.tuples(st.sampled_from(SEPARATORS), st.sampled_from(WORDS)), max_size=14).map(
    lambda pairs: "".join(sep + word for sep, word in pairs)
)
any_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters=sorted(LINE_BREAKS)), max_size=40
)
texts = st.one_of(words_text, any_text, st.tuples(words_text, any_text).map("".join))


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


@st.composite
def text_and_spans(draw: st.DrawFn, *, overlapping: bool) -> tuple[str, list[Span]]:
    """A paragraph and spans whose edges are non-whitespace; disjoint unless `overlapping`."""
    text = draw(texts)
    spans: list[Span] = []
    if overlapping:
        count = draw(st.integers(0, 6))
        for _ in range(count):
            a, b = sorted(draw(st.tuples(st.integers(0, len(text)), st.integers(0, len(text)))))
            spans.append(_make(text, a, b, draw(st.sampled_from(LABELS))))
    else:
        cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=10)))
        for a, b in zip(cuts, cuts[1:], strict=False):
            if draw(st.booleans()):
                spans.append(_make(text, a, b, draw(st.sampled_from(LABELS))))
    return text, sorted({span for span in spans if span.text})


def _make(text: str, a: int, b: int, label: str) -> Span:
    a, b = _trim(text, a, b)
    return Span(a, b, label, text[a:b])


@settings(max_examples=200, deadline=None)
@given(text_and_spans(overlapping=False), st.sampled_from(["utf16", "codepoints"]))
def test_spans_survive_label_studio_regions(case: tuple[str, list[Span]], units: str) -> None:
    text, spans = case
    regions = spans_to_regions(text, spans, units=units)  # type: ignore[arg-type]
    back: list[Span] = []
    for region in regions:
        got, fix = region_to_spans(text, region["value"], prefer=units)  # type: ignore[arg-type]
        assert not fix.trimmed
        back.extend(got)
    assert sorted(back) == spans


@settings(max_examples=200, deadline=None)
@given(text_and_spans(overlapping=False))
def test_spans_survive_tokens_and_tags(case: tuple[str, list[Span]]) -> None:
    text, spans = case
    aligned = align(text, spans, TOKENIZER, overlap="longest")
    assert Doc(NLP.vocab, words=aligned.tokens, spaces=spaces_of(text, aligned.tokens)).text == text
    assert aligned.conflicts == []
    assert tags_to_spans(text, aligned.tokens, aligned.tags) == spans


@settings(max_examples=200, deadline=None)
@given(text_and_spans(overlapping=True), st.sampled_from(["longest", "first"]))
def test_overlapping_spans_keep_a_decodable_subset(case: tuple[str, list[Span]], policy: str) -> None:
    text, spans = case
    aligned = align(text, spans, TOKENIZER, overlap=policy)  # type: ignore[arg-type]
    assert Doc(NLP.vocab, words=aligned.tokens, spaces=spaces_of(text, aligned.tokens)).text == text
    tagged = list(aligned.tagged)
    # every span is either tagged or reported against the tagged span that beat it
    assert sorted(tagged + [loser for loser, _ in aligned.conflicts]) == spans
    for loser, winner in aligned.conflicts:
        assert winner in tagged and loser.start < winner.end and winner.start < loser.end
    for left, right in zip(tagged, tagged[1:], strict=False):
        assert left.end <= right.start
    assert tags_to_spans(text, aligned.tokens, aligned.tags) == tagged
    # every span, tagged or not, is a whole number of tokens
    starts, ends, position = set(), set(), 0
    for token, space in zip(aligned.tokens, spaces_of(text, aligned.tokens), strict=True):
        starts.add(position)
        position += len(token)
        ends.add(position)
        position += space
    for span in spans:
        assert span.start in starts and span.end in ends


@settings(max_examples=100, deadline=None)
@given(text_and_spans(overlapping=False))
def test_whitespace_dragged_into_a_region_is_trimmed_back(case: tuple[str, list[Span]]) -> None:
    text, spans = case
    padded = f" \t{text}  "
    for span in spans:
        start, end = span.start + 2, span.end + 2
        while start > 0 and padded[start - 1].isspace():
            start -= 1
        while end < len(padded) and padded[end].isspace():
            end += 1
        got, fix = region_to_spans(
            padded, {"start": start, "end": end, "text": padded[start:end], "labels": ["X"]}
        )
        assert got == (Span(span.start + 2, span.end + 2, "X", span.text),)
        assert fix.trimmed == ((start, end) != (span.start + 2, span.end + 2))
