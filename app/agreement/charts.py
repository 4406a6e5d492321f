"""Tiny server-side SVG charts for the dashboard: no chart library, no script (the CSP allows none).
Every chart names its axes and writes each bar's value on it, so it reads without hovering."""

from dataclasses import dataclass

from app.agreement import formatting

WIDTH, HEIGHT = 480, 160  # the plot area, in SVG units (templates/agreement/_bars.html draws the axes around it)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # under the bar, on the x axis
    title: str  # the tooltip
    value: str = ""  # written above the bar
    warn: bool = False


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    x_title: str
    y_title: str
    y_max: str  # the value at the top of the y axis (its bottom is 0)


def histogram(values: list[float], *, bins: int = 10, x_title: str, y_title: str) -> Chart:
    """Bars of the distribution of values in [0, 1]."""
    counts = [0] * bins
    for v in values:
        counts[min(int(v * bins), bins - 1)] += 1
    top = max(counts) or 1
    step = WIDTH / bins
    bars = [
        Bar(
            x=i * step,
            y=HEIGHT - c / top * HEIGHT,
            width=step - 2,
            height=c / top * HEIGHT,
            label=f"{i / bins:.1f}",
            title=f"{i / bins:.1f}–{(i + 1) / bins:.1f}: {c} prompts",
            value=str(c) if c else "",
        )
        for i, c in enumerate(counts)
    ]
    return Chart(bars=bars, x_title=x_title, y_title=y_title, y_max=str(top))


def columns(
    items: list[tuple[str, float | None, bool]],
    *,
    x_title: str,
    y_title: str,
    top: float | None = None,
    as_percent: bool = False,
) -> Chart:
    """One bar per (label, value, warn); None values are drawn empty and read n/a."""
    scale = top or max((v for _, v, _ in items if v is not None), default=1) or 1

    def shown(v: float | None) -> str:
        if v is None:
            return formatting.MISSING
        if as_percent:
            return formatting.percent(v)
        return str(v) if isinstance(v, int) else formatting.number(v, 2)  # counts stay whole

    step = WIDTH / max(len(items), 1)
    bars = [
        Bar(
            x=i * step,
            y=HEIGHT - (v or 0) / scale * HEIGHT,
            width=max(step - 2, 1),
            height=(v or 0) / scale * HEIGHT,
            label=label,
            title=f"{label}: {shown(v)}",
            value=shown(v),
            warn=warn,
        )
        for i, (label, v, warn) in enumerate(items)
    ]
    return Chart(bars=bars, x_title=x_title, y_title=y_title, y_max=shown(scale))
