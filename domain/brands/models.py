from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.core.db import Base, TenantMixin


class Brand(TenantMixin, Base):
    """A client of the agency, and what the agency knows about it (`profile`)."""

    __tablename__ = "brands"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63))
    time_zone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(35))
    status: Mapped[str] = mapped_column(String(20), default="active")
    # Set when a plan change left it over the plan's limit: kept, but frozen (domain/billing/entitlements.py).
    frozen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    profile: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The brand's publishing switch (domain/publishing/pause.py): while paused, its due posts
    # wait (held) instead of going out. Source: manual (a person) or crisis (the crisis code).
    publishing_paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    publishing_pause_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    publishing_paused_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                                 nullable=True)
    publishing_pause_source: Mapped[str | None] = mapped_column(String(20), nullable=True)
    # When publishing last resumed: a post held by the pause is late from then, not from its time.
    publishing_resumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        UniqueConstraint("agency_id", "slug"),
        Index("ix_brands_agency_name", "agency_id", "name", "id"),
    )


class Campaign(TenantMixin, Base):
    __tablename__ = "campaigns"

    brand_id: Mapped[UUID] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    objective: Mapped[str] = mapped_column(String(30))
    description: Mapped[str] = mapped_column(Text, default="")
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    target_kpis: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_campaigns_agency_start", "agency_id", "start_date", "id"),)
