from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

PlanKey = Literal["starter", "growth", "agency", "enterprise"]


class PlanLimits(msgspec.Struct, kw_only=True):
    """`null` means unlimited."""

    brands: int | None
    seats: int | None
    social_accounts: int | None
    scheduled_posts_per_month: int | None
    share_links: int | None
    api_access: bool
    white_label: bool


class PlanOut(msgspec.Struct, kw_only=True):
    key: str
    name: str
    pricing: Literal["flat", "per_brand", "per_seat"]
    min_quantity: int
    limits: PlanLimits
    # A Stripe price is configured for it (it can be bought here).
    available: bool


class PlanCatalog(msgspec.Struct, kw_only=True):
    billing_enabled: bool
    trial_days: int
    plans: list[PlanOut]


class UsageOut(msgspec.Struct, kw_only=True):
    limit: str
    usage: int
    allowed: int | None
    over: bool


class FrozenOut(msgspec.Struct, kw_only=True):
    """What a plan change left over the limits: kept, but frozen until there is room."""

    brands: list[UUID] = []
    social_accounts: list[UUID] = []
    members: list[UUID] = []
    api_keys: list[UUID] = []
    share_links: list[UUID] = []


class BillingOut(msgspec.Struct, kw_only=True):
    billing_enabled: bool
    plan: PlanOut
    # trialing, active, past_due, unpaid, canceled, incomplete, incomplete_expired, paused,
    # trial_ended (Chorus's own trial ran out without a subscription), billing_off.
    status: str
    read_only: bool
    read_only_reason: str | None = None
    trial_ends_at: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    past_due_since: datetime | None = None
    grace_ends_at: datetime | None = None
    quantity: int = 1
    has_customer: bool = False
    usage: list[UsageOut] = []
    frozen: FrozenOut = msgspec.field(default_factory=FrozenOut)


class PlanChoice(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    plan: PlanKey


class CheckoutSessionOut(msgspec.Struct, kw_only=True):
    id: str
    url: str


class PortalSessionOut(msgspec.Struct, kw_only=True):
    url: str


class StripeWebhookAck(msgspec.Struct, kw_only=True):
    received: bool
    duplicate: bool
