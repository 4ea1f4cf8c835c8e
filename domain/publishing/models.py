"""The publishing log: one row per attempt to send a variant to its network."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.core.db import Base, TenantMixin


class PublishAttempt(TenantMixin, Base):
    """An attempt is committed (`started_at`, no `finished_at`) before the network is called.
    The live attempt of a `publishing` variant is its newest unfinished one."""

    __tablename__ = "publish_attempts"

    variant_id: Mapped[UUID] = mapped_column(ForeignKey("post_variants.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # sending | processing | unknown | published | rate_limited | rejected | auth_failed | unreachable
    # | not_publishable | abandoned
    outcome: Mapped[str] = mapped_column(String(30), default="sending")
    # What the provider answered (post id, url, pending reference), never tokens.
    response: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        UniqueConstraint("variant_id", "number"),
        Index("ix_publish_attempts_unfinished", "agency_id", "started_at", postgresql_where="finished_at IS NULL"),
    )
