from datetime import datetime

from sqlalchemy import Double, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class RewardModel(Base):
    """A reward model's scores uploaded under a name (README "Reward-model evaluation"); one per name and project."""

    __tablename__ = "reward_models"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(500))
    scored: Mapped[int]  # responses scored
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RewardModelScore(Base):
    __tablename__ = "reward_model_scores"
    # Deleting a prompt deletes its responses; each then looks up its scores by response_id alone.
    __table_args__ = (Index("ix_reward_model_scores_response_id", "response_id"),)

    reward_model_id: Mapped[int] = mapped_column(ForeignKey("reward_models.id", ondelete="CASCADE"), primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[float] = mapped_column(Double)
