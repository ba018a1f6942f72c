"""How counts are said in messages: "52 with no annotation, 3 only skipped", never a Python dict; and names
listed in the order people count them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Why a task gave no dataset row, as a sentence says it.
EXCLUDED = {
    "no_annotation": "with no annotation",
    "skipped": "only skipped",
    "retired": "retired",
    "awaiting_check": "awaiting a second look after an edit",
}


def counted(counts: Mapping[str, int], words: Mapping[str, str] | None = None, *, none: str = "none") -> str:
    """`counts` as "N what, M other", largest first (ties by name); `words` says a key in words; `none` when
    every count is zero."""
    said = [(n, key) for key, n in counts.items() if n]
    if not said:
        return none
    said.sort(key=lambda item: (-item[0], item[1]))
    return ", ".join(f"{n:,} {(words or {}).get(key, key)}" for n, key in said)


def natural(text: str) -> tuple[Any, ...]:
    """A sort key that puts "annotator 2" before "annotator 10" and "0.2.0" before "0.10.0", as people list them."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part)
