"""The subscription end to end: Chorus's billing routes call the Stripe test double over
loopback through the real SDK; the double's own events reach Chorus's webhook signed, and a
real worker handles them (fetching the subscription from the double again)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests.billing.stripe_support import (  # noqa: F401 - fixtures
    billing_client, billing_settings_for, deliver, worker, worker_settings,
)
from tests.conftest import sign_up
from tests.stripe_double.fixtures import stripe_double  # noqa: F401
from tests.workers.conftest import eventually

AMOUNTS = {"starter": 1900, "growth": 4900, "agency": 900, "enterprise": 2500}


@pytest.fixture
def prices(stripe_double):
    client = stripe_double.client()
    out = []
    for key, amount in AMOUNTS.items():
        product = client.v1.products.create({"name": key.title()})
        price = client.v1.prices.create({"product": product.id, "currency": "eur", "unit_amount": amount,
                                         "recurring": {"interval": "month"}})
        out.append((key, price.id))
    return tuple(out)


@pytest.fixture
def billing_settings(settings, stripe_double, prices):
    return billing_settings_for(settings, stripe_double.base_url, prices)


@pytest.fixture
async def agency(billing_client):
    return await sign_up(billing_client)


async def billing(agency) -> dict:
    r = await agency.req("GET", "/v1/billing")
    assert r.status_code == 200, r.text
    return r.json()


async def deliver_all(client, events, owner_engine) -> None:
    """POST each event to the webhook as Stripe would, then wait until workers handled them."""
    for event in events:
        r = await deliver(client, event)
        assert r.status_code == 200, r.text
    ids = [e["id"] for e in events]

    async def handled():
        async with owner_engine.connect() as conn:
            left = await conn.scalar(text(
                "SELECT count(*) FROM stripe_events WHERE event_id = ANY(:ids) AND processed_at IS NULL"), {"ids": ids})
        return left == 0
    await eventually(handled, timeout=30, what="stripe events handled")


async def end_trial(owner_engine, agency) -> None:
    """Chorus's own trial with too little left to carry over: Checkout charges at once."""
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE billing_accounts SET trial_ends_at = now() + interval '1 day' WHERE agency_id = :a"),
                           {"a": agency.agency_id})


async def subscribe(agency, stripe_double, owner_engine, plan: str = "starter", *, trial: bool = False) -> dict:
    if not trial:
        await end_trial(owner_engine, agency)
    mark = stripe_double.last_event_id()
    r = await agency.req("POST", "/v1/billing/checkout-sessions", json={"plan": plan})
    assert r.status_code == 201, r.text
    stripe_double.complete_checkout(r.json()["id"])
    await deliver_all(agency.client, stripe_double.events(since=mark) if mark else stripe_double.events(), owner_engine)
    return await billing(agency)


async def test_a_new_agency_starts_a_trial_and_sees_its_usage(agency):
    state = await billing(agency)
    assert state["billing_enabled"] is True and state["status"] == "trialing" and state["read_only"] is False
    assert state["plan"]["key"] == "growth" and state["trial_ends_at"] is not None
    usage = {u["limit"]: u for u in state["usage"]}
    assert usage["seats"] == {"limit": "seats", "usage": 1, "allowed": 10, "over": False}
    assert usage["brands"]["usage"] == 0 and usage["brands"]["allowed"] == 10
    plans = (await agency.req("GET", "/v1/billing/plans")).json()
    assert [p["key"] for p in plans["plans"]] == ["starter", "growth", "agency", "enterprise"]
    assert all(p["available"] for p in plans["plans"]) and plans["billing_enabled"] is True


async def test_checkout_creates_the_customer_once_and_the_trial_carries_over(agency, stripe_double, owner_engine,
                                                                          worker):
    first = await agency.req("POST", "/v1/billing/checkout-sessions", json={"plan": "starter"})
    again = await agency.req("POST", "/v1/billing/checkout-sessions", json={"plan": "starter"})
    assert first.status_code == again.status_code == 201, first.text
    assert first.json()["id"] == again.json()["id"], "the same click twice is the same Checkout session"
    assert first.json()["url"].startswith(stripe_double.base_url)
    customers = stripe_double.requests("/v1/customers", method="POST")
    assert len({c["idempotency_key"] for c in customers}) == 1 and customers[0]["idempotency_key"].startswith("chorus:")
    session = stripe_double.get(first.json()["id"])
    customer = stripe_double.get(session["customer"])
    assert customer["metadata"]["agency_id"] == agency.agency_id
    assert session["client_reference_id"] == agency.agency_id
    stripe_double.complete_checkout(session["id"])
    await deliver_all(agency.client, stripe_double.events(), owner_engine)
    state = await billing(agency)
    sub = stripe_double.get(stripe_double.get(session["id"])["subscription"])
    assert sub["status"] == "trialing", "13 days of Chorus's trial were left: Stripe keeps them"
    assert state["status"] == "trialing" and state["plan"]["key"] == "starter" and state["has_customer"] is True
    assert state["current_period_end"] is not None
    # A live subscription is changed, not bought twice.
    r = await agency.req("POST", "/v1/billing/checkout-sessions", json={"plan": "growth"})
    assert r.status_code == 409 and r.json()["type"].endswith("/subscription-exists")


