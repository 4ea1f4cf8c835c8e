"""The Stripe double, driven only through the official stripe SDK (sync and async) and its test controls."""

from __future__ import annotations

import json

import httpx
import pytest
import stripe

from tests.stripe_double import CheckoutDeclined, StripeError, decode_form, sign, sign_bad, sign_stale
from tests.stripe_double.double import DAY
from tests.stripe_double.fixtures import WEBHOOK_SECRET, stripe_client, stripe_double, stripe_plans  # noqa: F401

# The SDK's HTTPXClient hands httpx raw bytes as data=; httpx 0.28 warns about it (not ours to fix).
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")


def _checkout(client, plans, *, plan="starter", quantity=1, customer=None, email=None, **extra):
    params = {"mode": "subscription", "line_items": [{"price": plans[plan], "quantity": quantity}],
              "success_url": "https://app.example/billing/ok", "cancel_url": "https://app.example/billing/cancel",
              "client_reference_id": "agency-1", "metadata": {"agency_id": "agency-1"},
              "subscription_data": {"metadata": {"agency_id": "agency-1"}}}
    if customer:
        params["customer"] = customer
    else:
        params["customer_email"] = email or "owner@agency.example"
    for k, v in extra.items():
        if k == "subscription_data":
            params["subscription_data"].update(v)
        else:
            params[k] = v
    return client.v1.checkout.sessions.create(params)


def _subscribe(double, client, plans, **kw):
    session = _checkout(client, plans, **kw)
    double.complete_checkout(session.id)
    session = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["subscription"]})
    return session, session.subscription


def test_decoder_reads_stripe_bracket_form():
    body = ("items[0][price]=price_a&items[0][quantity]=2&items[1][id]=si_b&items[1][deleted]=true"
            "&metadata[agency_id]=7&metadata[0]=zero&expand[]=latest_invoice&expand[]=customer"
            "&subscription_data[metadata][x]=&subscription_data[trial_period_days]=14")
    assert decode_form(body) == {
        "items": [{"price": "price_a", "quantity": "2"}, {"id": "si_b", "deleted": "true"}],
        "metadata": {"agency_id": "7", "0": "zero"},
        "expand": ["latest_invoice", "customer"],
        "subscription_data": {"metadata": {"x": ""}, "trial_period_days": "14"},
    }


