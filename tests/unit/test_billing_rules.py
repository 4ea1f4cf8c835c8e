"""The billing rules without a database: standing from an account, and applying Stripe's
subscription facts (dunning start and end, plan from price, strangers ignored)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from domain.billing.plans import PLANS, UNLIMITED, Limit, lifting_plan, plan
from domain.billing.rules import standing
from domain.billing.stripe_api import ItemFacts, SubscriptionFacts
from domain.billing.sync import apply_subscription
from domain.core.settings import Settings

AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SETTINGS = Settings(stripe_secret_key="sk_test_x", billing_grace_days=7,
                    stripe_prices=(("starter", "price_s"), ("growth", "price_g"), ("agency", "price_a")))


def account(**fields):
    base = dict(plan="growth", status="trialing", trial_ends_at=AT + timedelta(days=3), stripe_subscription_id=None,
                stripe_customer_id=None, stripe_item_id=None, stripe_price_id=None, quantity=1,
                current_period_end=None, cancel_at_period_end=False, canceled_at=None, past_due_since=None,
                grace_ends_at=None, read_only_since=None, stripe_synced_at=None)
    return SimpleNamespace(**(base | fields))


def facts(status="active", price="price_g", quantity=1, sub="sub_1", **fields):
    return SubscriptionFacts(id=sub, customer="cus_1", status=status,
                             items=[ItemFacts(id="si_1", price=price, quantity=quantity, current_period_end=1_800_000_000)],
                             **fields)


def test_billing_off_is_unlimited_and_writable():
    state = standing(None, AT)
    assert state.plan is UNLIMITED and not state.read_only and not state.enabled
    assert all(UNLIMITED.room(limit, 10**9) for limit in Limit)


@pytest.mark.parametrize(("fields", "read_only", "status"), [
    ({}, False, "trialing"),
    ({"trial_ends_at": AT - timedelta(seconds=1)}, True, "trial_ended"),
    ({"status": "active", "stripe_subscription_id": "sub_1"}, False, "active"),
    ({"status": "past_due", "stripe_subscription_id": "sub_1", "grace_ends_at": AT + timedelta(hours=1)}, False, "past_due"),
    ({"status": "past_due", "stripe_subscription_id": "sub_1", "grace_ends_at": AT - timedelta(hours=1)}, True, "past_due"),
    ({"status": "unpaid", "stripe_subscription_id": "sub_1", "grace_ends_at": AT + timedelta(days=1),
      "read_only_since": AT - timedelta(days=1)}, True, "unpaid"),
    ({"status": "canceled", "stripe_subscription_id": "sub_1"}, True, "canceled"),
    ({"status": "incomplete", "stripe_subscription_id": "sub_1"}, False, "incomplete"),
])
def test_standing(fields, read_only, status):
    state = standing(account(**fields), AT)
    assert (state.read_only, state.status) == (read_only, status)
    assert (state.reason is not None) == read_only


def test_the_lifting_plan_is_the_smallest_that_allows_it():
    starter, growth = plan("starter"), plan("growth")
    assert lifting_plan(starter, Limit.BRANDS, 4) is growth
    assert lifting_plan(starter, Limit.BRANDS, 11).key == "agency"
    assert lifting_plan(starter, Limit.API_ACCESS, 1) is growth
    assert lifting_plan(growth, Limit.WHITE_LABEL, 1).key == "agency"
    assert lifting_plan(PLANS[-1], Limit.BRANDS, 10**6) is None


def test_per_unit_quantity_follows_usage_with_a_minimum():
    assert plan("agency").quantity(brands=12, seats=3) == 12
    assert plan("agency").quantity(brands=2, seats=3) == plan("agency").min_quantity
    assert plan("enterprise").quantity(brands=100, seats=40) == 40
    assert plan("growth").quantity(brands=9, seats=9) == 1


def test_past_due_starts_the_grace_once_and_payment_ends_it():
    acc = account(status="active", stripe_subscription_id="sub_1")
    notices, changed = apply_subscription(acc, facts("past_due"), SETTINGS, AT)
    assert notices == ["payment_failed"] and not changed
    assert acc.past_due_since == AT and acc.grace_ends_at == AT + timedelta(days=7)
    later = AT + timedelta(days=2)
    assert apply_subscription(acc, facts("past_due"), SETTINGS, later) == ([], False)
    assert acc.past_due_since == AT, "a second failure does not restart the grace"
    notices, _ = apply_subscription(acc, facts("active"), SETTINGS, later)
    assert notices == ["restored"] and acc.past_due_since is None and acc.grace_ends_at is None


def test_plan_follows_the_price_and_unknown_prices_keep_the_plan():
    acc = account(status="active", stripe_subscription_id="sub_1")
    assert apply_subscription(acc, facts(price="price_a", quantity=7), SETTINGS, AT)[1] is True
    assert (acc.plan, acc.quantity, acc.stripe_item_id) == ("agency", 7, "si_1")
    assert apply_subscription(acc, facts(price="price_unknown"), SETTINGS, AT)[1] is False
    assert acc.plan == "agency"


def test_an_ended_strangers_events_change_nothing_but_a_new_live_one_is_adopted():
    acc = account(status="active", stripe_subscription_id="sub_new")
    assert apply_subscription(acc, facts("canceled", sub="sub_old"), SETTINGS, AT) == ([], False)
    assert acc.status == "active" and acc.stripe_subscription_id == "sub_new"
    ended = account(status="canceled", stripe_subscription_id="sub_old")
    notices, changed = apply_subscription(ended, facts("active", sub="sub_new"), SETTINGS, AT)
    assert ended.stripe_subscription_id == "sub_new" and ended.status == "active" and changed


def test_ending_tells_once():
    acc = account(status="active", stripe_subscription_id="sub_1")
    assert apply_subscription(acc, facts("canceled"), SETTINGS, AT)[0] == ["ended"]
    assert apply_subscription(acc, facts("canceled"), SETTINGS, AT)[0] == []


def test_settings_map_prices_both_ways():
    assert SETTINGS.price_for("growth") == "price_g" and SETTINGS.plan_for_price("price_s") == "starter"
    assert SETTINGS.price_for("enterprise") is None and dataclasses.replace(SETTINGS, stripe_secret_key=None).billing_enabled is False