async def test_upgrade_is_invoiced_now_and_downgrade_freezes_what_is_over(agency, stripe_double, owner_engine,
                                                                          worker):
    state = await subscribe(agency, stripe_double, owner_engine, "growth")
    assert state["status"] == "active" and state["plan"]["key"] == "growth"
    for _ in range(4):
        await agency.brand()
    sub_id = stripe_double.requests("/v1/subscriptions/", method="GET")[-1]["path"].rsplit("/", 1)[1]
    invoices_before = len(stripe_double.client().v1.invoices.list({"subscription": sub_id}).data)

    r = await agency.req("POST", "/v1/billing/plan", json={"plan": "agency"})
    assert r.status_code == 200, r.text
    assert r.json()["plan"]["key"] == "agency" and r.json()["quantity"] == 5, "per brand, at least 5"
    update = stripe_double.requests(f"/v1/subscriptions/{sub_id}", method="POST")[-1]
    assert update["params"]["proration_behavior"] == "always_invoice"
    assert update["idempotency_key"].startswith("chorus:")
    invoices = stripe_double.client().v1.invoices.list({"subscription": sub_id}).data
    assert len(invoices) == invoices_before + 1, "the upgrade's prorated difference is invoiced at once"

    r = await agency.req("POST", "/v1/billing/plan", json={"plan": "starter"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["plan"]["key"] == "starter" and len(body["frozen"]["brands"]) == 1, body["frozen"]
    assert stripe_double.requests(f"/v1/subscriptions/{sub_id}", method="POST")[-1]["params"]["proration_behavior"] \
        == "create_prorations"
    item = stripe_double.get(sub_id)["items"]["data"][0]
    assert item["price"]["id"] == dict(agency_prices(stripe_double))["starter"] and item["quantity"] == 1
    r = await agency.req("POST", "/v1/brands", json={"name": "One more", "time_zone": "UTC", "language": "en"})
    assert r.status_code == 402 and r.json()["upgrade_to"] == "growth"


def agency_prices(stripe_double):
    """(plan key, price id) of the prices made by the `prices` fixture (products named after plans)."""
    return [(stripe_double.get(price["product"])["name"].lower(), price["id"])
            for price in stripe_double.client().v1.prices.list({"limit": 100}).data]


async def test_a_lost_answer_is_retried_with_the_same_key_and_done_once(agency, stripe_double, owner_engine,
                                                                         worker):
    await subscribe(agency, stripe_double, owner_engine, "starter")
    sub_id = stripe_double.requests("/v1/subscriptions/", method="GET")[-1]["path"].rsplit("/", 1)[1]
    before = len(stripe_double.client().v1.invoices.list({"subscription": sub_id}).data)
    stripe_double.fail_next(f"/v1/subscriptions/{sub_id}", mode="drop_after", method="POST")
    r = await agency.req("POST", "/v1/billing/plan", json={"plan": "growth"})
    assert r.status_code == 200, r.text
    calls = stripe_double.requests(f"/v1/subscriptions/{sub_id}", method="POST")
    assert len(calls) == 2 and calls[0]["idempotency_key"] == calls[1]["idempotency_key"]
    assert calls[1]["replayed"] is True
    assert len(stripe_double.client().v1.invoices.list({"subscription": sub_id}).data) == before + 1


async def test_stripe_down_is_a_503_and_changes_nothing(agency, stripe_double, owner_engine, worker):
    await subscribe(agency, stripe_double, owner_engine, "starter")
    stripe_double.fail_next("/v1/subscriptions/", count=10, mode="error", method="POST")
    r = await agency.req("POST", "/v1/billing/plan", json={"plan": "growth"})
    assert r.status_code == 503 and r.json()["type"].endswith("/billing-provider-unavailable")
    assert (await billing(agency))["plan"]["key"] == "starter"


async def test_cancel_at_period_end_resume_then_end(agency, stripe_double, owner_engine, worker, smtp_inbox):
    await subscribe(agency, stripe_double, owner_engine, "starter")
    r = await agency.req("POST", "/v1/billing/cancel")
    assert r.status_code == 200 and r.json()["cancel_at_period_end"] is True and r.json()["read_only"] is False
    r = await agency.req("POST", "/v1/billing/resume")
    assert r.status_code == 200 and r.json()["cancel_at_period_end"] is False
    r = await agency.req("POST", "/v1/billing/cancel")
    mark = stripe_double.last_event_id()
    stripe_double.advance(40 * 24 * 3600)
    events = stripe_double.events(since=mark)
    assert "customer.subscription.deleted" in [e["type"] for e in events]
    await deliver_all(agency.client, events, owner_engine)
    state = await billing(agency)
    assert state["status"] == "canceled" and state["read_only"] is True
    await eventually(lambda: any("has ended" in m["Subject"] for m in smtp_inbox.to(agency.email)),
                     what="the subscription-ended email")
    # Ended: a new Checkout is allowed again; changing the plan is not.
    r = await agency.req("POST", "/v1/billing/plan", json={"plan": "growth"})
    assert r.status_code == 409 and r.json()["type"].endswith("/no-subscription")


async def test_per_brand_quantity_follows_the_brands(agency, stripe_double, owner_engine, worker):
    await subscribe(agency, stripe_double, owner_engine, "agency")
    sub_id = stripe_double.requests("/v1/subscriptions/", method="GET")[-1]["path"].rsplit("/", 1)[1]
    assert stripe_double.get(sub_id)["items"]["data"][0]["quantity"] == 5
    brands = [await agency.brand() for _ in range(7)]
    await eventually(lambda: stripe_double.get(sub_id)["items"]["data"][0]["quantity"] == 7, what="quantity 7")
    r = await agency.req("PATCH", f"/v1/brands/{brands[0]['id']}", json={"status": "archived"})
    assert r.status_code == 200, r.text
    await eventually(lambda: stripe_double.get(sub_id)["items"]["data"][0]["quantity"] == 6, what="quantity 6")
    keys = [c["idempotency_key"] for c in stripe_double.requests(f"/v1/subscriptions/{sub_id}", method="POST")]
    assert len(keys) == len(set(keys)) and all(k.startswith("chorus:") for k in keys)

    async def in_step():
        return (await billing(agency))["quantity"] == 6
    await eventually(in_step, what="Chorus's quantity 6")


async def test_owners_only_and_billing_off(agency, client):
    token, _ = await agency.member("admin")
    assert (await agency.req("GET", "/v1/billing", token=token)).status_code == 200
    r = await agency.req("POST", "/v1/billing/checkout-sessions", token=token, json={"plan": "starter"})
    assert r.status_code == 403
    r = await agency.req("POST", "/v1/billing/checkout-sessions", json={"plan": "platinum"})
    assert r.status_code == 422
    selfhosted = await sign_up(client)
    state = (await selfhosted.req("GET", "/v1/billing")).json()
    assert state["billing_enabled"] is False and state["plan"]["key"] == "unlimited" and state["read_only"] is False
    r = await selfhosted.req("POST", "/v1/billing/checkout-sessions", json={"plan": "starter"})
    assert r.status_code == 409 and r.json()["type"].endswith("/billing-off")


async def test_refresh_reads_the_subscription_without_waiting_for_the_webhook(agency, stripe_double, owner_engine):
    await end_trial(owner_engine, agency)
    r = await agency.req("POST", "/v1/billing/checkout-sessions", json={"plan": "growth"})
    stripe_double.complete_checkout(r.json()["id"])
    assert (await billing(agency))["status"] == "trialing", "no webhook delivered yet"
    r = await agency.req("POST", "/v1/billing/refresh")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active" and r.json()["plan"]["key"] == "growth"
    assert r.json()["current_period_end"] is not None


async def test_per_seat_quantity_follows_members_and_invitations(agency, stripe_double, owner_engine, worker,
                                                                 app_engine):
    await subscribe(agency, stripe_double, owner_engine, "enterprise")
    sub_id = stripe_double.requests("/v1/subscriptions/", method="GET")[-1]["path"].rsplit("/", 1)[1]
    assert stripe_double.get(sub_id)["items"]["data"][0]["quantity"] == 10, "at least 10 seats"
    invitations = []
    for n in range(12):
        r = await agency.req("POST", "/v1/invitations", json={"email": f"seat{n}-{uuid.uuid4().hex[:6]}@example.test",
                                                              "role": "editor"})
        assert r.status_code == 201, r.text
        invitations.append(r.json()["id"])
    await eventually(lambda: stripe_double.get(sub_id)["items"]["data"][0]["quantity"] == 13, what="13 seats")
    r = await agency.req("DELETE", f"/v1/invitations/{invitations[0]}")
    assert r.status_code in (200, 204), r.text
    await eventually(lambda: stripe_double.get(sub_id)["items"]["data"][0]["quantity"] == 12, what="12 seats")
    # An invitation that simply expires frees a seat with no one acting: the billing sweep catches it.
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = :i"),
                           {"i": invitations[1]})
    # The sweep names this agency (other tests' agencies too: only this one's job is sent here,
    # as their doubles are gone) and sends it the job it sends each of them.
    from domain.billing.service import SYNC_QUANTITY
    from workers.broker import send_each

    async with app_engine.connect() as conn:
        named = (await conn.execute(text("SELECT * FROM chorus_billing_per_unit(:p)"),
                                    {"p": ["agency", "enterprise"]})).scalars().all()
    assert uuid.UUID(agency.agency_id) in named
    await send_each(worker.broker, SYNC_QUANTITY, [{"agency_id": agency.agency_id}])
    await eventually(lambda: stripe_double.get(sub_id)["items"]["data"][0]["quantity"] == 11,
                     what="the sweep's quantity fix")
