"""Stripe's events handled: dunning from a failed renewal to read-only and back, the same
event delivered five times at once, and a subscription's event sequence delivered in 100
random orders. The Stripe test double makes the events (its own state machine, clock and
cards); Chorus receives them signed on its webhook and handles them by fetching the
subscription from the double again."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from domain.core.db import scoped_session, session_factory
from tests.billing.helpers import draft_post
from tests.billing.stripe_support import (  # noqa: F401 - fixtures
    billing_client, billing_settings_for, deliver, worker, worker_settings,
)
from tests.billing.test_subscription import (  # noqa: F401 - fixtures
    agency, billing, billing_settings, deliver_all, prices, subscribe,
)
from tests.stripe_double.fixtures import stripe_double  # noqa: F401
from tests.workers.conftest import eventually, queued_jobs

DAY = 24 * 3600


def subscription_of(stripe_double) -> str:
    return [s for s in stripe_double.client().v1.subscriptions.list({"status": "all", "limit": 100}).data][0].id


async def notices(owner_engine, agency_id: str, kind: str) -> int:
    async with owner_engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM notifications WHERE agency_id = :a AND kind = :k"),
                                     {"a": agency_id, "k": kind}))


async def test_dunning_from_a_failed_payment_to_read_only_and_back(agency, stripe_double, owner_engine, worker,
                                                                   billing_settings, app_engine, smtp_inbox):
    await subscribe(agency, stripe_double, owner_engine, "starter")
    brand = await agency.brand()
    account = await agency.social_account(owner_engine, billing_settings.vault(), brand["id"], "x")
    when = datetime.now(UTC) + timedelta(days=20)
    approved = await draft_post(agency, brand["id"], account, when)
    assert (await agency.req("POST", f"/v1/posts/{approved['id']}/schedule", json={})).status_code == 200

    sub_id = subscription_of(stripe_double)
    customer = stripe_double.get(sub_id)["customer"]
    stripe_double.set_payment(customer, "fail")
    mark = stripe_double.last_event_id()
    stripe_double.advance(31 * DAY)
    events = stripe_double.events(since=mark)
    assert {"invoice.payment_failed", "customer.subscription.updated"} <= {e["type"] for e in events}
    await deliver_all(agency.client, events, owner_engine)

    state = await billing(agency)
    assert state["status"] == "past_due" and state["read_only"] is False, "the grace period keeps everything"
    grace = datetime.fromisoformat(state["grace_ends_at"]) - datetime.fromisoformat(state["past_due_since"])
    assert grace == timedelta(days=7)
    await eventually(lambda: any("payment for Chorus failed" in m["Subject"] for m in smtp_inbox.to(agency.email)),
                     what="the payment-failed email")
    during = await draft_post(agency, brand["id"], account, when + timedelta(hours=1))
    assert (await agency.req("POST", f"/v1/posts/{during['id']}/schedule", json={})).status_code == 200

    # The grace period runs out (the clock is not ours to move: its end is moved instead).
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE billing_accounts SET grace_ends_at = now() - interval '1 minute',"
                                " past_due_since = now() - interval '7 days' WHERE agency_id = :a"),
                           {"a": agency.agency_id})
    from workers.billing import sweep
    from workers.scheduler import SweepContext

    due, _ = await sweep(SweepContext(billing_settings, app_engine, worker.broker))
    assert uuid.UUID(agency.agency_id) in due
    await eventually(lambda: any("read-only" in m["Subject"] for m in smtp_inbox.to(agency.email)),
                     what="the read-only email")
    state = await billing(agency)
    assert state["read_only"] is True and "payment" in state["read_only_reason"]
    late = await draft_post(agency, brand["id"], account, when + timedelta(hours=2))
    r = await agency.req("POST", f"/v1/posts/{late['id']}/schedule", json={})
    assert r.status_code == 402 and r.json()["type"].endswith("/billing-read-only"), r.text
    for post in (approved, during):
        assert (await agency.req("GET", f"/v1/posts/{post['id']}")).json()["status"] == "scheduled", \
            "what was scheduled stays scheduled and will publish"
    # A second sweep sends nothing new.
    await sweep(SweepContext(billing_settings, app_engine, worker.broker))
    await asyncio.sleep(0)
    assert await notices(owner_engine, agency.agency_id, "billing.read_only") == 1

    # The card is fixed and the open invoice paid: everything is back at once.
    stripe_double.set_payment(customer, "succeed")
    mark = stripe_double.last_event_id()
    [invoice] = [i for i in stripe_double.client().v1.invoices.list({"subscription": sub_id}).data if i.status == "open"]
    stripe_double.pay_invoice(invoice.id)
    await deliver_all(agency.client, stripe_double.events(since=mark), owner_engine)
    state = await billing(agency)
    assert state["status"] == "active" and state["read_only"] is False and state["grace_ends_at"] is None
    r = await agency.req("POST", f"/v1/posts/{late['id']}/schedule", json={})
    assert r.status_code == 200, r.text
    await eventually(lambda: any("Payment received" in m["Subject"] for m in smtp_inbox.to(agency.email)),
                     what="the restored email")


async def test_the_same_event_five_times_at_once_has_one_effect(agency, stripe_double, owner_engine, worker,
                                                                smtp_inbox):
    await subscribe(agency, stripe_double, owner_engine, "starter")
    customer = stripe_double.get(subscription_of(stripe_double))["customer"]
    stripe_double.set_payment(customer, "fail")
    mark = stripe_double.last_event_id()
    stripe_double.advance(31 * DAY)
    [failed] = stripe_double.events(since=mark, types="invoice.payment_failed")
    answers = await asyncio.gather(*(deliver(agency.client, failed) for _ in range(5)))
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True, True, True]
    await deliver_all(agency.client, [failed], owner_engine)
    await eventually(lambda: smtp_inbox.to(agency.email) and any(
        "payment for Chorus failed" in m["Subject"] for m in smtp_inbox.to(agency.email)), what="the email")
    # Later deliveries of the same event (Stripe retries for days) change nothing either.
    await deliver_all(agency.client, [failed], owner_engine)
    assert await notices(owner_engine, agency.agency_id, "billing.payment_failed") == 1
    async with owner_engine.connect() as conn:
        audits = await conn.scalar(text("SELECT count(*) FROM audit_events WHERE agency_id = :a AND action = :x"),
                                   {"a": agency.agency_id, "x": "billing.stripe.invoice.payment_failed"})
    assert audits == 1
    assert sum("payment for Chorus failed" in m["Subject"] for m in smtp_inbox.to(agency.email)) == 1


async def idle(owner_engine, agency_id: str) -> None:
    """Every job queued for the agency has run (the sweep's reviews are asynchronous)."""
    async def done():
        return all(job["state"] in ("done", "rejected") for job in await queued_jobs(owner_engine, agency_id))
    await eventually(done, timeout=30, what="the agency's jobs to finish")


FIELDS = ("status", "plan", "stripe_subscription_id", "stripe_item_id", "stripe_price_id", "quantity",
          "current_period_end", "cancel_at_period_end", "past_due_since")


async def test_a_hundred_random_orders_end_in_stripes_state(agency, stripe_double, owner_engine, billing_settings,
                                                            app_engine, billing_client):
    """One agency's whole history at Stripe: a subscription (with an upgrade, a failed renewal,
    a payment, a scheduled cancel and its end), then a second subscription. Every order of its
    events must leave Chorus where Stripe is: the live second subscription, as Stripe holds it."""
    from domain.billing.events import handle, store

    client = stripe_double.client()
    prices = dict(billing_settings.stripe_prices)
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE billing_accounts SET trial_ends_at = now() + interval '1 day'"
                                " WHERE agency_id = :a"), {"a": agency.agency_id})
    first = await agency.req("POST", "/v1/billing/checkout-sessions", json={"plan": "starter"})
    session = stripe_double.complete_checkout(first.json()["id"])
    sub = session["subscription"]
    client.v1.subscriptions.update(sub, {"items": [{"id": stripe_double.get(sub)["items"]["data"][0]["id"],
                                                    "price": prices["growth"]}],
                                         "proration_behavior": "always_invoice"})
    stripe_double.set_payment(session["customer"], "fail")
    stripe_double.advance(31 * DAY)
    stripe_double.set_payment(session["customer"], "succeed")
    [open_invoice] = [i for i in client.v1.invoices.list({"subscription": sub}).data if i.status == "open"]
    stripe_double.pay_invoice(open_invoice.id)
    client.v1.subscriptions.update(sub, {"cancel_at_period_end": True})
    stripe_double.advance(31 * DAY)
    assert stripe_double.get(sub)["status"] == "canceled"
    second = client.v1.checkout.sessions.create({
        "mode": "subscription", "customer": session["customer"], "client_reference_id": agency.agency_id,
        "line_items": [{"price": prices["agency"], "quantity": 6}], "success_url": "https://x.test/ok"})
    new_sub = stripe_double.complete_checkout(second.id)["subscription"]
    events = [e for e in stripe_double.events()
              if e["type"] in {"checkout.session.completed", "customer.subscription.created",
                               "customer.subscription.updated", "customer.subscription.deleted", "invoice.paid",
                               "invoice.payment_failed", "customer.subscription.trial_will_end"}]
    assert len(events) >= 10
    truth = stripe_double.get(new_sub)
    item = truth["items"]["data"][0]
    expected = {"status": truth["status"], "plan": "agency", "stripe_subscription_id": new_sub,
                "stripe_item_id": item["id"], "stripe_price_id": prices["agency"], "quantity": 6,
                "current_period_end": datetime.fromtimestamp(item["current_period_end"], UTC),
                "cancel_at_period_end": False, "past_due_since": None}
    rng = random.Random(7)
    factory = session_factory(app_engine)
    for run in range(100):
        order = events[:]
        rng.shuffle(order)
        async with owner_engine.begin() as conn:
            await conn.execute(text("DELETE FROM stripe_events WHERE event_id = ANY(:ids)"),
                               {"ids": [e["id"] for e in events]})
            await conn.execute(text(
                "UPDATE billing_accounts SET status = 'trialing', plan = 'growth', stripe_subscription_id = NULL,"
                " stripe_item_id = NULL, stripe_price_id = NULL, quantity = 1, current_period_end = NULL,"
                " cancel_at_period_end = false, canceled_at = NULL, past_due_since = NULL, grace_ends_at = NULL,"
                " read_only_since = NULL WHERE agency_id = :a"), {"a": agency.agency_id})
        for event in order:
            s = scoped_session(factory)
            async with s, s.begin():
                row_id = await store(s, event)
            s = scoped_session(factory)
            async with s, s.begin():
                outcome, _, _ = await handle(s, row_id, billing_settings)
            assert outcome.startswith(("handled", "ignored")), outcome
        async with owner_engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT {', '.join(FIELDS)} FROM billing_accounts WHERE agency_id = :a"),
                                      {"a": agency.agency_id})).mappings().one()
        assert dict(row) == expected, f"order {run}: {[e['type'] for e in order]}"


