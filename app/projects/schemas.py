from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from pydantic_core import PydanticCustomError

from app.annotation.overlap import DEFAULT_OVERLAP
from app.models import ProjectKind
from app.models.project import RESPONSE_BOUNDS
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

    # Responses per prompt; by default the kind's range (RESPONSE_BOUNDS), narrower if a campaign wants exactly 4.
    min_responses: int | None = None
    max_responses: int | None = None
    # How long a task stays leased to an annotator; None: the LEASE_MINUTES setting.
    lease_minutes: int | None = Field(default=None, ge=1, le=24 * 60)

    @model_validator(mode="after")
    def _consistent(self) -> "ProjectCreate":
        if (self.adaptive_threshold is None) != (self.max_overlap is None):
            field = "max_overlap" if self.max_overlap is None else "adaptive_threshold"
            _reject(field, "adaptive overlap needs both adaptive_threshold and max_overlap")
        if self.max_overlap is not None and self.max_overlap <= self.overlap:
            _reject("max_overlap", f"max_overlap ({self.max_overlap}) must be greater than overlap ({self.overlap})")
        self.name = self.name.strip()
        if not self.name:
            _reject("name", "name must not be blank")
        if self.strength_scale is not None:
            if self.kind != ProjectKind.pairwise:
                _reject("strength_scale", "strength_scale is only for pairwise projects")
            labels = [s.strip() for s in self.strength_scale]
            if not 2 <= len(labels) <= 7 or any(not s for s in labels) or len(set(labels)) != len(labels):
                _reject("strength_scale", "strength_scale needs 2 to 7 distinct, non-empty labels")
            self.strength_scale = labels
        if self.rating_criteria is not None:
            names = [c.name for c in self.rating_criteria]
            if len(set(names)) != len(names):
                _reject("rating_criteria", "rating criteria names must be distinct")
        low, high = RESPONSE_BOUNDS[self.kind]
        self.min_responses = low if self.min_responses is None else self.min_responses
        self.max_responses = high if self.max_responses is None else self.max_responses
        kind_range = f"exactly {low}" if low == high else f"{low} to {high}"
        for field in ("min_responses", "max_responses"):
            if not low <= getattr(self, field) <= high:
                _reject(field, f"{field} must be within the {self.kind} range: {kind_range} responses per prompt")
        if self.min_responses > self.max_responses:
            _reject(
                "max_responses", f"max_responses ({self.max_responses}) must be at least min_responses ({self.min_responses})"
            )
        return self


def _reject(field: str, message: str) -> None:
    """A rule involving several fields broken: the error names the field to fix (in its context, as
    `field_errors` reads it), so the edit form shows it next to that field."""
    raise PydanticCustomError("project_rule", message, {"field": field})


def field_errors(errors: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Pydantic errors of ProjectCreate/ProjectUpdate as {field: message}; "" for errors of no one field."""
    messages: dict[str, str] = {}
    for error in errors:
        location = [str(p) for p in error["loc"] if p != "body"]
        field = location[0] if location else (error.get("ctx") or {}).get("field", "")
        messages.setdefault(field, error["msg"])
    return messages


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
    min_responses: int
    max_responses: int
    lease_minutes: int | None
    archived_at: datetime | None
    revisions_open: bool
    created_at: datetime


# What PATCH /api/projects/{id} may change (the names of ProjectRead). Each is checked by ProjectCreate's rules
# against the project's other settings (app/projects/service.py, edit_project); a new editable field is one entry.
EDITABLE_FIELDS = (
    "name",
    "guidelines",
    "overlap",
    "adaptive_threshold",
    "max_overlap",
    "lease_minutes",
    "allow_ties",
    "strength_scale",
    "rating_criteria",
    "min_responses",
    "max_responses",
    "revisions_open",
)
READ_ONLY_FIELDS = {
    "id": "a project's id never changes",
    "kind": "a project's kind cannot change once created: create a new project",
    "created_at": "created_at never changes",
    "archived_at": "archive or unarchive with POST /api/projects/{id}/archive or /unarchive",
}


class _UpdateBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for field, why in READ_ONLY_FIELDS.items():
                if field in data:
                    _reject(field, f"{field}: {why}")
        return data


# Partial: only the fields sent are changed. Typed as in ProjectCreate; its rules run on the merged settings.
ProjectUpdate = create_model(  # type: ignore[call-overload]
    "ProjectUpdate",
    __base__=_UpdateBase,
    **{name: (ProjectCreate.model_fields[name].annotation | None, None) for name in EDITABLE_FIELDS},  # type: ignore[operator]
)


class ProjectAuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    project_id: int | None
    project_name: str
    actor: str
    field: str
    before: Any
    after: Any
    created_at: datetime


class ProjectStats(BaseModel):
    prompts: int
    annotations: int
    complete: int  # prompts with as many annotations as their overlap asks for
    in_progress: int  # active leases right now
    skipped: int
    annotators: int


class AnnotatorProgress(BaseModel):
    """Who is doing what in a project (researchers and admins): one row per member, and per former member
    who worked on it."""

    annotator_id: int
    email: str
    name: str
    member: bool  # False: removed from the project since
    done: int  # labels submitted
    skipped: int
    holding: int  # 1 when a task is on their screen now (a live lease), else 0
    prefetched: int  # live leases beyond the one on screen: the next task, leased ahead (at most 1)
    median_seconds: float | None  # median time per labelled task (see service.progress_by_annotator)
    last_active: datetime | None  # their latest lease or label
