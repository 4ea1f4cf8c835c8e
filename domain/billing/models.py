"""The agency's billing account (one row per agency, under RLS) and the Stripe events
received (an event names a Stripe customer, not one of our tenants: it belongs to no agency
until a worker has handled it, then to that agency only, under RLS; the unique event id
makes a redelivery a no-op)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from domain.core.db import Base, TenantMixin


class BillingAccount(TenantMixin, Base):
    __tablename__ = "billing_accounts"

    # The plan in force (during a trial: the plan being tried) and the subscription's status
    # as Stripe last reported it: trialing, active, past_due, unpaid, canceled, incomplete,
    # incomplete_expired, paused; `trialing` with no subscription is Chorus's own trial.
    plan: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(30))
    trial_ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    stripe_item_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    stripe_price_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    current_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    canceled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Dunning: when the subscription went past due, when its grace runs out, and when the
    # agency became read-only for new scheduling; the notices already sent (by key).
    past_due_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    grace_ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    read_only_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    notices_sent: Mapped[list[str]] = mapped_column(JSONB, default=list)
    # What Stripe said last, for support (the subscription object as fetched).
    stripe_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Bumped by every change we ask of Stripe: the idempotency keys of outgoing calls are
    # derived from (this row, this counter), so a retried request reuses its key.
    change_seq: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (UniqueConstraint("agency_id", name="uq_billing_accounts_agency_id"),)


class StripeEvent(Base):
    __tablename__ = "stripe_events"

    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    stripe_created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    agency_id: Mapped[UUID | None] = mapped_column(nullable=True, index=True)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(40), default="pending")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
