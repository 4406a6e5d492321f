from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, JSONType, utcnow


class ProjectKind(StrEnum):
    ranking = "ranking"  # each prompt has 2–9 responses, ranked best to worst
    pairwise = "pairwise"  # exactly 2 responses: chosen / rejected


# Responses per prompt each kind allows; a project may narrow its own (min_responses..max_responses).
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
    # Responses a prompt of this project must have, within its kind's RESPONSE_BOUNDS; checked at import.
    # (Server defaults: the ranking range, for rows that existed before these columns; see the 0008 migration.)
    min_responses: Mapped[int] = mapped_column(server_default=text("2"))
    max_responses: Mapped[int] = mapped_column(server_default=text("9"))
    lease_minutes: Mapped[int | None]  # how long a task stays leased; None: the LEASE_MINUTES setting
    archived_at: Mapped[datetime | None]  # archived: read-only, hidden from annotators (app/projects/service.py)
    # Annotators may revise their own submitted labels (README "My labels").
    revisions_open: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def response_bounds(self) -> tuple[int, int]:
        return self.min_responses, self.max_responses

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


class ImportStatus(StrEnum):
    """An import batch's life: its prompts are served, counted, searched and exported only once it is committed."""

    loading = "loading"  # writing its chunks
    committed = "committed"
    failed = "failed"  # its rows being removed


class ImportBatch(Base):
    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    imported_count: Mapped[int] = mapped_column(default=0)
    skipped_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default=ImportStatus.committed)  # app/prompts/service.py
    # The importing process ("host:pid") and its last sign of life, refreshed per chunk: a loading batch whose
    # process is gone or silent is abandoned and removed (prompts.service.discard_abandoned_imports).
    owner: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime | None]


class ProjectMember(Base):
    """An annotator works only on the projects they are members of."""

    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProjectAudit(Base):
    """One change to a project's settings: who, when, which field, the value before and after (JSON).

    A deleted project's log goes with it; the deletion itself stays as a row with project_id NULL and the
    project's name (README, "Editing, archiving and deleting a project")."""

    __tablename__ = "project_audit"
    __table_args__ = (Index("ix_project_audit_project_id_id", "project_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    project_name: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(320))  # the user's e-mail then, or "command line"
    field: Mapped[str] = mapped_column(String(50))
    before: Mapped[Any] = mapped_column(JSONType, nullable=True)  # None: nothing (e.g. after a deletion)
    after: Mapped[Any] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
