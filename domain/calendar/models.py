"""The brand's posting schedule and its read-only calendar feeds."""

from __future__ import annotations

from datetime import datetime, time
from uuid import UUID

from sqlalchemy import DateTime, ForeignKey, SmallInteger, String, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domain.core.db import Base, TenantMixin


class PostingSlot(TenantMixin, Base):
    """A recurring weekly time for a brand on a network, in the brand's wall-clock time
    (ISO weekday 1 = Monday). "Add to queue" takes the next free one."""

    __tablename__ = "posting_slots"

    brand_id: Mapped[UUID] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    network: Mapped[str] = mapped_column(String(20))
    weekday: Mapped[int] = mapped_column(SmallInteger)
    local_time: Mapped[time] = mapped_column(Time)

    __table_args__ = (UniqueConstraint("brand_id", "network", "weekday", "local_time"),)


class CalendarFeed(TenantMixin, Base):
    """An iCalendar feed of a brand's plan behind an unguessable URL (only its hash is kept)."""

    __tablename__ = "calendar_feeds"

    brand_id: Mapped[UUID] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