async def test_catalogue_customers_and_checkout_to_subscription(stripe_double, stripe_plans):
    client = stripe_double.client()
    prices = await client.v1.prices.list_async({"lookup_keys": ["chorus_growth_monthly"], "active": True})
    assert [p.id for p in prices.data] == [stripe_plans["growth"]]
    assert prices.object == "list" and prices.url == "/v1/prices" and prices.has_more is False
    assert prices.data[0].recurring.interval == "month" and prices.data[0].unit_amount == 4900
    customer = await client.v1.customers.create_async({"email": "o@a.example", "metadata": {"agency_id": "a1"}})
    assert customer.id.startswith("cus_") and customer.metadata["agency_id"] == "a1"
    found = await client.v1.customers.list_async({"email": "o@a.example"})
    assert [c.id for c in found.data] == [customer.id]
    updated = await client.v1.customers.update_async(customer.id, {"name": "Agency One", "metadata": {"agency_id": ""}})
    assert updated.name == "Agency One" and "agency_id" not in updated.metadata

    session = await client.v1.checkout.sessions.create_async({
        "mode": "subscription", "customer": customer.id, "client_reference_id": "a1",
        "line_items": [{"price": stripe_plans["growth"], "quantity": 3}], "success_url": "https://x.example/ok",
        "cancel_url": "https://x.example/no", "metadata": {"agency_id": "a1"}, "allow_promotion_codes": True,
        "subscription_data": {"metadata": {"agency_id": "a1"}}})
    assert session.id.startswith("cs_test_") and session.status == "open" and session.amount_total == 14700
    assert session.url == f"{stripe_double.base_url}/checkout/{session.id}"
    page = httpx.get(session.url)
    assert page.status_code == 200 and "Checkout" in page.text
    mark = stripe_double.last_event_id()
    stripe_double.complete_checkout(session.id)
    assert stripe_double.event_types(since=mark) == [
        "customer.subscription.created", "invoice.created", "invoice.finalized", "invoice.paid",
        "invoice.payment_succeeded", "checkout.session.completed"]

    done = await client.v1.checkout.sessions.retrieve_async(session.id, {"expand": ["subscription"]})
    assert done.status == "complete" and done.payment_status == "paid" and done.customer == customer.id
    sub = done.subscription
    assert sub.object == "subscription" and sub.id.startswith("sub_") and sub.status == "active"
    item = sub["items"].data[0]
    assert item.id.startswith("si_") and item.price.id == stripe_plans["growth"] and item.quantity == 3
    assert item.current_period_end > item.current_period_start
    assert sub.metadata["agency_id"] == "a1" and sub.customer == customer.id and sub.cancel_at_period_end is False
    again = await client.v1.subscriptions.retrieve_async(sub.id, {"expand": ["latest_invoice"]})
    assert again.latest_invoice.status == "paid" and again.latest_invoice.amount_paid == 14700
    assert again.latest_invoice.billing_reason == "subscription_create"
    listed = await client.v1.subscriptions.list_async({"customer": customer.id, "status": "active"})
    assert [s.id for s in listed.data] == [sub.id]
    invoices = await client.v1.invoices.list_async({"subscription": sub.id})
    assert [i.id for i in invoices.data] == [again.latest_invoice.id]
    portal = await client.v1.billing_portal.sessions.create_async({"customer": customer.id,
                                                                   "return_url": "https://x.example/billing"})
    assert portal.id.startswith("bps_") and portal.url.startswith(stripe_double.base_url + "/portal/")

    completed = stripe_double.events(types=["checkout.session.completed"])[-1]
    assert completed["data"]["object"]["client_reference_id"] == "a1"
    assert completed["data"]["object"]["subscription"] == sub.id


def test_checkout_with_email_creates_the_customer_and_declined_card_changes_nothing(stripe_double, stripe_plans):
    client = stripe_double.client()
    session = _checkout(client, stripe_plans, email="new@agency.example")
    with pytest.raises(CheckoutDeclined):
        stripe_double.complete_checkout(session.id, payment="fail")
    assert client.v1.customers.list({"email": "new@agency.example"}).data == []
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    stripe_double.complete_checkout(session.id)
    types = stripe_double.event_types()
    assert types.index("customer.created") < types.index("customer.subscription.created")
    assert client.v1.customers.list({"email": "new@agency.example"}).data[0].id == \
        client.v1.checkout.sessions.retrieve(session.id).customer
    expired = client.v1.checkout.sessions.expire(_checkout(client, stripe_plans).id)
    assert expired.status == "expired"


def test_idempotent_replay_and_conflict(stripe_double):
    client = stripe_double.client()
    first = client.v1.customers.create({"email": "i@x.example"}, {"idempotency_key": "agency-1-customer"})
    second = client.v1.customers.create({"email": "i@x.example"}, {"idempotency_key": "agency-1-customer"})
    assert first.id == second.id
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert first.last_response.headers["Request-Id"].startswith("req_")
    assert len(client.v1.customers.list({"email": "i@x.example"}).data) == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "other@x.example"}, {"idempotency_key": "agency-1-customer"})
    calls = stripe_double.requests("/v1/customers", method="POST")
    assert [(c["idempotency_key"], c["status"], c["replayed"]) for c in calls] == [
        ("agency-1-customer", 200, False), ("agency-1-customer", 200, True), ("agency-1-customer", 400, False)]
    assert calls[0]["params"] == {"email": "i@x.example"}
    assert len(stripe_double.events(types="customer.created")) == 1


