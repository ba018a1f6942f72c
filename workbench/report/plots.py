"""Charts drawn with matplotlib into PNG bytes that depend on nothing but the chart.

Same chart, same bytes, on any machine with the pinned matplotlib and Pillow: the figure is built without pyplot
(no global figure state, no interactive backend), under matplotlib's default style plus the settings below (a
user's matplotlibrc cannot leak in), in DejaVu Sans, the font matplotlib ships (it wins over a system copy of the
same name), at a fixed size and dpi, and saved with no metadata (no software name, no time). A release's
label-distribution figure is one of its checksummed files, so this matters.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

import matplotlib
from matplotlib import dates, style
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from workbench.report.figures import Chart, Series

DPI = 100
WIDTH = 9.0  # inches: 900 px, readable on the page and in a dataset card
HEIGHT = 4.0
# Series that are not labels (splits, metrics, annotators): distinct and readable on white.
COLOURS = ("#4363d8", "#f58231", "#3cb44b", "#911eb4", "#e6194b", "#469990", "#9a6324", "#000075", "#808000")
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "legend.frameon": False,
    "timezone": "UTC",
}
PLOT_PIXELS = 700  # about how wide the plotting area of a chart is
MIN_LABELLED_BAR = 26  # pixels: a narrower upright bar gets no number (it would overlap its neighbours')
MAX_LABELLED_HBARS = 60


def draw(chart: Chart) -> bytes:
    """The chart as PNG bytes (deterministic; see the module's docstring)."""
    with style.context("default"), matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH, _height(chart)), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        _DRAWERS[chart.kind](axes, chart)
        axes.set_title(chart.title)
        axes.set_xlabel(chart.x_label)
        axes.set_ylabel(chart.y_label)
        if len(chart.series) > 1:
            axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _height(chart: Chart) -> float:
    if chart.kind == "hbars":
        bars = len(chart.categories) * (1 if chart.stacked else max(1, len(chart.series)))
        return max(HEIGHT * 0.75, 1.0 + 0.16 * bars + 0.12 * len(chart.categories))
    return HEIGHT


def _colours(series: Sequence[Series]) -> list[str]:
    free = iter(COLOURS * (1 + len(series) // len(COLOURS)))
    return [s.colour or next(free) for s in series]


def _numbers(series: Series) -> list[float]:
    return [math.nan if value is None else float(value) for value in series.values]


def _bars(axes: Axes, chart: Chart, *, horizontal: bool = False) -> None:
    count = len(chart.categories)
    positions = list(range(count))
    width = 0.8 if chart.stacked else 0.8 / max(1, len(chart.series))
    base = [0.0] * count
    if horizontal:
        label_bars = count * len(chart.series) <= MAX_LABELLED_HBARS
    else:
        label_bars = PLOT_PIXELS / max(1, count) * width >= MIN_LABELLED_BAR
    for i, (series, colour) in enumerate(zip(chart.series, _colours(chart.series), strict=True)):
        values = [0.0 if math.isnan(v) else v for v in _numbers(series)]
        offset = 0.0 if chart.stacked else (i - (len(chart.series) - 1) / 2) * width
        where = [p + offset for p in positions]
        if horizontal:
            bars = axes.barh(where, values, height=width, left=base, label=series.name, color=colour)
        else:
            bars = axes.bar(where, values, width=width, bottom=base, label=series.name, color=colour)
        if label_bars and not chart.stacked:
            axes.bar_label(bars, labels=[_figure(v, chart.unit_range) for v in values], padding=2, fontsize=8)
        if chart.stacked:
            base = [b + v for b, v in zip(base, values, strict=True)]
    value_axis = axes.xaxis if horizontal else axes.yaxis
    if horizontal:
        axes.set_yticks(positions, chart.categories)
        axes.invert_yaxis()  # the first category on top, as in a table
        axes.grid(axis="y", visible=False)
        if chart.unit_range:
            axes.set_xlim(0, 1.08)
    else:
        tilt = count > 8 and max(map(len, chart.categories), default=0) > 4
        axes.set_xticks(positions, chart.categories, rotation=30 if tilt else 0, ha="right" if tilt else "center")
        axes.grid(axis="x", visible=False)
        if chart.unit_range:
            axes.set_ylim(0, 1.08)
    if not chart.unit_range:
        value_axis.set_major_locator(MaxNLocator(integer=True))
    if chart.stacked and label_bars:
        for position, total in zip(positions, base, strict=True):
            axes.annotate(f"{total:,.0f}", (position, total), xytext=(0, 3), textcoords="offset points",
                          ha="center", fontsize=8)  # fmt: skip


def _figure(value: float, score: bool) -> str:
    """The number written on a bar: a score always (0 is a finding), a count unless it is none."""
    if score:
        return f"{value:.2f}"
    return f"{value:,.0f}" if value else ""


def _hbars(axes: Axes, chart: Chart) -> None:
    _bars(axes, chart, horizontal=True)


def _lines(axes: Axes, chart: Chart) -> None:
    positions = list(range(len(chart.categories)))
    for series, colour in zip(chart.series, _colours(chart.series), strict=True):
        axes.plot(positions, _numbers(series), marker="o", label=series.name, color=colour,
                  linewidth=2.5 if series.bold else 1.5)  # fmt: skip
    axes.set_xticks(positions, chart.categories)
    axes.set_xlim(-0.5, len(positions) - 0.5)
    if chart.unit_range:
        axes.set_ylim(0, 1.05)
    else:
        axes.set_ylim(bottom=0)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))


def _steps(axes: Axes, chart: Chart) -> None:
    for series, colour in zip(chart.series, _colours(chart.series), strict=True):
        x = [dates.date2num(when) for when in series.x]
        axes.step([x[0], *x], [0.0, *_numbers(series)], where="post", label=series.name, color=colour)
    locator = dates.AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))


_DRAWERS: dict[str, Callable[[Axes, Chart], None]] = {
    "bars": _bars,
    "hbars": _hbars,
    "lines": _lines,
    "steps": _steps,
}
