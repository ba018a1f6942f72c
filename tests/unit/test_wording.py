"""Counts in messages read as words, never as a Python dict."""

from __future__ import annotations

import pytest

from workbench.wording import EXCLUDED, counted


@pytest.mark.parametrize(
    ("description", "counts", "words", "said"),
    [
        ("reasons in words, largest first", {"no_annotation": 52, "skipped": 3}, EXCLUDED,
         "52 with no annotation, 3 only skipped"),
        ("zero counts are left out", {"retired": 0, "skipped": 1}, EXCLUDED, "1 only skipped"),
        ("nothing to count", {"skipped": 0}, EXCLUDED, "none"),
        ("keys without words are said as they are, thousands grouped", {"WEAPON": 1077}, None, "1,077 WEAPON"),
        ("ties in name order", {"b": 2, "a": 2}, None, "2 a, 2 b"),
    ],
)
def test_counts_are_said_in_words(description: str, counts: dict, words: dict | None, said: str) -> None:
    assert counted(counts, words) == said, description
    assert "{" not in counted(counts, words)
