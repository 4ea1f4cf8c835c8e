"""Pure billing rules: what an agency may do given its billing account, and dunning times.

`standing` turns a billing account row (or none: billing off) into what the rest of the
domain needs: the plan whose limits apply and whether new scheduling is allowed. Stripe's
subscription statuses map as follows:

- trialing, active: full use of the plan;
- past_due (and unpaid, which Stripe reaches after its own retries): full use during the
  grace period, then read-only for new scheduling (already scheduled posts still publish);
- canceled, incomplete_expired, paused: read-only for new scheduling;
- incomplete (the first payment is being confirmed): full use of the plan for now;
- Chorus's own trial (no subscription) ends read-only once `trial_ends_at` passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.billing.plans import UNLIMITED, Plan, plan

ACTIVE_STATUSES = frozenset({"trialing", "active", "incomplete"})
DUNNING_STATUSES = frozenset({"past_due", "unpaid"})
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired", "paused"})


@dataclass(frozen=True)
class Standing:
    enabled: bool
    plan: Plan
    status: str
    read_only: bool
    reason: str | None = None

    @classmethod
    def open(cls) -> Standing:
        return cls(enabled=False, plan=UNLIMITED, status="billing_off", read_only=False)


def standing(account: Any | None, at: datetime) -> Standing:
    """`account` is a BillingAccount row (or a row with the same fields), None when billing is off."""
    if account is None:
        return Standing.open()
    current = plan(account.plan) or UNLIMITED
    status = account.status
    if status == "trialing" and account.stripe_subscription_id is None:
        if account.trial_ends_at is not None and account.trial_ends_at <= at:
            return Standing(True, current, "trial_ended", True,
                            "The trial has ended: choose a plan to schedule new posts")
        return Standing(True, current, status, False)
    if status in DUNNING_STATUSES:
        if account.read_only_since is not None or (account.grace_ends_at is not None and account.grace_ends_at <= at):
            return Standing(True, current, status, True,
                            "A payment failed and the grace period is over: update the card to schedule new posts")
        return Standing(True, current, status, False)
    if status in ENDED_STATUSES:
        return Standing(True, current, status, True, "The subscription has ended: choose a plan to schedule new posts")
    return Standing(True, current, status, False)


def grace_end(past_due_since: datetime, grace_days: float) -> datetime:
    return past_due_since + timedelta(days=grace_days)