def test_errors_are_stripe_errors(stripe_double):
    client = stripe_double.client()
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.subscriptions.retrieve("sub_missing")
    assert missing.value.code == "resource_missing" and missing.value.http_status == 404
    assert missing.value.param == "id"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.create({"emial": "typo@x.example"})
    assert unknown.value.code == "parameter_unknown" and unknown.value.param == "emial"
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("pk_live_nope", base_addresses={"api": stripe_double.base_url},
                            http_client=stripe.HTTPXClient(allow_sync_methods=True)).v1.customers.list()
    raw = httpx.get(f"{stripe_double.base_url}/v1/customers")
    assert raw.status_code == 401 and raw.json()["error"]["type"] == "invalid_request_error"


def test_price_change_create_prorations_goes_to_the_next_invoice(stripe_double, stripe_plans):
    client = stripe_double.client()
    _, sub = _subscribe(stripe_double, client, stripe_plans, plan="starter")
    item = sub["items"].data[0]
    stripe_double.advance(10 * DAY)
    at = stripe_double.now()  # the same proration_date for the preview and the change, as Stripe advises
    preview = client.v1.invoices.create_preview({
        "customer": sub.customer, "subscription": sub.id,
        "subscription_details": {"items": [{"id": item.id, "price": stripe_plans["growth"]}],
                                 "proration_behavior": "create_prorations", "proration_date": at}})
    prorations = [ln for ln in preview.lines.data if ln.parent.subscription_item_details.proration]
    assert len(prorations) == 2
    credit, charge = sorted(ln.amount for ln in prorations)
    assert -1900 < credit < 0 < charge < 4900 and charge > -credit
    invoices_before = len(client.v1.invoices.list({"subscription": sub.id}).data)

    mark = stripe_double.last_event_id()
    changed = client.v1.subscriptions.update(sub.id, {"items": [{"id": item.id, "price": stripe_plans["growth"]}],
                                                      "proration_behavior": "create_prorations",
                                                      "proration_date": at})
    assert changed["items"].data[0].price.id == stripe_plans["growth"] and changed["items"].data[0].id == item.id
    assert changed.latest_invoice == sub.latest_invoice
    assert len(client.v1.invoices.list({"subscription": sub.id}).data) == invoices_before
    updated = stripe_double.events(since=mark, types="customer.subscription.updated")
    assert len(updated) == 1 and "items" in updated[0]["data"]["previous_attributes"]

    period_end = changed["items"].data[0].current_period_end
    stripe_double.advance_to(period_end + 60)
    renewal = client.v1.invoices.retrieve(client.v1.subscriptions.retrieve(sub.id).latest_invoice)
    assert renewal.billing_reason == "subscription_cycle" and renewal.status == "paid"
    assert renewal.amount_paid == 4900 + charge + credit
    assert renewal.lines.data[0].period.start == period_end


