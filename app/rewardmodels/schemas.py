"""Reward-model evaluation: the report's options (API query, page form, CLI flags), the report and the upload result."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.reports.schemas import CacheInfo

INSTRUCTGPT = (
    "InstructGPT (Ouyang et al. 2022): its reward models agreed with held-out labelers about 72 % of the time, "
    "while labelers agreed with each other about 73 %"
)
Convention = Literal["strict_only", "tie_half", "tie_as_category"]
# The export's consensus names (app/export/options.py ConsensusOption, less "none"); app/export/rows.py maps them to
# app.agreement.consensus's methods.
ConsensusName = Literal["borda", "majority", "ranked_pairs", "bradley_terry", "plackett_luce"]


class ReportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown query parameter is a 422 naming it

    consensus: ConsensusName = Field(
        "borda", description="How each prompt's labels are merged for accuracy vs consensus (as the export's option)"
    )


class Figure(BaseModel):
    value: float | None  # an accuracy in [0, 1]; None when no decision counts
    n: int  # the decisions (or consensus pairs) it is over


Accuracies = dict[Convention, Figure]


class CalibrationBin(BaseModel):
    low: float
    high: float
    n: int  # decisions in the bin, each decision counted once per orientation
    predicted: float | None  # mean σ(s(a) − s(b))
    observed: float | None  # share of human decisions preferring a (a tie counts ½)


class RewardModelReport(CacheInfo):
    project_id: int
    name: str
    filename: str
    created_at: datetime
    scored_responses: int
    consensus_method: str
    decisions: int  # every human decision of the project (pairs of responses per label)
    scored: int  # decisions whose two responses both have a score
    unscored: int  # left out: a response without a score
    individual: Accuracies  # against every annotator's decision
    consensus: Accuracies  # against each prompt's consensus ranking
    consensus_unscored: int
    ceiling: Accuracies  # each annotator against the other annotators' majority (leave-one-out)
    model_on_ceiling_pairs: Accuracies  # the reward model on exactly the decisions the ceiling counts
    prompt_levels: dict[str, int]  # prompts per agreement level
    by_level: dict[str, Accuracies]
    by_model_pair: dict[str, Accuracies]
    calibration: list[CalibrationBin]
    ece: float | None  # expected calibration error Σ (n_b / N)·|observed_b − predicted_b|
    reference: str = INSTRUCTGPT


class RewardModelList(CacheInfo):
    project_id: int
    project_name: str
    reward_models: list[RewardModelReport]  # by name; side by side on the page


class UploadResult(BaseModel):
    name: str
    filename: str
    scored: int  # responses scored
    replaced: bool  # an earlier upload under this name was replaced
