from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class ReportCache(Base):
    """The last computed report of one kind, for one project and one set of options (app/reports/cache.py), and the
    lease of the process computing its next version."""

    __tablename__ = "report_cache"
    __table_args__ = (UniqueConstraint("project_id", "kind", "params_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))  # agreement, leaderboard, ...
    params_key: Mapped[str] = mapped_column(String(64))  # sha256 of the options, "" without options
    payload: Mapped[str | None] = mapped_column(Text)  # the report as JSON; None until first computed
    stamp: Mapped[str | None] = mapped_column(String(400))  # the data stamp the payload was computed from
    computed_at: Mapped[datetime | None]
    lease_token: Mapped[str | None] = mapped_column(String(32))  # who is computing now, until lease_expires_at
    lease_expires_at: Mapped[datetime | None]


class ReportEpoch(Base):
    """Per project, a counter of the rare changes reports depend on that leave no cheaper trace (gold marks):
    part of the data stamp. Bumped only on those events, never per label, so annotators never wait on this row."""

    __tablename__ = "report_epochs"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(default=0)
