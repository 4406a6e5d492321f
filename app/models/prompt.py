from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, JSONType, utcnow
from app.rankings import Tiers


class Prompt(Base):
    __tablename__ = "prompts"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id"),
        # The queue walks this index: least-served prompts of a project first (see annotation.service).
        # Partial: it holds only visible prompts that still want annotators, so served ones and those of an
        # import still loading are never walked. SQLite matches it only on the very terms the query renders
        # (`prompts.visible = 1` for the column `visible`), hence the two spellings.
        Index(
            "ix_prompts_open",
            "project_id",
            "active_count",
            "id",
            postgresql_where=text("active_count < target_overlap AND visible"),
            sqlite_where=text("active_count < target_overlap AND visible = 1"),
        ),
        # Short side queues: prompts adaptive overlap asked more annotators for, and gold prompts.
        Index("ix_prompts_boosted", "project_id", "boosted", "id"),
        Index("ix_prompts_gold", "project_id", "is_gold", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id", ondelete="SET NULL"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))  # the file's "id", or generated
    messages: Mapped[list[dict[str, str]]] = mapped_column(JSONType)  # always a chat
    is_chat: Mapped[bool] = mapped_column(default=False)  # False: the source gave a plain string
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    # Denormalised counters kept by the queue, so "next task" never counts rows:
    # completed annotations, and completed plus currently leased.
    completed_count: Mapped[int] = mapped_column(default=0)
    active_count: Mapped[int] = mapped_column(default=0)
    # Distinct annotators wanted; starts at the project's overlap, raised by adaptive overlap. Gold prompts
    # go to every annotator whatever it says (app/annotation/overlap.py owns these rules).
    target_overlap: Mapped[int]
    # Gold prompts carry a known answer (tiers of response ids, best first); mixed into queues unannounced.
    is_gold: Mapped[bool] = mapped_column(default=False)
    # Adaptive overlap raised target_overlap because agreement was low: served before other prompts.
    boosted: Mapped[bool] = mapped_column(default=False)
    gold_ranking: Mapped[Tiers | None] = mapped_column(JSONType)
    # The report's per-prompt agreement (tie_half), updated with every label (app/agreement/labels.py,
    # refresh_agreement), so the prompt browser sorts and filters without a report. None: fewer than 2 labels.
    agreement: Mapped[float | None]
    # False while the prompt's import is still writing (or failed): nobody sees it; the import's last transaction
    # flips its whole batch at once (app/prompts/service.py). Readers filter through `shown_in` below.
    visible: Mapped[bool] = mapped_column(default=True)

    responses: Mapped[list["Response"]] = relationship(lazy="raise", order_by="Response.position", back_populates="prompt")

    @property
    def text(self) -> str:
        """The prompt as one string (a plain prompt's text, or the chat's last user turn)."""
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


def shown_in(project_id: Any) -> ColumnElement[bool]:
    """The prompts of a project as every reader sees them: those of imports that committed (`visible`).
    The one owner of that rule; `project_id` may be a value, a column or a bind parameter."""
    return (Prompt.project_id == project_id) & Prompt.visible


class Response(Base):
    __tablename__ = "responses"
    __table_args__ = (UniqueConstraint("prompt_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    position: Mapped[int]  # order in the uploaded file, 0-based
    text: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)

    prompt: Mapped[Prompt] = relationship(lazy="raise", back_populates="responses")


class ReferenceLabel(Base):
    """A machine or dataset judgement of a prompt (an imported preference, an AI judge): tiers of response ids,
    best first, one per (prompt, source). Researchers and admins only; annotators never see one."""

    __tablename__ = "reference_labels"
    __table_args__ = (UniqueConstraint("prompt_id", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(200))  # "judge-gpt", or by default "trl: file.jsonl"
    ranking: Mapped[Tiers] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
