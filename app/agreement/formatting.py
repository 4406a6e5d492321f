"""How the agreement report's numbers read, for the dashboard, the CLI and the dataset card alike."""

from app.agreement.schemas import AgreementReport, Metric

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


INSTRUCTGPT_AGREEMENT = 0.73  # inter-labeler agreement InstructGPT reports (Ouyang et al. 2022, §3.4; README, "Agreement")
HEADLINE_METRIC = "agreement_tie_half_pooled"  # InstructGPT's rate, with WebGPT's tie rule

# Human names of the report's metrics; the machine keys stay in the JSON and show as the name's tooltip.
_CONVENTIONS = {"tie_half": "a tie counts half", "tie_as_category": "a tie is its own answer", "strict_only": "ties left out"}
_POOLINGS = {"pooled": "over all pairs", "prompt_mean": "mean per prompt"}
METRIC_NAMES = {
    "krippendorff_alpha_ordinal_rank": "Krippendorff's alpha (ranks)",
    "kendall_w_mean": "Kendall's W, mean per prompt",
    "kendall_tau_b_mean": "Kendall's tau-b, mean per annotator pair",
    "fleiss_kappa": "Fleiss' kappa",
    "cohen_kappa_mean": "Cohen's kappa, mean per annotator pair",
    "krippendorff_alpha_nominal": "Krippendorff's alpha (A / B / tie)",
    "krippendorff_alpha_ordinal_strength": "Krippendorff's alpha (preference strength)",
    "loo_agreement": "Agreement with the others",
} | {
    f"agreement_{c}_{q}": f"Agreement rate ({convention}, {pooling})"
    for c, convention in _CONVENTIONS.items()
    for q, pooling in _POOLINGS.items()
}


def metric_name(key: str) -> str:
    """What a person calls the metric stored under `key` (the key itself when there is no name for it)."""
    return METRIC_NAMES.get(key, key.replace("_", " "))


def headline(report: AgreementReport) -> str:
    """The dashboard's first sentence: how often annotators agree, next to InstructGPT's figure."""
    rate = report.project.get(HEADLINE_METRIC)
    if rate is None or rate.value is None:
        return (
            f"No agreement to report yet: {report.summary.prompts_with_2plus} prompts have labels by two or more "
            f"annotators ({rate.reason if rate and rate.reason else 'no labels'})."
        )
    return f"Annotators agree on {percent(rate.value)} of pairs; InstructGPT reported {percent(INSTRUCTGPT_AGREEMENT)}."


def warnings(report: AgreementReport) -> list[str]:
    """Annotators to look at, in words: those no better than chance and those favouring the first-shown response."""
    careless = [a.name or a.email or str(a.annotator_id) for a in report.annotators if a.careless_alert]
    biased = [a.name or a.email or str(a.annotator_id) for a in report.annotators if a.bias_alert]
    lines = []
    if careless:
        lines.append(
            f"{len(careless)} annotator{'s' if len(careless) != 1 else ''} agree{'s' if len(careless) == 1 else ''} "
            f"with the others no more than chance would: {', '.join(careless)}."
        )
    if biased:
        lines.append(f"Put the response shown first on top far more often than chance: {', '.join(biased)}.")
    return lines


def share(part: int, whole: int) -> str:
    """A count of a whole as a percentage with the counts: 12% (3 of 25), or n/a of nothing."""
    return MISSING if not whole else f"{percent(part / whole)} ({part} of {whole})"
