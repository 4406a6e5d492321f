from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, JSONType, utcnow
from app.models.prompt import Prompt
from app.rankings import Tiers


class AssignmentStatus(StrEnum):
    leased = "leased"  # offered to the annotator until lease_expires_at
    done = "done"  # an annotation was stored
    skipped = "skipped"  # the annotator passed; never offered to them again
    expired = "expired"  # the lease ran out; the prompt went back to the pool


class Assignment(Base):
    """One annotator's claim on one prompt. At most one per (prompt, annotator), ever."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("prompt_id", "annotator_id"),
        CheckConstraint("status IN ('leased', 'done', 'skipped', 'expired')", name="status"),
        Index("ix_assignments_annotator_status", "annotator_id", "status", "project_id"),
        Index("ix_assignments_status_expiry", "status", "lease_expires_at"),
        # A project's skips, for the reports' data stamp (app/reports/stamp.py). Partial: only skipped rows.
        Index(
            "ix_assignments_project_skipped",
            "project_id",
            postgresql_where=text("status = 'skipped'"),
            sqlite_where=text("status = 'skipped'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default=AssignmentStatus.leased)
    leased_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[datetime]
    shown_order: Mapped[list[int]] = mapped_column(JSONType)  # response ids, as displayed
    skip_reason: Mapped[str | None] = mapped_column(Text)
    skipped_at: Mapped[datetime | None]

    prompt: Mapped[Prompt] = relationship(lazy="raise")


class Annotation(Base):
    """A submitted label. One per assignment, so a double submit cannot store two."""

    __tablename__ = "annotations"
    __table_args__ = (
        CheckConstraint("kind IN ('ranking', 'pairwise')", name="kind"),
        Index("ix_annotations_project_prompt", "project_id", "prompt_id"),
        # Deleting prompts (a project's deletion) looks up their labels by prompt_id alone, once per prompt for the
        # foreign key: without this index each lookup scans the table, and deleting a project is quadratic.
        Index("ix_annotations_prompt_id", "prompt_id"),
        # The reports' data stamp (app/reports/stamp.py): count, max id and sum of revisions, from the index alone.
        Index("ix_annotations_report_stamp", "project_id", "id", "revision"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    # Ranking: tiers of response ids, best first; a tier of several is a tie. Pairwise: [[chosen], [rejected]]
    # or [[a, b]] for a tie, so every consumer reads one shape.
    ranking: Mapped[Tiers | None] = mapped_column(JSONType)
    strength: Mapped[int | None]  # pairwise: index into the project's strength_scale, 0 = strongest
    none_acceptable: Mapped[bool] = mapped_column(default=False)  # "none of these is acceptable" / "both are bad"
    flag: Mapped[str | None] = mapped_column(String(50))  # e.g. "harmful"
    flag_reason: Mapped[str | None] = mapped_column(Text)
    rationale: Mapped[str | None] = mapped_column(Text)
    ratings: Mapped[dict[str, dict[str, float]] | None] = mapped_column(JSONType)  # criterion -> response id -> value
    time_spent_ms: Mapped[int | None]
    shown_order: Mapped[list[int]] = mapped_column(JSONType)
    # False when the label is the order shown, untouched (app.rankings.order_changed; README "My labels").
    order_changed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)  # the first submission
    # The row holds the latest version; revision counts the annotator's revisions of it (0: never revised),
    # and each earlier version is an AnnotationRevision.
    revision: Mapped[int] = mapped_column(default=0)
    revised_at: Mapped[datetime | None]

    prompt: Mapped[Prompt] = relationship(lazy="raise")


class AnnotationRevision(Base):
    """A label as it was before its annotator revised it: the version `revision` of the annotation, replaced at
    `revised_at`. History only: agreement, consensus and exports read the annotation row (the latest version)."""

    __tablename__ = "annotation_revisions"
    __table_args__ = (UniqueConstraint("annotation_id", "revision"),)  # two racing revisions cannot both be version n

    id: Mapped[int] = mapped_column(primary_key=True)
    annotation_id: Mapped[int] = mapped_column(ForeignKey("annotations.id", ondelete="CASCADE"))
    revision: Mapped[int]  # which version of the label this was (0: as first submitted)
    revised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revised_at: Mapped[datetime] = mapped_column(default=utcnow)  # when this version was replaced
    submitted_at: Mapped[datetime]  # when this version was submitted
    ranking: Mapped[Tiers | None] = mapped_column(JSONType)
    strength: Mapped[int | None]
    none_acceptable: Mapped[bool]
    flag: Mapped[str | None] = mapped_column(String(50))
    flag_reason: Mapped[str | None] = mapped_column(Text)
    rationale: Mapped[str | None] = mapped_column(Text)
    ratings: Mapped[dict[str, dict[str, float]] | None] = mapped_column(JSONType)
    time_spent_ms: Mapped[int | None]
    order_changed: Mapped[bool]