async def test_trial_reminders_and_the_end_of_chorus_own_trial(agency, owner_engine, worker, billing_settings,
                                                               app_engine, smtp_inbox):
    from workers.billing import sweep
    from workers.scheduler import SweepContext

    context = SweepContext(billing_settings, app_engine, worker.broker)
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE billing_accounts SET trial_ends_at = now() + interval '2 days'"
                                " WHERE agency_id = :a"), {"a": agency.agency_id})
    await sweep(context)
    await sweep(context)
    await eventually(lambda: any("trial ends on" in m["Subject"] for m in smtp_inbox.to(agency.email)),
                     what="the trial reminder")
    await idle(owner_engine, agency.agency_id)
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE billing_accounts SET trial_ends_at = now() - interval '1 minute'"
                                " WHERE agency_id = :a"), {"a": agency.agency_id})
    state = await billing(agency)
    assert state["status"] == "trial_ended" and state["read_only"] is True, "read-only as soon as the trial ends"
    due, _ = await sweep(context)
    assert uuid.UUID(agency.agency_id) in due
    await eventually(lambda: any("trial has ended" in m["Subject"] for m in smtp_inbox.to(agency.email)),
                     what="the trial-ended email")
    due, _ = await sweep(context)
    assert uuid.UUID(agency.agency_id) not in due, "a read-only agency is not swept again"
    assert await notices(owner_engine, agency.agency_id, "billing.trial_ending") == 1
    assert await notices(owner_engine, agency.agency_id, "billing.trial_ended") == 1


