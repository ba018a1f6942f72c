"""The offset firewall: UTF-16 <-> code points, span <-> Label Studio region, trimming, and mismatch reports."""

from __future__ import annotations

import json

import pytest

from workbench.records import Span
from workbench.spans.offsets import (
    AlignmentReport,
    RegionFix,
    RegionMismatch,
    Units,
    from_utf16,
    region_to_span,
    region_to_spans,
    spans_to_regions,
    to_utf16,
)

EMOJI = "🇹🇷 Erdoğan met Biden 🙂 in Rome"
# What a UTF-16 browser reports for EMOJI: the flag is 2 code points / 4 units, 🙂 is 1 code point / 2 units.
BROWSER = {"Erdoğan": (5, 12), "Biden": (17, 22), "Rome": (29, 33)}
CODEPOINTS = {"Erdoğan": (3, 10), "Biden": (15, 20), "Rome": (26, 30)}
FAMILY = "👨\u200d👩\u200d👧 Русский 中文"  # 3 astral code points joined by 2 ZWJ: 5 code points, 8 units


@pytest.mark.parametrize(
    ("description", "text", "index", "units"),
    [
        ("ASCII: units are code points", "Volodymyr Zelensky", 10, 10),
        ("end of ASCII text", "Rome", 4, 4),
        ("Turkish letters stay in the BMP", "Türkçe Erdoğan", 14, 14),
        ("Cyrillic and CJK stay in the BMP", "Русский 中文", 9, 9),
        ("before a flag", EMOJI, 0, 0),
        ("between the flag's two regional indicators", EMOJI, 1, 2),
        ("after the flag", EMOJI, 2, 4),
        ("after the flag and 🙂", EMOJI, 26, 29),
        ("end of the emoji text", EMOJI, len(EMOJI), len(EMOJI) + 3),
        ("after a ZWJ family", FAMILY, 5, 8),
        ("empty text", "", 0, 0),
    ],
)
def test_utf16_conversion_both_ways(description: str, text: str, index: int, units: int) -> None:
    assert to_utf16(text, index) == units
    assert from_utf16(text, units) == index
    assert len(text[:index].encode("utf-16-le")) // 2 == units


@pytest.mark.parametrize(
    ("description", "text", "offset"),
    [
        ("inside the first surrogate pair of a flag", EMOJI, 1),
        ("inside 🙂's surrogate pair", EMOJI, 24),
        ("past the end in units", EMOJI, len(EMOJI) + 4),
        ("negative", "Rome", -1),
        ("past the end of ASCII text", "Rome", 5),
    ],
)
def test_from_utf16_rejects_offsets_no_browser_can_produce(description: str, text: str, offset: int) -> None:
    with pytest.raises(ValueError):
        from_utf16(text, offset)


@pytest.mark.parametrize(("description", "index"), [("negative", -1), ("past the end", 5)])
def test_to_utf16_rejects_indexes_outside_the_text(description: str, index: int) -> None:
    with pytest.raises(ValueError):
        to_utf16("Rome", index)


def _span(text: str, piece: str, label: str, occurrence: int = 0) -> Span:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(piece, start + 1)
    return Span(start, start + len(piece), label, piece)


def test_spans_to_regions_builds_label_studio_results() -> None:
    spans = [_span(EMOJI, "Erdoğan", "PERSON"), _span(EMOJI, "Rome", "GPE")]
    regions = spans_to_regions(EMOJI, spans, units="utf16")
    assert [r["value"] for r in regions] == [
        {"start": 5, "end": 12, "text": "Erdoğan", "labels": ["PERSON"]},
        {"start": 29, "end": 33, "text": "Rome", "labels": ["GPE"]},
    ]
    for region in regions:
        assert region["from_name"] == "label" and region["to_name"] == "text" and region["type"] == "labels"
        assert isinstance(region["id"], str) and 0 < len(region["id"]) <= 16
    json.dumps(regions)


@pytest.mark.parametrize(
    ("description", "units", "expected"),
    [
        ("code points (what Label Studio 1.23 counts)", "codepoints", CODEPOINTS),
        ("UTF-16 for an editor that counts UTF-16", "utf16", BROWSER),
    ],
)
def test_spans_to_regions_units(description: str, units: Units, expected: dict) -> None:
    spans = [_span(EMOJI, piece, "X") for piece in expected]
    regions = spans_to_regions(EMOJI, spans, units=units)
    assert {r["value"]["text"]: (r["value"]["start"], r["value"]["end"]) for r in regions} == expected


def test_spans_to_regions_sends_code_points_by_default() -> None:
    spans = [_span(EMOJI, piece, "X") for piece in CODEPOINTS]
    assert spans_to_regions(EMOJI, spans) == spans_to_regions(EMOJI, spans, units="codepoints")