def test_price_change_always_invoice_and_none(stripe_double, stripe_plans):
    client = stripe_double.client()
    _, sub = _subscribe(stripe_double, client, stripe_plans, plan="growth")
    item = sub["items"].data[0]
    stripe_double.advance(15 * DAY)
    mark = stripe_double.last_event_id()
    down = client.v1.subscriptions.update(sub.id, {"items": [{"id": item.id, "price": stripe_plans["starter"]}],
                                                   "proration_behavior": "always_invoice"},
                                          )
    assert down.latest_invoice != sub.latest_invoice
    invoice = client.v1.invoices.retrieve(down.latest_invoice)
    assert invoice.billing_reason == "subscription_update" and invoice.total < 0 and invoice.amount_due == 0
    assert invoice.status == "paid"
    assert client.v1.customers.retrieve(sub.customer).balance == invoice.total
    assert "invoice.paid" in stripe_double.event_types(since=mark)

    up = client.v1.subscriptions.update(sub.id, {"items": [{"id": item.id, "price": stripe_plans["agency"]}],
                                                 "proration_behavior": "always_invoice"}, {"idempotency_key": "up-1"})
    charged = client.v1.invoices.retrieve(up.latest_invoice)
    assert charged.total > 0 and charged.status == "paid" and charged.amount_paid == max(0, charged.total + invoice.total)

    count = len(client.v1.invoices.list({"subscription": sub.id}).data)
    none = client.v1.subscriptions.update(sub.id, {"items": [{"id": item.id, "price": stripe_plans["starter"]}],
                                                   "proration_behavior": "none"})
    assert none["items"].data[0].price.id == stripe_plans["starter"] and none.latest_invoice == up.latest_invoice
    assert len(client.v1.invoices.list({"subscription": sub.id}).data) == count
    preview = client.v1.invoices.create_preview({"subscription": sub.id})
    assert all(not ln.parent.subscription_item_details.proration for ln in preview.lines.data)
    assert preview.amount_due == max(0, 1900 + client.v1.customers.retrieve(sub.customer).balance)


async def test_quantity_update_through_subscription_items(stripe_double, stripe_plans):
    client = stripe_double.client()
    _, sub = _subscribe(stripe_double, client, stripe_plans, plan="agency", quantity=2)
    item = sub["items"].data[0]
    stripe_double.advance(DAY)
    updated = await client.v1.subscription_items.update_async(item.id, {"quantity": 5,
                                                                        "proration_behavior": "always_invoice"})
    assert updated.quantity == 5 and updated.id == item.id
    fetched = await client.v1.subscriptions.retrieve_async(sub.id)
    assert fetched["items"].data[0].quantity == 5
    inv = await client.v1.invoices.retrieve_async(fetched.latest_invoice)
    assert 0 < inv.total < 3 * 9900 and inv.status == "paid"
    same = await client.v1.subscriptions.update_async(sub.id, {"items": [{"id": item.id, "quantity": 5}]})
    assert same.latest_invoice == fetched.latest_invoice


