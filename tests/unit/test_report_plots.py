"""Charts drawn into PNG bytes: every kind draws, and the bytes depend on the chart alone (a release file)."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib
import pytest
from matplotlib import font_manager

from workbench.report.figures import Chart, Series
from workbench.report.page import png_size
from workbench.report.plots import DPI, STYLE, WIDTH, draw

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 30, 10, tzinfo=UTC)
CHARTS = [
    Chart("hbars", "Spans per label", "hbars", ("PERSON", "ORG"),
          (Series("train", (3.0, 0.0)), Series("test", (1.0, 2.0)))),
    Chart("bars", "Scores", "bars", ("PERSON", "ORG"), (Series("f1", (0.5, None)),), unit_range=True),
    Chart("stacked", "Rows", "bars", ("0.1.0", "0.2.0"), (Series("train", (8.0, 9.0)), Series("test", (2.0, 2.0))),
          stacked=True),
    Chart("lines", "Curve", "lines", ("a", "b"), (Series("all", (0.5, 0.7), bold=True), Series("ORG", (None, 0.2))),
          unit_range=True),
    Chart("one-point", "Curve", "lines", ("a",), (Series("PERSON", (3.0,)),)),
    Chart("steps", "Progress", "steps", (), (Series("annotator 1", (1.0, 2.0), x=(T0, T0 + timedelta(hours=2))),
                                             Series("annotator 2", (1.0,), x=(T0,)))),
]  # fmt: skip
SCRIPT = """
import hashlib, sys
sys.path.insert(0, sys.argv[1])
from tests.unit.test_report_plots import CHARTS
from workbench.report.plots import draw
print(" ".join(hashlib.sha256(draw(chart)).hexdigest() for chart in CHARTS))
"""


def _chunks(png: bytes) -> list[bytes]:
    names, at = [], 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        names.append(png[at + 4 : at + 8])
        at += 12 + length
    return names


@pytest.mark.parametrize("chart", CHARTS, ids=[chart.key for chart in CHARTS])
def test_every_kind_of_chart_draws_a_png_of_the_fixed_width(chart: Chart) -> None:
    png = draw(chart)
    width, height = png_size(png)
    assert width == int(WIDTH * DPI) and height > 200
    assert draw(chart) == png


def test_a_png_carries_no_metadata_only_its_image() -> None:
    chunks = _chunks(draw(CHARTS[0]))
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND"
    assert set(chunks) <= {b"IHDR", b"IDAT", b"IEND", b"pHYs"}  # no tEXt (software), no tIME (a clock)


def test_the_bytes_do_not_depend_on_the_process_or_a_users_matplotlibrc(tmp_path: Path) -> None:
    here = [hashlib.sha256(draw(chart)).hexdigest() for chart in CHARTS]
    (tmp_path / "matplotlibrc").write_text(
        "font.family: serif\nfont.size: 20\nfigure.dpi: 300\nsavefig.dpi: 50\nlines.linewidth: 7\n"
        "axes.prop_cycle: cycler('color', ['000000'])\naxes.grid: False\ntimezone: Asia/Tokyo\n"
    )
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path), "MPLBACKEND": "svg", "PYTHONHASHSEED": "123"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(REPO)], env=env, capture_output=True, text=True,
                          check=True, timeout=120)  # fmt: skip
    assert done.stdout.split() == here


def test_text_is_drawn_in_the_font_matplotlib_ships() -> None:
    found = font_manager.findfont(font_manager.FontProperties(family=STYLE["font.family"]), fallback_to_default=False)
    assert Path(found).resolve().is_relative_to(Path(matplotlib.get_data_path()).resolve())


def test_the_image_is_the_chart_drawn() -> None:
    """Not an empty canvas: the IDAT stream decodes to rows with more than one colour."""
    png = draw(CHARTS[0])
    at, data = 8, b""
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        if png[at + 4 : at + 8] == b"IDAT":
            data += png[at + 8 : at + 8 + length]
        at += 12 + length
    raw = zlib.decompress(data)
    assert len(set(raw[i : i + 4] for i in range(0, min(len(raw), 400_000), 4))) > 10
