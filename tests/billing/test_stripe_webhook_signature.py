"""Stripe's webhook endpoint before any worker: the signature over the raw body, its age,
the event's shape, storing each event once, and billing off."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from sqlalchemy import text

from tests.billing.stripe_support import billing_client, billing_settings_for, deliver, signed  # noqa: F401



@pytest.fixture
def billing_settings(settings):
    return billing_settings_for(settings, None)


def event(kind: str = "customer.subscription.updated", **obj) -> dict:
    return {"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "api_version": "2025-09-30.clover",
            "created": int(time.time()), "livemode": False, "pending_webhooks": 1, "type": kind,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": {"id": f"sub_{uuid.uuid4().hex[:14]}", "object": "subscription",
                                "customer": "cus_unknown", **obj}}}


async def stored(owner_engine, event_id: str) -> int:
    async with owner_engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM stripe_events WHERE event_id = :e"), {"e": event_id})).scalar()


async def test_a_good_signature_stores_the_event_once(billing_client, owner_engine):
    evt = event()
    r = await deliver(billing_client, evt)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": True, "duplicate": False}
    again = await deliver(billing_client, evt)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert await stored(owner_engine, evt["id"]) == 1


@pytest.mark.parametrize("tamper", ["wrong secret", "changed body", "stale", "future", "no header", "garbage header"])
async def test_a_bad_or_stale_signature_is_400_and_writes_nothing(billing_client, owner_engine, tamper):
    evt = event()
    body, headers = signed(evt)
    if tamper == "wrong secret":
        body, headers = signed(evt, secret="whsec_someone_else")
    elif tamper == "changed body":
        body = body.replace(b'"livemode":false', b'"livemode":true ')
    elif tamper == "stale":
        body, headers = signed(evt, timestamp=int(time.time()) - 301)
    elif tamper == "future":
        body, headers = signed(evt, timestamp=int(time.time()) + 3600)
    elif tamper == "no header":
        headers.pop("Stripe-Signature")
    else:
        headers["Stripe-Signature"] = "t=abc,v1=zz"
    r = await billing_client.post("/v1/billing/stripe/webhook", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/webhook-signature-invalid")
    assert await stored(owner_engine, evt["id"]) == 0


async def test_a_signature_just_inside_the_tolerance_is_accepted(billing_client, owner_engine):
    evt = event()
    r = await deliver(billing_client, evt, timestamp=int(time.time()) - 290)
    assert r.status_code == 200, r.text
    assert await stored(owner_engine, evt["id"]) == 1


@pytest.mark.parametrize("body", [b"not json", b"[]", json.dumps({"id": "evt_1"}).encode(),
                                  json.dumps({"id": "nope", "type": "x", "created": 1, "data": {"object": {}}}).encode()])
async def test_a_signed_body_that_is_not_an_event_is_400(billing_client, body):
    header = __import__("stripe").WebhookSignature.generate_signature_header(body.decode(), "whsec_chorus_test_secret")
    r = await billing_client.post("/v1/billing/stripe/webhook", content=body, headers={"Stripe-Signature": header})
    assert r.status_code == 400, r.text
    assert r.json()["type"].endswith("/webhook-payload-invalid")


async def test_the_same_event_delivered_five_times_at_once_is_stored_once(billing_client, owner_engine):
    evt = event()
    answers = await asyncio.gather(*(deliver(billing_client, evt) for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True, True, True]
    assert await stored(owner_engine, evt["id"]) == 1


async def test_with_billing_off_there_is_no_webhook(client, owner_engine):
    evt = event()
    r = await deliver(client, evt)
    assert r.status_code == 404, r.text
    assert await stored(owner_engine, evt["id"]) == 0
