"""The prompt browser's filters (query parameters of the page and the API alike) and its rows."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.annotation.overlap import PromptStatus
from app.models.base import MAX_ID

PromptSort = Literal["-date", "date", "agreement", "-agreement"]


class PromptQuery(BaseModel):
    # An unknown or misspelt parameter is a 422 naming it, not a filter silently not applied.
    model_config = ConfigDict(extra="forbid")

    status: PromptStatus | None = Field(None, description="open, in_progress or complete, as the project counts name them")
    q: str | None = Field(None, max_length=500, description="Words the prompt's text holds, all of them (full-text search)")
    min_agreement: float | None = Field(None, ge=0, le=1, description="Agreement (tie_half) at least this")
    max_agreement: float | None = Field(None, ge=0, le=1, description="Agreement (tie_half) at most this")
    annotator: int | None = Field(None, ge=1, le=MAX_ID, description="Labelled by this user id")
    flagged: bool | None = Field(None, description="true: some label flags it; false: none does")
    skipped: bool | None = Field(None, description="true: someone skipped it; false: nobody did")
    gold: bool | None = Field(None, description="Gold prompts only (true) or none (false)")
    has_reference: bool | None = Field(None, description="With an imported reference label (true) or without (false)")
    sort: PromptSort = Field(
        "-date",
        description="-date: newest import first; date: oldest first; agreement: lowest first; -agreement: highest first "
        "(prompts without an agreement last in both)",
    )
    cursor: str | None = Field(None, max_length=500, description="next_cursor of the previous page")
    limit: int = Field(50, ge=1, le=500, description="Prompts per page")

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value, info):  # an empty form field means "any"
        if value == "" and info.field_name not in ("sort", "limit"):
            return None
        return value

    @model_validator(mode="after")
    def _range(self) -> "PromptQuery":
        if self.min_agreement is not None and self.max_agreement is not None and self.min_agreement > self.max_agreement:
            raise ValueError("max_agreement: must not be below min_agreement")
        return self

    def filters(self) -> dict[str, str]:
        """The filters set (not the cursor) as query parameters, for links to other pages."""
        values = self.model_dump(exclude={"cursor"}, exclude_none=True, exclude_defaults=True)
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}


class PromptItem(BaseModel):
    id: int
    external_id: str
    excerpt: str  # the prompt's text, shortened; plain text (pages escape it)
    status: PromptStatus
    agreement: float | None
    labels: int  # completed labels
    target: int  # labels wanted (target_overlap)
    is_gold: bool
    has_reference: bool
    flags: int  # labels that flag it
    skips: int
    imported_at: datetime | None  # the import's time (None: not imported from a file)
    url: str  # the per-prompt page


class PromptPage(BaseModel):
    items: list[PromptItem]
    next_cursor: str | None
