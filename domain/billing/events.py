"""Stripe's webhook events: received (signature checked on the raw body, stored once by
event id) and handled by a worker (the subscription fetched again from Stripe, then the
local state changed, in one transaction with the event marked handled).

Stripe retries for days and does not keep order (`updated` may come before `created`), so a
handler never trusts the object inside the event: it fetches the subscription from Stripe
and applies what Stripe holds now. Ten events in any order end in Stripe's state. The
event row is locked while it is handled and stamped `processed_at` in the same
transaction, so a duplicate job, or the same event delivered five times at once, has one
effect (one email, one audit entry).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import stripe
from advanced_alchemy.mixins.uuid import uuid7
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.agencies.rules import Principal
from domain.billing.models import BillingAccount, StripeEvent
from domain.billing.service import follow_subscription, send_notice
from domain.billing.stripe_api import StripeCalls
from domain.billing.sync import lock_account
from domain.core.clock import now
from domain.core.context import Context
from domain.core.db import set_tenant
from domain.core.errors import DomainError, NotFoundError
from domain.core.settings import Settings

log = logging.getLogger("chorus.billing.events")

HANDLE = "billing.handle_event"
SIGNATURE_TOLERANCE_SECONDS = 300
HANDLED = frozenset({
    "checkout.session.completed", "customer.subscription.created", "customer.subscription.updated",
    "customer.subscription.deleted", "customer.subscription.trial_will_end", "invoice.paid",
    "invoice.payment_failed", "invoice.payment_action_required",
})


class WebhookSignatureError(DomainError):
    status = 400
    slug = "webhook-signature-invalid"
    title = "The Stripe-Signature header does not match the body (or is too old)"


class WebhookPayloadError(DomainError):
    status = 400
    slug = "webhook-payload-invalid"
    title = "The webhook body is not a Stripe event"


def verify(payload: bytes, signature: str | None, settings: Settings) -> dict[str, Any]:
    """The event, once its signature over these exact bytes checks out (300 s tolerance)."""
    if not settings.stripe_webhook_secret:
        raise NotFoundError("Billing is off on this installation: there is no Stripe webhook here")
    try:
        stripe.WebhookSignature.verify_header(payload, signature or "",
                                              settings.stripe_webhook_secret, SIGNATURE_TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureError(str(exc.user_message or exc)) from None
    # The SDK bounds only the age; a timestamp far ahead is as suspect as a stale one.
    stamp = next((part[2:] for part in (signature or "").split(",") if part.startswith("t=")), "")
    if not stamp.isdigit() or int(stamp) > time.time() + SIGNATURE_TOLERANCE_SECONDS:
        raise WebhookSignatureError("The signature's timestamp is in the future")
    try:
        event = json.loads(payload)
    except ValueError:
        raise WebhookPayloadError() from None
    if (not isinstance(event, dict) or not str(event.get("id", "")).startswith("evt_")
            or not isinstance(event.get("type"), str) or not isinstance(event.get("created"), int)
            or not isinstance((event.get("data") or {}).get("object"), dict)):
        raise WebhookPayloadError()
    return event


async def store(session: AsyncSession, event: dict[str, Any]) -> UUID | None:
    """Insert the event; None when it was already stored (a redelivery)."""
    row_id = uuid7()
    stamp = now()
    inserted = await session.scalar(
        insert(StripeEvent).values(
            id=row_id, event_id=event["id"], type=event["type"], livemode=bool(event.get("livemode")),
            stripe_created_at=datetime.fromtimestamp(event["created"], UTC), payload=event, attempts=0,
            outcome="pending", created_at=stamp, updated_at=stamp,
        ).on_conflict_do_nothing(index_elements=["event_id"]).returning(StripeEvent.id)
    )
    return inserted


def _object(event: dict[str, Any]) -> dict[str, Any]:
    return event["data"]["object"]


def _subscription_id(event: dict[str, Any]) -> str | None:
    obj = _object(event)
    kind = event["type"]
    if kind.startswith("customer.subscription."):
        return obj.get("id")
    sub = obj.get("subscription")
    if sub is None and kind.startswith("invoice."):
        # Newer API versions keep it under parent.subscription_details.
        sub = ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    if isinstance(sub, dict):
        sub = sub.get("id")
    return sub if isinstance(sub, str) else None


def _customer_id(event: dict[str, Any]) -> str | None:
    customer = _object(event).get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return customer if isinstance(customer, str) else None


async def _agency_for(session: AsyncSession, event: dict[str, Any]) -> UUID | None:
    customer = _customer_id(event)
    if customer:
        found = await session.scalar(text("SELECT chorus_agency_for_stripe_customer(:c)"), {"c": customer})
        if found:
            return found
    obj = _object(event)
    # A checkout that created the customer: our agency id is its client_reference_id.
    for candidate in (obj.get("client_reference_id"), (obj.get("metadata") or {}).get("agency_id")):
        try:
            return UUID(str(candidate)) if candidate else None
        except ValueError:
            continue
    return None


async def handle(session: AsyncSession, event_row_id: UUID, settings: Settings) -> tuple[str, UUID | None, list]:
    """Handle one stored event in the caller's transaction. Returns (outcome, agency id,
    after-commit tasks)."""
    row = await session.scalar(select(StripeEvent).where(StripeEvent.id == event_row_id).with_for_update())
    if row is None:
        return "gone", None, []
    if row.processed_at is not None:
        return "already handled", row.agency_id, []
    row.attempts += 1
    event = row.payload
    if event["type"] not in HANDLED:
        return _done(row, "ignored (type)"), None, []
    agency_id = await _agency_for(session, event)
    if agency_id is None:
        return _done(row, "ignored (no agency)"), None, []
    await set_tenant(session, agency_id=agency_id)
    account = await lock_account(session, agency_id)
    if account is None:
        return _done(row, "ignored (no billing account)"), agency_id, []
    row.agency_id = agency_id
    ctx = Context(Principal(agency_id=agency_id, label="stripe"), session=session)
    obj = _object(event)
    if event["type"] == "checkout.session.completed" and not account.stripe_customer_id and _customer_id(event):
        account.stripe_customer_id = _customer_id(event)
    calls = StripeCalls(settings)
    subscription_id = _subscription_id(event)
    if subscription_id is None and event["type"] == "checkout.session.completed" and obj.get("id"):
        subscription_id = await calls.checkout_subscription(obj["id"])
    notices: list[str] = []
    if subscription_id:
        facts = await calls.subscription(subscription_id)
        if facts.customer != account.stripe_customer_id and account.stripe_customer_id is not None:
            return _done(row, "ignored (another customer)"), agency_id, []
        notices += await follow_subscription(ctx, account, facts, settings)
    if event["type"] == "customer.subscription.trial_will_end" and account.status == "trialing":
        notices.append("trial_ending")
    extra: dict[str, Any] = {}
    if event["type"] == "invoice.payment_action_required":
        notices.append("action_required")
        url = obj.get("hosted_invoice_url")
        extra["link"] = f"Confirm it here: {url}" if isinstance(url, str) and url.startswith("https://") else \
            "Confirm it from the billing portal."
    for kind in dict.fromkeys(notices):
        await send_notice(ctx, account, kind, **extra)
    await session.flush()
    await ctx.audit(f"billing.stripe.{event['type']}", "billing_account", account.id,
                    {"event": event["id"], "status": account.status, "plan": account.plan})
    return _done(row, "handled"), agency_id, ctx.after_commit


def _done(row: StripeEvent, outcome: str) -> str:
    row.processed_at = now()
    row.outcome = outcome
    row.last_error = None
    return outcome


async def unhandled(session: AsyncSession, *, older_than: timedelta, limit: int = 500) -> list[UUID]:
    """Stored events no job has finished (the broker was down, or every retry failed)."""
    rows = await session.scalars(
        select(StripeEvent.id).where(StripeEvent.processed_at.is_(None),
                                     StripeEvent.created_at <= now() - older_than)
        .order_by(StripeEvent.created_at).limit(limit))
    return list(rows)


# --- dunning and trials (the sweep) ------------------------------------------------------


async def review(session: AsyncSession, agency_id: UUID, settings: Settings) -> tuple[str, list]:
    """The sweep's look at one agency: reminders while a trial or a grace period runs out,
    then the read-only stamp and its email, each notice once per episode."""
    account = await lock_account(session, agency_id)
    if account is None:
        return "no account", []
    ctx = Context(Principal(agency_id=agency_id, label="billing"), session=session)
    at = now()
    sent = set(account.notices_sent or [])
    todo: list[tuple[str, str, dict[str, Any]]] = []
    if account.status == "trialing" and account.stripe_subscription_id is None and account.trial_ends_at:
        episode = f"{account.trial_ends_at:%Y%m%d}"
        if account.trial_ends_at <= at:
            account.read_only_since = account.read_only_since or at
            todo.append(("trial_ended", f"trial_ended:{episode}", {}))
        elif account.trial_ends_at - at <= timedelta(days=3):
            todo.append(("trial_ending", f"trial_ending:{episode}", {}))
    elif account.status in ("past_due", "unpaid") and account.grace_ends_at and account.past_due_since:
        episode = f"{account.past_due_since:%Y%m%d%H%M%S}"
        left = account.grace_ends_at - at
        if left <= timedelta(0):
            if account.read_only_since is None:
                account.read_only_since = at
            todo.append(("read_only", f"read_only:{episode}", {}))
        elif left <= timedelta(days=1):
            todo.append(("grace_ending", f"grace_1d:{episode}", {"days": "one day"}))
        elif left <= timedelta(days=3):
            todo.append(("grace_ending", f"grace_3d:{episode}", {"days": "three days"}))
    outcome = []
    for kind, key, details in todo:
        if key in sent:
            continue
        await send_notice(ctx, account, kind, **details)
        sent.add(key)
        outcome.append(kind)
    account.notices_sent = sorted(sent)
    return (", ".join(outcome) or "nothing to do"), ctx.after_commit
