"""Server-rendered SVG geometry for the leaderboard page: ratings with their interval bars, and the win-rate matrix
as a heat map. No chart library and no script (the CSP allows none); the template draws what these compute."""

import math
from dataclasses import dataclass

from app.leaderboard.bradley_terry import BASE_RATING
from app.leaderboard.schemas import Leaderboard

LABEL_WIDTH = 130  # room for model names left of the plot
PLOT_WIDTH = 380
ROW_HEIGHT = 26
TOP = 10
AXIS_HEIGHT = 42  # tick labels and the axis title under the plot


@dataclass(frozen=True)
class RatingRow:
    label: str
    y: float  # centre line of the row
    x: float  # the rating
    x_low: float  # the interval
    x_high: float
    text: str  # the value, printed right of the interval


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class RatingChart:
    rows: list[RatingRow]
    ticks: list[Tick]
    anchor_x: float  # the vertical line at BASE_RATING
    plot_left: float
    plot_right: float
    plot_bottom: float
    width: float
    height: float


def _nice_step(span: float) -> float:
    raw = span / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def rating_chart(board: Leaderboard) -> RatingChart | None:
    if not board.models:
        return None
    low = min([m.ci_low for m in board.models] + [BASE_RATING])
    high = max([m.ci_high for m in board.models] + [BASE_RATING])
    step = _nice_step(max(high - low, 10.0))
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    left, right = LABEL_WIDTH, LABEL_WIDTH + PLOT_WIDTH

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * PLOT_WIDTH

    rows = [
        RatingRow(
            label=m.model[:24],
            y=TOP + (i + 0.5) * ROW_HEIGHT,
            x=x(m.rating),
            x_low=x(m.ci_low),
            x_high=x(m.ci_high),
            text=f"{m.rating:.0f} ({m.ci_low:.0f}–{m.ci_high:.0f})",
        )
        for i, m in enumerate(board.models)
    ]
    count = round((high - low) / step)
    ticks = [Tick(x=x(low + k * step), label=f"{low + k * step:g}") for k in range(count + 1)]
    bottom = TOP + len(rows) * ROW_HEIGHT
    return RatingChart(
        rows=rows,
        ticks=ticks,
        anchor_x=x(BASE_RATING),
        plot_left=left,
        plot_right=right,
        plot_bottom=bottom,
        width=right + 130,  # room for the printed values
        height=bottom + AXIS_HEIGHT,
    )


@dataclass(frozen=True)
class HeatCell:
    x: float
    y: float
    fill: str
    text: str  # the win rate in percent, or "" (diagonal / no decisions)
    count: str  # "n=…"
    title: str
    dark: bool  # white text on a dark cell


@dataclass(frozen=True)
class HeatLabel:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class HeatMap:
    cells: list[HeatCell]
    row_labels: list[HeatLabel]
    column_labels: list[HeatLabel]
    cell: float
    left: float
    top: float
    width: float
    height: float


def _color(rate: float) -> tuple[str, bool]:
    """Blue for a win rate above ½, red below, white at ½."""
    strength = min(abs(rate - 0.5) * 2, 1.0)
    base = (55, 89, 215) if rate >= 0.5 else (217, 45, 32)
    r, g, b = (round(255 + (c - 255) * strength) for c in base)
    return f"#{r:02x}{g:02x}{b:02x}", strength > 0.55


def heat_map(board: Leaderboard) -> HeatMap | None:
    n = len(board.models)
    if n < 2:
        return None
    cell = max(44.0, min(60.0, 560 / n))
    left, top = float(LABEL_WIDTH), 100.0  # column labels are written diagonally above the matrix
    cells = []
    for i, row in enumerate(board.matrix):
        for j, c in enumerate(row):
            x, y = left + j * cell, top + i * cell
            if c.win_rate is None:
                cells.append(HeatCell(x, y, "#f2f4f7", "", "", f"{c.model} vs {c.opponent}: no decisions", False))
                continue
            fill, dark = _color(c.win_rate)
            cells.append(
                HeatCell(
                    x,
                    y,
                    fill,
                    f"{c.win_rate * 100:.0f}%",
                    f"n={c.decisions}",
                    f"{c.model} vs {c.opponent}: won {c.wins}, lost {c.losses}, tied {c.ties} of {c.decisions}",
                    dark,
                )
            )
    names = [m.model[:24] for m in board.models]
    return HeatMap(
        cells=cells,
        row_labels=[HeatLabel(left - 6, top + (i + 0.5) * cell, name) for i, name in enumerate(names)],
        column_labels=[HeatLabel(left + (j + 0.5) * cell, top - 6, name) for j, name in enumerate(names)],
        cell=cell,
        left=left,
        top=top,
        width=left + n * cell + 10,
        height=top + n * cell + 30,
    )
