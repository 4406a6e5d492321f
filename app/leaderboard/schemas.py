"""The leaderboard's options (the API's query parameters, the page's form, the CLI's flags) and its report."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.models.base import MAX_ID
from app.reports.schemas import CacheInfo

UserId = Annotated[int, Field(ge=1, le=MAX_ID)]  # larger ids name no user (and PostgreSQL would refuse them)


class LeaderboardOptions(BaseModel):
    # Unknown query parameters are an error (422 naming them), not silently ignored.
    model_config = ConfigDict(extra="forbid")

    exclude_annotator: list[UserId] = Field(
        default_factory=list, description="Leave out this annotator's labels (user id); repeatable"
    )
    min_agreement: float | None = Field(
        None, ge=0, le=1, description="Only prompts whose agreement (tie_half, among the annotators kept) is at least this"
    )
    criterion: str | None = Field(
        None, description="Decisions from this rating criterion's scores (higher wins, equal ties) instead of the rankings"
    )
    baseline: str | None = Field(None, description="Model rated 1000; by default the mean of all models is 1000")
    resamples: int = Field(200, ge=200, le=5000, description="Bootstrap resamples of prompts for the 95 % intervals")
    seed: int = Field(0, ge=0, le=2**31, description="Seed of the bootstrap")

    @field_validator("min_agreement", "criterion", "baseline", mode="before")
    @classmethod
    def _blank_is_none(cls, value):  # an empty form field means "not set"
        return None if value == "" else value


class ModelRating(BaseModel):
    model: str
    rating: float  # Elo-like: 1000 + 400·log10(odds) against the anchor
    ci_low: float  # 95 % bootstrap interval (prompts resampled)
    ci_high: float
    decisions: int  # decisions against other models, ties included
    wins: int
    losses: int
    ties: int


class MatrixCell(BaseModel):
    model: str  # the row's model
    opponent: str  # the column's model
    decisions: int
    wins: int  # decisions `model` won against `opponent`
    losses: int
    ties: int
    win_rate: float | None  # (wins + ½·ties) / decisions; None without decisions (and on the diagonal)


class LeftOut(BaseModel):
    """Decisions and prompts the leaderboard did not count, and why (nothing is dropped silently)."""

    same_model: int = 0  # decisions between two responses of one model
    no_model: int = 0  # decisions involving a response without a model
    prompts_below_agreement: int = 0  # prompts under min_agreement (or with one annotator, no agreement)
    excluded_labels: int = 0  # labels of the excluded annotators


class Leaderboard(CacheInfo):
    project_id: int
    project_name: str
    options: LeaderboardOptions  # as applied (echoed)
    anchor: str  # "mean of all models" or the baseline model
    prior: str  # the prior that keeps every rating finite (docs/leaderboard.md)
    decisions: int
    prompts: int
    annotators: int
    models: list[ModelRating]  # best first
    matrix: list[list[MatrixCell]]  # matrix[i][j]: models[i] against models[j]
    left_out: LeftOut
    reason: str | None = None  # why there is no model to rate, when `models` is empty