async def test_stripe_trial_will_end_and_a_payment_needing_confirmation_tell_the_owners(
        agency, stripe_double, owner_engine, worker, smtp_inbox):
    state = await subscribe(agency, stripe_double, owner_engine, "growth", trial=True)
    assert state["status"] == "trialing"
    sub_id = subscription_of(stripe_double)
    customer = stripe_double.get(sub_id)["customer"]
    stripe_double.set_payment(customer, "requires_action")
    trial_end = stripe_double.get(sub_id)["trial_end"]
    mark = stripe_double.last_event_id()
    stripe_double.advance_to(trial_end - 2 * DAY)
    events = stripe_double.events(since=mark)
    assert "customer.subscription.trial_will_end" in {e["type"] for e in events}
    await deliver_all(agency.client, events, owner_engine)
    await eventually(lambda: any("trial ends on" in m["Subject"] for m in smtp_inbox.to(agency.email)),
                     what="the trial_will_end email")
    mark = stripe_double.last_event_id()
    stripe_double.advance_to(trial_end + 60)
    events = stripe_double.events(since=mark)
    assert "invoice.payment_action_required" in {e["type"] for e in events}
    await deliver_all(agency.client, events, owner_engine)
    await eventually(lambda: [m for m in smtp_inbox.to(agency.email) if "needs your confirmation" in m["Subject"]],
                     what="the confirmation email")
    state = await billing(agency)
    assert state["status"] == "past_due" and state["read_only"] is False


