"""The report as tables a person reads: every section of `workbench report` (and of the page's tables) decided
once, as plain strings, for the terminal (`rich`, in the CLI) and the page (HTML) to lay out alike.

Pure. Every cell goes through `cell`, so no dict, list or `None` reaches a reader raw; a report section this
module does not know (added by a later command) is still shown, as tables built from its shape (`generic`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_LISTED = 20  # ties, conflicts, rows of a generic list: more are counted in a note
EXCLUDED = {
    "no_annotation": "no submitted annotation yet",
    "skipped": "only skipped",
    "retired": "retired (the paragraph left the seeds)",
    "awaiting_check": "edited, waiting for an annotator's check",
}
CORRECTIONS = {
    "accepted": "accepted as proposed",
    "relabelled": "relabelled (same characters)",
    "rebounded": "boundaries moved (same label)",
    "changed": "label and boundaries changed",
    "added": "added (the model missed it)",
    "deleted": "deleted (a wrong proposal)",
}
NO_OVERLAP = "No task has two or more submitted annotations, so there is no overlap to compare."
KNOWN = {"snapshot", "tasks", "rows", "excluded", "annotators", "annotator_activity", "alignment", "agreement",
         "prediction_quality", "merge_ties", "corpus_changes", "annotation_time"}  # fmt: skip
NO_TIME = "No annotation carries a time yet (Label Studio's lead_time: the seconds spent in its editor)."


@dataclass(frozen=True)
class Table:
    """One section: a title, columns and rows of text, and a sentence said with it (or instead, with no rows)."""

    title: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    note: str = ""

    def right_aligned(self) -> tuple[bool, ...]:
        """Which columns hold only numbers (the first, naming the row, never): right-aligned wherever shown."""
        return tuple(i > 0 and all(numeric(row[i]) for row in self.rows) for i in range(len(self.columns)))


def numeric(text: str) -> bool:
    """A cell that is a number, a signed change or the dash for none."""
    return text.replace(",", "").replace(".", "", 1).lstrip("+-").isdigit() or text == "–"


def report_tables(report: Mapping[str, Any]) -> list[Table]:
    """Every section of a report (`workbench report --json`'s dict) as tables, known sections first."""
    tables = [*_snapshot(report), *_progress(report), *_alignment(report), *_agreement(report)]
    tables += [*_quality(report), *_corrections(report), *_time(report), *_ties(report), *_corpus_changes(report)]
    for key, value in report.items():
        if key not in KNOWN:
            tables += generic(heading(key), value)
    return tables


# ---- cells -------------------------------------------------------------------------------------------------


def cell(value: Any) -> str:
    """A value as a reader sees it: numbers with separators, scores to 3 places, `–` for nothing, a mapping as
    `key: value` pairs and a list joined by commas (never Python's or JSON's brackets)."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "; ".join(f"{heading(k)}: {cell(v)}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        shown = ", ".join(cell(item) for item in items[:MAX_LISTED])
        return (shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")) or "none"
    return str(value)


def ident(value: Any) -> str:
    """An id (a task's, an annotation's, or a list of them) as it is written in Label Studio: no separators."""
    if value is None or value == "":
        return "–"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or "none"
    return str(value)


def heading(key: Any) -> str:
    """A report field name reads as words ("split_tokens" -> "split tokens"); a data key (a model version, a
    label, an annotator) is kept verbatim."""
    text = str(key)
    return text.replace("_", " ") if text.isidentifier() and text.islower() else text


def _pairs(title: str, pairs: Sequence[tuple[str, Any]], *, columns: tuple[str, str] = ("", "value"),
           note: str = "") -> Table:  # fmt: skip
    return Table(title, columns, tuple((name, cell(value)) for name, value in pairs), note)


def _minute(iso: Any) -> str:
    """An ISO 8601 UTC time to the minute, as people read it: 2026-11-30 10:09."""
    return cell(iso[:16].replace("T", " ") if isinstance(iso, str) else iso)


def _span(span: Mapping[str, Any]) -> str:
    return f"{span.get('text', '')!s} ({span.get('label', '?')}, {span.get('start')}-{span.get('end')})"


def _more(shown: int, total: int, what: str) -> str:
    return f"{total - shown} more {what} are in `workbench report --json`." if total > shown else ""


# ---- the known sections ------------------------------------------------------------------------------------


def _snapshot(report: Mapping[str, Any]) -> list[Table]:
    snap = report.get("snapshot")
    if not isinstance(snap, Mapping):
        return []
    sha = str(snap.get("sha256") or "")
    return [_pairs("Snapshot", [
        ("file", snap.get("file")), ("pulled at", snap.get("pulled_at")),
        ("Label Studio", snap.get("label_studio_version")), ("project id", snap.get("project_id")),
        ("tasks", snap.get("tasks")), ("sha256", f"{sha[:12]}…" if sha else None),
    ])]  # fmt: skip


def _progress(report: Mapping[str, Any]) -> list[Table]:
    if "tasks" not in report:
        return []
    excluded = report.get("excluded") or {}
    pairs = [("tasks in the snapshot", report.get("tasks")), ("annotated: rows of the dataset", report.get("rows"))]
    for key in [*EXCLUDED, *sorted(set(excluded) - set(EXCLUDED))]:
        if key in excluded or key in ("no_annotation", "skipped"):
            pairs.append((EXCLUDED.get(key, heading(key)), excluded.get(key, 0)))
    pairs.append(("annotators who submitted", report.get("annotators")))
    tables = [_pairs("Labeling progress", pairs, columns=("", "tasks"))]
    activity = report.get("annotator_activity") or {}
    if activity:
        rows = tuple((who, cell(a.get("submitted")), cell(a.get("skipped")), _minute(a.get("first")),
                      _minute(a.get("last"))) for who, a in activity.items())  # fmt: skip
        tables.append(Table("Annotators", ("annotator", "submitted", "skipped", "first (UTC)", "last (UTC)"), rows))
    return tables


def _alignment(report: Mapping[str, Any]) -> list[Table]:
    a = report.get("alignment")
    if not isinstance(a, Mapping):
        return []
    conflicts = list(a.get("conflicts") or [])
    pairs = [
        ("regions read", a.get("regions")), ("kept exactly as drawn", a.get("kept")),
        ("trimmed (whitespace at an edge)", a.get("trimmed")), ("converted (UTF-16 offsets)", a.get("converted")),
        ("ambiguous (both readings fit; code points used)", a.get("ambiguous")),
        ("without a label (no span)", a.get("unlabelled")), ("refused", 0),
        ("tokens split at a span edge", a.get("split_tokens")), ("overlapping spans (one tagged)", len(conflicts)),
    ]  # fmt: skip
    pairs += [(heading(k), v) for k, v in a.items() if k not in
              {"regions", "kept", "trimmed", "converted", "ambiguous", "unlabelled", "split_tokens", "conflicts"}]
    note = ("A region that cannot be kept exactly is refused: it stops the report and the release and is named "
            "with its task, so a report that is shown has refused none.")  # fmt: skip
    tables = [_pairs("Alignment", pairs, columns=("", "regions"), note=note)]
    if conflicts:
        rows = tuple((ident(c.get("task_id")), _span(c.get("tagged") or {}), _span(c.get("untagged") or {}))
                     for c in conflicts[:MAX_LISTED])  # fmt: skip
        tables.append(Table("Overlapping spans", ("task", "tagged (IOB tags)", "kept in spans only"), rows,
                            _more(len(rows), len(conflicts), "overlaps")))  # fmt: skip
    return tables


def _agreement(report: Mapping[str, Any]) -> list[Table]:
    agreement = report.get("agreement")
    if not isinstance(agreement, Mapping):
        return []
    if not agreement.get("tasks_compared"):
        return [Table("Agreement between annotators", note=NO_OVERLAP)]
    full = agreement.get("full_agreement")
    share = "–" if full is None else f"{full:.0%}"
    note = (f"{cell(agreement.get('tasks_compared'))} task(s) annotated more than once, {cell(agreement.get('pairs'))} "
            f"pair(s) of annotations compared; all annotators drew the same spans on {share} of them; F1 over "
            f"every pair {cell(agreement.get('f1'))}.")
    per_label = agreement.get("per_label") or {}
    rows = tuple((label, cell(s.get("f1")), cell(s.get("matched")), cell(s.get("unmatched")))
                 for label, s in per_label.items() if s.get("matched") or s.get("unmatched"))  # fmt: skip
    return [Table("Agreement between annotators", ("label", "F1", "matched", "unmatched"), rows, note)]


def _quality(report: Mapping[str, Any]) -> list[Table]:
    tables = []
    for version, q in (report.get("prediction_quality") or {}).items():
        note = (f"{cell(q.get('tasks'))} paragraph(s): {cell(q.get('predicted'))} proposed spans, "
                f"{cell(q.get('human'))} human spans; precision {cell(q.get('precision'))}, "
                f"recall {cell(q.get('recall'))}, F1 {cell(q.get('f1'))} (exact start, end and label).")  # fmt: skip
        rows = tuple((label, *(cell(s.get(m)) for m in ("precision", "recall", "f1")), cell(s.get("support")))
                     for label, s in (q.get("per_label") or {}).items()
                     if s.get("f1") is not None or s.get("support"))  # fmt: skip
        tables.append(Table(f"Pre-annotation quality: {version}", ("label", "precision", "recall", "F1",
                                                                   "human spans"), rows, note))  # fmt: skip
    return tables


def _corrections(report: Mapping[str, Any]) -> list[Table]:
    quality = report.get("prediction_quality") or {}
    if not quality:
        return []
    columns = ["correction"]
    for version in quality:
        columns += [version, "per task"] if len(quality) == 1 else [version, f"per task ({version})"]
    buckets = list(dict.fromkeys([*CORRECTIONS, *(b for q in quality.values() for b in q.get("counts") or {})]))
    rows = []
    for bucket in buckets:
        row = [CORRECTIONS.get(bucket, heading(bucket))]
        for q in quality.values():
            n, tasks = (q.get("counts") or {}).get(bucket, 0), q.get("tasks") or 0
            row += [cell(n), f"{n / tasks:.2f}" if tasks else "–"]
        rows.append(tuple(row))
    note = "Every proposed and every human span is counted once; per task = the count over the annotated tasks."
    return [Table("Corrections per task", tuple(columns), tuple(rows), note)]


def _seconds(value: Any) -> str:
    return f"{value:,.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def _timed(name: str, t: Mapping[str, Any]) -> tuple[str, ...]:
    return (name, cell(t.get("annotations")), cell(t.get("skipped")), cell(t.get("hours")),
            _seconds(t.get("median_seconds")), _seconds(t.get("p90_seconds")))  # fmt: skip


def corrections_per_task(quality: Mapping[str, Any]) -> float | None:
    """Spans annotators changed, added or deleted per task, over the tasks a model version's proposals were
    scored on (every bucket of the corrections but "accepted")."""
    counts, tasks = quality.get("counts") or {}, quality.get("tasks") or 0
    return sum(n for bucket, n in counts.items() if bucket != "accepted") / tasks if tasks else None


def _time(report: Mapping[str, Any]) -> list[Table]:
    time = report.get("annotation_time")
    if not isinstance(time, Mapping):
        return []
    if not time.get("annotations"):
        return [Table("Annotation time", note=NO_TIME)]
    columns = ("annotator", "annotations", "skipped", "hours", "median s", "p90 s")
    rows = [_timed("all annotators", time)]
    rows += [_timed(who, t) for who, t in (time.get("per_annotator") or {}).items()]
    untimed = time.get("untimed") or 0
    note = ("Seconds in Label Studio's editor (lead_time), submitted and skipped annotations alike; each annotation "
            "is one task for its annotator." + (f" {cell(untimed)} annotation(s) carry no time." if untimed else ""))
    tables = [Table("Annotation time", columns, tuple(rows), note)]
    quality = report.get("prediction_quality") or {}
    per_version = time.get("per_model_version") or {}
    rows = [(*_timed(version, t), _rate(corrections_per_task(quality.get(version) or {})))
            for version, t in per_version.items()]  # fmt: skip
    note = ("The model version whose proposals the annotator saw (the newest prediction made before the annotation; "
            "none: no proposal). Corrections per task: spans changed, added or deleted, from the corrections above.")
    tables.append(Table("Annotation time per model version", ("model version", *columns[1:], "corrections per task"),
                        tuple(rows), note))  # fmt: skip
    return tables


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _ties(report: Mapping[str, Any]) -> list[Table]:
    if "merge_ties" not in report:
        return []
    ties = list(report.get("merge_ties") or [])
    if not ties:
        return [Table("Merge ties", note="No merge of several annotations was a tie.")]
    rows = tuple((ident(t.get("task_id")), ident(t.get("annotations")), cell(t.get("used"))) for t in ties[:MAX_LISTED])
    note = (f"{len(ties)} task(s) had a span exactly half the annotators marked; the rule in the last column decided. "
            + _more(len(rows), len(ties), "ties"))  # fmt: skip
    return [Table("Merge ties", ("task", "annotations", "rule used"), rows, note.strip())]


def _corpus_changes(report: Mapping[str, Any]) -> list[Table]:
    changes = report.get("corpus_changes")
    if not isinstance(changes, Mapping):
        return []
    counts = [(heading(k), v) for k, v in changes.items() if not isinstance(v, (Mapping, list))]
    tables = [_pairs("Corpus changes", counts, columns=("", "paragraphs"))] if counts else []
    renamed = changes.get("renamed") or {}
    if renamed:
        tables.append(Table("Renamed articles", ("was", "now"), tuple((cell(a), cell(b)) for a, b in renamed.items())))
    for key, value in changes.items():
        if key != "renamed" and isinstance(value, (Mapping, list)):
            tables += generic(f"Corpus changes: {heading(key)}", value)
    return tables


# ---- any other section -------------------------------------------------------------------------------------


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _flat(value: Any) -> bool:
    return isinstance(value, Mapping) and all(_scalar(v) or isinstance(v, (list, tuple)) for v in value.values())


def generic(title: str, value: Any) -> list[Table]:
    """A section of a shape this module does not know, as readable tables: a list of records as rows, a mapping
    of records as a wide table, other mappings as name/value pairs (nested parts as their own tables)."""
    if _scalar(value):
        return [_pairs(title, [(title, value)])]
    if isinstance(value, (list, tuple)):
        items = list(value)
        if not items:
            return [Table(title, note="Nothing recorded.")]
        if all(_flat(item) for item in items):
            columns = list(dict.fromkeys(str(k) for item in items for k in item))
            rows = tuple(tuple(cell(item.get(c)) for c in columns) for item in items[:MAX_LISTED])
            return [Table(title, tuple(heading(c) for c in columns), rows, _more(len(rows), len(items), "entries"))]
        return [_pairs(title, [(str(i + 1), item) for i, item in enumerate(items[:MAX_LISTED])],
                       note=_more(min(len(items), MAX_LISTED), len(items), "entries"))]  # fmt: skip
    if not isinstance(value, Mapping):
        return [_pairs(title, [(title, str(value))])]
    if not value:
        return [Table(title, note="Nothing recorded.")]
    if all(_flat(child) and child for child in value.values()):
        columns = list(dict.fromkeys(str(k) for child in value.values() for k in child))
        rows = tuple((str(key), *(cell(child.get(c)) for c in columns)) for key, child in value.items())
        return [Table(title, ("", *(heading(c) for c in columns)), rows)]
    plain = [(heading(k), v) for k, v in value.items() if _scalar(v) or isinstance(v, (list, tuple)) and
             all(_scalar(x) for x in v)]  # fmt: skip
    tables = [_pairs(title, plain)] if plain else []
    for key, child in value.items():
        if not (_scalar(child) or isinstance(child, (list, tuple)) and all(_scalar(x) for x in child)):
            tables += generic(f"{title}: {heading(key)}", child)
    return tables


def release_history(manifests: Sequence[Mapping[str, Any]]) -> Table:
    """Every release, oldest first: when, rows per split, rows added/removed/changed, span changes per label."""
    if not manifests:
        return Table("Release history", note="No release yet: cut one with `workbench release 0.1.0`.")
    rows = []
    for m in manifests:
        counts, changes = m.get("counts") or {}, m.get("changes") or {}
        deltas = [f"{label} {c['delta']:+d}" for label, c in (changes.get("label_counts") or {}).items()
                  if c.get("delta")]  # fmt: skip
        rows.append((
            str(m.get("version")), _minute(m.get("created_at")), cell((counts.get("train") or {}).get("rows")),
            cell((counts.get("test") or {}).get("rows")), cell((counts.get("total") or {}).get("spans")),
            f"+{changes.get('added', 0)} / -{changes.get('removed', 0)} / ~{changes.get('changed', 0)}"
            if changes.get("parent") else "first release",
            ", ".join(deltas) or ("–" if changes.get("parent") else "first release"),
        ))  # fmt: skip
    columns = ("version", "created (UTC)", "train rows", "test rows", "spans", "rows added / removed / changed",
               "spans per label, change")  # fmt: skip
    return Table("Release history", columns, tuple(rows))
