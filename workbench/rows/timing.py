"""Annotation time: the seconds Label Studio recorded in its editor (`lead_time`) for each annotation, summed into
hours and spread into a median and a 90th percentile per task, overall, per annotator and per model version that
pre-annotated the task. With the corrections per task, it says whether a retrained model saved annotators work.

Pure: the build's `timed` entries in, figures out. An annotation is one task for its annotator; a skip took time
too, so it counts (and is counted apart).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from workbench.wording import natural

# Each entry of the build's `timed` list: annotator's name, model version seen, seconds, skipped.
Timed = Sequence[Any]


def annotation_time(entries: Iterable[Timed], untimed: int = 0) -> dict[str, Any]:
    """Every timed annotation summed and spread, overall, per annotator and per model version (names in the
    order people list them); `untimed` annotations carry no time and are only counted."""
    entries = list(entries)
    per_annotator: dict[str, list[Timed]] = {}
    per_version: dict[str, list[Timed]] = {}
    for entry in entries:
        per_annotator.setdefault(str(entry[0]), []).append(entry)
        per_version.setdefault(str(entry[1]), []).append(entry)
    return {
        **spread(entries),
        "untimed": untimed,
        "per_annotator": {who: spread(per_annotator[who]) for who in sorted(per_annotator, key=natural)},
        "per_model_version": {version: spread(per_version[version]) for version in sorted(per_version, key=natural)},
    }


def spread(entries: Sequence[Timed]) -> dict[str, Any]:
    """How many annotations (and skips), their seconds and hours in all, and the median and 90th percentile of
    seconds per task (None with no annotation)."""
    seconds = [float(entry[2]) for entry in entries]
    total = math.fsum(seconds)  # exact, so the figures do not depend on the order the tasks were summed in
    median, p90 = (np.percentile(seconds, [50, 90]).tolist() if seconds else [None, None])
    return {
        "annotations": len(seconds),
        "skipped": sum(1 for entry in entries if entry[3]),
        "seconds": round(total, 1),
        "hours": round(total / 3600, 4),
        "median_seconds": None if median is None else round(median, 1),
        "p90_seconds": None if p90 is None else round(p90, 1),
    }


def release_time(figures: dict[str, Any]) -> dict[str, Any]:
    """What a release records of the annotation time behind it: the totals and per model version, no names (a
    release counts its annotators, it never names them)."""
    return {key: value for key, value in figures.items() if key != "per_annotator"}
