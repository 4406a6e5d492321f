from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.annotation.overlap import DEFAULT_OVERLAP
from app.models import ProjectKind
from app.text import StorableText

LLAMA2_STRENGTH_SCALE = ["significantly better", "better", "slightly better", "negligibly better / unsure"]


class RatingCriterion(BaseModel):
    name: str = Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_\- ]+$")
    min: int = 1
    max: int = 7
    description: StorableText = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _range(self) -> "RatingCriterion":
        if self.max <= self.min:
            raise ValueError(f"criterion {self.name!r}: max ({self.max}) must be greater than min ({self.min})")
        return self


class ProjectCreate(BaseModel):
    name: StorableText = Field(min_length=1, max_length=200)
    kind: ProjectKind = ProjectKind.ranking
    overlap: int = Field(default=DEFAULT_OVERLAP, ge=1, le=50)
    allow_ties: bool = False
    strength_scale: list[StorableText] | None = Field(default=None, description="Pairwise only; strongest first")
    rating_criteria: list[RatingCriterion] | None = None
    guidelines: StorableText = Field(default="", max_length=100_000)
    # Adaptive overlap: a prompt whose agreement (0–1) ends below the threshold gets one more annotator,
    # up to max_overlap. Both or neither.
    adaptive_threshold: float | None = Field(default=None, gt=0, le=1)
    max_overlap: int | None = Field(default=None, ge=2, le=50)
    revisions_open: bool = True  # annotators may revise their own submitted labels

    @model_validator(mode="after")
    def _consistent(self) -> "ProjectCreate":
        if (self.adaptive_threshold is None) != (self.max_overlap is None):
            raise ValueError("adaptive overlap needs both adaptive_threshold and max_overlap")
        if self.max_overlap is not None and self.max_overlap <= self.overlap:
            raise ValueError(f"max_overlap ({self.max_overlap}) must be greater than overlap ({self.overlap})")
        self.name = self.name.strip()
        if not self.name:
            raise ValueError("name must not be blank")
        if self.strength_scale is not None:
            if self.kind != ProjectKind.pairwise:
                raise ValueError("strength_scale is only for pairwise projects")
            labels = [s.strip() for s in self.strength_scale]
            if not 2 <= len(labels) <= 7 or any(not s for s in labels) or len(set(labels)) != len(labels):
                raise ValueError("strength_scale needs 2 to 7 distinct, non-empty labels")
            self.strength_scale = labels
        if self.rating_criteria is not None:
            names = [c.name for c in self.rating_criteria]
            if len(set(names)) != len(names):
                raise ValueError("rating criteria names must be distinct")
        return self


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    kind: ProjectKind
    overlap: int
    allow_ties: bool
    strength_scale: list[str] | None
    rating_criteria: list[RatingCriterion] | None
    guidelines: str
    adaptive_threshold: float | None
    max_overlap: int | None
    revisions_open: bool
    created_at: datetime


class ProjectStats(BaseModel):
    prompts: int
    annotations: int
    complete: int  # prompts with as many annotations as their overlap asks for
    in_progress: int  # active leases right now
    skipped: int
    annotators: int
