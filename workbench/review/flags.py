"""A task flagged for a second look, as its Label Studio data says it: pure conversions, no server.

`data.review` is the line the labeling view shows above the text ("needs a second look: ..."), always a string
(`""` when there is nothing to look at), and the Data Manager's "Needs review" tab filters on it.
`data.review_flag` records what was flagged and when: `items` (the item ids), `flagged_at` (the workbench's clock,
for people), `seen` (the newest annotation's `updated_at` at that moment, the server's clock) and `reviewed`
(items whose task was submitted again after they were flagged: they count as looked at, and leave the review).
The `second_look` field of an edited paragraph is another matter (see `carry`), and is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from workbench.records import stamp_time

FLAG_FIELD = "review"
RECORD_FIELD = "review_flag"
PREFIX = "needs a second look: "
MAX_SHOWN = 4


def message(items: Sequence[Mapping[str, Any]]) -> str:
    """The line above the text: why the task needs a second look, surest items first."""
    shown = [f"{item['detail']} [{item['reason']}]" for item in items[:MAX_SHOWN]]
    more = f"; and {len(items) - MAX_SHOWN} more" if len(items) > MAX_SHOWN else ""
    return PREFIX + "; ".join(shown) + more


def resubmitted(flag: Mapping[str, Any], stamps: Iterable[str]) -> bool:
    """Whether an annotation of the task was submitted (or updated) after the flag was raised."""
    seen = stamp_time(flag.get("seen"))
    return any(stamp_time(stamp) > seen for stamp in stamps)


def reviewed_ids(flag: Mapping[str, Any], stamps: Iterable[str]) -> set[str]:
    """The items of a flagged task that count as looked at: reviewed before, and the flagged ones if the task was
    submitted again since."""
    done = {str(i) for i in flag.get("reviewed") or []}
    if flag.get("items") and resubmitted(flag, stamps):
        done |= {str(i) for i in flag["items"]}
    return done


def flagged_data(
    data: Mapping[str, Any], items: Sequence[Mapping[str, Any]], stamps: Sequence[str], now: str
) -> dict[str, Any]:
    """The task's data with its flag brought to `items` (its open items, surest first; none clears the flag).

    Idempotent: the same items on a task not submitted since give the same data, so nothing is sent twice."""
    flag: dict[str, Any] = dict(data.get(RECORD_FIELD) or {})
    done = reviewed_ids(flag, stamps)
    still = [item for item in items if item["item_id"] not in done]
    new = dict(data)
    if not still:
        new[FLAG_FIELD] = ""
        if done:
            new[RECORD_FIELD] = {"reviewed": sorted(done)}
        else:
            new.pop(RECORD_FIELD, None)
        return new
    pending = bool(flag.get("items")) and not resubmitted(flag, stamps)
    record = {
        "items": sorted(item["item_id"] for item in still),
        "flagged_at": flag["flagged_at"] if pending and flag.get("flagged_at") else now,
        "seen": flag.get("seen", "") if pending else newest(stamps),
    }
    if done:
        record["reviewed"] = sorted(done)
    new[FLAG_FIELD] = message(still)
    new[RECORD_FIELD] = record
    return new


def newest(stamps: Iterable[str]) -> str:
    """The latest of the annotations' `updated_at` stamps, as written ("" when there is none)."""
    return max(stamps, key=stamp_time, default="")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