def test_region_ids_are_stable_and_distinct() -> None:
    spans = [_span(EMOJI, "Biden", "PERSON"), _span(EMOJI, "Biden", "ORG"), _span(EMOJI, "Rome", "GPE")]
    first = spans_to_regions(EMOJI, spans, from_name="ner", to_name="body")
    again = spans_to_regions(EMOJI, list(reversed(spans)), from_name="ner", to_name="body")
    assert sorted(r["id"] for r in first) == sorted(r["id"] for r in again)
    assert len({r["id"] for r in first}) == 3
    assert {(r["from_name"], r["to_name"]) for r in first} == {("ner", "body")}


def test_duplicate_spans_are_sent_once() -> None:
    span = _span(EMOJI, "Rome", "GPE")
    assert len(spans_to_regions(EMOJI, [span, span])) == 1


@pytest.mark.parametrize(
    ("description", "span"),
    [
        ("text differs from the paragraph", Span(0, 4, "GPE", "Rome")),
        ("past the end", Span(28, 40, "GPE", "me")),
        ("empty", Span(3, 3, "GPE", "")),
    ],
)
def test_spans_to_regions_refuses_spans_that_do_not_hold_their_text(description: str, span: Span) -> None:
    with pytest.raises(ValueError):
        spans_to_regions(EMOJI, [span])


def _value(start: int, end: int, text: str, *labels: str) -> dict:
    return {"start": start, "end": end, "text": text, "labels": list(labels) or ["GPE"]}


@pytest.mark.parametrize(
    ("description", "text", "value", "expected", "fix"),
    [
        (
            "ASCII region kept as is",
            "Ankaras’ troops",
            _value(0, 6, "Ankara"),
            [Span(0, 6, "GPE", "Ankara")],
            RegionFix(),
        ),
        (
            "emoji paragraph, UTF-16 offsets from a browser: converted",
            EMOJI,
            _value(*BROWSER["Rome"], "Rome"),
            [Span(26, 30, "GPE", "Rome")],
            RegionFix(converted=True),
        ),
        (
            "emoji paragraph, UTF-16 offsets of a name after the flag",
            EMOJI,
            _value(*BROWSER["Erdoğan"], "Erdoğan", "PERSON"),
            [Span(3, 10, "PERSON", "Erdoğan")],
            RegionFix(converted=True),
        ),
        (
            "emoji paragraph, code-point offsets (Label Studio 1.23): kept",
            EMOJI,
            _value(*CODEPOINTS["Biden"], "Biden", "PERSON"),
            [Span(15, 20, "PERSON", "Biden")],
            RegionFix(),
        ),
        (
            "leading and trailing whitespace trimmed",
            "Erdoğan met  Biden\tin Rome",
            _value(12, 19, " Biden\t", "PERSON"),
            [Span(13, 18, "PERSON", "Biden")],
            RegionFix(trimmed=True),
        ),
        (
            "UTF-16 offsets and whitespace: converted and trimmed",
            EMOJI,
            _value(16, 23, " Biden ", "PERSON"),
            [Span(15, 20, "PERSON", "Biden")],
            RegionFix(converted=True, trimmed=True),
        ),
        (
            "two labels on one region: one span per label",
            EMOJI,
            _value(*CODEPOINTS["Rome"], "Rome", "GPE", "LOC"),
            [Span(26, 30, "GPE", "Rome"), Span(26, 30, "LOC", "Rome")],
            RegionFix(),
        ),
        (
            "a label repeated on one region counts once",
            EMOJI,
            _value(*CODEPOINTS["Rome"], "Rome", "GPE", "GPE"),
            [Span(26, 30, "GPE", "Rome")],
            RegionFix(),
        ),
        (
            "no label: no span, counted as unlabelled",
            EMOJI,
            {"start": 26, "end": 30, "text": "Rome", "labels": []},
            [],
            RegionFix(unlabelled=True),
        ),
        (
            "labels key missing: no span, counted as unlabelled",
            EMOJI,
            {"start": 26, "end": 30, "text": "Rome"},
            [],
            RegionFix(unlabelled=True),
        ),
        (
            "both readings match at different places: code points preferred, flagged ambiguous",
            "🙂aa",
            _value(2, 3, "a"),
            [Span(2, 3, "GPE", "a")],
            RegionFix(ambiguous=True),
        ),
    ],
)
def test_region_to_spans(description: str, text: str, value: dict, expected: list[Span], fix: RegionFix) -> None:
    spans, got = region_to_spans(text, value)
    assert list(spans) == expected
    assert got == fix
    for span in spans:
        assert text[span.start : span.end] == span.text


def test_ambiguous_region_follows_the_preferred_units() -> None:
    spans, fix = region_to_spans("🙂aa", _value(2, 3, "a"), prefer="utf16")
    assert spans == (Span(1, 2, "GPE", "a"),)
    assert fix == RegionFix(converted=True, ambiguous=True)


