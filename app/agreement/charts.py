"""Tiny server-side SVG charts for the dashboard: no chart library, no script (the CSP allows none)."""

from dataclasses import dataclass

from app.agreement import formatting


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    title: str
    warn: bool = False


def histogram(values: list[float], *, bins: int = 10, width: int = 480, height: int = 160) -> list[Bar]:
    """Bars of the distribution of values in [0, 1]."""
    counts = [0] * bins
    for v in values:
        counts[min(int(v * bins), bins - 1)] += 1
    top = max(counts) or 1
    step = width / bins
    return [
        Bar(
            x=i * step,
            y=height - c / top * height,
            width=step - 2,
            height=c / top * height,
            label=f"{i / bins:.1f}",
            title=f"{i / bins:.1f}–{(i + 1) / bins:.1f}: {c} prompts",
        )
        for i, c in enumerate(counts)
    ]


def columns(
    items: list[tuple[str, float | None, bool]], *, top: float | None = None, width: int = 480, height: int = 160
) -> list[Bar]:
    """One bar per (label, value, warn); None values are drawn empty."""
    if not items:
        return []
    scale = top or max((v for _, v, _ in items if v is not None), default=1) or 1
    step = width / len(items)
    return [
        Bar(
            x=i * step,
            y=height - (v or 0) / scale * height,
            width=max(step - 2, 1),
            height=(v or 0) / scale * height,
            label=label,
            title=f"{label}: {v if isinstance(v, int) else formatting.number(v)}",  # counts stay whole
            warn=warn,
        )
        for i, (label, v, warn) in enumerate(items)
    ]
