"""The offset firewall between Label Studio and the workbench.

Inside the workbench every offset is a Python code point. Label Studio regions arrive with offsets that may be
code points or browser UTF-16 code units, and with whitespace the annotator dragged into the selection.
Label Studio 1.23's editor counts code points (its `fixCodePointsInRange` / `[...text].length`); older editors
and other tools counted UTF-16 units (label-studio#1347). So regions are read either way, and pushed in code
points by default (`units="utf16"` for an editor that counts UTF-16). Every region is checked against its
text; one that matches under no interpretation is reported (`RegionMismatch`), never searched for elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

from workbench.records import Span, stable_hash

Units = Literal["codepoints", "utf16"]

# Characters outside the Basic Multilingual Plane: one code point, two UTF-16 code units (a surrogate pair).
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _astral_positions(text: str) -> list[int]:
    return [match.start() for match in _ASTRAL.finditer(text)]


def to_utf16(text: str, index: int) -> int:
    """The UTF-16 code-unit offset of code-point `index` in `text` (what a browser's `String.length` counts)."""
    if not 0 <= index <= len(text):
        raise ValueError(f"code-point index {index} is outside the text (length {len(text)})")
    if _ASTRAL.search(text) is None:
        return index
    return index + len(_ASTRAL.findall(text, 0, index))


def from_utf16(text: str, offset: int) -> int:
    """The code-point index of UTF-16 `offset` in `text`; an offset inside a surrogate pair is a ValueError."""
    astral = _astral_positions(text)
    if not 0 <= offset <= len(text) + len(astral):
        raise ValueError(f"UTF-16 offset {offset} is outside the text (length {len(text) + len(astral)} units)")
    shift = 0
    for position in astral:
        units = position + shift  # where this astral character starts, in code units
        if offset <= units:
            break
        if offset == units + 1:
            raise ValueError(f"UTF-16 offset {offset} falls inside a surrogate pair (character {position})")
        shift += 1
    return offset - shift


def _convert(text: str, index: int, units: Units) -> int:
    return to_utf16(text, index) if units == "utf16" else index


def region_id(span: Span, from_name: str = "label") -> str:
    """A stable short region id: the same span gets the same id on every push, so re-pushing changes nothing."""
    return stable_hash("region", from_name, span.start, span.end, span.label, length=10)


def spans_to_regions(
    text: str,
    spans: Iterable[Span],
    *,
    from_name: str = "label",
    to_name: str = "text",
    units: Units = "codepoints",
) -> list[dict[str, Any]]:
    """Label Studio `labels` result regions for `spans`, offsets in `units`; duplicate spans are sent once.

    Push in the units the editor counts, and read back with the same `prefer`: then even a region whose text
    also occurs one place over (possible after an emoji: "🙂aa") comes back as the same span.

    Every span must hold its own text (`text[start:end] == span.text`): a span that does not is a bug upstream,
    and sending it would show the annotator the wrong words.
    """
    regions: list[dict[str, Any]] = []
    seen: set[tuple[int, int, str]] = set()
    for span in spans:
        _check_span(text, span)
        key = (span.start, span.end, span.label)
        if key in seen:
            continue
        seen.add(key)
        regions.append(
            {
                "id": region_id(span, from_name),
                "from_name": from_name,
                "to_name": to_name,
                "type": "labels",
                "value": {
                    "start": _convert(text, span.start, units),
                    "end": _convert(text, span.end, units),
                    "text": span.text,
                    "labels": [span.label],
                },
            }
        )
    return regions


def _check_span(text: str, span: Span) -> None:
    if not 0 <= span.start < span.end <= len(text) or text[span.start : span.end] != span.text:
        raise ValueError(
            f"span {span.start}-{span.end} {span.label} {span.text!r} does not match its paragraph text "
            f"{text[max(span.start, 0) : max(span.end, 0)]!r}"
        )


class RegionMismatch(Exception):
    """A region whose offsets select its text under no interpretation (or select only whitespace)."""

    def __init__(self, reason: str, value: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.value = value


@dataclass(frozen=True)
class RegionFix:
    """What it took to turn one region into spans: nothing (`kept`), UTF-16 conversion, whitespace trimming.

    `ambiguous` means both offset interpretations select the region's text at different places (possible only
    after an astral character, e.g. "🙂aa"); the preferred interpretation was used and the region is counted.
    `unlabelled`: the region carried no label, so it gave no span (counted, not silently lost).
    """

    converted: bool = False
    trimmed: bool = False
    ambiguous: bool = False
    unlabelled: bool = False

    @property
    def kept(self) -> bool:
        """The region gave its spans exactly as sent."""
        return not (self.converted or self.trimmed or self.unlabelled)


def region_to_spans(
    text: str, value: dict[str, Any], *, prefer: Units = "codepoints"
) -> tuple[tuple[Span, ...], RegionFix]:
    """The spans of one region's `value` (one per label; none if it has no label) and what was fixed.

    Offsets are tried as code points, then as UTF-16 code units; the first that selects exactly `value["text"]`
    wins (`prefer` decides only when both do, at different places). Whitespace at the edges is trimmed.
    Raises RegionMismatch when no interpretation selects the text, or the selection is only whitespace.
    """
    if not isinstance(value, dict):
        raise RegionMismatch(f"the region value is not an object: {value!r}", value)
    start, end, label_text = value.get("start"), value.get("end"), value.get("text")
    if not _is_int(start) or not _is_int(end):
        raise RegionMismatch(f"the region offsets are not integers: start={start!r}, end={end!r}", value)
    if not isinstance(label_text, str):
        raise RegionMismatch("the region carries no text to check its offsets against", value)
    labels = value.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(label, str) and label for label in labels):
        raise RegionMismatch(f"the region's labels are not a list of names: {labels!r}", value)

    as_codepoints = _select(text, start, end, label_text)
    as_utf16 = _select_utf16(text, start, end, label_text)
    if as_codepoints is None and as_utf16 is None:
        raise RegionMismatch(_mismatch_reason(text, start, end, label_text), value)
    ambiguous = as_codepoints is not None and as_utf16 is not None and as_codepoints != as_utf16
    if as_codepoints is not None and not (ambiguous and prefer == "utf16"):
        chosen, converted = as_codepoints, False
    else:
        assert as_utf16 is not None
        chosen, converted = as_utf16, True

    first, last = chosen
    trimmed_first, trimmed_last = _trim(text, first, last)
    if trimmed_first == trimmed_last:
        raise RegionMismatch(f"the region {start}-{end} selects only whitespace ({label_text!r})", value)
    fix = RegionFix(
        converted=converted,
        trimmed=(trimmed_first, trimmed_last) != (first, last),
        ambiguous=ambiguous,
        unlabelled=not labels,
    )
    piece = text[trimmed_first:trimmed_last]
    return tuple(Span(trimmed_first, trimmed_last, label, piece) for label in dict.fromkeys(labels)), fix


def region_to_span(text: str, value: dict[str, Any], *, prefer: Units = "codepoints") -> tuple[Span, RegionFix]:
    """The one span of a single-label region; see `region_to_spans` for regions with zero or several labels."""
    spans, fix = region_to_spans(text, value, prefer=prefer)
    if len(spans) != 1:
        raise ValueError(f"region has {len(spans)} labels, expected one; use region_to_spans")
    return spans[0], fix


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _select(text: str, start: int, end: int, expected: str) -> tuple[int, int] | None:
    if 0 <= start <= end <= len(text) and text[start:end] == expected:
        return start, end
    return None


def _select_utf16(text: str, start: int, end: int, expected: str) -> tuple[int, int] | None:
    if text.isascii() or _ASTRAL.search(text) is None:  # the two readings coincide: no conversion to try
        return _select(text, start, end, expected)
    try:
        first, last = from_utf16(text, start), from_utf16(text, end)
    except ValueError:
        return None
    return _select(text, first, last, expected)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _mismatch_reason(text: str, start: int, end: int, expected: str) -> str:
    found = repr(text[start:end]) if 0 <= start <= end <= len(text) else "nothing (outside the text)"
    return (
        f"the region {start}-{end} says {expected!r} but the paragraph has {found} there, "
        "as code points and as UTF-16 offsets"
    )


@dataclass(frozen=True)
class AlignmentReport:
    """Counters of what the offset firewall and the token alignment did, published with every release."""

    regions: int = 0
    kept: int = 0
    trimmed: int = 0
    converted: int = 0
    ambiguous: int = 0
    unlabelled: int = 0
    split_tokens: int = 0
    conflicts: tuple[dict[str, Any], ...] = field(default=())

    @classmethod
    def of_region(cls, fix: RegionFix) -> AlignmentReport:
        """The counters for one converted region."""
        return cls(
            regions=1,
            kept=int(fix.kept),
            trimmed=int(fix.trimmed),
            converted=int(fix.converted),
            ambiguous=int(fix.ambiguous),
            unlabelled=int(fix.unlabelled),
        )

    @classmethod
    def of_alignment(
        cls,
        split_tokens: int,
        conflicts: Sequence[tuple[Span, Span]],
        *,
        row: str | None = None,
        task_id: int | None = None,
    ) -> AlignmentReport:
        """The counters for one aligned row; `conflicts` are (untagged, tagged) pairs from `alignment.align`."""
        where: dict[str, Any] = {}
        if row is not None:
            where["row"] = row
        if task_id is not None:
            where["task_id"] = task_id
        described = tuple(
            {**where, "tagged": tagged.as_dict(), "untagged": untagged.as_dict()} for untagged, tagged in conflicts
        )
        return cls(split_tokens=split_tokens, conflicts=described)

    def merge(self, other: AlignmentReport) -> AlignmentReport:
        """The sum of two reports (conflicts concatenated in order)."""
        return AlignmentReport(
            regions=self.regions + other.regions,
            kept=self.kept + other.kept,
            trimmed=self.trimmed + other.trimmed,
            converted=self.converted + other.converted,
            ambiguous=self.ambiguous + other.ambiguous,
            unlabelled=self.unlabelled + other.unlabelled,
            split_tokens=self.split_tokens + other.split_tokens,
            conflicts=self.conflicts + other.conflicts,
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able counters, conflicts as a list."""
        return {
            "regions": self.regions,
            "kept": self.kept,
            "trimmed": self.trimmed,
            "converted": self.converted,
            "ambiguous": self.ambiguous,
            "unlabelled": self.unlabelled,
            "split_tokens": self.split_tokens,
            "conflicts": [dict(conflict) for conflict in self.conflicts],
        }