def test_region_fix_kept() -> None:
    assert RegionFix().kept
    assert not RegionFix(converted=True).kept
    assert not RegionFix(trimmed=True).kept
    assert not RegionFix(unlabelled=True).kept
    assert RegionFix(ambiguous=True).kept


@pytest.mark.parametrize(
    ("description", "text", "value", "reason"),
    [
        ("text at the offsets is something else", EMOJI, _value(0, 4, "Rome"), "Rome"),
        (
            "text occurs elsewhere in the paragraph: reported, never moved",
            "Rome, not Rome",
            _value(1, 5, "Rome"),
            "Rome",
        ),
        ("offsets past the end of the text", "Rome", _value(10, 14, "Rome"), "outside"),
        ("negative offsets", "Rome", _value(-4, 0, "Rome"), "Rome"),
        ("end before start", "Rome", _value(4, 0, "Rome"), "Rome"),
        ("offset inside a surrogate pair, no code-point match", EMOJI, _value(1, 3, "🇷"), "UTF-16"),
        ("selection is only whitespace", "Erdoğan  met", _value(7, 9, "  "), "whitespace"),
        ("empty selection", "Erdoğan met", _value(3, 3, ""), "whitespace"),
        ("region without text to check", "Rome", {"start": 0, "end": 4, "labels": ["GPE"]}, "no text"),
        ("offsets are not integers", "Rome", {"start": "0", "end": 4, "text": "Rome"}, "not integers"),
        ("offsets are floats", "Rome", {"start": 0.0, "end": 4.0, "text": "Rome"}, "not integers"),
        ("offsets are booleans", "Rome", {"start": False, "end": True, "text": "R"}, "not integers"),
        ("labels are not a list", "Rome", {"start": 0, "end": 4, "text": "Rome", "labels": "GPE"}, "labels"),
        ("a label is empty", "Rome", {"start": 0, "end": 4, "text": "Rome", "labels": [""]}, "labels"),
        ("value is not an object", "Rome", ["Rome"], "not an object"),
    ],
)
def test_region_that_matches_nothing_raises_region_mismatch(
    description: str, text: str, value: dict, reason: str
) -> None:
    with pytest.raises(RegionMismatch) as caught:
        region_to_spans(text, value)
    assert reason in caught.value.reason
    assert caught.value.value == value
    assert not isinstance(caught.value, ValueError)


def test_region_to_span_gives_the_one_span() -> None:
    span, fix = region_to_span(EMOJI, _value(*BROWSER["Biden"], "Biden", "PERSON"))
    assert span == Span(15, 20, "PERSON", "Biden")
    assert fix == RegionFix(converted=True)


@pytest.mark.parametrize(("description", "labels"), [("no label", []), ("two labels", ["GPE", "LOC"])])
def test_region_to_span_refuses_regions_with_other_than_one_label(description: str, labels: list[str]) -> None:
    with pytest.raises(ValueError, match="region_to_spans"):
        region_to_span(EMOJI, {"start": 26, "end": 30, "text": "Rome", "labels": labels})


def test_alignment_report_counts_and_merges() -> None:
    report = AlignmentReport()
    for fix in [RegionFix(), RegionFix(converted=True, trimmed=True), RegionFix(unlabelled=True)]:
        report = report.merge(AlignmentReport.of_region(fix))
    winner, loser = Span(0, 15, "ORG", "Bank of America"), Span(8, 15, "GPE", "America")
    report = report.merge(AlignmentReport.of_alignment(2, [(loser, winner)], row="abc", task_id=7))
    report = report.merge(AlignmentReport.of_alignment(1, []))
    assert report.as_dict() == {
        "regions": 3,
        "kept": 1,
        "trimmed": 1,
        "converted": 1,
        "ambiguous": 0,
        "unlabelled": 1,
        "split_tokens": 3,
        "conflicts": [
            {"row": "abc", "task_id": 7, "tagged": winner.as_dict(), "untagged": loser.as_dict()},
        ],
    }
    json.dumps(report.as_dict())


def test_alignment_report_conflict_without_row_names_only_the_spans() -> None:
    winner, loser = Span(0, 15, "ORG", "Bank of America"), Span(8, 15, "GPE", "America")
    assert AlignmentReport.of_alignment(0, [(loser, winner)]).as_dict()["conflicts"] == [
        {"tagged": winner.as_dict(), "untagged": loser.as_dict()}
    ]


def test_alignment_report_merge_leaves_both_reports_unchanged() -> None:
    a = AlignmentReport.of_region(RegionFix())
    b = AlignmentReport.of_region(RegionFix(converted=True))
    merged = a.merge(b)
    assert (a.regions, b.regions, merged.regions) == (1, 1, 2)
    assert merged == b.merge(a)
