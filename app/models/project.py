from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, JSONType, utcnow


class ProjectKind(StrEnum):
    ranking = "ranking"  # each prompt has 2–9 responses, ranked best to worst
    pairwise = "pairwise"  # exactly 2 responses: chosen / rejected


RESPONSE_BOUNDS = {ProjectKind.ranking: (2, 9), ProjectKind.pairwise: (2, 2)}


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        CheckConstraint("kind IN ('ranking', 'pairwise')", name="kind"),
        CheckConstraint("overlap >= 1", name="overlap"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    overlap: Mapped[int]  # distinct annotators wanted per prompt; default in app.annotation.overlap
    allow_ties: Mapped[bool] = mapped_column(default=False)
    # Pairwise only: labels from strongest to weakest, e.g. Llama 2's four levels.
    strength_scale: Mapped[list[str] | None] = mapped_column(JSONType)
    # [{"name": "helpfulness", "min": 1, "max": 7, "description": "..."}]; rated per response.
    rating_criteria: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    guidelines: Mapped[str] = mapped_column(Text, default="")  # Markdown, shown to annotators
    # Adaptive overlap: prompts whose agreement falls below the threshold get more annotators, up to max_overlap.
    adaptive_threshold: Mapped[float | None]
    max_overlap: Mapped[int | None]
    # Annotators may revise their own submitted labels (README "My labels").
    revisions_open: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def response_bounds(self) -> tuple[int, int]:
        return RESPONSE_BOUNDS[ProjectKind(self.kind)]


class ImportBatch(Base):
    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    imported_count: Mapped[int] = mapped_column(default=0)
    skipped_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProjectMember(Base):
    """An annotator works only on the projects they are members of."""

    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
