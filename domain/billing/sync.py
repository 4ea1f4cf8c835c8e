"""Bring an agency's billing account in line with its subscription as Stripe holds it.

Every change of local billing state goes through `apply_subscription`, with facts Chorus
fetched from Stripe itself (never the copy inside a webhook event, which may be stale or
arrive out of order). It returns the notices the change calls for (payment failed, access
restored, subscription ended), which the caller sends once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.billing.models import BillingAccount
from domain.billing.rules import ACTIVE_STATUSES, DUNNING_STATUSES, ENDED_STATUSES, grace_end
from domain.billing.stripe_api import SubscriptionFacts
from domain.core.settings import Settings

log = logging.getLogger("chorus.billing")


def _at(ts: int | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts else None


def apply_subscription(account: BillingAccount, facts: SubscriptionFacts, settings: Settings,
                       at: datetime) -> tuple[list[str], bool]:
    """Copy the facts onto the account. Returns (notices, plan_changed). A subscription that
    is not the account's own is adopted only when it is live and the account's is not (a
    re-subscription after a cancel); an ended stranger's events change nothing."""
    if account.stripe_subscription_id not in (None, facts.id):
        if facts.status in ENDED_STATUSES or account.status not in ENDED_STATUSES:
            log.info("stripe subscription ignored", extra={"subscription": facts.id,
                                                           "current": account.stripe_subscription_id})
            return [], False
    notices: list[str] = []
    before_plan, before_status = account.plan, account.status
    account.stripe_subscription_id = facts.id
    account.stripe_customer_id = account.stripe_customer_id or facts.customer
    item = facts.item
    if item is not None:
        account.stripe_item_id = item.id
        account.stripe_price_id = item.price
        account.quantity = item.quantity
        plan_key = settings.plan_for_price(item.price)
        if plan_key is not None:
            account.plan = plan_key
        else:
            log.warning("stripe price matches no plan", extra={"price": item.price})
    account.status = facts.status
    account.current_period_end = _at(facts.period_end)
    account.cancel_at_period_end = facts.cancel_at_period_end
    account.canceled_at = _at(facts.canceled_at)
    account.trial_ends_at = _at(facts.trial_end) if facts.status == "trialing" else account.trial_ends_at
    if facts.status in DUNNING_STATUSES:
        if account.past_due_since is None:
            account.past_due_since = at
            account.grace_ends_at = grace_end(at, settings.billing_grace_days)
            notices.append("payment_failed")
    elif account.past_due_since is not None or account.read_only_since is not None:
        account.past_due_since = account.grace_ends_at = account.read_only_since = None
        if facts.status in ACTIVE_STATUSES:
            notices.append("restored")
    if facts.status in ENDED_STATUSES and before_status not in ENDED_STATUSES:
        notices.append("ended")
    account.stripe_synced_at = at
    plan_changed = account.plan != before_plan or (facts.status in ENDED_STATUSES) != (before_status in ENDED_STATUSES)
    return notices, plan_changed


async def lock_account(session: AsyncSession, agency_id: UUID) -> BillingAccount | None:
    return await session.scalar(
        select(BillingAccount).where(BillingAccount.agency_id == agency_id).with_for_update()
    )
