"""The agreement report's shape: the JSON API's response_model, and what the dashboard, the CLI and the
dataset card read (they format it with `agreement/formatting.py`). `metrics.py` fills the statistics,
`service.py` what only the database knows. No numpy here: the app starts without it."""

import math
from typing import Literal

from pydantic import BaseModel, Field, computed_field

from app.reports.schemas import CacheInfo

BIAS_ALERT_P = 0.01  # position bias this unlikely by chance (and above chance) is highlighted
# Careless: agreement with the others' consensus not significantly above chance at this level (one-sided), once
# there are enough comparisons to tell: below 5, even agreeing on every one gives p = 0.5^n > 0.05.
CARELESS_ALERT_P = 0.05
CARELESS_MIN_COMPARISONS = math.floor(math.log2(1 / CARELESS_ALERT_P)) + 1  # the least n with 0.5^n < CARELESS_ALERT_P


class Metric(BaseModel):
    value: float | None
    reason: str | None = None  # why value is None; None when defined
    n: int  # units / pairs / prompts used (see the definition)
    definition: str


class PositionBias(BaseModel):
    observed: float | None  # share of labels that put the response shown first on top
    expected: float | None  # chance rate for the same labels
    hits: int
    n: int  # labels with a recorded display order (pairwise: ties excluded)
    p_value: float | None  # two-sided binomial test of hits ~ Bin(n, expected)
    reason: str | None = None


class ChanceTest(BaseModel):
    """Is the annotator's agreement with the leave-one-out consensus above chance? (README, "Agreement")
    Comparisons where neither the annotator nor the others' consensus ties: under the report's convention a
    random direction agrees with a non-tie consensus half the time, so chance = 0.5. One-sided binomial test
    of hits ~ Bin(n, 0.5) against "greater"; a ranking's comparisons are treated as independent."""

    observed: float | None  # hits / n
    chance: float = 0.5
    hits: int
    n: int
    p_value: float | None
    reason: str | None = None


class Summary(BaseModel):
    labels: int
    prompts: int
    annotators: int
    prompts_with_2plus: int
    # Response pairs (over all prompts) whose non-tie votes split evenly, at least one each way: no
    # majority orders them, so a two-response prompt's consensus is a tie (pair exports drop ties by default).
    even_splits: int = 0
    # Labels with a ranking or choice, and those submitted with the order shown untouched (order_changed false:
    # the first shown on top, README "My labels"); a high share may be labels given without reading.
    ranked_labels: int = 0
    untouched_labels: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def untouched_rate(self) -> float | None:
        return self.untouched_labels / self.ranked_labels if self.ranked_labels else None


class AnnotatorRow(BaseModel):
    annotator_id: int
    n_labels: int = 0  # labels with a ranking or choice
    n_shared: int = 0  # of those, on prompts that >= 1 other annotator also labelled
    loo_agreement: Metric | None = None  # against the leave-one-out consensus of the others
    position_bias: PositionBias | None = None
    above_chance: ChanceTest | None = None  # the careless-annotator test
    # Position bias, from the database: of this annotator's labels with a ranking or choice (ranked_labels), those
    # submitted exactly in the order shown (see Summary).
    ranked_labels: int = 0
    untouched_labels: int = 0
    # From the database (service.py); None where the annotator has nothing to measure.
    email: str | None = None
    name: str | None = None
    n_annotations: int = 0  # every stored annotation, with or without a ranking
    median_seconds: float | None = None
    skip_rate: float | None = None
    flag_rate: float | None = None
    none_acceptable_rate: float | None = None
    gold_accuracy: float | None = None
    gold_labels: int = 0
    # source -> tie convention -> agreement with that source's reference labels (only sources this annotator met)
    reference_agreements: dict[str, dict[str, Metric]] | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def untouched_rate(self) -> float | None:
        return self.untouched_labels / self.ranked_labels if self.ranked_labels else None

    @property
    def bias_alert(self) -> bool:
        """Puts the response shown first on top far more often than chance."""
        bias = self.position_bias
        return (
            bias is not None
            and bias.p_value is not None
            and bias.p_value < BIAS_ALERT_P
            and (bias.observed or 0) > (bias.expected or 0)
        )

    @property
    def careless_alert(self) -> bool:
        """Agrees with the others no more than chance would, over enough comparisons to tell."""
        test = self.above_chance
        return (
            test is not None
            and test.p_value is not None
            and test.n >= CARELESS_MIN_COMPARISONS
            and test.p_value >= CARELESS_ALERT_P
        )

    @property
    def careless_undecided(self) -> bool:
        """Too few comparisons for the careless test to tell: not flagged, and shown as such, not as a pass."""
        test = self.above_chance
        return test is not None and test.p_value is not None and test.n < CARELESS_MIN_COMPARISONS


class AnnotatorPair(BaseModel):
    annotator_a: int  # annotator_a < annotator_b
    annotator_b: int
    n_shared: int  # units (prompts, or prompt pairs for pairwise projects) both labelled
    metric: Metric  # Cohen's kappa (pairwise projects) or mean Kendall tau-b (ranking projects)


class PromptRow(BaseModel):
    prompt_id: int
    n_annotators: int
    agreement: float | None  # pairwise agreement rate, tie_half, pooled over this prompt's pairs
    n_comparisons: int  # annotator pairs x response pairs behind `agreement`
    kendall_w: float | None = None  # rankings only
    reason: str | None = None  # why agreement is None
    even_splits: int = 0  # response pairs whose non-tie votes split evenly
    external_id: str | None = None  # from the database


class ReferenceReport(BaseModel):
    """Agreement of human labels with one source's reference labels (an AI judge, an imported dataset), one figure
    per tie convention."""

    source: str
    prompts: int  # prompts the source labelled
    labels: int  # human labels on them
    agreement_tie_as_category: Metric
    agreement_tie_half: Metric
    agreement_strict_only: Metric


class DayCount(BaseModel):
    day: str
    labels: int


class SkipReasonCount(BaseModel):
    reason: str | None  # as the annotators gave it (trimmed); None: no reason given
    skips: int


class AgreementReport(CacheInfo):
    kind: Literal["ranking", "pairwise"]
    summary: Summary
    project: dict[str, Metric]  # metric name -> value
    criteria: dict[str, Metric]  # rating criterion -> interval alpha
    annotators: list[AnnotatorRow]
    annotator_pairs: list[AnnotatorPair]
    prompts: list[PromptRow]  # by id
    # From the database (service.py)
    project_id: int | None = None
    project_name: str | None = None
    references: list[ReferenceReport] = Field(default_factory=list)  # one per reference source, by name
    most_disputed: list[PromptRow] = Field(default_factory=list)
    labels_per_day: list[DayCount] = Field(default_factory=list)
    skip_reasons: list[SkipReasonCount] = Field(default_factory=list)  # most frequent first
