"""Bulk imports of posts from CSV or JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, deferred, mapped_column

from domain.core.db import Base, TenantMixin


class ImportJob(TenantMixin, Base):
    """One uploaded file: checked row by row, then imported (all or nothing by default).
    Progress (`processed_rows` of `total_rows`) is readable while it runs; `updated_at` is
    its heartbeat, so a job whose process died is found and marked failed."""

    __tablename__ = "import_jobs"

    brand_id: Mapped[UUID] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(String(10))  # csv, json
    filename: Mapped[str] = mapped_column(String(255), default="")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    atomic: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    created_posts: Mapped[int] = mapped_column(Integer, default=0)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # Counts of the outcome: posts in the file, importable, blocked, scheduled, problems.
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    payload: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    # Who started it: the job runs later with the same rights, re-read when it runs.
    created_by_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    api_key_id: Mapped[UUID | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True)
    actor_label: Mapped[str] = mapped_column(String(320), default="")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_import_jobs_agency_created", "agency_id", "created_at"),)
