"""Outbound webhooks: agencies' endpoints, the events emitted, one delivery per event and
endpoint, and every attempt at it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.core.db import Base, TenantMixin


class WebhookEndpoint(TenantMixin, Base):
    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500), default="")
    events: Mapped[list[str]] = mapped_column(ARRAY(String(80)))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The signing secret (whsec_...), encrypted with the vault; shown once, at creation or rotation.
    secret_enc: Mapped[str] = mapped_column(Text)
    # Failed attempts in a row (any delivery) and since when; a success resets both. One that
    # keeps failing is disabled (active false) with the time and the reason.
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    disabled_reason: Mapped[str] = mapped_column(String(500), default="")


class WebhookEvent(TenantMixin, Base):
    __tablename__ = "webhook_events"

    type: Mapped[str] = mapped_column(String(80))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class WebhookDelivery(TenantMixin, Base):
    __tablename__ = "webhook_deliveries"

    endpoint_id: Mapped[UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[UUID] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Due time of the next attempt (pending only); the sweep sends a job for each one due.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Set while an attempt is in flight (claimed and committed before the HTTP request);
    # next_attempt_at equals it then, so the sweep retries once the lease has run out.
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    replay_of_id: Mapped[UUID | None] = mapped_column(nullable=True)

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    )


class WebhookAttempt(TenantMixin, Base):
    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[UUID] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(String(500), default="")
    response_excerpt: Mapped[str] = mapped_column(String(500), default="")