def test_cancel_at_period_end_then_deleted(stripe_double, stripe_plans):
    client = stripe_double.client()
    _, sub = _subscribe(stripe_double, client, stripe_plans)
    end = sub["items"].data[0].current_period_end
    canceling = client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    assert canceling.cancel_at_period_end is True and canceling.status == "active" and canceling.cancel_at == end
    assert canceling.canceled_at is not None
    ev = stripe_double.events(types="customer.subscription.updated")[-1]
    assert ev["data"]["previous_attributes"]["cancel_at_period_end"] is False
    stripe_double.advance_to(end - 300)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    mark = stripe_double.last_event_id()
    stripe_double.advance(600)
    assert stripe_double.event_types(since=mark) == ["customer.subscription.deleted"]
    gone = client.v1.subscriptions.retrieve(sub.id)
    assert gone.status == "canceled" and gone.ended_at == end
    assert client.v1.subscriptions.list({"customer": sub.customer}).data == []
    assert [s.id for s in client.v1.subscriptions.list({"customer": sub.customer, "status": "all"}).data] == [sub.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(sub.id, {"items": [{"id": sub["items"].data[0].id, "quantity": 2}]})


def test_immediate_cancel(stripe_double, stripe_plans):
    client = stripe_double.client()
    _, sub = _subscribe(stripe_double, client, stripe_plans)
    canceled = client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled" and canceled.ended_at is not None
    assert stripe_double.events()[-1]["type"] == "customer.subscription.deleted"


def test_payment_failure_past_due_then_fixed_card_pays(stripe_double, stripe_plans):
    client = stripe_double.client()
    _, sub = _subscribe(stripe_double, client, stripe_plans)
    stripe_double.set_payment(sub.customer, "fail")
    mark = stripe_double.last_event_id()
    stripe_double.advance_to(sub["items"].data[0].current_period_end + 1)
    assert stripe_double.event_types(since=mark) == [
        "customer.subscription.updated", "invoice.created", "invoice.finalized", "invoice.payment_failed",
        "customer.subscription.updated"]
    past_due = client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    assert past_due.status == "past_due"
    assert past_due.latest_invoice.status == "open" and past_due.latest_invoice.attempt_count == 1
    with pytest.raises(stripe.CardError) as declined:
        client.v1.invoices.pay(past_due.latest_invoice.id)
    assert declined.value.code == "card_declined"
    stripe_double.set_payment(sub.customer, "succeed")
    mark = stripe_double.last_event_id()
    paid = stripe_double.pay_invoice(past_due.latest_invoice.id)
    assert paid["status"] == "paid"
    assert stripe_double.event_types(since=mark) == ["invoice.paid", "invoice.payment_succeeded",
                                                      "customer.subscription.updated"]
    last = stripe_double.events(since=mark)[-1]
    assert last["data"]["object"]["status"] == "active"
    assert last["data"]["previous_attributes"]["status"] == "past_due"
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_payment_requires_action(stripe_double, stripe_plans):
    client = stripe_double.client()
    _, sub = _subscribe(stripe_double, client, stripe_plans)
    stripe_double.set_payment(sub.customer, "requires_action")
    stripe_double.advance_to(sub["items"].data[0].current_period_end + 1)
    assert "invoice.payment_action_required" in stripe_double.event_types()
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"


def test_trial_will_end_then_active(stripe_double, stripe_plans):
    client = stripe_double.client()
    session, sub = _subscribe(stripe_double, client, stripe_plans, subscription_data={"trial_period_days": 14})
    assert session.payment_status == "no_payment_required" and session.amount_total == 0
    assert sub.status == "trialing" and sub.trial_end - sub.trial_start == 14 * DAY
    first = client.v1.invoices.retrieve(sub.latest_invoice)
    assert first.amount_due == 0 and first.status == "paid"
    mark = stripe_double.last_event_id()
    stripe_double.advance(11 * DAY + 60)
    assert stripe_double.event_types(since=mark) == ["customer.subscription.trial_will_end"]
    mark = stripe_double.last_event_id()
    stripe_double.advance(3 * DAY)
    types = stripe_double.event_types(since=mark)
    assert types[0] == "customer.subscription.updated" and "invoice.paid" in types
    active = client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    assert active.status == "active" and active.latest_invoice.amount_paid == 1900
    assert active["items"].data[0].current_period_start == sub.trial_end
    ev = stripe_double.events(since=mark, types="customer.subscription.updated")[0]
    assert ev["data"]["previous_attributes"]["status"] == "trialing"


def test_trial_end_with_failing_card_goes_past_due(stripe_double, stripe_plans):
    client = stripe_double.client()
    _, sub = _subscribe(stripe_double, client, stripe_plans, subscription_data={"trial_period_days": 7})
    stripe_double.set_payment(sub.customer, "fail")
    stripe_double.advance(8 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    assert "invoice.payment_failed" in stripe_double.event_types()


def test_event_signatures_verify_and_tampering_fails(stripe_double, stripe_plans):
    client = stripe_double.client()
    _subscribe(stripe_double, client, stripe_plans)
    event = stripe_double.events(types="checkout.session.completed")[0]
    assert event["id"].startswith("evt_") and event["object"] == "event" and event["livemode"] is False
    assert event["api_version"] == stripe.api_version and isinstance(event["created"], int)
    payload, headers = stripe_double.signed(event)
    verified = client.construct_event(payload, headers["Stripe-Signature"], WEBHOOK_SECRET)
    assert verified.id == event["id"] and verified.type == "checkout.session.completed"
    assert verified.data.object.subscription == event["data"]["object"]["subscription"]
    tampered = payload.replace(b"checkout.session.completed", b"checkout.session.expired")
    with pytest.raises(stripe.SignatureVerificationError):
        client.construct_event(tampered, headers["Stripe-Signature"], WEBHOOK_SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        client.construct_event(payload, sign_stale(payload, WEBHOOK_SECRET), WEBHOOK_SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        client.construct_event(payload, sign_bad(payload, WEBHOOK_SECRET), WEBHOOK_SECRET)
    assert client.construct_event(payload, sign(payload, WEBHOOK_SECRET), WEBHOOK_SECRET).id == event["id"]


def test_automatic_delivery_posts_signed_events(stripe_double, stripe_plans):
    from tests.loopback import Receiver, serve

    hook_app = Receiver()
    with serve(hook_app, ready_path="/") as hook:
        stripe_double.webhook_url = hook + "/webhooks/stripe"
        client = stripe_double.client()
        _subscribe(stripe_double, client, stripe_plans)
        records = stripe_double.wait_deliveries(timeout=60)
    assert records and all(r["ok"] for r in records)
    received = [(r["body"], r["headers"]["stripe-signature"]) for r in hook_app.received]
    sent_ids = [json.loads(body)["id"] for body, _ in received]
    assert sent_ids == [r["event"] for r in records]
    for body, header in received:
        assert client.construct_event(body, header, WEBHOOK_SECRET).id in sent_ids


def test_faults_make_the_sdk_retry_with_the_same_idempotency_key(stripe_double):
    client = stripe_double.client(max_network_retries=2)
    stripe_double.fail_next("/v1/customers", count=1, mode="error", method="POST")
    stripe_double.fail_next("/v1/customers", count=1, mode="drop_after", method="POST")
    customer = client.v1.customers.create({"email": "retry@x.example"}, {"idempotency_key": "cust-retry"})
    calls = stripe_double.requests("/v1/customers", method="POST")
    assert [c["fault"] for c in calls] == ["error", "drop_after", None]
    assert {c["idempotency_key"] for c in calls} == {"cust-retry"}
    assert calls[-1]["replayed"] is True
    assert [c.id for c in client.v1.customers.list({"email": "retry@x.example"}).data] == [customer.id]

    stripe_double.fail_next("/v1/customers", count=1, mode="drop", method="POST")
    again = client.v1.customers.create({"email": "drop@x.example"})  # the SDK makes its own key for POSTs
    keys = [c["idempotency_key"] for c in stripe_double.requests("/v1/customers", method="POST")[-2:]]
    assert keys[0] == keys[1] and keys[0]
    assert again.email == "drop@x.example"
    no_retry = stripe_double.client(max_network_retries=0)
    stripe_double.fail_next("/v1/customers", count=1, mode="error")
    with pytest.raises(stripe.APIError):
        no_retry.v1.customers.list()


def test_control_errors(stripe_double, stripe_plans):
    client = stripe_double.client()
    with pytest.raises(StripeError):
        stripe_double.pay_invoice("in_missing")
    _, sub = _subscribe(stripe_double, client, stripe_plans)
    with pytest.raises(StripeError) as paid:
        stripe_double.pay_invoice(sub.latest_invoice)
    assert paid.value.status == 400
    r = httpx.post(f"{stripe_double.base_url}/_double/advance", json={"seconds": 60})
    assert r.status_code == 200 and r.json()["now"] >= stripe_double.now() - 1


async def test_seeded_prices_and_the_calls_chorus_makes(stripe_double):
    """Prices with the ids settings name, then the billing flow's own calls (keys, trial carry-over)."""
    for plan, amount in (("starter", 1900), ("growth", 4900), ("agency", 1500)):
        stripe_double.add_price(f"price_chorus_{plan}", amount, product_name=plan.title())
    with pytest.raises(ValueError):
        stripe_double.add_price("price_chorus_starter", 1)
    client = stripe_double.client(max_network_retries=2)
    assert (await client.v1.prices.retrieve_async("price_chorus_growth")).unit_amount == 4900
    customer = await client.v1.customers.create_async(
        {"email": "owner@a.example", "name": "Agency A", "metadata": {"agency_id": "a"}},
        {"idempotency_key": "chorus:acct:customer"})
    trial_end = stripe_double.now() + 10 * DAY
    params = {"mode": "subscription", "customer": customer.id, "client_reference_id": "a",
              "line_items": [{"price": "price_chorus_agency", "quantity": 4}],
              "success_url": "https://app.example/billing?checkout=success&session_id={CHECKOUT_SESSION_ID}",
              "cancel_url": "https://app.example/billing?checkout=cancelled",
              "metadata": {"agency_id": "a", "plan": "agency"},
              "subscription_data": {"metadata": {"agency_id": "a", "plan": "agency"}, "trial_end": trial_end}}
    session = await client.v1.checkout.sessions.create_async(params, {"idempotency_key": "chorus:acct:checkout:0"})
    again = await client.v1.checkout.sessions.create_async(params, {"idempotency_key": "chorus:acct:checkout:0"})
    assert again.id == session.id and again.url == session.url
    with_items = await client.v1.checkout.sessions.retrieve_async(session.id, {"expand": ["line_items"]})
    assert [(li.price.id, li.quantity) for li in with_items.line_items.data] == [("price_chorus_agency", 4)]
    page = httpx.post(f"{stripe_double.base_url}/_double/checkout/{session.id}/complete", data={"pay": "1"})
    assert page.status_code == 303
    assert page.headers["location"] == f"https://app.example/billing?checkout=success&session_id={session.id}"
    sub = (await client.v1.checkout.sessions.retrieve_async(session.id, {"expand": ["subscription"]})).subscription
    assert sub.status == "trialing" and sub.trial_end == trial_end and sub.metadata["plan"] == "agency"
    item = sub["items"].data[0]
    changed = await client.v1.subscriptions.update_async(
        sub.id, {"items": [{"id": item.id, "price": "price_chorus_growth", "quantity": 1}],
                 "proration_behavior": "always_invoice", "cancel_at_period_end": False,
                 "metadata": {"agency_id": "a", "plan": "growth"}}, {"idempotency_key": "chorus:acct:plan:1:growth:1"})
    assert changed["items"].data[0].price.id == "price_chorus_growth" and changed.status == "trialing"
    assert changed.latest_invoice == sub.latest_invoice  # nothing to prorate during a trial
    ended = await client.v1.subscriptions.update_async(sub.id, {"trial_end": "now"})
    assert ended.status == "active" and ended.trial_end <= stripe_double.now()
    assert (await client.v1.invoices.retrieve_async(ended.latest_invoice)).amount_paid == 4900
    types = stripe_double.event_types()
    assert types.count("customer.subscription.trial_will_end") == 1
    assert types.index("customer.subscription.trial_will_end") < len(types) - 1


def test_interval_change_resets_the_cycle_and_invoices_now(stripe_double):
    stripe_double.add_price("price_m", 1000, product="prod_plan")
    stripe_double.add_price("price_y", 10000, product="prod_plan", interval="year")
    client = stripe_double.client()
    session = client.v1.checkout.sessions.create({"mode": "subscription", "customer_email": "y@x.example",
                                                  "line_items": [{"price": "price_m"}]})
    stripe_double.complete_checkout(session.id)
    sub = client.v1.subscriptions.retrieve(client.v1.checkout.sessions.retrieve(session.id).subscription)
    stripe_double.advance(15 * DAY)
    preview = client.v1.invoices.create_preview({"subscription": sub.id, "subscription_details": {
        "items": [{"id": sub["items"].data[0].id, "price": "price_y"}]}})
    yearly = client.v1.subscriptions.update(sub.id, {"items": [{"id": sub["items"].data[0].id, "price": "price_y"}]})
    item = yearly["items"].data[0]
    assert item.current_period_end - item.current_period_start >= 365 * DAY
    assert yearly.billing_cycle_anchor == item.current_period_start
    invoice = client.v1.invoices.retrieve(yearly.latest_invoice)
    assert invoice.status == "paid" and 10000 - 1000 < invoice.total < 10000
    assert abs(preview.total - invoice.total) <= 10  # seconds passed between preview and update


def test_failed_renewal_retries_then_cancels(stripe_double, stripe_plans):
    client = stripe_double.client()
    _, sub = _subscribe(stripe_double, client, stripe_plans)
    stripe_double.set_payment(sub.customer, "fail")
    mark = stripe_double.last_event_id()
    stripe_double.advance_to(sub["items"].data[0].current_period_end + 1)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    stripe_double.advance(16 * DAY)  # retries after 3, 5 and 7 more days
    types = stripe_double.event_types(since=mark)
    assert types.count("invoice.payment_failed") == 4
    assert types[-1] == "customer.subscription.deleted"
    gone = client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    assert gone.status == "canceled" and gone.cancellation_details.reason == "payment_failed"
    about = stripe_double.events(about=sub.id)
    assert about[0]["type"] == "customer.subscription.created" and about[-1]["type"] == "customer.subscription.deleted"
    assert {e["type"] for e in about} >= {"invoice.paid", "invoice.payment_failed", "checkout.session.completed"}
    assert "customer.created" not in {e["type"] for e in about}
    assert gone.latest_invoice.status == "open" and gone.latest_invoice.next_payment_attempt is None


def test_failed_renewal_recovered_by_a_retry(stripe_double, stripe_plans):
    client = stripe_double.client()
    _, sub = _subscribe(stripe_double, client, stripe_plans)
    stripe_double.set_payment(sub.customer, "fail")
    stripe_double.advance_to(sub["items"].data[0].current_period_end + 1)
    stripe_double.set_payment(sub.customer, "succeed")
    mark = stripe_double.last_event_id()
    stripe_double.advance(3 * DAY)
    assert stripe_double.event_types(since=mark) == ["invoice.paid", "invoice.payment_succeeded",
                                                      "customer.subscription.updated"]
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_controls_over_http(stripe_double, stripe_plans):
    client = stripe_double.client()
    base = stripe_double.base_url
    session = _checkout(client, stripe_plans)
    done = httpx.post(f"{base}/_double/checkout/{session.id}/complete", json={})
    assert done.status_code == 200 and done.json()["status"] == "complete"
    customer = done.json()["customer"]
    assert httpx.post(f"{base}/_double/customers/{customer}/payment", json={"behaviour": "fail"}).json() == \
        {"customer": customer, "behaviour": "fail"}
    assert httpx.post(f"{base}/_double/customers/{customer}/payment", json={"behaviour": "maybe"}).status_code == 400
    advanced = httpx.post(f"{base}/_double/advance", json={"seconds": 32 * DAY}).json()
    assert "invoice.payment_failed" in [e["type"] for e in advanced["events"]]
    sub = client.v1.subscriptions.retrieve(done.json()["subscription"])
    httpx.post(f"{base}/_double/customers/{customer}/payment", json={"behaviour": "succeed"})
    paid = httpx.post(f"{base}/_double/invoices/{sub.latest_invoice}/pay")
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    events = httpx.get(f"{base}/_double/events", params={"types": "invoice.paid"}).json()
    assert events[-1]["data"]["object"]["id"] == sub.latest_invoice
    assert httpx.post(f"{base}/_double/faults", json={"path": "/v1/customers", "mode": "error"}).status_code == 200
    with pytest.raises(stripe.APIError):
        stripe_double.client(max_network_retries=0).v1.customers.retrieve(customer)
    log = httpx.get(f"{base}/_double/requests", params={"path": "/v1/customers/"}).json()
    assert log[-1]["fault"] == "error" and log[-1]["status"] == 500
    assert httpx.get(f"{base}/portal/nope").status_code == 404