async def test_grace_reminders_three_days_and_one_day_before(agency, stripe_double, owner_engine, worker,
                                                             billing_settings, app_engine, smtp_inbox):
    from workers.billing import sweep
    from workers.scheduler import SweepContext

    await subscribe(agency, stripe_double, owner_engine, "starter")
    customer = stripe_double.get(subscription_of(stripe_double))["customer"]
    stripe_double.set_payment(customer, "fail")
    mark = stripe_double.last_event_id()
    stripe_double.advance(31 * DAY)
    await deliver_all(agency.client, stripe_double.events(since=mark), owner_engine)
    context = SweepContext(billing_settings, app_engine, worker.broker)
    for left, subject in (("2 days", "three days left"), ("12 hours", "one day left")):
        async with owner_engine.begin() as conn:
            await conn.execute(text(f"UPDATE billing_accounts SET grace_ends_at = now() + interval '{left}'"
                                    " WHERE agency_id = :a"), {"a": agency.agency_id})
        await sweep(context)
        await sweep(context)
        await idle(owner_engine, agency.agency_id)
        await eventually(lambda s=subject: any(s in m["Subject"] for m in smtp_inbox.to(agency.email)),
                         what=subject)
    assert await notices(owner_engine, agency.agency_id, "billing.grace_ending") == 2
    assert (await billing(agency))["read_only"] is False
