"""Server-rendered SVG geometry of the calibration chart (a reliability diagram): predicted σ(s(a) − s(b)) against
the human preference rate per bin. No script (the CSP allows none); the template draws what this computes."""

from dataclasses import dataclass

from app.rewardmodels.schemas import RewardModelReport

LEFT, TOP, SIZE = 56, 12, 300  # the plot is a square: both axes run from 0 to 1


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    r: float  # radius grows with the bin's count
    title: str


@dataclass(frozen=True)
class CalibrationChart:
    points: list[Point]
    path: str  # the polyline through the points
    ticks: list[tuple[float, str]]  # position along either axis, label
    left: float
    top: float
    size: float
    width: float
    height: float


def calibration_chart(report: RewardModelReport) -> CalibrationChart | None:
    bins = [b for b in report.calibration if b.n and b.predicted is not None and b.observed is not None]
    if not bins:
        return None
    most = max(b.n for b in bins)
    points = [
        Point(
            x=LEFT + b.predicted * SIZE,  # type: ignore[operator]
            y=TOP + (1 - b.observed) * SIZE,  # type: ignore[operator]
            r=3 + 6 * (b.n / most) ** 0.5,
            title=f"{b.low:.1f}–{b.high:.1f}: predicted {b.predicted:.2f}, humans {b.observed:.2f} (n={b.n})",
        )
        for b in bins
    ]
    return CalibrationChart(
        points=points,
        path=" ".join(f"{p.x:.1f},{p.y:.1f}" for p in points),
        ticks=[(k / 5 * SIZE, f"{k / 5:.1f}") for k in range(6)],
        left=LEFT,
        top=TOP,
        size=SIZE,
        width=LEFT + SIZE + 20,
        height=TOP + SIZE + 48,
    )
