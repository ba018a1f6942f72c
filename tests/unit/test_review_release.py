"""What a release records about review: the open items by reason in its manifest and card, and the refusal
while items are open when `[review] block_release` is true (on the planted corpus, see test_review.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.test_review import planted_project
from workbench import release, workflow
from workbench.cli import app
from workbench.errors import ReviewOpenError


@pytest.fixture(params=["counted before writing", "counted in another process while writing"])
def where(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Small releases count their review items first; large ones in a forked process while the files are written."""
    if request.param != "counted before writing":
        monkeypatch.setattr(release, "ASIDE_MIN_ROWS", 1)
    return str(request.param)


def test_the_release_counts_the_open_items_in_its_manifest_and_card(tmp_path: Path, where: str) -> None:
    project = planted_project(tmp_path / "p")
    path = workflow.do_release(project, "0.1.0").path
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["review"] == {"open": 36, "by_reason": {"label": 14, "missing": 14, "model": None,
                                                            "disagreement": 8},
                                  "reviewed": 0, "model_checked": False, "block_release": False}  # fmt: skip
    card = (path / "README.md").read_text(encoding="utf-8")
    assert "**36 items open**" in card and "| `model` | a model that never saw the article" in card


def test_a_release_waits_for_open_items_when_asked_to(tmp_path: Path, where: str) -> None:
    project = planted_project(tmp_path / "p", "[review]\nblock_release = true\n")
    with pytest.raises(ReviewOpenError):
        workflow.do_release(project, "0.1.0")
    refused = CliRunner().invoke(app, ["-C", str(project.root), "release", "0.1.0"])
    assert refused.exit_code == ReviewOpenError.exit_code == 13
    message = " ".join(refused.stderr.split())
    assert message.startswith("error: 36 review item(s) are open in the latest snapshot (14 label, 14 missing, 8 "
                              "disagreement), and [review] block_release is true, so release 0.1.0 was not cut.")
    assert "`workbench review`" in message and "Traceback" not in refused.output
    assert not (project.releases_dir / "0.1.0").exists()
    left = list(project.releases_dir.iterdir()) if project.releases_dir.exists() else []
    assert not [p for p in left if p.name.startswith(".")], "no staging folder left"
