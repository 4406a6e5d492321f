"""How the agreement report's numbers read, for the dashboard, the CLI and the dataset card alike."""

from app.agreement.schemas import Metric

MISSING = "n/a"


def number(value: float | None, digits: int = 3) -> str:
    """A statistic: 0.734 (digits after the point), or n/a."""
    return MISSING if value is None else f"{value:.{digits}f}"


def metric(m: Metric | None) -> str:
    """A metric's value; undefined ones read n/a (the reason is shown beside it)."""
    return number(m.value) if m is not None else MISSING


def percent(value: float | None) -> str:
    """A rate in [0, 1] as a whole percentage: 73%, or n/a."""
    return MISSING if value is None else f"{value * 100:.0f}%"


def p_value(value: float | None) -> str:
    """Two significant digits (p-values span many orders of magnitude); empty when there is none."""
    return "" if value is None else f"{value:.2g}"


def share(part: int, whole: int) -> str:
    """A count of a whole as a percentage with the counts: 12% (3 of 25), or n/a of nothing."""
    return MISSING if not whole else f"{percent(part / whole)} ({part} of {whole})"
