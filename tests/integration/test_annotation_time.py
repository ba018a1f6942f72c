"""Annotation time on a real Label Studio: annotations posted through its API with known, different `lead_time`s
by two annotators (one skip among them, one annotation with no time, one task shown a retrained model's proposals,
one given a newer prediction only after it was annotated) reach `workbench report --json` and the release's
manifest and card: hours, median and 90th percentile per task, per annotator and per model version seen, within
1% of what was posted. Expected figures are worked out here with the standard library, not numpy.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.annotators import Annotator, prediction_regions
from tests.support import LabelStudioServer, run_cli
from workbench import server
from workbench.labelstudio import accounts
from workbench.project import read_json

ARTICLES = {
    "alpha": ["Alpha news", "Erdoğan met Putin in Sochi on Tuesday.", "NATO allies met in Brussels after the talks.",
              "Washington said it would respond.", "Zelensky spoke in Kyiv on Friday."],
    "beta": ["Beta news", "Blinken visited Warsaw on Friday.", "Turkey bought the S-400 from Russia.",
             "Ankara said the deal was final.", "Macron spoke in Paris with Scholz."],
}  # fmt: skip
SECOND = "time.second@example.org"
RETRAINED = "news-ner-retrained-0.2.0"  # a model version that pre-annotated one task just before its annotation
LATER = "news-ner-later-0.3.0"  # proposals that came after the annotation: not what the annotator saw
# (annotator, seconds posted or None, skipped) per task, in the order of the tasks
PLAN = [("admin", 33.25, False), ("admin", 61.5, False), ("admin", 142.75, False), ("admin", 7.0, False),
        ("admin", 4.5, True), ("second", 95.5, False), ("second", 180.25, False), ("second", 250.0, False),
        ("second", None, False), ("second", 1234.5, False)]  # fmt: skip


@dataclass
class Timed:
    root: Path
    env: dict[str, str]
    names: dict[str, str] = field(default_factory=dict)  # "admin"/"second" -> the report's name for them
    posted: list[tuple[str, str, float, bool]] = field(default_factory=list)  # (who, version seen, seconds, skip)
    untimed: int = 0
    model_version: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    tables: str = ""

    def cli(self, *args: str) -> Any:
        return run_cli(self.root, self.env, *args)

    def release_dir(self, version: str) -> Path:
        return self.root / "exports" / "news-ner" / version


@pytest.fixture(scope="module")
def timed(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Timed:
    root = tmp_path_factory.mktemp("annotation-time")
    (root / "seeds").mkdir()
    for name, lines in ARTICLES.items():
        (root / "seeds" / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text('[labelstudio]\nproject_title = "Annotation time test"\n')
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    ex = Timed(root=root, env=env)
    ex.cli("run")
    project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    admin = Annotator.connect(ls_server.url, ls_server.connection.api_key)
    login = accounts.create_annotator(ls_server.url, ls_server.connection.api_key, SECOND)
    second = Annotator.connect(ls_server.url, accounts.mint_token(ls_server.url, login.email, login.password))
    people = {"admin": admin, "second": second}
    ex.names = {who: f"annotator {person.user_id}" for who, person in people.items()}
    tasks = [task for _, task in sorted(admin.tasks(project_id).items()) if task["predictions"]]
    assert len(tasks) >= len(PLAN)
    ex.model_version = tasks[0]["predictions"][0]["model_version"]

    # the last planned task is shown a retrained model's proposals before it is annotated
    retrained = tasks[len(PLAN) - 1]
    admin.client.predictions.create(task=retrained["id"], result=prediction_regions(retrained),
                                    model_version=RETRAINED)  # fmt: skip
    for task, (who, seconds, skipped) in zip(tasks, PLAN, strict=False):
        person = people[who]
        if skipped:
            person.skip(task, lead_time=seconds)
        else:
            person.submit(task, prediction_regions(task), lead_time=seconds)
        if seconds is None:
            ex.untimed += 1
        else:
            seen = RETRAINED if task is retrained else ex.model_version
            ex.posted.append((ex.names[who], seen, seconds, skipped))
    # a newer prediction for an annotated task changes nothing about what its annotator saw
    admin.client.predictions.create(task=tasks[0]["id"], result=prediction_regions(tasks[0]), model_version=LATER)

    ex.cli("pull")
    ex.report = json.loads(ex.cli("report", "--json").stdout)
    ex.tables = ex.cli("report").stdout
    ex.cli("release", "0.1.0")
    return ex


def _near(found: float, expected: float) -> bool:
    return math.isclose(found, expected, rel_tol=0.01)


def _expected(entries: list[tuple[str, str, float, bool]]) -> dict[str, Any]:
    """The figures of these annotations, by the standard library: `quantiles(..., method="inclusive")` is the
    linear interpolation between the closest ranks that numpy uses too."""
    seconds = [entry[2] for entry in entries]
    return {
        "annotations": len(seconds),
        "skipped": sum(entry[3] for entry in entries),
        "seconds": sum(seconds),
        "hours": sum(seconds) / 3600,
        "median_seconds": statistics.median(seconds),
        "p90_seconds": statistics.quantiles(seconds, n=10, method="inclusive")[8] if len(seconds) > 1 else seconds[0],
    }


def _matches(found: dict[str, Any], expected: dict[str, Any]) -> None:
    assert (found["annotations"], found["skipped"]) == (expected["annotations"], expected["skipped"])
    for key in ("seconds", "hours", "median_seconds", "p90_seconds"):
        assert _near(found[key], expected[key]), (key, found[key], expected[key])


def test_the_seconds_posted_reach_the_report_within_one_percent(timed: Timed) -> None:
    time = timed.report["annotation_time"]
    _matches(time, _expected(timed.posted))
    assert time["untimed"] == timed.untimed == 1
    assert _near(time["hours"], sum(seconds for _, _, seconds, _ in timed.posted) / 3600)


def test_each_annotator_has_their_own_figures(timed: Timed) -> None:
    per_annotator = timed.report["annotation_time"]["per_annotator"]
    assert set(per_annotator) == set(timed.names.values())
    for name in timed.names.values():
        _matches(per_annotator[name], _expected([entry for entry in timed.posted if entry[0] == name]))
    # the report names annotators alike in every section
    assert set(per_annotator) == set(timed.report["annotator_activity"])


def test_each_model_version_counts_the_tasks_it_pre_annotated_as_seen(timed: Timed) -> None:
    per_version = timed.report["annotation_time"]["per_model_version"]
    assert set(per_version) == {timed.model_version, RETRAINED}  # LATER came after every annotation
    for version in per_version:
        _matches(per_version[version], _expected([entry for entry in timed.posted if entry[1] == version]))
    assert per_version[RETRAINED]["annotations"] == 1


def test_report_prints_the_time_tables(timed: Timed) -> None:
    assert "Annotation time per model version" in timed.tables
    assert all(name in timed.tables for name in timed.names.values())
    assert "1 annotation(s) carry no time" in timed.tables


def test_the_release_records_the_hours_behind_it(timed: Timed) -> None:
    manifest = json.loads((timed.release_dir("0.1.0") / "manifest.json").read_text(encoding="utf-8"))
    time = manifest["annotation_time"]
    _matches(time, _expected(timed.posted))
    assert "per_annotator" not in time  # a release counts its annotators, it never names them
    assert set(time["per_model_version"]) == {timed.model_version, RETRAINED}
    card = (timed.release_dir("0.1.0") / "README.md").read_text(encoding="utf-8")
    assert f"Annotation time behind this release: **{time['hours']:,.2f} hours**" in card


def test_a_skip_is_counted_as_time_spent(timed: Timed) -> None:
    skipped = [entry for entry in timed.posted if entry[3]]
    assert timed.report["annotation_time"]["skipped"] == len(skipped) == 1
    assert timed.report["excluded"]["skipped"] == 1

