from datetime import datetime

from pydantic import BaseModel, Field

from app.models import ProjectKind
from app.rankings import Tiers
from app.text import StorableText


class ResponseView(BaseModel):
    id: int
    text: str
    label: str  # "A", "B", "C" … in the order shown; model names are hidden from annotators


class TaskRead(BaseModel):
    task_id: int
    project_id: int
    kind: ProjectKind
    prompt_id: int
    prompt: str | list[dict[str, str]]  # a plain string, or the chat as {role, content} messages
    responses: list[ResponseView]  # in the order shown to this annotator
    allow_ties: bool
    strength_scale: list[str] | None
    rating_criteria: list[dict] | None
    lease_expires_at: datetime


class AnnotationCreate(BaseModel):
    """Ranking: `ranking` = tiers of response ids, best first. Pairwise: `chosen`/`rejected`, or `tie`."""

    ranking: Tiers | None = None
    chosen: int | None = None
    rejected: int | None = None
    tie: bool = False
    strength: int | None = Field(default=None, ge=0, description="Index into the project's strength scale, 0 = strongest")
    none_acceptable: bool = False  # "none of these is acceptable" / "both are bad"
    flag: str | None = Field(default=None, max_length=50, pattern=r"^[a-z_]+$")  # e.g. "harmful"
    flag_reason: StorableText | None = Field(default=None, max_length=5000)
    rationale: StorableText | None = Field(default=None, max_length=20000)
    ratings: dict[str, dict[int, float]] | None = None  # criterion -> response id -> value
    time_spent_ms: int | None = Field(default=None, ge=0, le=86_400_000)


class AnnotationRead(BaseModel):
    id: int
    task_id: int
    prompt_id: int
    ranking: Tiers | None
    strength: int | None
    none_acceptable: bool
    flag: str | None
    order_changed: bool  # false: the label is the order shown, untouched (README "My labels")
    created_at: datetime  # the first submission
    revision: int = 0  # how often its annotator revised it
    revised_at: datetime | None = None
    duplicate: bool = False  # true when this was a repeated submit of an already stored label


class MyLabel(BaseModel):
    """One of the caller's own labels, as "My labels" lists it."""

    annotation_id: int
    task_id: int
    prompt_id: int
    prompt_external_id: str
    prompt_excerpt: str  # plain text, shortened
    label: AnnotationCreate  # the latest version, in the shape a submit (or a revision) sends
    order_changed: bool
    submitted_at: datetime
    revision: int
    revised_at: datetime | None


class MyLabelsPage(BaseModel):
    items: list[MyLabel]  # newest first
    total: int
    limit: int
    offset: int


class SkipRequest(BaseModel):
    reason: StorableText | None = Field(default=None, max_length=2000)
